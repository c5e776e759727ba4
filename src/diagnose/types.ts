// What a diagnosis reports: one finding per rule that fired, with the evidence that fired it and what to do.
// Types only (the page's build reads this file too).

export const RULES = [
  'scheduler-thrash',
  'netpoll-wait',
  'deep-servehttp',
  'gc-pressure',
  'idle-with-pileup',
  'lock-contention',
  'goroutine-leak',
  'syscall-heavy',
] as const;
export type RuleName = (typeof RULES)[number];

/** info: worth knowing; warning: likely hurts latency or cost; critical: heading for an outage. */
export type Severity = 'info' | 'warning' | 'critical';

/** A group of goroutines with the same stack and state, innermost frame first. */
export interface StackGroup {
  count: number;
  state: string;
  frames: string[];
  /** The longest wait in the group, in minutes, when Go printed one. */
  waitMinutes?: number;
}

export interface Evidence {
  /** One line a person reads first. */
  summary: string;
  /** Share (0–1) of the profile's time — CPU or off-CPU — in the samples that fired the rule. */
  share?: number;
  /** The functions that fired it and each one's share (0–1) of the profile's time. */
  functions?: Array<{ function: string; share: number }>;
  /** How many goroutines fired it. */
  goroutines?: number;
  /** The stacks those goroutines wait in, largest group first. */
  stacks?: StackGroup[];
  /** Other measures a rule reports, by name (e.g. depth, cores, growth). */
  measures?: Record<string, number | string>;
}

export interface Finding {
  rule: RuleName;
  severity: Severity;
  /** The process it concerns, when known (a node-wide profile is diagnosed process by process). */
  pid?: number;
  evidence: Evidence;
  advice: string;
}
