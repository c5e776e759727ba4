// The reader's thread: a new binary read for the sampler (binary-info-job.ts), or a native binary's symbol table
// built for the symbolizer (native-symbols-job.ts). Each kind's modules load with its first job: a thread started
// for one kind (node's own symbols at the agent's start, a new Go binary later) does not compile the other's.
// The thread lives as long as the agent; a second after its last job it gives back what the jobs left behind.

import { native } from '../bpf/native';
import { compactWhenQuiet } from '../worker/compact-when-quiet';
import { serveJobs } from '../worker/job-worker';
import type { ReaderReply, ReaderRequest } from './reader-thread';

const QUIET_MS = 1000;
const jobDone = compactWhenQuiet(QUIET_MS, () => native().releaseFreeMemory());

serveJobs<ReaderRequest, ReaderReply>((job) => {
  try {
    if (job.kind === 'binary-info') {
      const { readBinaryInfo, toWire } = require('./binary-info-job') as typeof import('./binary-info-job');
      const { wire, transfer } = toWire(readBinaryInfo(job.request));
      return { result: wire, transfer };
    }
    const { readNativeSymbols } = require('./native-symbols-job') as typeof import('./native-symbols-job');
    const { data, transfer } = readNativeSymbols(job.request);
    return { result: data, transfer };
  } finally {
    jobDone();
  }
});
