// The agent's memory with six Go processes (one of them ≥ 50 MB) on the node: its RSS at rest after start, then
// after three node-wide 5 s profiles (RSS read every 0.5 s for 10 s: the median), and its peak (VmHWM).
//   npm run build && node dist/bench/agent-memory.bench.js [ROUNDS]
// BASE_CLI=/path/to/other/dist/src/cli.js: alternate that build (base) with this one (new), ROUNDS agents each.
// Goals (issue 13): median ≤ 96 MiB, peak ≤ 128 MiB. Prints numbers; asserts nothing.

import * as os from 'node:os';
import { median, startAgentProcess } from './support/agent';
import { startFiveMoreGoProcesses, startHotFixture } from './support/go-workload';
import { memoryMiB } from './support/proc-stats';

const ROUNDS = Number(process.argv[2] ?? 3);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Reading {
  atRest: number;
  /** VmHWM at rest: the start-up's peak (binaries read). */
  startPeak: number;
  after: number;
  peak: number;
}

/** Median of RSS read every 0.5 s for `seconds`. */
async function medianRss(pid: number, seconds: number): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < seconds * 2; i++) {
    xs.push(memoryMiB(pid).rss);
    await sleep(500);
  }
  return median(xs);
}

async function oneAgent(cli: string | undefined): Promise<Reading> {
  const agent = await startAgentProcess(['--log-level', 'info'], cli !== undefined ? { cli } : {});
  const pid = agent.proc.pid!;
  try {
    await sleep(5000); // the processes' binaries read, the agent's own start-up over
    const atRest = await medianRss(pid, 5);
    const startPeak = memoryMiB(pid).hwm;
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${agent.url}/debug/pprof/profile?seconds=5`);
      if (r.status !== 200) throw new Error(`profile: HTTP ${r.status} ${await r.text()}`);
      await r.arrayBuffer();
    }
    const after = await medianRss(pid, 10);
    return { atRest, startPeak, after, peak: memoryMiB(pid).hwm };
  } finally {
    await agent.stop();
  }
}

async function main(): Promise<void> {
  const hot = startHotFixture(os.cpus().length);
  const more = await startFiveMoreGoProcesses();
  const base = process.env.BASE_CLI;
  const variants: Array<[string, string | undefined]> = base !== undefined ? [['base', base], ['new', undefined]] : [['this build', undefined]];
  const readings = new Map<string, Reading[]>(variants.map(([name]) => [name, []]));
  console.log(`six Go processes (bigbin ${(more.bigBytes / 2 ** 20).toFixed(0)} MiB among them), three node-wide 5 s profiles per agent; ${ROUNDS} agents per build`);
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, cli] of round % 2 === 0 ? variants : [...variants].reverse()) {
        const r = await oneAgent(cli);
        readings.get(name)!.push(r);
        console.log(`  ${name} round ${round + 1}: at rest ${r.atRest.toFixed(1)} MiB (peak so far ${r.startPeak.toFixed(1)}), after the profiles ${r.after.toFixed(1)} MiB (median of 10 s), peak ${r.peak.toFixed(1)} MiB`);
      }
    }
  } finally {
    hot.kill('SIGKILL');
    for (const p of more.procs) p.kill('SIGKILL');
  }
  for (const [name, rs] of readings) {
    const m = (f: (r: Reading) => number): string => median(rs.map(f)).toFixed(1);
    console.log(`${name}: medians at rest ${m((r) => r.atRest)} MiB, after the profiles ${m((r) => r.after)} MiB (goal ≤ 96), peak ${m((r) => r.peak)} MiB (goal ≤ 128)`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
