// The parked fixture (test/fixtures/go/parked): goroutines parked in known places, and the program's own
// runtime.Stack(all) on request, for the tests that read goroutines from outside.

import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { parseGoroutineDump } from '../../src/goroutines/parse';
import { childLines } from './child-lines';
import { buildFixture, FixtureMode } from './go-toolchains';

export interface ParkedProcess {
  child: ChildProcess;
  pid: number;
  /** Runtime address of the fixture's fake goroutine list (garbage). */
  fakeAllgs: number;
  /** The program's own runtime.Stack(buf, true). */
  ownDump(): Promise<string>;
  stop(): void;
}

/** Starts the parked fixture and waits until every goroutine is parked. */
export async function startParked(go: string, mode: FixtureMode, copies = 3, env: NodeJS.ProcessEnv = {}): Promise<ParkedProcess> {
  const bin = buildFixture({ go, fixture: 'parked', mode, goarch: 'amd64' });
  const child = spawn(bin, [String(copies)], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const next = childLines(child, 'parked fixture');
  const ready = await next();
  const m = /^ready pid=(\d+) fakeallgs=0x([0-9a-f]+)$/.exec(ready);
  assert.ok(m, `fixture said ${ready}`);
  const parked: ParkedProcess = {
    child,
    pid: child.pid!,
    fakeAllgs: parseInt(m[2]!, 16),
    async ownDump() {
      child.stdin!.write('dump\n');
      let text = '';
      for (let l = await next(); l !== 'END'; l = await next()) text += l + '\n';
      return text.replace(/\n+$/, '\n');
    },
    stop() {
      child.kill('SIGKILL');
    },
  };
  // It says ready 300 ms after starting its goroutines; on a busy machine some are still on their way (deep(300)
  // recursing): wait until the program's own dump shows none running or runnable but the one printing it.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const busy = parseGoroutineDump(await parked.ownDump()).goroutines.slice(1).filter((g) => g.state === 'running' || g.state === 'runnable');
    if (busy.length === 0) break;
    if (Date.now() > deadline) {
      parked.stop();
      assert.fail(`parked fixture: goroutines ${busy.map((g) => `${g.id} (${g.state})`).join(', ')} still not parked after 20 s`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return parked;
}
