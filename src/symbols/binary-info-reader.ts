// Reads new binaries for the sampler off the event loop: one thread (binary-info-worker.ts), one binary at a time,
// each file once however many processes ask for it at once. A binary that takes too long or too much heap to read
// is reported as unusable (its processes are sampled without Go unwinding); the agent goes on.
//
//   const reader = new BinaryInfoReader({ procRoot });
//   const r = await reader.read(exe);     // { kind: 'go', info } | { kind: 'other', why, warn }

import * as path from 'node:path';
import { maxTableSize } from '../gosym/limits';
import type { Executable } from '../proc/exe';
import { JobThread, JobThreadError } from '../worker/job-thread';
import { fromWire, type BinaryInfoRequest, type BinaryInfoResult, type BinaryInfoWire } from './binary-info-job';

export interface BinaryInfoReaderOptions {
  procRoot?: string;
  /** Heap of the reading thread. Default 128 MiB (tables are capped by --max-binary-table-mib besides). */
  maxHeapMiB?: number;
  /** One binary that takes longer is given up. Default 60 s. */
  timeoutMs?: number;
  /** The thread is ended after this long without work (new binaries are rare once a node settles). Default 30 s. */
  idleMs?: number;
}

export class BinaryInfoReader {
  private readonly jobs: JobThread<BinaryInfoRequest, BinaryInfoWire>;
  /** Reads queued or running, by file key. */
  private readonly reads = new Map<string, { path: string; done: Promise<BinaryInfoResult> }>();
  private readonly procRoot: string;

  constructor(opts: BinaryInfoReaderOptions = {}) {
    this.procRoot = opts.procRoot ?? '/proc';
    this.jobs = new JobThread({
      script: path.join(__dirname, 'binary-info-worker.js'),
      name: 'the binary reader',
      maxHeapMiB: opts.maxHeapMiB ?? 128,
      timeoutMs: opts.timeoutMs ?? 60_000,
      idleMs: opts.idleMs ?? 30_000,
    });
  }

  /** What the sampler needs from exe's file; never rejects. */
  read(exe: Executable): Promise<BinaryInfoResult> {
    const known = this.reads.get(exe.key);
    if (known) return known.done;
    const done = this.jobs
      .run({ exe, procRoot: this.procRoot, maxTableBytes: maxTableSize() })
      .then(fromWire, (e: Error): BinaryInfoResult => ({ kind: 'other', why: `not read: ${readFailure(e)}`, warn: true }))
      .finally(() => this.reads.delete(exe.key));
    this.reads.set(exe.key, { path: exe.path, done });
    return done;
  }

  /** Paths being read or waiting to be (for /healthz). */
  inFlight(): string[] {
    return [...this.reads.values()].map((r) => r.path);
  }

  async close(): Promise<void> {
    await this.jobs.close();
  }
}

function readFailure(e: Error): string {
  if (!(e instanceof JobThreadError)) return e.message;
  return e.kind === 'timeout' || e.kind === 'memory' ? `reading it ${e.message}` : e.message;
}
