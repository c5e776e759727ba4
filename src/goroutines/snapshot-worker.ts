// The goroutine reader's thread: a snapshot of 100,000 goroutines takes seconds of synchronous reading and
// unwinding, which must not stall the agent's event loop (ring buffers, captures in flight, /healthz). Holds its own
// binaries' tables (TargetCache) between requests. SnapshotRequest in, a GoroutineDump out (JobThread).

import { native } from '../bpf/native';
import { serveJobs } from '../worker/job-worker';
import { GoroutineReadError, type GoroutineReadErrorKind } from './errors';
import type { GoroutineDump } from './model';
import { snapshotGoroutines, type SnapshotOptions } from './reader';
import { TargetCache } from './target';

export interface SnapshotRequest {
  pid: number;
  /** The options that survive a structured clone (no resolver, no callbacks). */
  options: Pick<SnapshotOptions, 'maxGoroutines' | 'maxFrames' | 'labelLimits' | 'procRoot'>;
}

/** What a failed snapshot sends back. */
export interface SnapshotError {
  kind?: GoroutineReadErrorKind;
  message: string;
}

native().setThreadName('qf-goroutines'); // its CPU apart from V8's threads in `top -H`
const targets = new TargetCache();
serveJobs<SnapshotRequest, GoroutineDump>(
  (req) => ({ result: snapshotGoroutines(req.pid, targets, { ...req.options, stacks: true }) }),
  (e): SnapshotError => ({ kind: e instanceof GoroutineReadError ? e.kind : undefined, message: (e as Error).message }),
  () => targets.close(),
);
