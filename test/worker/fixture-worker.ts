// A JobThread worker for test/worker/job-thread.test.ts: each job says what to do, the answer names the thread.

import { threadId } from 'node:worker_threads';
import { serveJobs } from '../../src/worker/job-worker';

export type FixtureJob =
  | { op: 'echo'; value: string }
  | { op: 'throw'; message: string }
  | { op: 'spin'; ms: number }
  | { op: 'exit' }
  | { op: 'grow' }
  | { op: 'bytes'; n: number };

export interface FixtureAnswer {
  threadId: number;
  value?: string;
  bytes?: Uint8Array;
}

const held: unknown[] = [];

serveJobs<FixtureJob, FixtureAnswer>(
  (job) => {
    switch (job.op) {
      case 'echo': return { result: { threadId, value: job.value } };
      case 'throw': throw Object.assign(new Error(job.message), { code: 'E_FIXTURE' });
      case 'spin': {
        const end = Date.now() + job.ms;
        while (Date.now() < end);
        return { result: { threadId } };
      }
      case 'exit': process.exit(3);
      // eslint-disable-next-line no-fallthrough
      case 'grow':
        for (;;) held.push(new Array(1 << 16).fill({ threadId }));
      case 'bytes': {
        const bytes = new Uint8Array(job.n).fill(7);
        return { result: { threadId, bytes }, transfer: [bytes.buffer] };
      }
    }
  },
  (e) => ({ message: (e as Error).message, code: (e as { code?: string }).code }),
);
