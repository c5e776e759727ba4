// A worker thread that lives as long as the agent gives its memory back between bursts of work: once no job has
// come for a while, a full collection of its heap, then whatever the caller frees besides (glibc's free pages).
// Keeping the thread costs its isolate (~8 MiB here); starting one per burst cost the first profile ~0.2 s of CPU
// (a new isolate, its modules compiled again, its hot loops run cold) and raised the agent's peak.

import * as v8 from 'node:v8';
import * as vm from 'node:vm';

let collect: (() => void) | undefined;

/** A full, synchronous collection of this thread's heap (V8 hands `gc` to contexts made after the flag is set). */
export function fullCollection(): void {
  if (!collect) {
    v8.setFlagsFromString('--expose-gc');
    collect = vm.runInNewContext('gc') as () => void;
  }
  collect();
}

/**
 * Returns what to call after each job: `quietMs` after the last such call, the heap is collected and `release`
 * runs. The timer does not keep the thread alive.
 */
export function compactWhenQuiet(quietMs: number, release: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      fullCollection();
      release();
    }, quietMs);
    timer.unref();
  };
}
