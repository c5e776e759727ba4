// scheduler-thrash: the Ps spend their CPU parking and readying goroutines instead of running them — goroutines
// handing work back and forth in pieces too small to pay for the hand-off.

import { nameMatcher } from '../profile-view';
import { type Rule, pct, severityOf, usableCpu } from '../rule';

/** The scheduler's own functions: park (gopark → mcall → park_m), pick (schedule, findRunnable), ready. */
const SCHEDULER = nameMatcher([
  'runtime.mcall',
  'runtime.park_m',
  'runtime.schedule',
  'runtime.findRunnable',
  'runtime.findrunnable', // before Go 1.19
  'runtime.gopark',
  'runtime.goready',
  'runtime.ready',
  'runtime.gosched_m',
  'runtime.goschedImpl',
  'runtime.stealWork',
  'runtime.runqgrab',
]);

/**
 * Share of CPU in the scheduler that fires the rule. A busy healthy program spends a few percent there (the CPU
 * fixture: ~1%); goroutines ping-ponging over unbuffered channels spend 60–80%.
 */
export const SCHEDULER_SHARE = 0.35;
/** From this share on, most of the CPU is hand-offs. */
export const SCHEDULER_CRITICAL = 0.6;
/**
 * Below this many busy CPUs on average the program is idle: the little CPU it uses is mostly the scheduler
 * looking for work (an idle program with a 1 ms ticker: ~0.5% of a CPU), which costs nothing worth reporting.
 */
export const SCHEDULER_MIN_CORES = 0.05;

export const schedulerThrash: Rule = {
  name: 'scheduler-thrash',
  check(p) {
    const cpu = usableCpu(p);
    if (!cpu || (cpu.cores !== undefined && cpu.cores < SCHEDULER_MIN_CORES)) return undefined;
    const { share, functions } = cpu.inclusive(SCHEDULER);
    if (share < SCHEDULER_SHARE) return undefined;
    return {
      severity: severityOf(share, SCHEDULER_CRITICAL),
      evidence: {
        summary: `${pct(share)} of the CPU is in the Go scheduler (parking, readying and picking goroutines)`,
        share,
        functions: functions.slice(0, 8),
        ...(cpu.cores !== undefined ? { measures: { cores: Number(cpu.cores.toFixed(2)) } } : {}),
      },
      advice:
        'Goroutines hand work to each other in pieces too small for the cost of a hand-off. Batch the work sent over ' +
        'channels, use buffered channels, or do small steps in the same goroutine instead of a pipeline stage each.',
    };
  },
};
