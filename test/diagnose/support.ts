// The shapes fixture (test/fixtures/go/shapes): one real Go program per failure shape the diagnosis knows.

import { spawn, type ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';
import { buildFixture, newestToolchain } from '../support/go-toolchains';

export interface Fixture {
  pid: number;
  proc: ChildProcess;
  /** The program's own runtime.Stack(all) text (its "dump" command). */
  dump(): Promise<string>;
  /** Its own runtime/pprof CPU profile of `seconds`, written to `file` (its "cpuprofile" command). */
  cpuProfile(file: string, seconds: number): Promise<void>;
  kill(): void;
}

/** Starts `shapes -shape NAME` (or the CPU-bound `hot` fixture for 'healthy') and waits until it runs. */
export async function startShape(shape: string): Promise<Fixture> {
  const go = newestToolchain().version;
  const healthy = shape === 'healthy';
  const binary = buildFixture({ go, fixture: healthy ? 'hot' : 'shapes', mode: 'plain' });
  const proc = spawn(binary, healthy ? [] : ['-shape', shape], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) throw new Error(`${shape}: the fixture exited before it started`);
  const { pid } = JSON.parse(first.value as string) as { pid: number };
  return {
    pid,
    proc,
    dump: async () => {
      if (healthy) throw new Error('the hot fixture has no dump command');
      proc.stdin!.write('dump\n');
      const out: string[] = [];
      for (;;) {
        const l = await lines.next();
        if (l.done) throw new Error(`${shape}: exited while dumping`);
        if (l.value === 'END') return out.join('\n');
        out.push(l.value as string);
      }
    },
    cpuProfile: async (file, seconds) => {
      if (healthy) throw new Error('the hot fixture has no cpuprofile command');
      proc.stdin!.write(`cpuprofile ${file} ${seconds}\n`);
      for (;;) {
        const l = await lines.next();
        if (l.done) throw new Error(`${shape}: exited while profiling`);
        if (l.value === 'written') return;
      }
    },
    kill: () => proc.kill('SIGKILL'),
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
