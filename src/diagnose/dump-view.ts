// Goroutine dumps as the rules read them: the program's own goroutines (runtime workers left out, as
// runtime.Stack(all) leaves them out), grouped by identical stack and state, largest group first.

import type { Goroutine, GoroutineDump } from '../goroutines/model';
import type { StackGroup } from './types';

/** Frames kept per group in the evidence: enough to see where a goroutine waits and who called it. */
const FRAMES_SHOWN = 16;

export function userGoroutines(d: GoroutineDump): Goroutine[] {
  return d.goroutines.filter((g) => !g.system);
}

/** What Go prints in the brackets: the wait reason of a waiting goroutine, else its state. */
export function stateOf(g: Goroutine): string {
  return g.waitReason ?? g.status;
}

/** Function names, innermost first (wrappers left out, as Go's traceback leaves them out). */
export function functionsOf(g: Goroutine): string[] {
  return g.frames.filter((f) => !f.wrapper).map((f) => f.function);
}

function signature(g: Goroutine): string {
  return `${stateOf(g)}\n${functionsOf(g).join('\n')}`;
}

/** Groups goroutines with the same state and stack (panicparse's view), largest first. */
export function groupByStack(gs: readonly Goroutine[]): Array<StackGroup & { key: string }> {
  const groups = new Map<string, StackGroup & { key: string }>();
  for (const g of gs) {
    const key = signature(g);
    let group = groups.get(key);
    if (!group) {
      group = { key, count: 0, state: stateOf(g), frames: functionsOf(g).slice(0, FRAMES_SHOWN) };
      groups.set(key, group);
    }
    group.count++;
    if (g.waitMinutes !== undefined && g.waitMinutes > (group.waitMinutes ?? 0)) group.waitMinutes = g.waitMinutes;
  }
  return [...groups.values()].sort((a, b) => b.count - a.count);
}

/** The groups as evidence (without their keys), at most `n`. */
export function topGroups(gs: readonly Goroutine[], n: number): StackGroup[] {
  return groupByStack(gs)
    .slice(0, n)
    .map(({ key: _key, ...g }) => g);
}
