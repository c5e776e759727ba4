// What a rule sees and returns. A rule looks at one process: its CPU profile, its off-CPU profile and its
// goroutine dumps (oldest first), any of which may be missing, and fires at most once.

import type { GoroutineDump } from '../goroutines/model';
import type { ProfileView } from './profile-view';
import type { Evidence, RuleName, Severity } from './types';

export interface ProcessInputs {
  pid?: number;
  cpu?: ProfileView;
  offcpu?: ProfileView;
  /** Oldest first. */
  dumps: readonly GoroutineDump[];
}

export interface Fired {
  severity: Severity;
  evidence: Evidence;
  advice: string;
}

export interface Rule {
  name: RuleName;
  check(p: ProcessInputs): Fired | undefined;
}

/**
 * Less CPU than this in a profile (seconds) is too little to judge shares by: ten samples at 99 Hz can all land
 * in the scheduler by chance. Rules that read CPU shares ignore such a profile.
 */
export const MIN_CPU_SECONDS = 0.25;

/** The CPU profile when it has enough CPU time in it to judge shares by. */
export function usableCpu(p: ProcessInputs): ProfileView | undefined {
  return p.cpu !== undefined && p.cpu.totalWeight >= MIN_CPU_SECONDS * 1e9 ? p.cpu : undefined;
}

/** warning from `threshold` on, critical from `critical` on. */
export function severityOf(value: number, critical: number): Severity {
  return value >= critical ? 'critical' : 'warning';
}

export function pct(share: number): string {
  return `${(100 * share).toFixed(1)}%`;
}

/** The newest dump, when there is one. */
export function lastDump(p: ProcessInputs): GoroutineDump | undefined {
  return p.dumps[p.dumps.length - 1];
}
