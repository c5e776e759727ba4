// What a process (the agent, a workload) has used, from /proc, and what BPF programs have run
// (kernel.bpf_stats_enabled): the measures every bench reports.

import * as fs from 'node:fs';
import { enableRunTimeStats } from '../../src/bpf';
import { bpfPrograms } from './agent';

const TICK = 100; // USER_HZ

/** The fields of a /proc/…/stat file after the comm: [0] is the state, [7] minflt, [11] utime, [12] stime. */
function statFields(statPath: string): string[] {
  const stat = fs.readFileSync(statPath, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** user+sys seconds in a /proc/…/stat file: the thread group's (/proc/PID/stat) or one thread's (task/TID/stat). */
export function statCpuSeconds(statPath: string): number {
  const f = statFields(statPath);
  return (Number(f[11]) + Number(f[12])) / TICK; // utime, stime
}

/**
 * Minor page faults of a process's whole thread group so far. On some virtual machines (Firecracker guests here)
 * each fault costs ~11 µs of system time, so fresh memory touched is a cost of its own.
 */
export function minorFaults(pid: number): number {
  return Number(statFields(`/proc/${pid}/stat`)[7]);
}

/** user+sys seconds of a process's whole thread group. */
export function cpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/** A process's memory now (VmRSS, RssAnon, RssFile) and at its peak (VmHWM), MiB. */
export function memoryMiB(pid: number): Record<'rss' | 'hwm' | 'anon' | 'file', number> {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const mib = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(s)![1]) / 1024;
  return { rss: mib('VmRSS'), hwm: mib('VmHWM'), anon: mib('RssAnon'), file: mib('RssFile') };
}

/** Run time of these BPF programs so far, seconds. */
export function bpfRunSeconds(ids: readonly number[]): number {
  const now = bpfPrograms();
  return ids.reduce((sum, id) => sum + (now.get(id)?.runTimeNs ?? 0), 0) / 1e9;
}

/**
 * BPF programs' run time is counted while the handle lives (BPF_ENABLE_STATS): the kernel ends it with the
 * descriptor, so a bench killed half-way does not leave every BPF program on the node paying the stats' two clock
 * reads a run, as a kernel.bpf_stats_enabled=1 left behind does (it made the off-CPU overhead look 0.05–0.15× worse).
 */
export function countBpfRunTime(): { close(): void } {
  return enableRunTimeStats();
}

const BPF_STATS_SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';

/**
 * For benches of what the agent costs a workload: kernel.bpf_stats_enabled off while they measure (left on by a tool
 * or a killed bench, it adds two clock reads to every BPF program run). Returns what puts it back.
 */
export function bpfStatsOff(): () => void {
  const was = fs.readFileSync(BPF_STATS_SYSCTL, 'utf8').trim();
  if (was === '0') return () => {};
  console.log(`kernel.bpf_stats_enabled was ${was}: 0 while measuring (run-time stats cost every BPF program run two clock reads)`);
  fs.writeFileSync(BPF_STATS_SYSCTL, '0');
  return () => fs.writeFileSync(BPF_STATS_SYSCTL, was);
}
