// A profile as the rules read it: one process's samples, each a stack of named frames (innermost first, inlined
// calls expanded, kernel frames marked) with its weight (CPU or off-CPU nanoseconds). A node-wide profile is
// split by its samples' pid label, so every rule judges one process at a time.

import { type Frame, labelPairs, locationFrames, sampleFrames, weightIndex } from '../profile/frames';
import type { Profile } from '../profile/pprof';

export type ProfileKind = 'cpu' | 'offcpu';

export interface StackSample {
  /** Innermost first. */
  frames: Frame[];
  /** Nanoseconds (CPU or off-CPU) the sample stands for. */
  weight: number;
}

export interface FunctionShare {
  function: string;
  share: number;
}

export class ProfileView {
  readonly totalWeight: number;

  constructor(
    readonly kind: ProfileKind,
    readonly samples: readonly StackSample[],
    /** Wall-clock length of the profile (ns); 0 when the profile does not say. */
    readonly durationNs: number,
  ) {
    this.totalWeight = samples.reduce((n, s) => n + s.weight, 0);
  }

  /** Share (0–1) of the weight in samples that `match`. */
  share(match: (s: StackSample) => boolean): number {
    if (this.totalWeight === 0) return 0;
    let w = 0;
    for (const s of this.samples) if (match(s)) w += s.weight;
    return w / this.totalWeight;
  }

  /**
   * Share of the weight in samples holding a frame that `isWanted` names, and each such function's own inclusive
   * share (a sample counts once per function however often the function recurs), largest first.
   */
  inclusive(isWanted: (name: string) => boolean): { share: number; functions: FunctionShare[] } {
    if (this.totalWeight === 0) return { share: 0, functions: [] };
    let total = 0;
    const per = new Map<string, number>();
    for (const s of this.samples) {
      const seen = new Set<string>();
      for (const f of s.frames) if (isWanted(f.name)) seen.add(f.name);
      if (seen.size === 0) continue;
      total += s.weight;
      for (const name of seen) per.set(name, (per.get(name) ?? 0) + s.weight);
    }
    const functions = [...per].map(([fn, w]) => ({ function: fn, share: w / this.totalWeight })).sort((a, b) => b.share - a.share);
    return { share: total / this.totalWeight, functions };
  }

  /** CPU profiles: the CPUs the process kept busy on average (CPU time / wall time); undefined without a duration. */
  get cores(): number | undefined {
    return this.kind === 'cpu' && this.durationNs > 0 ? this.totalWeight / this.durationNs : undefined;
  }
}

/** CPU or off-CPU, by the profile's sample types (Go's own CPU profiles: samples/count, cpu/nanoseconds). */
export function profileKind(p: Profile): ProfileKind | undefined {
  const types = p.sampleType.map((t) => p.stringTable[t.type]);
  if (types.includes('off_cpu')) return 'offcpu';
  if (types.includes('cpu')) return 'cpu';
  return undefined;
}

/** One view per process (by the samples' pid label; samples without one go to the key undefined). */
export function viewsByProcess(p: Profile, kind: ProfileKind): Map<number | undefined, ProfileView> {
  const locations = locationFrames(p);
  const wi = weightIndex(p);
  const byPid = new Map<number | undefined, StackSample[]>();
  for (const s of p.sample) {
    const weight = s.value[wi] ?? 0;
    if (weight <= 0) continue;
    const pidLabel = labelPairs(p, s.label).find(([k]) => k === 'pid');
    const pid = pidLabel && /^\d+$/.test(pidLabel[1]) ? Number(pidLabel[1]) : undefined;
    let list = byPid.get(pid);
    if (!list) byPid.set(pid, (list = []));
    list.push({ frames: sampleFrames(locations, s.locationId), weight });
  }
  const duration = Number(p.durationNanos);
  return new Map([...byPid].map(([pid, samples]) => [pid, new ProfileView(kind, samples, duration)]));
}

/** Functions whose names are in `names` (exact) or start with one of `prefixes`. */
export function nameMatcher(names: readonly string[], prefixes: readonly string[] = []): (name: string) => boolean {
  const set = new Set(names);
  return (name) => set.has(name) || prefixes.some((p) => name.startsWith(p));
}
