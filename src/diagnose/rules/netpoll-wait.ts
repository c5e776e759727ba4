// netpoll-wait: the program waits on the network. Most of its goroutines are parked in the netpoller
// (internal/poll.runtime_pollWait, "IO wait") and its threads sleep in runtime.netpoll → epoll_wait. Idle threads
// of any Go program also sleep there (timers), so the goroutine dump decides; the off-CPU share is evidence.

import type { Goroutine } from '../../goroutines/model';
import { functionsOf, topGroups, userGoroutines } from '../dump-view';
import { nameMatcher } from '../profile-view';
import { type Rule, lastDump, pct } from '../rule';

/** Goroutines in IO wait that fire the rule: this many, and this share of the program's goroutines. */
export const NETPOLL_GOROUTINES = 20;
export const NETPOLL_SHARE = 0.5;
/** Below this many busy CPUs the program is idle: the network is what it is waiting for (warning, else info). */
export const NETPOLL_IDLE_CORES = 0.25;

const POLL_WAIT = nameMatcher(['internal/poll.runtime_pollWait', 'runtime.netpollblock']);
const NETPOLL = nameMatcher(['runtime.netpoll']);

function inIoWait(g: Goroutine): boolean {
  return g.waitReason === 'IO wait' || (g.state === 'waiting' && functionsOf(g).some(POLL_WAIT));
}

export const netpollWait: Rule = {
  name: 'netpoll-wait',
  check(p) {
    const dump = lastDump(p);
    if (!dump) return undefined;
    const users = userGoroutines(dump);
    const waiting = users.filter(inIoWait);
    const share = users.length ? waiting.length / users.length : 0;
    if (waiting.length < NETPOLL_GOROUTINES || share < NETPOLL_SHARE) return undefined;
    const measures: Record<string, number> = { ioWaitGoroutines: waiting.length, goroutines: users.length };
    const parts = [`${waiting.length} of ${users.length} goroutines wait on the network (IO wait)`];
    let offShare: number | undefined;
    if (p.offcpu && p.offcpu.totalWeight > 0) {
      offShare = p.offcpu.inclusive(NETPOLL).share;
      measures['offCpuNetpollShare'] = Number(offShare.toFixed(3));
      parts.push(`${pct(offShare)} of the threads' off-CPU time in runtime.netpoll (epoll_wait)`);
    }
    const cores = p.cpu?.cores; // few samples still measure idleness
    if (cores !== undefined) measures['cores'] = Number(cores.toFixed(2));
    const idle = cores !== undefined && cores < NETPOLL_IDLE_CORES;
    if (idle) parts.push(`the CPU is idle (${cores!.toFixed(2)} CPUs busy)`);
    return {
      severity: idle ? 'warning' : 'info',
      evidence: { summary: parts.join('; '), ...(offShare !== undefined ? { share: offShare } : {}), goroutines: waiting.length, stacks: topGroups(waiting, 5), measures },
      advice:
        'The service is waiting for its peers: the stacks say on what (a client reading a backend\'s answer, a ' +
        'server reading requests). Look at the latency of those backends, at timeouts and deadlines on the ' +
        'connections, and at connection pool sizes, before the program\'s own code.',
    };
  },
};
