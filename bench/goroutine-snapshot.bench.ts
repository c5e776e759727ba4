// What a goroutine snapshot from outside costs, on a program with 100,000 goroutines (bench/fixtures/manyg): the
// reader's CPU time, wall time and memory per snapshot, and the program's throughput (one busy worker) while
// snapshots are taken back to back — against the same program idle, and against it answering runtime.Stack(all) in
// a loop (what polling /debug/pprof/goroutine?debug=2 does: a stop-the-world per dump).
//   npm run build && node dist/bench/goroutine-snapshot.bench.js [GOROUTINES] [SECONDS] [ROUNDS]
// Prints numbers; asserts nothing.

import { spawn } from 'node:child_process';
import * as readline from 'node:readline';
import { snapshotGoroutines } from '../src/goroutines/reader';
import { TargetCache } from '../src/goroutines/target';
import { median } from './support/agent';
import { buildBenchFixture } from './support/build';

const GOROUTINES = Number(process.argv[2] ?? 100_000);
const SECONDS = Number(process.argv[3] ?? 3);
const ROUNDS = Number(process.argv[4] ?? 3);

async function main(): Promise<void> {
  const bin = buildBenchFixture('manyg');
  // The worker on CPU 0, the reader on CPU 1: the comparison is about pauses, not about sharing a CPU.
  const child = spawn('taskset', ['-c', '0', bin, String(GOROUTINES)], { stdio: ['pipe', 'pipe', 'inherit'] });
  process.on('exit', () => child.kill('SIGKILL'));
  const lines = readline.createInterface({ input: child.stdout! });
  const pending: Array<(l: string) => void> = [];
  lines.on('line', (l) => pending.shift()?.(l));
  const nextLine = (): Promise<string> => new Promise((r) => pending.push(r));
  const ready = await nextLine();
  console.log(`manyg: ${ready} (${GOROUTINES} parked + worker), pid ${child.pid}`);
  const pid = child.pid!; // taskset execs the program: same pid
  const targets = new TargetCache();

  const ask = async (cmd: string, whileWaiting?: () => void): Promise<string> => {
    const answer = nextLine();
    child.stdin!.write(cmd + '\n');
    if (!whileWaiting) return answer;
    let done = false;
    void answer.then(() => (done = true));
    while (!done) {
      whileWaiting();
      await new Promise((r) => setImmediate(r));
    }
    return answer;
  };

  // The control: the reader's CPU just as busy, with memory traffic, but not reading the target. The two CPUs of a
  // small VM may be siblings of one core, so any work beside the worker slows it a little.
  const memory = new Uint32Array(64 * 2 ** 20);
  let checksum = 0;
  const busyBeside = (): void => {
    const end = Date.now() + 200;
    for (let i = 0; Date.now() < end; i = (i + 4099) % memory.length) checksum += memory[i] += i;
  };

  const idle: number[] = [];
  const withControl: number[] = [];
  const withSnapshots: number[] = [];
  const withStack: number[] = [];
  const perSnapshot: Array<{ wallMs: number; cpuMs: number; goroutines: number; rssMiB: number }> = [];
  let dumps = 0;
  for (let round = 0; round < ROUNDS; round++) {
    idle.push(Number(/^rate (\d+)/.exec(await ask(`rate ${SECONDS}`))![1]));
    withControl.push(Number(/^rate (\d+)/.exec(await ask(`rate ${SECONDS}`, busyBeside))![1]));
    withSnapshots.push(
      Number(
        /^rate (\d+)/.exec(
          await ask(`rate ${SECONDS}`, () => {
            const cpu0 = process.cpuUsage();
            const t0 = process.hrtime.bigint();
            const dump = snapshotGoroutines(pid, targets);
            const cpu = process.cpuUsage(cpu0);
            perSnapshot.push({
              wallMs: Number(process.hrtime.bigint() - t0) / 1e6,
              cpuMs: (cpu.user + cpu.system) / 1000,
              goroutines: dump.goroutines.length,
              rssMiB: process.memoryUsage().rss / 2 ** 20,
            });
          }),
        )![1],
      ),
    );
    const m = /^rate (\d+) dumps (\d+)/.exec(await ask(`stackrate ${SECONDS}`))!;
    withStack.push(Number(m[1]));
    dumps += Number(m[2]);
  }
  targets.close();
  child.kill('SIGKILL');

  const base = median(idle);
  const f = (x: number): string => x.toFixed(3);
  console.log(`worker throughput, medians of ${ROUNDS} × ${SECONDS} s:`);
  console.log(`  idle                              ${base.toFixed(0)} ops/s`);
  console.log(`  reader's CPU busy, not reading     ${f(median(withControl) / base)}× (control, checksum ${checksum % 10})`);
  console.log(`  snapshots from outside, back to back  ${f(median(withSnapshots) / base)}× (${perSnapshot.length} snapshots; ${f(median(withSnapshots) / median(withControl))}× of the control)`);
  console.log(`  runtime.Stack(all) in a loop      ${f(median(withStack) / base)}× (${dumps} dumps)`);
  console.log(`per snapshot (${perSnapshot[0]?.goroutines} goroutines): wall ${median(perSnapshot.map((s) => s.wallMs)).toFixed(0)} ms, ` +
    `reader CPU ${median(perSnapshot.map((s) => s.cpuMs)).toFixed(0)} ms, reader RSS peak ${Math.max(...perSnapshot.map((s) => s.rssMiB)).toFixed(0)} MiB`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
