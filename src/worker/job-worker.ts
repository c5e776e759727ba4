// The worker side of a JobThread (job-thread.ts): answers each job with its result, or with the error the job
// threw as a plain payload (errorPayload), under the job's id.

import { parentPort, type TransferListItem } from 'node:worker_threads';

export interface JobEnvelope<Req> {
  id: number;
  request: Req;
}

export type JobReply<Res> = { id: number; result: Res } | { id: number; error: unknown };

export interface JobAnswer<Res> {
  result: Res;
  /** ArrayBuffers of the result to hand over rather than copy. */
  transfer?: TransferListItem[];
}

/**
 * Serves jobs on this thread's parent port (no-op outside a worker). errorPayload turns what a job threw into
 * what the JobThread's reviveError gets (default: the message).
 */
export function serveJobs<Req, Res>(
  handle: (request: Req) => JobAnswer<Res>,
  errorPayload: (e: unknown) => unknown = (e) => ({ message: (e as Error).message }),
  onClose?: () => void,
): void {
  const port = parentPort;
  if (!port) return;
  port.on('message', ({ id, request }: JobEnvelope<Req>) => {
    let answer: JobAnswer<Res>;
    try {
      answer = handle(request);
    } catch (e) {
      port.postMessage({ id, error: errorPayload(e) } satisfies JobReply<Res>);
      return;
    }
    port.postMessage({ id, result: answer.result } satisfies JobReply<Res>, answer.transfer ?? []);
  });
  if (onClose) port.on('close', onClose);
}
