// What off-CPU profiling costs a context-switch-heavy workload: `perf bench sched pipe` (two processes passing a
// token through pipes: two context switches per op) alone, with the agent running (run-queue metrics always on, no
// profile), with the agent and a node-wide off-CPU profile in flight, and with a bpftrace script that records a
// user stack on every sched_switch (the method of bcc's offcputime). Conditions alternate; medians reported.
//   npm run build && node dist/bench/offcpu-overhead.bench.js [ROUNDS] [LOOPS]
// BASE_CLI=/path/to/other/dist/src/cli.js: also that build's agent with a profile in flight (an A/B in one run).
// Then, with BPF run-time stats on (they add clock reads to every run, so not while throughput is measured), the
// agent's sched_switch program's time per switch over one more pipe run for each agent condition (the off-CPU
// program, tail-called, counts in it).
// Prints numbers; asserts nothing.

import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { bpfPrograms, median, startAgentProcess } from './support/agent';
import { bpfStatsOff, countBpfRunTime } from './support/proc-stats';

const ROUNDS = Number(process.argv[2] ?? 5);
const LOOPS = Number(process.argv[3] ?? 100_000);
/** The agent's start-up (kallsyms, its own symbol tables, the first /proc scan) is over before measuring. */
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 3000);

// bcc offcputime's method in bpftrace: on every switch, note when the outgoing thread left and its user stack;
// when a thread comes back, add the time it was away to its stack.
const BPFTRACE_OFFCPU = `
tracepoint:sched:sched_switch {
  @start[args->prev_pid] = nsecs;
  @stk[args->prev_pid] = ustack;
  $s = @start[args->next_pid];
  if ($s != 0) {
    @us[@stk[args->next_pid], args->next_comm] = sum((nsecs - $s) / 1000);
    delete(@start[args->next_pid]);
    delete(@stk[args->next_pid]);
  }
}`;

function pipeBench(): number {
  // Both ends on one CPU: every op is two context switches on it, and no cross-CPU wakeup latency (which varies
  // run to run by more than any overhead measured here).
  const r = spawnSync('taskset', ['-c', '0', 'perf', 'bench', 'sched', 'pipe', '-l', String(LOOPS)], { encoding: 'utf8' });
  const m = /(\d+) ops\/sec/.exec(r.stdout);
  if (r.status !== 0 || !m) throw new Error(`perf bench sched pipe failed (${r.status}): ${r.stderr || r.stdout}`);
  return Number(m[1]);
}

async function withBpftrace<T>(fn: () => T): Promise<T> {
  const bt: ChildProcess = spawn('bpftrace', ['-e', BPFTRACE_OFFCPU], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    bt.stdout!.on('data', (d: Buffer) => {
      if (String(d).includes('Attaching')) resolve();
    });
    bt.once('exit', (c) => reject(new Error(`bpftrace exited with ${c}`)));
  });
  await new Promise((r) => setTimeout(r, 500)); // attached after the banner
  try {
    return fn();
  } finally {
    await new Promise<void>((resolve) => {
      bt.once('exit', () => resolve());
      bt.kill('SIGKILL'); // not SIGINT: its maps would be printed, thousands of stacks
    });
  }
}

async function withAgent<T>(offCpuProfile: boolean, fn: (programIds: number[]) => T, cli?: string): Promise<{ value: T; records: number }> {
  const agent = await startAgentProcess([], { programIds: true, ...(cli !== undefined ? { cli } : {}) });
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const abort = new AbortController();
  let records = 0;
  try {
    let profile: Promise<unknown> | undefined;
    if (offCpuProfile) {
      profile = fetch(`${agent.url}/debug/pprof/offcpu?seconds=300`, { signal: abort.signal }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300)); // the request has subscribed
    }
    const value = fn(agent.programIds);
    const metrics = await (await fetch(`${agent.url}/metrics`)).text();
    const m = /^quietflame_samples_total\{kind="offcpu"\} (\S+)$/m.exec(metrics);
    if (offCpuProfile && !m) throw new Error(`no quietflame_samples_total{kind="offcpu"} in /metrics:\n${metrics}`);
    records = Number(m?.[1] ?? 0);
    abort.abort();
    await profile;
    return { value, records };
  } finally {
    await agent.stop();
  }
}

async function rounds(runs: Record<string, number[]>, records: number[], base: string | undefined): Promise<void> {
  for (let round = 0; round < ROUNDS; round++) {
    runs['none']!.push(pipeBench());
    runs['agent']!.push((await withAgent(false, pipeBench)).value);
    const r = await withAgent(true, pipeBench);
    runs['agent + off-CPU profile']!.push(r.value);
    records.push(r.records);
    runs['bpftrace offcputime']!.push(await withBpftrace(pipeBench));
    if (base !== undefined) runs['base agent + profile']!.push((await withAgent(true, pipeBench, base)).value);
    console.error(`round ${round + 1}/${ROUNDS}: ${Object.entries(runs).map(([k, v]) => `${k} ${v.at(-1)}`).join(', ')}`);
  }
}

/** The run time per run of the agent's programs on sched_switch (by name: the run-queue program, or the off-CPU
 * program when it runs on its own) over one pipe run, stats on. */
function switchNsPerRun(programIds: number[]): number {
  const names = new Set(['on_switch', 'offcpu_switch']);
  const loaded = bpfPrograms();
  const ids = programIds.filter((id) => names.has(loaded.get(id)?.name ?? ''));
  const stats = countBpfRunTime();
  try {
    const before = bpfPrograms();
    pipeBench();
    const after = bpfPrograms();
    let ns = 0;
    let runs = 0;
    for (const id of ids) {
      ns += (after.get(id)?.runTimeNs ?? 0) - (before.get(id)?.runTimeNs ?? 0);
      runs += (after.get(id)?.runCount ?? 0) - (before.get(id)?.runCount ?? 0);
    }
    if (runs === 0) throw new Error(`no sched_switch program of the agent ran (programs ${programIds.join(', ')})`);
    return ns / runs;
  } finally {
    stats.close();
  }
}

async function bpfTimes(base: string | undefined): Promise<void> {
  const conditions: Array<[string, boolean, string | undefined]> = [['agent', false, undefined], ['agent + off-CPU profile', true, undefined]];
  if (base !== undefined) conditions.push(['base agent + profile', true, base]);
  console.log('BPF time per sched_switch run (stats on, one run each):');
  for (const [name, profile, cli] of conditions) {
    const ns = (await withAgent(profile, switchNsPerRun, cli)).value;
    console.log(`  ${name.padEnd(26)} ${ns.toFixed(1).padStart(7)} ns`);
  }
}

async function main(): Promise<void> {
  const base = process.env.BASE_CLI;
  const runs: Record<string, number[]> = { none: [], agent: [], 'agent + off-CPU profile': [], 'bpftrace offcputime': [] };
  if (base !== undefined) runs['base agent + profile'] = [];
  const records: number[] = [];
  const restoreStats = bpfStatsOff();
  try {
    pipeBench(); // warm-up
    await rounds(runs, records, base);
  } finally {
    restoreStats();
  }
  const none = median(runs['none']!);
  console.log(`perf bench sched pipe -l ${LOOPS}, ${ROUNDS} alternated rounds, median ops/sec and ratio to none:`);
  for (const [k, v] of Object.entries(runs)) console.log(`  ${k.padEnd(26)} ${String(median(v)).padStart(7)}  ${(median(v) / none).toFixed(3)}`);
  console.log(`  off-CPU records sent to the agent per run (median): ${median(records)}`);
  await bpfTimes(base);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
