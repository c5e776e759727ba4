// Drives test/fixtures/go/dumps: goroutines parked in known places, the program's own runtime.Stack(all) on
// request, its own net/http/pprof goroutine endpoints, and the text it prints when sent SIGQUIT.

import { spawn, ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import assert from 'node:assert/strict';
import { childLines } from '../support/child-lines';
import { buildFixture, FixtureMode } from '../support/go-toolchains';
import type { Goroutine } from '../../src/goroutines/model';
import { isUserVisibleFrame } from '../../src/goroutines/traceback-view';

export interface DumpsProcess {
  child: ChildProcess;
  pid: number;
  /** host:port of its net/http/pprof server. */
  http: string;
  /** Its own runtime.Stack(buf, true), exactly as it printed it. */
  ownStack(): Promise<string>;
  /** GET /debug/pprof/goroutine?debug=N from its own net/http/pprof, as bytes. */
  ownGoroutineProfile(debug: 0 | 1 | 2): Promise<Buffer>;
  /** Sends SIGQUIT and returns what it printed on stderr until it exited. */
  quit(): Promise<string>;
  stop(): void;
}

export function httpGet(url: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`GET ${url}: ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}

/** Starts the fixture (COPIES goroutines of each kind) and waits until every goroutine is parked. */
export async function startDumps(go: string, opts: { mode?: FixtureMode; copies?: number; env?: Record<string, string> } = {}): Promise<DumpsProcess> {
  const bin = buildFixture({ go, fixture: 'dumps', mode: opts.mode ?? 'plain' });
  // No core file when GOTRACEBACK=crash aborts it.
  const child = spawn('/bin/sh', ['-c', 'ulimit -c 0; exec "$0" "$@"', bin, String(opts.copies ?? 3)], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...(opts.env ?? {}) } });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => (stderr += s));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const next = childLines(child, 'dumps fixture', () => stderr.slice(0, 2000));
  const ready = await next();
  const m = /^ready pid=(\d+) http=(\S+)$/.exec(ready);
  assert.ok(m, `fixture said ${ready}`);
  return {
    child,
    pid: child.pid!,
    http: m[2]!,
    async ownStack() {
      child.stdin!.write('dump\n');
      let text = '';
      for (let l = await next(); l !== 'END'; l = await next()) text += l + '\n';
      return text.slice(0, -1); // the fixture prints a newline of its own before END
    },
    ownGoroutineProfile(debug) {
      return httpGet(`http://${m[2]}/debug/pprof/goroutine?debug=${debug}`);
    },
    async quit() {
      child.kill('SIGQUIT');
      await exited;
      return stderr;
    },
    stop() {
      child.kill('SIGKILL');
    },
  };
}

/** What the fixture prints when sent SIGQUIT under GOTRACEBACK=`traceback` (the process ends). */
export async function sigquitDump(go: string, traceback: string, copies = 3, env: Record<string, string> = {}): Promise<string> {
  const p = await startDumps(go, { copies, env: { ...env, GOTRACEBACK: traceback } });
  try {
    return await p.quit();
  } finally {
    p.stop();
  }
}

/**
 * The user function a goroutine was started in: its outermost frame in the user view. Go 1.17–1.21 wrap
 * `go f(x)` in a closure named like one of the creator's own (main.main.func3) at the go statement's line.
 */
export function startFunction(g: Goroutine): string | undefined {
  const user = g.frames.filter((f, i) => !f.wrapper && f.function !== 'runtime.goexit' && isUserVisibleFrame(f.function, i === 0));
  const last = user[user.length - 1];
  const c = g.createdBy;
  if (last && c && user.length > 1 && last.function.startsWith(`${c.function}.func`) && last.file === c.file && last.line === c.line) user.pop();
  return user[user.length - 1]?.function;
}
