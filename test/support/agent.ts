// The real agent as a user runs it, for the end-to-end tests in test/agent: `quietflame agent` as a child process
// (real BPF), fetched over HTTP, its answers checked with the real `go tool pprof` and the repository's decoder.
//
//   const agent = await startAgent();          // listens on 127.0.0.1:<free port>
//   const r = await fetch(`${agent.url}/debug/pprof/profile?seconds=2&pid=${pid}`);
//   const p = await readPprof(r);               // asserts 200, gzip, decodes
//   await agent.stop();                         // SIGTERM, resolves with the exit code

import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { decodePprof, type Profile } from '../../src/profile/pprof';
import { CLI } from './cli';
import { buildFixture, newestToolchain } from './go-toolchains';

export interface AgentProcess {
  proc: ChildProcess;
  /** http://127.0.0.1:PORT */
  url: string;
  exited: Promise<number | null>;
  /** Everything the agent wrote on stderr so far. */
  stderr(): string;
  /** Everything the agent wrote on stdout (its JSON log lines) so far. */
  stdout(): string;
  /** SIGTERM (once) and the exit code. */
  stop(): Promise<number | null>;
}

/** Resolves with the first JSON line on proc's stdout that `match` accepts. */
export function firstJsonLine<T>(proc: ChildProcess, match: (o: Record<string, unknown>) => boolean, what: string, ms = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
    const rl = readline.createInterface({ input: proc.stdout! });
    rl.on('line', (line) => {
      try {
        const o = JSON.parse(line) as Record<string, unknown>;
        if (match(o)) {
          clearTimeout(timer);
          resolve(o as T);
        }
      } catch {
        // not JSON: ignore
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what}: exited with ${code} first`));
    });
  });
}

/** Starts `quietflame agent --listen 127.0.0.1:0 …args` (with env added to this process's) and waits until it listens. */
export async function startAgent(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<AgentProcess> {
  const proc = spawn(process.execPath, [CLI, 'agent', '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  let stdout = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  proc.stdout!.on('data', (d) => (stdout += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  let line: { url: string };
  try {
    line = await firstJsonLine<{ url: string }>(proc, (o) => o['msg'] === 'quietflame agent listening', 'agent');
  } catch (e) {
    proc.kill('SIGKILL');
    await exited;
    throw new Error(`${(e as Error).message}\n${stderr}`);
  }
  let stopping: Promise<number | null> | undefined;
  return {
    proc,
    url: line.url,
    exited,
    stderr: () => stderr,
    stdout: () => stdout,
    stop: () => {
      if (!stopping) {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
        stopping = exited;
      }
      return stopping;
    },
  };
}

/** `go tool ARGS` with the newest toolchain (hermetic: no network, no toolchain switch). */
export function goTool(args: string[], input?: string, env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(newestToolchain().goBin, ['tool', ...args], {
    encoding: 'utf8',
    env: { ...process.env, GOTOOLCHAIN: 'local', GOPROXY: 'off', PPROF_TMPDIR: os.tmpdir(), ...env },
    timeout: 120_000,
    maxBuffer: 1 << 28,
    ...(input === undefined ? {} : { input }),
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Asserts a net/http/pprof-style error: the status, text/plain and X-Go-Pprof: 1. Returns the body. */
export async function expectPprofError(r: Response, status: number, what: string): Promise<string> {
  const body = await r.text();
  assert.equal(r.status, status, `${what}: status ${r.status}, body ${JSON.stringify(body.slice(0, 300))}`);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain/, `${what}: content-type`);
  assert.equal(r.headers.get('x-go-pprof'), '1', `${what}: X-Go-Pprof`);
  return body;
}

/** Asserts a 200 answer holding a gzipped pprof profile and decodes it; the raw bytes come along. */
export async function readPprof(r: Response, what: string): Promise<{ profile: Profile; bytes: Buffer }> {
  const bytes = Buffer.from(await r.arrayBuffer());
  assert.equal(r.status, 200, `${what}: status ${r.status}: ${bytes.toString('utf8', 0, 300)}`);
  assert.ok(bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b, `${what}: not gzip (${bytes.length} bytes)`);
  return { profile: decodePprof(bytes), bytes };
}

/** Total of the first sample value (samples/count) over the samples that pass `keep`. */
export function sampleCount(p: Profile, keep: (s: Profile['sample'][number]) => boolean = () => true): number {
  return p.sample.filter(keep).reduce((n, s) => n + (s.value[0] ?? 0), 0);
}

/** A sample's numeric label, or undefined. */
export function numLabel(p: Profile, s: Profile['sample'][number], key: string): number | undefined {
  return s.label.find((l) => p.stringTable[l.key] === key)?.num;
}

/** `go tool pprof -raw` on a profile's bytes: what Go's own reader makes of it (throws with its stderr if it fails). */
export function pprofRaw(bytes: Buffer): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-pprof-'));
  try {
    const file = path.join(dir, 'profile.pb.gz');
    fs.writeFileSync(file, bytes);
    const r = goTool(['pprof', '-raw', file]);
    assert.equal(r.status, 0, `go tool pprof -raw: ${r.stderr}`);
    return r.stdout;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The `hot` fixture (newest toolchain) running on the host: its pid from its startup line, the rest of its lines. */
export async function startHot(args: string[] = []): Promise<{ proc: ChildProcess; pid: number; lines: AsyncIterableIterator<string> }> {
  const binary = buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' });
  const proc = spawn(binary, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = readline.createInterface({ input: proc.stdout! });
  const lines = rl[Symbol.asyncIterator]();
  const first = await lines.next();
  const info = JSON.parse(first.value as string) as { pid: number };
  return { proc, pid: info.pid, lines };
}
