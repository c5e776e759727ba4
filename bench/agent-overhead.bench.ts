// What the agent costs the node, and its memory with six Go processes (one of them ≥ 50 MB) profiled node-wide.
//   npm run build && node dist/bench/agent-overhead.bench.js [WINDOW_SECONDS]
// CPU share = (agent user+sys over the window, all threads + its BPF programs' run time from
// kernel.bpf_stats_enabled) / (window × CPUs), while a CPU-bound Go fixture fills every core and a node-wide
// profile is in flight. Measured twice: for the first profile after start (the agent reads kallsyms and the symbol
// tables of what it samples, and compiles its hot paths, on the way) and, the target, for a profile after that.
// Prints numbers; asserts nothing. (bench/workload-throughput.bench.ts measures what the workload loses.)

import type { ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import { decodePprof } from '../src/profile/pprof';
import { startAgentProcess, type AgentProcess } from './support/agent';
import { bpfRunSeconds, countBpfRunTime, cpuSeconds, memoryMiB, statCpuSeconds } from './support/proc-stats';
import { startFiveMoreGoProcesses, startHotFixture } from './support/go-workload';

const WINDOW = Number(process.argv[2] ?? 20);
/** user+sys of the whole thread group, and of its main thread alone (the JS thread). */
function agentCpuSeconds(pid: number): { all: number; main: number } {
  return { all: cpuSeconds(pid), main: statCpuSeconds(`/proc/${pid}/task/${pid}/stat`) };
}

/** A node-wide profile: its samples, and how many of them came from processes other than `ours`. */
async function profile(url: string, seconds: number, ours: readonly number[] = []): Promise<{ samples: number; others: number; otherPids: number }> {
  const r = await fetch(`${url}/debug/pprof/profile?seconds=${seconds}`);
  if (r.status !== 200) throw new Error(`profile: HTTP ${r.status} ${await r.text()}`);
  const p = decodePprof(Buffer.from(await r.arrayBuffer()));
  const pidKey = p.stringTable.indexOf('pid');
  let samples = 0;
  let others = 0;
  const otherPids = new Set<number>();
  for (const s of p.sample) {
    const n = Number(s.value[0]);
    samples += n;
    const pid = s.label.find((l) => l.key === pidKey)?.num;
    if (pid !== undefined && !ours.includes(pid)) {
      others += n;
      otherPids.add(pid);
    }
  }
  return { samples, others, otherPids: otherPids.size };
}

/** Go processes the agent tracks (its whole node, not only this bench's). */
async function goProcesses(url: string): Promise<number> {
  const r = await fetch(`${url}/api/processes`);
  return ((await r.json()) as { processes: unknown[] }).processes.length;
}

/** The agent's own account (prom-client's Node.js metrics, MiB): V8 heap committed, its young generation, Buffers. */
async function jsMemory(url: string): Promise<{ heap: number; young: number; external: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const mib = (re: RegExp): number => Number(re.exec(text)?.[1] ?? NaN) / 2 ** 20;
  return {
    heap: mib(/^nodejs_heap_size_total_bytes (\S+)$/m),
    young: mib(/^nodejs_heap_space_size_total_bytes\{space="new"\} (\S+)$/m),
    external: mib(/^nodejs_external_memory_bytes (\S+)$/m),
  };
}

async function main(): Promise<void> {
  const cpus = os.cpus().length;
  const stats = countBpfRunTime();
  const procs: ChildProcess[] = [];
  let agent: AgentProcess | undefined;
  try {
    // 1. CPU share with a CPU-bound fixture on every core and a node-wide profile in flight.
    const hot = startHotFixture(cpus);
    procs.push(hot);
    agent = await startAgentProcess(['--log-level', 'info'], { programIds: true });
    const ours = [hot.pid!, agent.proc.pid!];
    await new Promise((r) => setTimeout(r, 2000));
    console.log(`window ${WINDOW} s × ${cpus} CPUs at 99 Hz, node-wide profile in flight, CPU-bound Go fixture on every core`);
    for (const which of ['first profile after start', 'next profile (target)']) {
      const cpu0 = agentCpuSeconds(agent.proc.pid!);
      const bpf0 = bpfRunSeconds(agent.programIds);
      const { samples, others, otherPids } = await profile(agent.url, WINDOW, ours);
      const cpu1 = agentCpuSeconds(agent.proc.pid!);
      const bpf1 = bpfRunSeconds(agent.programIds);
      const userSys = cpu1.all - cpu0.all;
      const main = cpu1.main - cpu0.main;
      const bpfSec = bpf1 - bpf0;
      const share = (userSys + bpfSec) / (WINDOW * cpus);
      console.log(`  ${which}: agent user+sys ${userSys.toFixed(2)} s (JS thread ${main.toFixed(2)} s, other threads ${(userSys - main).toFixed(2)} s), its BPF programs ${bpfSec.toFixed(4)} s → ${(share * 100).toFixed(2)}% of the window's CPU (target ≤ 1%)`);
      console.log(`    ${samples} samples (${others} of them from ${otherPids} processes besides the fixture and the agent): ${(((userSys + bpfSec) * 1000) / Math.max(samples, 1) * 1000).toFixed(1)} ms of CPU per 1,000 samples`);
    }

    // 2. Memory with six Go processes, one of them ≥ 50 MB, after node-wide profiles.
    const more = await startFiveMoreGoProcesses();
    procs.push(...more.procs);
    const ours6 = [...ours, ...procs.map((p) => p.pid!)];
    let others = 0;
    for (let i = 0; i < 3; i++) others += (await profile(agent.url, 5, ours6)).others;
    const mem = memoryMiB(agent.proc.pid!);
    const js = await jsMemory(agent.url);
    console.log(`six Go processes (bigbin ${(more.bigBytes / 2 ** 20).toFixed(0)} MiB among them; the agent tracks ${await goProcesses(agent.url)} on the node), after three node-wide profiles (${others} samples from other processes):`);
    console.log(`  agent RSS ${mem.rss.toFixed(1)} MiB (anonymous ${mem.anon.toFixed(1)}, file-backed ${mem.file.toFixed(1)}), peak ${mem.hwm.toFixed(1)} MiB (target ≤ 128 MiB)`);
    console.log(`  of which V8 heap ${js.heap.toFixed(1)} MiB committed (young generation ${js.young.toFixed(1)}), Buffers and typed arrays ${js.external.toFixed(1)} MiB`);
  } finally {
    await agent?.stop();
    for (const p of procs) p.kill('SIGKILL');
    stats.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
