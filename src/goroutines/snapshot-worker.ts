// The goroutine reader's thread: a snapshot of 100,000 goroutines takes seconds of synchronous reading and
// unwinding, which must not stall the agent's event loop (ring buffers, captures in flight, /healthz). Holds its own
// binaries' tables (TargetCache) between requests. Messages: SnapshotRequest in, SnapshotReply out.

import { parentPort } from 'node:worker_threads';
import { GoroutineReadError, type GoroutineReadErrorKind } from './errors';
import type { GoroutineDump } from './model';
import { snapshotGoroutines, type SnapshotOptions } from './reader';
import { TargetCache } from './target';

export interface SnapshotRequest {
  id: number;
  pid: number;
  /** The options that survive a structured clone (no resolver, no callbacks). */
  options: Pick<SnapshotOptions, 'maxGoroutines' | 'maxFrames' | 'labelLimits' | 'procRoot'>;
}

export type SnapshotReply =
  | { id: number; dump: GoroutineDump }
  | { id: number; error: { kind?: GoroutineReadErrorKind; message: string } };

const port = parentPort;
if (port) {
  const targets = new TargetCache();
  port.on('message', (req: SnapshotRequest) => {
    let reply: SnapshotReply;
    try {
      reply = { id: req.id, dump: snapshotGoroutines(req.pid, targets, { ...req.options, stacks: true }) };
    } catch (e) {
      const kind = e instanceof GoroutineReadError ? e.kind : undefined;
      reply = { id: req.id, error: { kind, message: (e as Error).message } };
    }
    port.postMessage(reply);
  });
  port.on('close', () => targets.close());
}
