// idle-with-pileup: the CPU is mostly idle while thousands of goroutines wait on channels, selects and
// semaphores — a backlog behind one slow dependency (or one stuck goroutine) rather than too much work.

import type { Goroutine } from '../../goroutines/model';
import { topGroups, userGoroutines } from '../dump-view';
import { type Rule, lastDump } from '../rule';

/** Goroutines waiting in the states below that make a pile-up. */
export const PILEUP_GOROUTINES = 1000;
/** A program using less CPU than this (average busy CPUs) while they wait is idle. */
export const PILEUP_IDLE_CORES = 0.25;
/** Ten times the pile-up is heading for memory exhaustion. */
export const PILEUP_CRITICAL = 10_000;

/** Waiting for another goroutine (not for the network, a timer or the collector). */
const PILEUP_STATES = new Set([
  'chan receive',
  'chan send',
  'chan receive (nil chan)',
  'chan send (nil chan)',
  'select',
  'semacquire',
  'sync.Cond.Wait',
  'sync.Mutex.Lock',
  'sync.RWMutex.Lock',
  'sync.RWMutex.RLock',
  'sync.WaitGroup.Wait',
]);

function piledUp(g: Goroutine): boolean {
  return g.waitReason !== undefined && PILEUP_STATES.has(g.waitReason);
}

export const idleWithPileup: Rule = {
  name: 'idle-with-pileup',
  check(p) {
    const dump = lastDump(p);
    if (!dump) return undefined;
    const waiting = userGoroutines(dump).filter(piledUp);
    if (waiting.length < PILEUP_GOROUTINES) return undefined;
    const cores = p.cpu?.cores;
    if (cores !== undefined && cores >= PILEUP_IDLE_CORES) return undefined; // busy: a load problem, not a pile-up
    const groups = topGroups(waiting, 5);
    const longest = Math.max(0, ...groups.map((g) => g.waitMinutes ?? 0));
    const cpuText = cores === undefined ? 'CPU not measured' : `${cores.toFixed(2)} CPUs busy`;
    return {
      severity: waiting.length >= PILEUP_CRITICAL ? 'critical' : 'warning',
      evidence: {
        summary: `${waiting.length} goroutines wait on other goroutines (${groups[0]!.count} in one place: ${groups[0]!.state} in ${groups[0]!.frames.find((f) => !f.startsWith('runtime.')) ?? groups[0]!.frames[0]}) while ${cpuText}${longest ? `; the longest for ${longest} minutes` : ''}`,
        goroutines: waiting.length,
        stacks: groups,
        measures: { ...(cores !== undefined ? { cores: Number(cores.toFixed(3)) } : {}), ...(longest ? { longestWaitMinutes: longest } : {}) },
      },
      advice:
        'Work is queued behind something slow or stuck, not short of CPU. Find what the biggest group waits for ' +
        '(the goroutine on the other end of that channel or lock), put a timeout on it, and bound the queue ' +
        '(a semaphore or a buffered channel with a rejection path) so callers fail fast instead of piling up.',
    };
  },
};
