// A Go fixture profiled twice over the same seconds: by itself (runtime/pprof, its -cpuprofile and -seconds flags)
// and by the real agent over HTTP, for tests that hold the agent's profile against the program's own.
//
//   const run = await profileWithOwn({ binary, agentArgs: ['--labels', '32'], kinds: ['profile', 'offcpu'] });
//   run.ours.profile / run.ours.offcpu, run.mine, run.startup; …; await run.close();

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';

import { decodePprof, type Profile } from '../../src/profile/pprof';
import { waitForAsync } from '../bpf/support';
import { readPprof, startAgent } from './agent';

export type Sample = Profile['sample'][number];

/** The function names of a sample's stack, innermost first (inlined ones too). */
export function stackOf(p: Profile, s: Sample): string[] {
  const locs = new Map(p.location.map((l) => [l.id, l]));
  const fns = new Map(p.function.map((f) => [f.id, p.stringTable[f.name]!]));
  const out: string[] = [];
  for (const id of s.locationId) for (const line of locs.get(id)?.line ?? []) out.push(fns.get(line.functionId) ?? '?');
  return out;
}

/** The function names of a sample's stack (inlined ones too). */
export function functionsOf(p: Profile, s: Sample): Set<string> {
  return new Set(stackOf(p, s));
}

/** Samples (by count) in all, and of those whose stack holds each function. */
export function cumCounts(p: Profile): { total: number; cum: Map<string, number> } {
  const cum = new Map<string, number>();
  let total = 0;
  for (const s of p.sample) {
    const n = Number(s.value[0]);
    total += n;
    for (const f of functionsOf(p, s)) cum.set(f, (cum.get(f) ?? 0) + n);
  }
  return { total, cum };
}

/**
 * Do two profiles of the same program show the same share (percent) of something? Within four standard deviations
 * of the difference of two binomial estimates from na and nb samples, plus 2 points.
 */
export function sameShare(a: number, na: number, b: number, nb: number): boolean {
  const p = (a * na + b * nb) / (100 * (na + nb));
  return Math.abs(a - b) <= 100 * 4 * Math.sqrt(p * (1 - p) * (1 / na + 1 / nb)) + 2;
}

/** The JSON lines a fixture prints, as they come. */
export function fixtureLines(child: ChildProcess): { next(match: (o: Record<string, unknown>) => boolean, ms: number): Promise<Record<string, unknown>> } {
  const seen: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  readline.createInterface({ input: child.stdout! }).on('line', (l) => {
    try {
      seen.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      return;
    }
    for (const w of waiters.splice(0)) w();
  });
  return {
    next: (match, ms) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`fixture: no such line after ${ms} ms`)), ms);
        const look = (): void => {
          const hit = seen.find(match);
          if (hit) {
            clearTimeout(timer);
            resolve(hit);
          } else {
            waiters.push(look);
          }
        };
        look();
      }),
  };
}

export interface OwnProfileRun<T> {
  /** The fixture's first JSON line. */
  startup: T;
  /** The agent's profiles by endpoint, decoded, with their bytes. */
  ours: Partial<Record<'profile' | 'offcpu', { profile: Profile; bytes: Buffer }>>;
  /** The program's own CPU profile and its file. */
  mine: Profile;
  mineFile: string;
  /** A scratch directory, removed by close(). */
  dir: string;
  close(): Promise<void>;
}

/**
 * Starts the agent and the fixture (its own profile running `ownSeconds`), waits until the agent tracks it, takes
 * the agent's profiles of `seconds` at once, then waits for the fixture's own.
 */
