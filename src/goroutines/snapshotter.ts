// Goroutine snapshots for the agent: taken one at a time on a worker thread (snapshot-worker.ts), with a bounded
// queue, a bounded heap and a time limit, so a huge or hostile process costs the agent a failed request, never its
// event loop or its memory. Locations are resolved here, by the caller's resolver, after the worker answers.

import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { StackResolver } from '../profile/builder';
import { GoroutineReadError } from './errors';
import { resolveGoroutineLocations } from './locations';
import type { GoroutineDump } from './model';
import type { SnapshotReply, SnapshotRequest } from './snapshot-worker';

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

interface Pending {
  request: SnapshotRequest;
  resolve(dump: GoroutineDump): void;
  reject(e: Error): void;
}

export class GoroutineSnapshotter {
  private worker: Worker | undefined;
  private readonly queue: Pending[] = [];
  private current: Pending | undefined;
  private timer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private closed = false;
  private readonly maxHeapMiB: number;
  private readonly timeoutMs: number;
  private readonly maxQueued: number;

  constructor(private readonly opts: SnapshotterOptions = {}) {
    this.maxHeapMiB = opts.maxHeapMiB ?? 512;
    this.timeoutMs = opts.timeoutMs ?? 120_000;
    this.maxQueued = opts.maxQueued ?? 4;
  }

  /** Every goroutine of `pid`; with a resolver, each goroutine's locations too (for pprof and debug=1). */
  snapshot(pid: number, resolver?: StackResolver): Promise<GoroutineDump> {
    if (this.closed) return Promise.reject(new Error('the goroutine reader is shut down'));
    if (this.queue.length >= this.maxQueued) return Promise.reject(new TooManySnapshots(this.queue.length));
    return new Promise<GoroutineDump>((resolve, reject) => {
      const request: SnapshotRequest = { id: this.nextId++, pid, options: { procRoot: this.opts.procRoot } };
      this.queue.push({ request, resolve, reject });
      this.pump();
    }).then((dump) => {
      if (resolver) resolveGoroutineLocations(dump, resolver);
      return dump;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new Error('the goroutine reader is shut down'));
    await this.stopWorker(new Error('the goroutine reader is shut down'));
  }

  private pump(): void {
    if (this.current || this.queue.length === 0) return;
    const p = (this.current = this.queue.shift()!);
    const worker = this.ensureWorker();
    this.timer = setTimeout(() => {
      void this.stopWorker(new GoroutineReadError('unsupported', `pid ${p.request.pid}: the goroutine snapshot took over ${this.timeoutMs / 1000} s and was abandoned`));
    }, this.timeoutMs);
    worker.postMessage(p.request);
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(path.join(__dirname, 'snapshot-worker.js'), {
      resourceLimits: { maxOldGenerationSizeMb: this.maxHeapMiB },
    });
    worker.unref(); // an idle reader does not keep the agent alive
    worker.on('message', (reply: SnapshotReply) => this.settle(reply));
    // Events of a thread already replaced (timed out) concern no request any more.
    worker.on('error', (e: Error & { code?: string }) => {
      if (this.worker !== worker) return;
      this.worker = undefined; // it is ending: the next request gets a new one
      const pid = this.current?.request.pid;
      const why = e.code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? new GoroutineReadError('unsupported', `pid ${pid}: the goroutine snapshot needed more than ${this.maxHeapMiB} MiB and was abandoned`)
        : new Error(`goroutine reader failed: ${e.message}`);
      this.fail(why);
    });
    worker.on('exit', () => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.fail(new Error('goroutine reader ended unexpectedly'));
    });
    this.worker = worker;
    return worker;
  }

  private settle(reply: SnapshotReply): void {
    const p = this.current;
    if (!p || p.request.id !== reply.id) return;
    this.finishCurrent();
    if ('dump' in reply) p.resolve(reply.dump);
    else p.reject(reply.error.kind ? new GoroutineReadError(reply.error.kind, reply.error.message) : new Error(reply.error.message));
    this.pump();
  }

  /** Fails the request being read (if any) and goes on with the next one on a new thread. */
  private fail(e: Error): void {
    const p = this.current;
    if (!p) return;
    this.finishCurrent();
    p.reject(e);
    if (!this.closed) this.pump();
  }

  private finishCurrent(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.current = undefined;
  }

  private async stopWorker(why: Error): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.fail(why);
    if (worker) await worker.terminate();
  }
}
