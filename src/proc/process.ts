// Processes as /proc shows them: which exist, and one process's identity across PID reuse.
//
// A PID alone does not name a process: once it exits the kernel may hand the number to a new one. The start time
// (field 22 of /proc/PID/stat, clock ticks after boot) does not change for the life of a process, so
// pid + start time does name exactly one.

import * as fs from 'node:fs';

import { readProcText } from './read';

export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/PID/stat: clock ticks after boot at which the process started. */
  startTime: bigint;
}

export interface ProcStat extends ProcessIdentity {
  /** The task name (at most 15 bytes; may hold spaces and parentheses). */
  comm: string;
  /** R, S, D, Z, … */
  state: string;
  ppid: number;
  /** Process flags (PF_*); PF_KTHREAD = 0x00200000 marks kernel threads. */
  flags: number;
}

export const PF_KTHREAD = 0x00200000;

/** Parses /proc/PID/stat. comm may hold anything but a NUL, so the fields after it start at the last ')'. */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf(' (');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open));
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state); field N is rest[N - 3].
  const state = rest[0];
  const ppid = Number(rest[1]);
  const flags = Number(rest[6]);
  const start = rest[19];
  if (!Number.isInteger(pid) || state === undefined || start === undefined || !/^\d+$/.test(start)) return undefined;
  return { pid, comm: text.slice(open + 2, close), state, ppid, flags, startTime: BigInt(start) };
}

/** /proc/PID/stat of a process, or undefined when it is gone. Never throws. */
export function readStat(pid: number, procRoot = '/proc'): ProcStat | undefined {
  const text = readProcText(`${procRoot}/${pid}/stat`);
  return text === undefined ? undefined : parseStat(text);
}

/** The identity of the process that has this PID now, or undefined when there is none. */
export function processIdentity(pid: number, procRoot = '/proc'): ProcessIdentity | undefined {
  const st = readStat(pid, procRoot);
  return st === undefined ? undefined : { pid: st.pid, startTime: st.startTime };
}

/** Is `id` still running (the PID exists and was not reused)? A zombie counts as gone. */
export function isAlive(id: ProcessIdentity, procRoot = '/proc'): boolean {
  const st = readStat(id.pid, procRoot);
  return st !== undefined && st.startTime === id.startTime && st.state !== 'Z' && st.state !== 'X';
}

export function sameProcess(a: ProcessIdentity, b: ProcessIdentity): boolean {
  return a.pid === b.pid && a.startTime === b.startTime;
}

/** Every process (thread group) ID under /proc, ascending. */
export function listPids(procRoot = '/proc'): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync(procRoot)) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const pid = Number(name);
    if (Number.isInteger(pid)) out.push(pid);
  }
  return out.sort((a, b) => a - b);
}
