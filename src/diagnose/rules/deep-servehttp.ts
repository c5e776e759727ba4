// deep-servehttp: ServeHTTP frames nested deeper than any sane middleware chain — handlers wrapped again and
// again (per request, per route registration), a recursion heading for a stack overflow. Seen in any stack: CPU
// and off-CPU samples and goroutine dumps.

import { functionsOf, topGroups, userGoroutines } from '../dump-view';
import type { Rule } from '../rule';

/** ServeHTTP frames in one stack that fire the rule (the issue's bar: a real chain is a handful deep). */
export const SERVEHTTP_DEPTH = 8;
/** Deep enough that the stack itself becomes the problem (Go's 1 GB stack limit, copying on growth). */
export const SERVEHTTP_CRITICAL_DEPTH = 64;

const isServeHTTP = (name: string): boolean => name.endsWith('.ServeHTTP') || name.endsWith(')ServeHTTP');

function depthOf(names: readonly string[]): number {
  let n = 0;
  for (const name of names) if (isServeHTTP(name)) n++;
  return n;
}

export const deepServeHttp: Rule = {
  name: 'deep-servehttp',
  check(p) {
    let maxDepth = 0;
    let deepest: string[] = [];
    const shares: string[] = [];
    let share: number | undefined;
    for (const view of [p.cpu, p.offcpu]) {
      if (!view) continue;
      let deepWeight = 0;
      for (const s of view.samples) {
        const names = s.frames.map((f) => f.name);
        const d = depthOf(names);
        if (d >= SERVEHTTP_DEPTH) deepWeight += s.weight;
        if (d > maxDepth) [maxDepth, deepest] = [d, names];
      }
      const sh = deepWeight / (view.totalWeight || 1);
      if (deepWeight > 0) {
        shares.push(`${(100 * sh).toFixed(1)}% of the ${view.kind === 'cpu' ? 'CPU' : 'off-CPU time'}`);
        if (view.kind === 'cpu' || share === undefined) share = sh;
      }
    }
    const deepGoroutines = p.dumps.length ? userGoroutines(p.dumps[p.dumps.length - 1]!).filter((g) => depthOf(functionsOf(g)) >= SERVEHTTP_DEPTH) : [];
    for (const g of deepGoroutines) {
      const names = functionsOf(g);
      const d = depthOf(names);
      if (d > maxDepth) [maxDepth, deepest] = [d, names];
    }
    if (maxDepth < SERVEHTTP_DEPTH) return undefined;
    const chain = new Map<string, number>();
    for (const name of deepest) if (isServeHTTP(name)) chain.set(name, (chain.get(name) ?? 0) + 1);
    const where = [...shares, ...(deepGoroutines.length ? [`${deepGoroutines.length} goroutines`] : [])].join(', ');
    return {
      severity: maxDepth >= SERVEHTTP_CRITICAL_DEPTH ? 'critical' : 'warning',
      evidence: {
        summary: `ServeHTTP nested ${maxDepth} deep (${[...chain].map(([fn, n]) => `${fn} ×${n}`).join(', ')}) in ${where}`,
        ...(share !== undefined ? { share } : {}),
        ...(deepGoroutines.length ? { goroutines: deepGoroutines.length, stacks: topGroups(deepGoroutines, 3) } : {}),
        measures: { depth: maxDepth },
      },
      advice:
        'Handlers are wrapped in more middleware than the code means to: look for a wrap inside a handler or on ' +
        'every route registration (the same middleware repeated above), and build the chain once at start-up.',
    };
  },
};
