// syscall-heavy: the program's CPU goes to system calls it makes — the kernel doing work on its behalf
// (copying, clearing, small reads and writes one call at a time).

import type { Frame } from '../../profile/flame-model';
import { type StackSample } from '../profile-view';
import { type Rule, pct, severityOf, usableCpu } from '../rule';

/** Kernel frames that mean "inside a system call" (x86-64 and arm64 entry paths). */
const SYSCALL_ENTRY = new Set(['do_syscall_64', 'x64_sys_call', 'entry_SYSCALL_64', 'entry_SYSCALL_64_after_hwframe', 'el0_svc', 'el0_svc_common', 'invoke_syscall']);
/** Prefixes of a system call's own kernel functions (__x64_sys_read, ksys_read, …): what follows is its name. */
const SYSCALL_PREFIX = /^(?:__(?:x64|arm64|ia32|se|do)_sys_|ksys_|__sys_|do_sys_)/;
/**
 * Go's system call wrappers: a profile without kernel frames (Go's own runtime/pprof) charges the kernel's
 * time to the user PC the call returns to, inside one of these.
 */
const GO_SYSCALL_WRAPPERS = new Set([
  'syscall.Syscall',
  'syscall.Syscall6',
  'syscall.RawSyscall',
  'syscall.RawSyscall6',
  'syscall.rawSyscallNoError',
  'syscall.RawSyscallNoError',
  'internal/runtime/syscall.Syscall6',
  'runtime/internal/syscall.Syscall6',
  'internal/runtime/syscall/linux.Syscall6',
]);
/** Frames between the program's code and the system call: the call is charged to the first frame outside them. */
const PLUMBING = /^(?:syscall|internal\/runtime\/syscall(?:\/\w+)?|runtime\/internal\/syscall|internal\/poll|internal\/syscall\/unix|os|runtime)\./;

/** Share of CPU in system calls that fires the rule: the kernel working for the program more than the program. */
export const SYSCALL_SHARE = 0.4;
export const SYSCALL_CRITICAL = 0.7;

/**
 * In a system call the program made: the runtime's own calls (futex, epoll_pwait, nanosleep while its threads
 * idle or wake each other) have only runtime frames below them and are the scheduler's business, not the code's.
 */
function inProgramSyscall(s: StackSample): boolean {
  const kernel = s.frames.some((f) => f.kind === 'kernel');
  if (kernel) {
    if (!s.frames.some((f) => f.kind === 'kernel' && SYSCALL_ENTRY.has(f.name))) return false;
  } else {
    const leaf = s.frames.find((f) => f.kind !== 'inlined') ?? s.frames[0];
    if (leaf === undefined || !GO_SYSCALL_WRAPPERS.has(leaf.name)) return false;
  }
  return s.frames.some((f) => f.kind !== 'kernel' && !f.name.startsWith('runtime.'));
}

/** The system call's name (the kernel function nearest the entry) and the Go function that made it. */
function syscallOf(frames: readonly Frame[]): { call: string; caller: string } {
  // The call's own kernel function, outermost first (__x64_sys_read; where the kernel inlines those into its
  // dispatcher, ksys_read). A sample in the entry or exit code itself has none.
  const kernel = frames.filter((f) => f.kind === 'kernel');
  const user = frames.filter((f) => f.kind !== 'kernel');
  let call: string;
  if (kernel.length > 0) {
    const own = [...kernel].reverse().find((f) => SYSCALL_PREFIX.test(f.name));
    call = own ? `${own.name.replace(SYSCALL_PREFIX, '')}(2)` : 'system call entry and exit';
  } else {
    call = user.find((f) => GO_SYSCALL_WRAPPERS.has(f.name))?.name ?? '?';
  }
  const caller = user.find((f) => !PLUMBING.test(f.name))?.name ?? user[user.length - 1]?.name ?? '?';
  return { call, caller };
}

export const syscallHeavy: Rule = {
  name: 'syscall-heavy',
  check(p) {
    const cpu = usableCpu(p);
    if (!cpu) return undefined;
    const calls = new Map<string, number>();
    const callers = new Map<string, number>();
    let weight = 0;
    for (const s of cpu.samples) {
      if (!inProgramSyscall(s)) continue;
      weight += s.weight;
      const { call, caller } = syscallOf(s.frames);
      calls.set(call, (calls.get(call) ?? 0) + s.weight);
      callers.set(caller, (callers.get(caller) ?? 0) + s.weight);
    }
    const share = weight / (cpu.totalWeight || 1);
    if (share < SYSCALL_SHARE) return undefined;
    const ranked = (m: Map<string, number>) =>
      [...m].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([name, w]) => ({ function: name, share: w / cpu.totalWeight }));
    const top = ranked(calls)[0]!;
    return {
      severity: severityOf(share, SYSCALL_CRITICAL),
      evidence: {
        summary: `${pct(share)} of the CPU is spent in system calls (most in ${top.function}, ${pct(top.share)})`,
        share,
        // The calls (read(2), …) and the program's functions that made them.
        functions: [...ranked(calls), ...ranked(callers)],
      },
      advice:
        'The kernel does most of the work, one system call at a time. Make fewer, larger calls (bufio, bigger ' +
        'reads and writes, batching), avoid polling calls in loops, and check what the top callers ask the kernel for.',
    };
  },
};
