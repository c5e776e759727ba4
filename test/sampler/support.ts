// Shared by test/sampler: the gate (real BPF as root; failing, not skipping, under CI=true), Go fixtures run as
// child processes, a minimal symbolizer (the real one lives in src/symbols), and an isolated /proc view.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';

import { bpfObjectPath } from '../../src/bpf/native';
import { GoBinary } from '../../src/gosym/binary';
import type { Sampler } from '../../src/sampler/sampler';
import type { RawSample, SampleFilter } from '../../src/sampler/types';
import { bpfTest } from '../bpf/support';

export { sleep, waitFor } from '../bpf/support';
import { firstLine } from '../proc/support';

export function samplerTest(name: string, fn: (t: TestContext) => Promise<void> | void): void {
  bpfTest(name, async (t) => {
    assert.ok(fs.existsSync(bpfObjectPath('profile')), `${bpfObjectPath('profile')} is missing: run 'npm run build:bpf'`);
    await fn(t);
  });
}

export interface HotWorker {
  role: 'leaf' | 'framed' | 'sleeper';
  goid: number;
  tid: number;
  stack: string[];
}

export interface HotStartup {
  pid: number;
  goVersion: string;
  workers: HotWorker[];
}

export interface Running {
  child: ChildProcess;
  pid: number;
  /** The JSON line the hot fixture prints, when it does. */
  startup: HotStartup | undefined;
  stop(): Promise<void>;
}

/** Starts a fixture; with `waitForLine` waits for its first stdout line (JSON). */
export async function run(binary: string, args: string[] = [], waitForLine = true): Promise<Running> {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  };
  try {
    let startup: HotStartup | undefined;
    if (waitForLine) {
      const line = await firstLine(child, 15_000);
      startup = JSON.parse(line) as HotStartup;
    } else {
      child.stdout!.resume();
    }
    assert.ok(child.pid);
    return { child, pid: child.pid, startup, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Function names for a process's user stack: [0] at the PC, later entries at the return address − 1. */
export function symbolizer(binary: string, bias: number): { names(stack: readonly number[]): string[]; close(): void } {
  const bin = GoBinary.open(binary);
  return {
    names: (stack) =>
      stack.map((pc, i) => {
        const f = bin.funcAt(pc - bias - (i > 0 ? 1 : 0));
        return f ? bin.funcName(f) : `0x${pc.toString(16)}`;
      }),
    close: () => bin.close(),
  };
}

/** Each record as many times as the samples it stands for (RawSample.count): these tests count samples. */
export function expandCounts<T extends RawSample>(batch: readonly T[]): T[] {
  const out: T[] = [];
  for (const s of batch) for (let n = s.count ?? 1; n > 0; n--) out.push(s);
  return out;
}

/**
 * The samples of a window of ms milliseconds (a record with a count as that many), as a capture takes them: at
 * the window's end the ring is read at once (the sampler reads it only every second otherwise), and what was
 * sampled after the end is left out. atEnd runs as the window ends.
 */
export async function collect(sampler: Sampler, filter: SampleFilter, ms: number, atEnd?: () => void): Promise<RawSample[]> {
  const out: RawSample[] = [];
  let end: bigint | undefined;
  const stop = sampler.subscribe(filter, (batch) => {
    for (const s of expandCounts(batch)) if (end === undefined || s.timeNs <= end) out.push(s);
  });
  await new Promise((resolve) => setTimeout(resolve, ms));
  end = process.hrtime.bigint();
  atEnd?.();
  sampler.readNow();
  await new Promise((resolve) => setTimeout(resolve, 300));
  stop();
  return out;
}

/** A private copy of a binary (its own inode: its table is not shared with other runs of the fixture). */
export function privateCopy(binary: string): { file: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-sampler-'));
  const file = path.join(dir, path.basename(binary));
  fs.copyFileSync(binary, file);
  fs.chmodSync(file, 0o755);
  return { file, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A /proc that lists only the processes added to it (symlinks to /proc/PID, plus self): a sampler scanning it
 * sees nothing of the other processes on the machine, so map counts are exact.
 */
export function isolatedProc(): { root: string; add(pid: number): void; remove(): void } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-proc-'));
  fs.symlinkSync('/proc/self', path.join(root, 'self'));
  return {
    root,
    add: (pid) => fs.symlinkSync(`/proc/${pid}`, path.join(root, String(pid))),
    remove: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}

/** Share of items satisfying pred (0 for none). */
export function share<T>(items: readonly T[], pred: (x: T) => boolean): number {
  return items.length === 0 ? 0 : items.filter(pred).length / items.length;
}
