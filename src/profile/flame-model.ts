// The flame graph's wire format, shared by the agent (src/profile/flame.ts builds it) and the page (web/app.ts
// draws it). Types only: the page's build reads this file without Node's types.

/**
 * user: a physical user-space frame; inlined: a call inlined into the frame after it; kernel: a frame of the
 * [kernel.kallsyms] mapping; native: a frame in a shared library or a special mapping ([vdso]).
 */
export type FrameKind = 'user' | 'inlined' | 'kernel' | 'native';

export interface Frame {
  name: string;
  kind: FrameKind;
}

export interface FlameModel {
  /** What `value` measures, e.g. { type: 'cpu', unit: 'nanoseconds' }. */
  valueType: { type: string; unit: string };
  /** Wall-clock start (ms since the epoch) and length (ms) of the capture, 0 when unknown. */
  startMs: number;
  durationMs: number;
  frames: Frame[];
  /** Frame indices, root first. */
  stacks: number[][];
  /** Distinct [key, value] label pairs (numeric labels as decimal text). */
  labels: Array<[string, string]>;
  /** [stack index, sample count, value, ...label-pair indices] per pprof sample with a non-zero value. */
  samples: number[][];
}
