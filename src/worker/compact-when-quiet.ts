// A thread that lives as long as the agent gives its memory back between bursts of work: once no work has come for
// a while, a full collection of its heap, then whatever the caller frees besides (glibc's free pages). Used by the
// reader thread (kept: starting one per burst cost the first profile ~0.2 s of CPU) and by the agent's main thread,
// whose dead Buffers V8 would otherwise free only at its next full collection, which an idle agent may not run.

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
 * runs, unless `busy()` says work is still in flight (whose end calls again). The timer does not keep the thread
 * alive.
 */
export function compactWhenQuiet(quietMs: number, release: () => void, busy: () => boolean = () => false): () => void {
  let timer: NodeJS.Timeout | undefined;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (busy()) return;
      fullCollection();
      release();
    }, quietMs);
    timer.unref();
  };
}
