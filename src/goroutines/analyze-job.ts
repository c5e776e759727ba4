// One analysis request, from the bytes someone sent to the answer's bytes: parse (gzipped or not, bounded),
// analyze, and write JSON, text or a pprof goroutine profile. Pure, so it runs the same on a worker thread.

import { analysisText, analyzeDump } from './analyze';
import { DumpInputError, parseDumpInput } from './dump-input';
import { goroutineProfile } from './profile';

export type AnalyzeFormat = 'json' | 'text' | 'pprof';
export const ANALYZE_FORMATS: readonly AnalyzeFormat[] = ['json', 'text', 'pprof'];

export interface AnalyzeJob {
  body: Uint8Array;
  format: AnalyzeFormat;
  /** Runtime goroutines and frames too. */
  system: boolean;
  maxBytes: number;
}

export interface AnalyzeAnswer {
  status: number;
  contentType: string;
  body: Uint8Array;
}

export function runAnalyzeJob(job: AnalyzeJob): AnalyzeAnswer {
  const bytes = Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength);
  let dump;
  try {
    dump = parseDumpInput(bytes, job.maxBytes);
  } catch (e) {
    if (e instanceof DumpInputError) return { status: e.status, contentType: 'text/plain; charset=utf-8', body: Buffer.from(`${e.message}\n`) };
    throw e;
  }
  if (job.format === 'pprof') return { status: 200, contentType: 'application/octet-stream', body: goroutineProfile(dump, { system: job.system }) };
  const analysis = analyzeDump(dump, { system: job.system });
  if (job.format === 'text') return { status: 200, contentType: 'text/plain; charset=utf-8', body: Buffer.from(analysisText(analysis)) };
  return { status: 200, contentType: 'application/json; charset=utf-8', body: Buffer.from(JSON.stringify(analysis)) };
}
