// What profile.bpf.o sends and shares with the agent: mirrors struct sample_record, struct offcpu_record, struct
// exec_record, the pprof labels after them, FILTER_*, TARGET_*, OFFCPU_*, SAMPLE_F_*, LABEL* limits and COUNTER_*
// of bpf/profile.h, and decodes the records.

import { array, cstring, struct, u16, u32, u64 } from '../bpf/codec';
import type { OffCpuState, PprofLabels, RawSample, SampleKind } from './types';

export const MAX_USER_STACK = 127;
export const MAX_KERNEL_STACK = 127;

export const RecordKind = { SAMPLE: 1, EXEC: 2, OFFCPU: 3, EXIT: 4 } as const;

/** sample_record.flags */
export const SampleFlag = {
  GOID: 0x001,
  TABLE: 0x002,
  LEAF_FIXUP: 0x004,
  G_R14: 0x008,
  G_TLS: 0x010,
  CURG: 0x020,
  TRUNCATED: 0x040,
  KTHREAD: 0x080,
  TOP_FRAME: 0x100,
  CONFIG: 0x200,
  LABELS_CUT: 0x400,
  SWITCHED: 0x800,
  EXITING: 0x1000,
  EXECVE: 0x2000,
  SP_CALLER: 0x4000,
} as const;

/** The most the BPF side can read of a goroutine's labels (LABELS_MAX, LABEL_KEY_MAX, LABEL_VALUE_MAX). */
export const LabelCaps = { labels: 64, keyBytes: 128, valueBytes: 512 } as const;

/** How much of a goroutine's labels the BPF side reads (its load-time globals labels_max, label_*_bytes). */
export interface LabelLimits {
  /** Most labels per sample; 0 = labels off. */
  maxLabels: number;
  /** Keys and values longer than these are cut. */
  keyBytes: number;
  valueBytes: number;
}

export const DEFAULT_LABEL_LIMITS: LabelLimits = { maxLabels: 16, keyBytes: 64, valueBytes: 128 };
const LABEL_HEADER = 4;

export const FilterMode = { NONE: 0, ALL: 1, PIDS: 2 } as const;
/** target_pids value bits */
export const TargetBit = { cpu: 0x01, offcpu: 0x02 } as const satisfies Record<SampleKind, number>;
/** offcpu_record.state */
export const OffCpuStateCode: Record<number, OffCpuState> = { 1: 'blocked', 2: 'runnable' };

/** counters[] indexes */
export const Counter = {
  samples: 0,
  sent: 1,
  ringbufDrops: 2,
  tableHits: 3,
  tableMisses: 4,
  leafFixups: 5,
  goids: 6,
  execDrops: 7,
  offcpuEnds: 8,
  offcpuSent: 9,
  offcpuDrops: 10,
  offcpuNoSlot: 11,
  offcpuReads: 12,
  labeled: 13,
  labelsCut: 14,
} as const;
export const COUNTER_MAX = 15;
export type CounterName = keyof typeof Counter;

/** struct sample_record (2088 bytes; labels_len bytes of labels follow) */
export const SampleRecord = struct({
  kind: u32,
  tgid: u32,
  tid: u32,
  cpu: u32,
  time_ns: u64,
  goid: u64,
  flags: u16,
  labels_len: u16,
  user_len: u16,
  kernel_len: u16,
  comm: cstring(16),
  user_stack: array(u64, MAX_USER_STACK),
  kernel_stack: array(u64, MAX_KERNEL_STACK),
});
/** struct offcpu_record (2112 bytes; sample.labels_len bytes of labels follow) */
export const OffCpuRecord = struct({ sample: SampleRecord, start_ns: u64, weight_ns: u64, state: u32, pad: u32 });
/** struct exec_record */
export const ExecRecord = struct({ kind: u32, tgid: u32, time_ns: u64 });
/** struct exit_record: start_ticks as /proc/PID/stat's start time */
export const ExitRecord = struct({ kind: u32, tgid: u32, start_ticks: u64 });

const O = SampleRecord.offsets;
const comm16 = cstring(16);

/** A sample as the BPF program sent it: the RawSample plus how it was unwound (SampleFlag bits). */
export interface SampleWithFlags extends RawSample {
  flags: number;
}