export async function profileWithOwn<T extends { pid: number }>(opts: {
  binary: string;
  /** More arguments for the fixture (after -cpuprofile and -seconds). */
  args?: string[];
  agentArgs?: string[];
  kinds?: Array<'profile' | 'offcpu'>;
  seconds?: number;
  ownSeconds?: number;
}): Promise<OwnProfileRun<T>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-own-'));
  const mineFile = path.join(dir, 'own.pb.gz');
  const agent = await startAgent(opts.agentArgs ?? []);
  const child = spawn(opts.binary, ['-cpuprofile', mineFile, '-seconds', String(opts.ownSeconds ?? 7), ...(opts.args ?? [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const close = async (): Promise<void> => {
    child.kill('SIGKILL');
    await agent.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const out = fixtureLines(child);
    const startup = (await out.next((o) => 'pid' in o, 30_000)) as unknown as T;
    const tracked = await waitForAsync(async () => {
      const r = (await (await fetch(`${agent.url}/api/processes`)).json()) as { processes: Array<{ pid: number }> };
      return r.processes.some((p) => p.pid === startup.pid);
    }, 10_000, 100);
    assert.ok(tracked, 'the agent tracks the fixture');
    const q = `seconds=${opts.seconds ?? 5}&pid=${startup.pid}`;
    const kinds = opts.kinds ?? ['profile'];
    const got = await Promise.all(kinds.map((k) => fetch(`${agent.url}/debug/pprof/${k}?${q}`).then((r) => readPprof(r, k))));
    await out.next((o) => 'profile' in o, 30_000);
    const ours: OwnProfileRun<T>['ours'] = {};
    kinds.forEach((k, i) => (ours[k] = got[i]));
    return { startup, ours, mine: decodePprof(fs.readFileSync(mineFile)), mineFile, dir, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * flat% per function by the innermost USER frame of each sample. runtime/pprof cannot see kernel time (SIGPROF
 * charges it to the user PC), while the agent's samples may end in kernel frames (an interrupt returning to the
 * program, on a busy machine up to 15%): comparing user leaves compares like with like. A frame named in
 * `notLeaves` passes its samples to its caller (see ASYNC_PREEMPT).
 */
export function userFlatPercent(p: Profile, notLeaves: ReadonlySet<string> = new Set()): Map<string, number> {
  const kernel = new Set(p.mapping.filter((m) => p.stringTable[m.filename] === '[kernel.kallsyms]').map((m) => m.id));
  const locations = new Map(p.location.map((l) => [l.id, l]));
  const names = new Map(p.function.map((f) => [f.id, p.stringTable[f.name]!]));
  const counts = new Map<string, number>();
  let total = 0;
  for (const s of p.sample) {
    const user = s.locationId.map((id) => locations.get(id)!).filter((l) => !kernel.has(l.mappingId));
    const frames = user.flatMap((l) => l.line.map((line) => names.get(line.functionId)!));
    const name = frames.find((fn) => !notLeaves.has(fn)) ?? frames[0] ?? '(kernel only)';
    counts.set(name, (counts.get(name) ?? 0) + s.value[0]!);
    total += s.value[0]!;
  }
  return new Map([...counts].map(([fn, n]) => [fn, (100 * n) / total]));
}

/**
 * A runtime/pprof artifact, for userFlatPercent's notLeaves: a SIGPROF that is pending while the runtime
 * async-preempts a goroutine (SIGURG) is delivered at the sigreturn into the injected runtime.asyncPreempt; the CPU
 * time was the interrupted function's, which is asyncPreempt's caller in the stack (15% of a busy service's own
 * samples end there, mostly from the long loops preemption is for: dropping them would skew the rest).
 */
export const ASYNC_PREEMPT: ReadonlySet<string> = new Set(['runtime.asyncPreempt']);

/**
 * The same artifact, handled by dropping: a SIGPROF that is pending while the runtime async-preempts the goroutine (SIGURG) is
 * delivered at the sigreturn into the injected runtime.asyncPreempt, so runtime/pprof charges it there (seen at
 * 11% on a loaded machine) instead of to the function that was running. Perf events sample where the CPU really
 * is. That frame is taken out of both profiles and the rest renormalized to 100%.
 */
export function withoutArtifacts(pct: Map<string, number>): Map<string, number> {
  const artifacts = ['runtime.asyncPreempt'];
  const rest = 100 - artifacts.reduce((sum, fn) => sum + (pct.get(fn) ?? 0), 0);
  return new Map([...pct].filter(([fn]) => !artifacts.includes(fn)).map(([fn, p]) => [fn, (p * 100) / rest]));
}

/** "fn 12.3%, …" for the functions at 1% or more: for assertion messages. */
export function topPercent(pct: Map<string, number>): string {
  return [...pct].sort((a, b) => b[1] - a[1]).filter(([, p]) => p >= 1).map(([fn, p]) => `${fn} ${p.toFixed(1)}%`).join(', ');
}
