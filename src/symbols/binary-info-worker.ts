// The binary reader's thread: BinaryInfoRequest in, BinaryInfoWire out (binary-info-job.ts).

import { serveJobs } from '../worker/job-worker';
import { readBinaryInfo, toWire, type BinaryInfoRequest, type BinaryInfoWire } from './binary-info-job';

serveJobs<BinaryInfoRequest, BinaryInfoWire>((req) => {
  const { wire, transfer } = toWire(readBinaryInfo(req));
  return { result: wire, transfer };
});
