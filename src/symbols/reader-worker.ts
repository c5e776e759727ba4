// The reader's thread: a new binary read for the sampler (binary-info-job.ts), or a native binary's symbol table
// built for the symbolizer (native-symbols-job.ts).

import { serveJobs } from '../worker/job-worker';
import { readBinaryInfo, toWire } from './binary-info-job';
import { readNativeSymbols } from './native-symbols-job';
import type { ReaderReply, ReaderRequest } from './reader-thread';

serveJobs<ReaderRequest, ReaderReply>((job) => {
  if (job.kind === 'binary-info') {
    const { wire, transfer } = toWire(readBinaryInfo(job.request));
    return { result: wire, transfer };
  }
  const { data, transfer } = readNativeSymbols(job.request);
  return { result: data, transfer };
});
