// What profiling costs the profiled: throughput of a CPU-bound Go workload (bench/fixtures/spin: the work of the
// test fixture "hot", counted) with nothing watching, with the agent (started for the run, after one warm-up
// profile) sampling at 99 Hz with a node-wide profile in flight, and under `perf record -F 99 -g -a`. One worker per CPU; the three set-ups alternate (the order turns
// each round), medians reported. Prints numbers; asserts nothing.
//   npm run build && node dist/bench/workload-throughput.bench.js [ROUNDS] [SECONDS]

import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { median, startAgentProcess } from './support/agent';
import { buildBenchFixture } from './support/build';
import { bpfStatsOff } from './support/proc-stats';

const ROUNDS = Number(process.argv[2] ?? 5);
const SECONDS = Number(process.argv[3] ?? 5);

type Setup = 'none' | 'agent' | 'perf';

interface Run {
  /** Calls per second of wall time. */
  leaf: number;
  framed: number;
  /** Calls per second of the workload's own CPU time. */
  leafCpu: number;
  framedCpu: number;
}

async function stop(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill(signal);
  });
}

/** Runs the workload for SECONDS: calls per second of each worker kind. */
async function workload(spin: string, cpus: number): Promise<Run> {
  const child = spawn(spin, ['-leaf', String(Math.ceil(cpus / 2)), '-framed', String(Math.floor(cpus / 2)), '-seconds', String(SECONDS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`spin exited ${code}`);
  const r = JSON.parse(out) as { leaf: number; framed: number; leafCpu: number; framedCpu: number; seconds: number };
  return { leaf: r.leaf / r.seconds, framed: r.framed / r.seconds, leafCpu: r.leaf / r.leafCpu, framedCpu: r.framed / r.framedCpu };
}

async function runOnce(setup: Setup, spin: string, cpus: number): Promise<Run> {
  if (setup === 'none') return workload(spin, cpus);
  if (setup === 'perf') {
    const data = path.join(os.tmpdir(), `qf-bench-perf-${process.pid}.data`);
    const perf = spawn('perf', ['record', '-q', '-F', '99', '-g', '-a', '-o', data], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 500)); // perf opens its events
    try {
      return await workload(spin, cpus);
    } finally {
      await stop(perf, 'SIGINT');
      fs.rmSync(data, { force: true });
    }
  }
  const agent = await startAgentProcess();
  try {
    // A first profile loads what any first profile loads (kallsyms, symbol tables) and warms the agent's code up:
    // what the workload meets is an agent that has been running.
    await fetch(`${agent.url}/debug/pprof/profile?seconds=2`).then((r) => r.arrayBuffer());
    const profile = fetch(`${agent.url}/debug/pprof/profile?seconds=${SECONDS + 2}`).then((r) => r.arrayBuffer());
    await new Promise((r) => setTimeout(r, 300)); // the capture has subscribed
    const run = await workload(spin, cpus);
    await profile;
    return run;
  } finally {
    await agent.stop();
  }
}

async function main(): Promise<void> {
  const cpus = os.cpus().length;
  const spin = buildBenchFixture('spin');
  const setups: Setup[] = ['none', 'agent', 'perf'];
  const runs: Record<Setup, Run[]> = { none: [], agent: [], perf: [] };
  const restoreStats = bpfStatsOff();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < setups.length; i++) {
        const setup = setups[(round + i) % setups.length]!;
        runs[setup].push(await runOnce(setup, spin, cpus));
      }
    }
  } finally {
    restoreStats();
  }
  const rel = (r: Run, base: Run, cpu: boolean): number =>
    cpu ? (r.leafCpu / base.leafCpu + r.framedCpu / base.framedCpu) / 2 : (r.leaf / base.leaf + r.framed / base.framed) / 2;
  const med = (rs: Run[]): Run => ({
    leaf: median(rs.map((r) => r.leaf)),
    framed: median(rs.map((r) => r.framed)),
    leafCpu: median(rs.map((r) => r.leafCpu)),
    framedCpu: median(rs.map((r) => r.framedCpu)),
  });
  const base = med(runs.none);
  console.log(`CPU-bound Go workload (bench/fixtures/spin, ${cpus} workers on ${cpus} CPUs), ${ROUNDS} alternated runs of ${SECONDS} s each, medians:`);
  for (const setup of setups) {
    const m = med(runs[setup]);
    const what = { none: 'no profiler', agent: 'quietflame agent, 99 Hz, node-wide profile', perf: 'perf record -F 99 -g -a' }[setup];
    console.log(`  ${what}: leaf ${m.leaf.toFixed(0)}/s, framed ${m.framed.toFixed(0)}/s → ${(rel(m, base, false) * 100).toFixed(1)}% of no profiler (runs: ${runs[setup].map((r) => rel(r, base, false).toFixed(2)).join(' ')})`);
    console.log(`    per CPU second of the workload (unmoved by other processes): ${(rel(m, base, true) * 100).toFixed(2)}% of no profiler (runs: ${runs[setup].map((r) => rel(r, base, true).toFixed(3)).join(' ')})`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
