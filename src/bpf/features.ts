// Degrade, don't die: a BPF object is loaded with its optional programs, and a kernel that refuses one of them
// (a missing tracepoint, helper or field) loses that program's feature only. The features and why one is off are
// kept in one list for the log, the quietflame_feature_enabled gauge and /healthz.
//
//   const { obj, disabled } = loadWithOptional((off) => BpfObject.open(path, { autoload: off }), ['on_exec']);
//   features.set('exec_events', !disabled.has('on_exec'), disabled.get('on_exec'));

import * as os from 'node:os';
import type { BpfObject } from './object';

export interface FeatureState {
  enabled: boolean;
  /** Why it is off (the kernel's or loader's words), or what it needs. */
  detail?: string;
}

/** A profile of a kind the kernel did not let the agent take (its BPF program was refused): HTTP 503. */
export class FeatureUnavailable extends Error {}

/** The agent's features by name (e.g. cpu_profile, offcpu, exec_events, exit_events, runqueue_latency). */
export class Features {
  private readonly states = new Map<string, FeatureState>();

  set(name: string, enabled: boolean, detail?: string): void {
    this.states.set(name, detail === undefined ? { enabled } : { enabled, detail });
  }

  get(name: string): FeatureState | undefined {
    return this.states.get(name);
  }

  all(): Record<string, FeatureState> {
    return Object.fromEntries([...this.states].sort(([a], [b]) => a.localeCompare(b)));
  }
}

/**
 * Opens and loads an object with every program in `optional` (program names) that the kernel accepts. When the
 * whole load fails, each optional program is tried alone beside the others' core: those that fail are left out
 * (`disabled`, with the error). Throws the first error when even the core (no optional program) does not load.
 * `open(autoload)` must open a fresh object with these autoload settings.
 */
export function loadWithOptional(
  open: (autoload: Record<string, boolean>) => BpfObject,
  optional: readonly string[],
): { obj: BpfObject; disabled: Map<string, string> } {
  const only = (on: ReadonlySet<string>): Record<string, boolean> => Object.fromEntries(optional.map((p) => [p, on.has(p)]));
  const tryLoad = (on: ReadonlySet<string>): BpfObject | Error => {
    let obj: BpfObject;
    try {
      obj = open(only(on)); // libbpf may refuse a program's attach target already here
    } catch (err) {
      return err as Error;
    }
    try {
      return obj.load();
    } catch (err) {
      obj.close();
      return err as Error;
    }
  };
  const first = tryLoad(new Set(optional));
  if (!(first instanceof Error)) return { obj: first, disabled: new Map() };
  const core = tryLoad(new Set());
  if (core instanceof Error) throw first;
  core.close();
  const disabled = new Map<string, string>();
  const ok = new Set<string>();
  for (const p of optional) {
    const r = tryLoad(new Set([p]));
    if (r instanceof Error) disabled.set(p, r.message);
    else {
      r.close();
      ok.add(p);
    }
  }
  const last = tryLoad(ok);
  if (last instanceof Error) throw last;
  return { obj: last, disabled };
}

/**
 * Test-only: QUIETFLAME_TEST_ATTACH_TARGETS="prog=target,…" gives programs of these names another attach target
 * (a tracepoint that does not exist makes the kernel refuse that program for real). Only names in `programs`, and
 * not those `autoload` leaves out.
 */
export function testAttachTargets(programs: readonly string[], autoload: Record<string, boolean> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (process.env['QUIETFLAME_TEST_ATTACH_TARGETS'] ?? '').split(',')) {
    const [prog, target] = pair.split('=');
    if (prog && target && programs.includes(prog) && autoload[prog] !== false) out[prog] = target;
  }
  return out;
}

/** The oldest kernel the CPU profiler loads on: bpf_loop (5.17) walks frame pointers and reads labels. */
export const MIN_KERNEL = [5, 17] as const;

/** Is this kernel release (uname -r) older than MIN_KERNEL? undefined when the release does not parse. */
export function kernelTooOld(release = os.release()): boolean | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return undefined;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major < MIN_KERNEL[0] || (major === MIN_KERNEL[0] && minor < MIN_KERNEL[1]);
}
