// lock-contention: goroutines queue on a sync.Mutex or RWMutex — seen in the CPU (the slow paths, the semaphore,
// the futex wake-ups behind them) or in a goroutine dump (many goroutines waiting to lock).

import type { Goroutine } from '../../goroutines/model';
import { functionsOf, topGroups, userGoroutines } from '../dump-view';
import { nameMatcher, type StackSample } from '../profile-view';
import { type Rule, pct, usableCpu } from '../rule';

/** The slow paths of sync's locks (internal/sync from Go 1.24) and the semaphores they sleep on. */
const LOCK_SLOW = nameMatcher([
  'sync.(*Mutex).lockSlow',
  'sync.(*Mutex).unlockSlow',
  'internal/sync.(*Mutex).lockSlow',
  'internal/sync.(*Mutex).unlockSlow',
  'sync.(*RWMutex).rUnlockSlow',
  'sync.runtime_SemacquireMutex',
  'internal/sync.runtime_SemacquireMutex',
  'sync.runtime_SemacquireRWMutex',
  'sync.runtime_SemacquireRWMutexR',
  'sync.runtime_Semrelease',
  'internal/sync.runtime_Semrelease',
  'runtime.semacquire1',
  'runtime.semrelease1',
]);

/**
 * runtime.lock2 is the runtime's own lock; under channel operations and the scheduler it is the channel's or
 * the run queue's lock, which scheduler-thrash reports. Elsewhere (timers, the heap, semaphore tables) it counts.
 */
const RUNTIME_LOCK = 'runtime.lock2';
const CHANNEL_OR_SCHEDULER = nameMatcher(['runtime.chansend', 'runtime.chanrecv', 'runtime.selectgo', 'runtime.closechan', 'runtime.schedule', 'runtime.findRunnable', 'runtime.findrunnable']);

/** Share of CPU in lock slow paths that fires the rule (uncontended locks never leave their fast path). */
export const LOCK_CPU_SHARE = 0.1;
export const LOCK_CPU_CRITICAL = 0.3;
/** Goroutines waiting to lock that fire the rule from a dump: this many, and this share of the program's. */
export const LOCK_WAITERS = 10;
export const LOCK_WAITERS_SHARE = 0.1;
/** Half the program queued on locks is an outage in the making. */
export const LOCK_WAITERS_CRITICAL_SHARE = 0.5;

/** Wait reasons of sync's locks (Go 1.20+), and the frames that mean the same before (wait reason "semacquire"). */
const LOCK_WAIT_REASONS = new Set(['sync.Mutex.Lock', 'sync.RWMutex.Lock', 'sync.RWMutex.RLock']);
const LOCK_WAIT_FRAMES = nameMatcher(['sync.runtime_SemacquireMutex', 'internal/sync.runtime_SemacquireMutex', 'sync.runtime_SemacquireRWMutex', 'sync.runtime_SemacquireRWMutexR']);

/**
 * Queued on a lock: waiting to lock it, or in its slow paths (a contended mutex in starvation mode hands itself
 * over through semrelease → goyield: its waiters show as runnable there for a moment).
 */
function queuedOnLock(g: Goroutine): boolean {
  if (g.waitReason !== undefined && LOCK_WAIT_REASONS.has(g.waitReason)) return true;
  const names = functionsOf(g);
  return (g.state === 'waiting' && names.some(LOCK_WAIT_FRAMES)) || (g.state === 'runnable' && names.some(LOCK_SLOW));
}

function inLockSlowPath(s: StackSample): boolean {
  for (const f of s.frames) {
    if (LOCK_SLOW(f.name)) return true;
    if (f.name === RUNTIME_LOCK) return !s.frames.some((g) => CHANNEL_OR_SCHEDULER(g.name));
  }
  return false;
}

export const lockContention: Rule = {
  name: 'lock-contention',
  check(p) {
    const cpu = usableCpu(p);
    const cpuShare = cpu ? cpu.share(inLockSlowPath) : 0;
    // The dump with the most goroutines queued (a queue comes and goes; the worst moment seen counts).
    let users: Goroutine[] = [];
    let waiting: Goroutine[] = [];
    for (const d of p.dumps) {
      const u = userGoroutines(d);
      const w = u.filter(queuedOnLock);
      if (w.length > waiting.length || users.length === 0) [users, waiting] = [u, w];
    }
    const waitShare = users.length ? waiting.length / users.length : 0;
    const byCpu = cpuShare >= LOCK_CPU_SHARE;
    const byDump = waiting.length >= LOCK_WAITERS && waitShare >= LOCK_WAITERS_SHARE;
    if (!byCpu && !byDump) return undefined;
    const parts: string[] = [];
    if (cpu && cpuShare > 0) parts.push(`${pct(cpuShare)} of the CPU in lock slow paths`);
    if (waiting.length > 0) parts.push(`${waiting.length} of ${users.length} goroutines queued on a mutex`);
    const critical = cpuShare >= LOCK_CPU_CRITICAL || (byDump && waitShare >= LOCK_WAITERS_CRITICAL_SHARE);
    const slowFunctions = cpu ? cpu.inclusive((n) => LOCK_SLOW(n) || n === RUNTIME_LOCK).functions : [];
    return {
      severity: critical ? 'critical' : 'warning',
      evidence: {
        summary: parts.join('; '),
        ...(cpu ? { share: cpuShare, functions: slowFunctions.slice(0, 8) } : {}),
        ...(waiting.length > 0 ? { goroutines: waiting.length, stacks: topGroups(waiting, 5) } : {}),
      },
      advice:
        'Many goroutines want the same lock. Hold it for less (no I/O or allocation inside), split it (sharding by ' +
        'key), use an RWMutex for read-mostly data, or move to per-goroutine state merged later. The stacks show ' +
        'where the lock is taken.',
    };
  },
};
