// The kernel's own account of a thread's CPU time: the oracle for how long a thread that never blocks was off the CPU.
import * as fs from 'node:fs';

/** The thread's time on the CPU so far, in ns (the first field of /proc/PID/task/TID/schedstat). */
export function onCpuNs(pid: number, tid: number): number {
  return Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
}