/** The size a record of this kind must have (its fixed struct plus its labels), or undefined for other kinds. */
export function recordSize(b: Buffer): number | undefined {
  if (b.length < 4) return undefined;
  const kind = b.readUInt32LE(0);
  if (kind === RecordKind.EXEC) return ExecRecord.size;
  if (kind === RecordKind.EXIT) return ExitRecord.size;
  const fixed = kind === RecordKind.SAMPLE ? SampleRecord.size : kind === RecordKind.OFFCPU ? OffCpuRecord.size : undefined;
  return fixed === undefined || b.length < fixed ? undefined : fixed + b.readUInt16LE(O.labels_len);
}

/**
 * Label sets by their bytes: the same few sets come in sample after sample, so each is decoded once and every
 * record with it shares one object (which also makes them cheap to compare). Bounded.
 */
class LabelInterner {
  private readonly sets = new Map<string, PprofLabels>();
  constructor(private readonly max: number) {}

  get(blob: Buffer): PprofLabels | undefined {
    const raw = blob.toString('latin1');
    let set = this.sets.get(raw);
    if (set === undefined) {
      set = parseLabels(blob);
      if (this.sets.size >= this.max) this.sets.clear();
      this.sets.set(raw, set);
    }
    return set.pairs.length > 0 ? set : undefined;
  }
}

const interned = new LabelInterner(4096);

/** Parses the labels after a record: pairs sorted by key (Go ≤ 1.23 keeps them in a map, in no order). */
export function parseLabels(blob: Buffer): PprofLabels {
  const byKey = new Map<string, string>();
  for (let o = 0; o + LABEL_HEADER <= blob.length; ) {
    const kl = blob.readUInt16LE(o);
    const vl = blob.readUInt16LE(o + 2);
    const end = o + LABEL_HEADER + kl + vl;
    if (end > blob.length) break;
    byKey.set(blob.toString('utf8', o + LABEL_HEADER, o + LABEL_HEADER + kl), blob.toString('utf8', o + LABEL_HEADER + kl, end));
    o = end;
  }
  const pairs = [...byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { pairs, id: JSON.stringify(pairs) };
}

/** Decodes one struct sample_record. User addresses are < 2^47 (exact numbers); kernel ones come out negative (int64). */
export function decodeSample(b: Buffer): SampleWithFlags {
  const flags = b.readUInt16LE(O.flags);
  const labelsLen = b.readUInt16LE(O.labels_len);
  const fixed = b.readUInt32LE(O.kind) === RecordKind.OFFCPU ? OffCpuRecord.size : SampleRecord.size;
  const userLen = Math.min(b.readUInt16LE(O.user_len), MAX_USER_STACK);
  const kernelLen = Math.min(b.readUInt16LE(O.kernel_len), MAX_KERNEL_STACK);
  const userStack = new Array<number>(userLen);
  for (let i = 0, o = O.user_stack; i < userLen; i++, o += 8) userStack[i] = b.readUInt32LE(o + 4) * 0x1_0000_0000 + b.readUInt32LE(o);
  const kernelStack = new Array<number>(kernelLen);
  for (let i = 0, o = O.kernel_stack; i < kernelLen; i++, o += 8) kernelStack[i] = b.readInt32LE(o + 4) * 0x1_0000_0000 + b.readUInt32LE(o);
  return {
    pid: b.readUInt32LE(O.tgid),
    tid: b.readUInt32LE(O.tid),
    cpu: b.readUInt32LE(O.cpu),
    comm: comm16.read(b, O.comm),
    goid: flags & SampleFlag.GOID ? Number(b.readBigUInt64LE(O.goid)) : undefined,
    timeNs: b.readBigUInt64LE(O.time_ns),
    userStack,
    kernelStack,
    labels: labelsLen > 0 && b.length >= fixed + labelsLen ? interned.get(b.subarray(fixed, fixed + labelsLen)) : undefined,
    spCaller: (flags & SampleFlag.SP_CALLER) !== 0 && userLen >= 2,
    flags,
  };
}

/** Decodes one struct offcpu_record: the sample (taken when the thread ran again) and its off-CPU interval. */
export function decodeOffCpu(b: Buffer): SampleWithFlags {
  const s = decodeSample(b);
  const code = b.readUInt32LE(OffCpuRecord.offsets.state);
  s.offCpu = {
    weightNs: Number(b.readBigUInt64LE(OffCpuRecord.offsets.weight_ns)),
    startNs: b.readBigUInt64LE(OffCpuRecord.offsets.start_ns),
    state: OffCpuStateCode[code] ?? 'blocked',
  };
  return s;
}
