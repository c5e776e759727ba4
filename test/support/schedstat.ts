// The kernel's own account of a thread's CPU time: the oracle for how long a thread that never blocks was off the CPU.
import * as fs from 'node:fs';

/** The thread's time on the CPU so far, in ns (the first field of /proc/PID/task/TID/schedstat). */
export function onCpuNs(pid: number, tid: number): number {
  return Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
}

/** The process's user and system CPU time so far, in clock ticks (utime and stime of /proc/PID/stat). */
export function userSystemTicks(pid: number): { user: number; system: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may itself hold spaces and parentheses: state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]), system: Number(fields[12]) };
}

/** How often the thread was switched out preempted (still runnable), as the kernel counts it. */
export function preemptions(pid: number, tid: number): number {
  return contextSwitches(pid, tid, 'nonvoluntary');
}

/** How often the kernel has switched the thread out because it went to sleep (woken again each time). */
export function sleeps(pid: number, tid: number): number {
  return contextSwitches(pid, tid, 'voluntary');
}

function contextSwitches(pid: number, tid: number, kind: 'voluntary' | 'nonvoluntary'): number {
  const status = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
  return Number(new RegExp(`^${kind}_ctxt_switches:\\s+(\\d+)$`, 'm').exec(status)![1]);
}
