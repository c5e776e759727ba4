// What the first profiles cost: the agent up and idle for IDLE s, then node-wide WINDOW s profiles at 99 Hz, each
// with a new process of the same CPU-bound Go binary started with it (the first is the one users mostly see:
// the agent sits idle, then someone runs `go tool pprof`). Share = (agent user+sys over the request, all threads, +
// its BPF programs' run time from kernel.bpf_stats_enabled) / (window × CPUs).
//   npm run build && node dist/bench/first-profile.bench.js [ROUNDS] [WINDOW] [IDLE]
// BASE_CLI=/path/to/other/dist/src/cli.js: alternate that build (base) with this one (new), ROUNDS agents each;
// medians and new/base ratios. AGENT_NODE_FLAGS='--flag …': extra node flags for the agents (both builds); BASE_NODE_FLAGS='--flag …': for the base's only (without BASE_CLI the base is this build: a flag measured against none). THREADS=1: each profile's CPU by agent thread. CPU_PROF_DIR=dir: V8 CPU profiles of the agents into dir (support/cpu-profile-preload.ts; for diagnosis).
// Prints numbers; asserts nothing.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { median, startAgentProcess } from './support/agent';
import { bpfRunSeconds, countBpfRunTime, cpuSeconds, memoryMiB, minorFaults } from './support/proc-stats';
import { startHotFixture } from './support/go-workload';

const ROUNDS = Number(process.argv[2] ?? 3);
const WINDOW = Number(process.argv[3] ?? 10);
const IDLE = Number(process.argv[4] ?? 10);
const PROFILES = 3;
const TICK = 100; // USER_HZ

/** user and system seconds of the agent's threads by name (threads of one name summed; the main thread apart). */
function threadSeconds(pid: number): Map<string, { user: number; sys: number }> {
  const out = new Map<string, { user: number; sys: number }>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const name = tid === String(pid) ? `${comm} (main)` : comm;
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const t = out.get(name) ?? { user: 0, sys: 0 };
    t.user += Number(f[11]) / TICK;
    t.sys += Number(f[12]) / TICK;
    out.set(name, t);
  }
  return out;
}

function threadDelta(before: Map<string, { user: number; sys: number }>, after: Map<string, { user: number; sys: number }>): string {
  return [...after]
    .map(([name, t]) => [name, t.user - (before.get(name)?.user ?? 0), t.sys - (before.get(name)?.sys ?? 0)] as const)
    .filter(([, u, s]) => u + s > 0)
    .map(([name, u, s]) => `${name} ${u.toFixed(2)}u+${s.toFixed(2)}s`)
    .join(', ');
}


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Run {
  /** Per profile: share of the window's CPU, user+sys s, BPF s. */
  profiles: Array<{ share: number; userSys: number; bpf: number; faults: number }>;
  peakMiB: number;
}

const flagList = (flags: string | undefined): string[] => (flags ?? '').split(' ').filter((f) => f !== '');

async function oneAgent(cli: string | undefined, extraFlags: string[]): Promise<Run> {
  const cpus = os.cpus().length;
  const profDir = process.env.CPU_PROF_DIR;
  const agent = await startAgentProcess(['--log-level', 'info'], {
    programIds: true,
    ...(cli !== undefined ? { cli } : {}),
    nodeFlags: [
      ...flagList(process.env.AGENT_NODE_FLAGS),
      ...extraFlags,
      ...(profDir !== undefined ? ['-r', path.join(__dirname, 'support', 'cpu-profile-preload.js')] : []),
    ],
  });
  const pid = agent.proc.pid!;
  const run: Run = { profiles: [], peakMiB: 0 };
  try {
    await sleep(IDLE * 1000);
    for (let i = 0; i < PROFILES; i++) {
      const cpu0 = cpuSeconds(pid);
      const faults0 = minorFaults(pid);
      const threads0 = process.env.THREADS ? threadSeconds(pid) : undefined;
      const bpf0 = bpfRunSeconds(agent.programIds);
      const go = startHotFixture(cpus);
      try {
        const r = await fetch(`${agent.url}/debug/pprof/profile?seconds=${WINDOW}`);
        if (r.status !== 200) throw new Error(`profile: HTTP ${r.status} ${await r.text()}`);
        await r.arrayBuffer();
        const userSys = cpuSeconds(pid) - cpu0;
        const bpf = bpfRunSeconds(agent.programIds) - bpf0;
        run.profiles.push({ share: (userSys + bpf) / (WINDOW * cpus), userSys, bpf, faults: minorFaults(pid) - faults0 });
        if (threads0) console.log(`    profile #${i + 1} by thread: ${threadDelta(threads0, threadSeconds(pid))}`);
      } finally {
        go.kill('SIGKILL');
      }
      await sleep(1000);
    }
    run.peakMiB = memoryMiB(pid).hwm;
  } finally {
    await agent.stop();
  }
  return run;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}

async function main(): Promise<void> {
  const cpus = os.cpus().length;
  const stats = countBpfRunTime();
  const base = process.env.BASE_CLI;
  const baseFlags = flagList(process.env.BASE_NODE_FLAGS);
  const compared = base !== undefined || baseFlags.length > 0;
  const variants: Array<[string, string | undefined, string[]]> = compared ? [['base', base, baseFlags], ['new', undefined, []]] : [['this build', undefined, []]];
  const runs = new Map<string, Run[]>(variants.map(([name]) => [name, []]));
  console.log(`${cpus} CPUs, agent idle ${IDLE} s, then ${PROFILES} node-wide ${WINDOW} s profiles at 99 Hz, each with a new process of a CPU-bound Go binary filling every core; ${ROUNDS} agents per build`);
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, cli, flags] of round % 2 === 0 ? variants : [...variants].reverse()) {
        const r = await oneAgent(cli, flags);
        runs.get(name)!.push(r);
        console.log(`  ${name} round ${round + 1}: ${r.profiles.map((p, i) => `#${i + 1} ${pct(p.share)} (user+sys ${p.userSys.toFixed(2)} s, BPF ${p.bpf.toFixed(3)} s, ${p.faults} page faults)`).join(', ')}; peak RSS ${r.peakMiB.toFixed(0)} MiB`);
      }
    }
  } finally {
    stats.close();
  }
  const medians = new Map<string, number[]>();
  for (const [name, rs] of runs) {
    const m = [...Array(PROFILES).keys()].map((i) => median(rs.map((r) => r.profiles[i]!.share)));
    medians.set(name, m);
    console.log(`${name}: median share of the window's CPU ${m.map((x, i) => `#${i + 1} ${pct(x)}`).join(', ')} (goals: first ≤ 1%, third ≤ 0.3%); median peak RSS ${median(rs.map((r) => r.peakMiB)).toFixed(0)} MiB`);
  }
  if (compared) {
    const b = medians.get('base')!;
    const n = medians.get('new')!;
    console.log(`new/base: ${n.map((x, i) => `#${i + 1} ${(x / b[i]!).toFixed(2)}×`).join(', ')}`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
