// The diagnosis: profiles and goroutine dumps in, findings out. Profiles are split by process (their samples'
// pid label), dumps go with their process, and every rule looks at one process at a time.
//
//   diagnose({ cpu, offcpu, dumps: [older, newer] }) → { findings: [{ rule, severity, pid, evidence, advice }], notes }

import type { GoroutineDump } from '../goroutines/model';
import type { Profile } from '../profile/pprof';
import { ProfileView, viewsByProcess } from './profile-view';
import type { ProcessInputs, Rule } from './rule';
import type { Finding } from './types';
import { deepServeHttp } from './rules/deep-servehttp';
import { gcPressure } from './rules/gc-pressure';
import { goroutineLeak } from './rules/goroutine-leak';
import { idleWithPileup } from './rules/idle-with-pileup';
import { lockContention } from './rules/lock-contention';
import { netpollWait } from './rules/netpoll-wait';
import { schedulerThrash } from './rules/scheduler-thrash';
import { syscallHeavy } from './rules/syscall-heavy';

export const ALL_RULES: readonly Rule[] = [schedulerThrash, netpollWait, deepServeHttp, gcPressure, idleWithPileup, lockContention, goroutineLeak, syscallHeavy];

export interface DiagnoseInput {
  cpu?: Profile;
  offcpu?: Profile;
  /** Goroutine dumps, oldest first (two or more of one process let goroutine-leak compare them). */
  dumps?: readonly GoroutineDump[];
}

export interface Diagnosis {
  findings: Finding[];
  /** What could not be judged and why (a missing input), for people reading the result. */
  notes: string[];
}

const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 } as const;

/** Per process key (pid, or undefined for inputs that do not say), what each rule will see. */
function byProcess(input: DiagnoseInput): Map<number | undefined, ProcessInputs> {
  const out = new Map<number | undefined, ProcessInputs>();
  const entry = (pid: number | undefined): ProcessInputs => {
    let e = out.get(pid);
    if (!e) out.set(pid, (e = { pid, dumps: [] }));
    return e;
  };
  const add = (views: Map<number | undefined, ProfileView>, slot: 'cpu' | 'offcpu'): void => {
    for (const [pid, view] of views) entry(pid)[slot] = view;
  };
  if (input.cpu) add(viewsByProcess(input.cpu, 'cpu'), 'cpu');
  if (input.offcpu) add(viewsByProcess(input.offcpu, 'offcpu'), 'offcpu');
  // A dump that does not say whose it is (a text dump) belongs to the one process the profiles show, if one.
  const profiled = [...out.keys()];
  for (const d of input.dumps ?? []) {
    const pid = d.pid ?? (profiled.length === 1 ? profiled[0] : undefined);
    (entry(pid).dumps as GoroutineDump[]).push(d);
  }
  // A process absent from a profile that was taken had no samples in it: it was idle, not unmeasured.
  for (const e of out.values()) {
    if (input.cpu && !e.cpu) e.cpu = new ProfileView('cpu', [], Number(input.cpu.durationNanos));
    if (input.offcpu && !e.offcpu) e.offcpu = new ProfileView('offcpu', [], Number(input.offcpu.durationNanos));
  }
  return out;
}

export function diagnose(input: DiagnoseInput, rules: readonly Rule[] = ALL_RULES): Diagnosis {
  const notes: string[] = [];
  if (!input.cpu) notes.push('no CPU profile: scheduler-thrash, gc-pressure, syscall-heavy and the CPU side of lock-contention were not judged');
  if (!input.dumps?.length) notes.push('no goroutine dump: netpoll-wait, idle-with-pileup and the goroutine side of lock-contention were not judged');
  if ((input.dumps?.length ?? 0) < 2) notes.push('fewer than two goroutine dumps: goroutine-leak was not judged');
  const findings: Finding[] = [];
  for (const [pid, inputs] of byProcess(input)) {
    for (const rule of rules) {
      const fired = rule.check(inputs);
      if (fired) findings.push({ rule: rule.name, severity: fired.severity, ...(pid !== undefined ? { pid } : {}), evidence: fired.evidence, advice: fired.advice });
    }
  }
  findings.sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
  return { findings, notes };
}
