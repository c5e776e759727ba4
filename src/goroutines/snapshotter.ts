// Goroutine snapshots for the agent: taken one at a time on a worker thread (snapshot-worker.ts), with a bounded
// queue, a bounded heap and a time limit, so a huge or hostile process costs the agent a failed request, never its
// event loop or its memory. Locations are resolved here, by the caller's resolver, after the worker answers.

import * as path from 'node:path';
import type { StackResolver } from '../profile/builder';
import { GoroutineReadError } from './errors';
import { resolveGoroutineLocations } from './locations';
import type { GoroutineDump } from './model';
import type { SnapshotError, SnapshotRequest } from './snapshot-worker';
import { JobThread, JobThreadError } from '../worker/job-thread';

export interface SnapshotterOptions {
  /** Heap of the reader's thread (its binaries' tables and one snapshot); over it, that snapshot fails. */
  maxHeapMiB?: number;
  /** A snapshot that takes longer is abandoned (the thread is ended and started again for the next one). */
  timeoutMs?: number;
  /** Requests waiting behind the one being read; more are refused (TooManySnapshots). */
  maxQueued?: number;
  procRoot?: string;
}

/** How the agent's routes read a process's goroutines (GoroutineSnapshotter.snapshot with its resolver). */
export type ReadGoroutines = (pid: number, opts?: { locations?: boolean }) => Promise<GoroutineDump>;

export class TooManySnapshots extends Error {
  constructor(queued: number) {
    super(`${queued} goroutine snapshots are already waiting: try again shortly`);
    this.name = 'TooManySnapshots';
  }
}

export class GoroutineSnapshotter {
  private readonly jobs: JobThread<SnapshotRequest, GoroutineDump>;
  private readonly maxHeapMiB: number;
  private readonly timeoutMs: number;

  constructor(private readonly opts: SnapshotterOptions = {}) {
    this.maxHeapMiB = opts.maxHeapMiB ?? 512;
    this.timeoutMs = opts.timeoutMs ?? 120_000;
    this.jobs = new JobThread({
      script: path.join(__dirname, 'snapshot-worker.js'),
      name: 'the goroutine reader',
      maxHeapMiB: this.maxHeapMiB,
      timeoutMs: this.timeoutMs,
      maxQueued: opts.maxQueued ?? 4,
      reviveError: (p) => {
        const e = p as SnapshotError;
        return e.kind ? new GoroutineReadError(e.kind, e.message) : new Error(e.message);
      },
    });
  }

  /** Every goroutine of `pid`; with a resolver, each goroutine's locations too (for pprof and debug=1). */
  async snapshot(pid: number, resolver?: StackResolver): Promise<GoroutineDump> {
    let dump: GoroutineDump;
    try {
      dump = await this.jobs.run({ pid, options: { procRoot: this.opts.procRoot } });
    } catch (e) {
      throw this.explain(pid, e as Error);
    }
    if (resolver) await resolveGoroutineLocations(dump, resolver);
    return dump;
  }

  async close(): Promise<void> {
    await this.jobs.close();
  }

  /** The thread's own failures in the words of a goroutine read. */
  private explain(pid: number, e: Error): Error {
    if (!(e instanceof JobThreadError)) return e;
    switch (e.kind) {
      case 'busy': return new TooManySnapshots(this.jobs.queued);
      case 'closed': return new Error('the goroutine reader is shut down');
      case 'timeout': return new GoroutineReadError('unsupported', `pid ${pid}: the goroutine snapshot took over ${this.timeoutMs / 1000} s and was abandoned`);
      case 'memory': return new GoroutineReadError('unsupported', `pid ${pid}: the goroutine snapshot needed more than ${this.maxHeapMiB} MiB and was abandoned`);
      default: return new Error(`goroutine reader failed: ${e.message}`);
    }
  }
}
