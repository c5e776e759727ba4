// The reader's thread: a new binary read for the sampler (binary-info-job.ts), or a native binary's symbol table
// built for the symbolizer (native-symbols-job.ts). The thread starts with the agent (its first job is the agent's
// own symbols) and lives as long as it, so both kinds' modules load here, at start, not in the first profile.
// A second after its last job it gives back what the jobs left behind.

import { native } from '../bpf/native';
import { compactWhenQuiet } from '../worker/compact-when-quiet';
import { serveJobs } from '../worker/job-worker';
import { readBinaryInfo, toWire } from './binary-info-job';
import { readNativeSymbols } from './native-symbols-job';
import type { ReaderReply, ReaderRequest } from './reader-thread';

const QUIET_MS = 1000;
native().setThreadName('qf-reader'); // its CPU apart from V8's threads in `top -H`
const jobDone = compactWhenQuiet(QUIET_MS, () => native().releaseFreeMemory());

serveJobs<ReaderRequest, ReaderReply>((job) => {
  try {
    if (job.kind === 'binary-info') {
      const { wire, transfer } = toWire(readBinaryInfo(job.request));
      return { result: wire, transfer };
    }
    const { data, transfer } = readNativeSymbols(job.request);
    return { result: data, transfer };
  } finally {
    jobDone();
  }
});
