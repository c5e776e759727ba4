// goroutine-leak: between two dumps the goroutine count grows, and most of the growth is in one stack — the
// same code starting goroutines that never finish.

import { groupByStack, userGoroutines } from '../dump-view';
import type { Rule } from '../rule';

/** Growth (goroutines) below this is ordinary churn. */
export const LEAK_MIN_GROWTH = 100;
/** …and so is growth below this fraction of the first count (a pool warming up). */
export const LEAK_MIN_RATIO = 0.2;
/** The share of the growth in one stack that makes it that stack's leak. */
export const LEAK_STACK_SHARE = 0.5;
/** Doubling between two dumps. */
export const LEAK_CRITICAL_RATIO = 1;

export const goroutineLeak: Rule = {
  name: 'goroutine-leak',
  check(p) {
    if (p.dumps.length < 2) return undefined;
    const first = userGoroutines(p.dumps[0]!);
    const last = userGoroutines(p.dumps[p.dumps.length - 1]!);
    const growth = last.length - first.length;
    if (growth < LEAK_MIN_GROWTH || growth < LEAK_MIN_RATIO * first.length) return undefined;
    const before = new Map(groupByStack(first).map((g) => [g.key, g.count]));
    const grown = groupByStack(last)
      .map((g) => ({ group: g, added: g.count - (before.get(g.key) ?? 0) }))
      .filter((x) => x.added > 0)
      .sort((a, b) => b.added - a.added);
    const top = grown[0];
    if (!top || top.added < LEAK_STACK_SHARE * growth) return undefined;
    const { key: _key, ...stack } = top.group;
    const t0 = p.dumps[0]!.takenAtMs;
    const t1 = p.dumps[p.dumps.length - 1]!.takenAtMs;
    const seconds = t0 !== undefined && t1 !== undefined && t1 > t0 ? (t1 - t0) / 1000 : undefined;
    const rate = seconds ? ` (${Math.round(top.added / seconds)} a second)` : '';
    const where = stack.frames.find((f) => !f.startsWith('runtime.')) ?? stack.frames[0] ?? '?';
    return {
      severity: growth >= LEAK_CRITICAL_RATIO * Math.max(first.length, 1) ? 'critical' : 'warning',
      evidence: {
        summary: `goroutines grew from ${first.length} to ${last.length}; one stack gained ${top.added}${rate}: ${stack.state} in ${where}`,
        goroutines: top.added,
        stacks: [{ ...stack, count: top.added }],
        measures: { before: first.length, after: last.length, growth, ...(seconds ? { seconds: Number(seconds.toFixed(1)) } : {}) },
      },
      advice:
        'These goroutines start and never finish. Give each one a way out: a context cancelled when its caller ' +
        'gives up, a buffered result channel (so a late send does not block), or a select on ctx.Done() beside the ' +
        'send or receive it is stuck in.',
    };
  },
};
