// The thread one dump analysis runs on (a 100 MB dump takes seconds to parse): AnalyzeJob in, AnalyzeAnswer out,
// then the thread ends and its heap with it.

import { parentPort } from 'node:worker_threads';
import { runAnalyzeJob, type AnalyzeJob } from './analyze-job';

const port = parentPort;
if (port) {
  port.once('message', (job: AnalyzeJob) => {
    try {
      const answer = runAnalyzeJob(job);
      port.postMessage(answer, [answer.body.buffer as ArrayBuffer]);
    } catch (e) {
      port.postMessage({ error: (e as Error).message });
    }
  });
}
