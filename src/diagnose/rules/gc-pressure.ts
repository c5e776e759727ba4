// gc-pressure: allocation and garbage collection take a large share of the CPU — the mark workers, the
// assists that allocating goroutines are made to do, sweeping, and mallocgc itself.

import { nameMatcher } from '../profile-view';
import { type Rule, pct, severityOf, usableCpu } from '../rule';

const GC = nameMatcher(
  [
    'runtime.gcBgMarkWorker',
    'runtime.gcAssistAlloc',
    'runtime.gcAssistAlloc1',
    'runtime.scanobject',
    'runtime.greyobject',
    'runtime.scanblock',
    'runtime.bgsweep',
    'runtime.sweepone',
    'runtime.gcStart',
    'runtime.markroot',
  ],
  // mallocgc and its size-class variants (Go 1.24+: mallocgcSmallScanNoHeader, …), gcDrain and its variants.
  ['runtime.mallocgc', 'runtime.gcDrain'],
);

/**
 * Share of CPU in allocation and collection that fires the rule. The runtime aims at 25% of the Ps for marking
 * while a cycle runs; a program whose cycles run back to back, plus the allocations that drive them, passes 30%.
 */
export const GC_SHARE = 0.3;
export const GC_CRITICAL = 0.5;

export const gcPressure: Rule = {
  name: 'gc-pressure',
  check(p) {
    const cpu = usableCpu(p);
    if (!cpu) return undefined;
    const { share, functions } = cpu.inclusive(GC);
    if (share < GC_SHARE) return undefined;
    return {
      severity: severityOf(share, GC_CRITICAL),
      evidence: { summary: `${pct(share)} of the CPU is allocation and garbage collection`, share, functions: functions.slice(0, 8) },
      advice:
        'Allocate less on the hot paths (reuse buffers, sync.Pool, fewer pointers in short-lived values; `go build ' +
        '-gcflags=-m` shows what escapes), or give the collector room: a GOMEMLIMIT with a higher GOGC.',
    };
  },
};
