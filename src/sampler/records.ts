// What profile.bpf.o sends and shares with the agent: mirrors struct sample_record, struct offcpu_record, struct
// exec_record, FILTER_*, TARGET_*, OFFCPU_*, SAMPLE_F_* and COUNTER_* of bpf/profile.h, and decodes the records.

import { array, cstring, struct, u16, u32, u64 } from '../bpf/codec';
import type { OffCpuState, RawSample, SampleKind } from './types';

export const MAX_USER_STACK = 127;
export const MAX_KERNEL_STACK = 127;

export const RecordKind = { SAMPLE: 1, EXEC: 2, OFFCPU: 3 } as const;

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
} as const;

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
} as const;
export const COUNTER_MAX = 13;
export type CounterName = keyof typeof Counter;

/** struct sample_record (2088 bytes) */
export const SampleRecord = struct({
  kind: u32,
  tgid: u32,
  tid: u32,
  cpu: u32,
  time_ns: u64,
  goid: u64,
  flags: u32,
  user_len: u16,
  kernel_len: u16,
  comm: cstring(16),
  user_stack: array(u64, MAX_USER_STACK),
  kernel_stack: array(u64, MAX_KERNEL_STACK),
});
/** struct offcpu_record (2112 bytes) */
export const OffCpuRecord = struct({ sample: SampleRecord, start_ns: u64, weight_ns: u64, state: u32, pad: u32 });
/** struct exec_record */
export const ExecRecord = struct({ kind: u32, tgid: u32, time_ns: u64 });

const O = SampleRecord.offsets;
const comm16 = cstring(16);

/** A sample as the BPF program sent it: the RawSample plus how it was unwound (SampleFlag bits). */
export interface SampleWithFlags extends RawSample {
  flags: number;
}

/** Decodes one struct sample_record. User addresses are < 2^47 (exact numbers); kernel ones come out negative (int64). */
export function decodeSample(b: Buffer): SampleWithFlags {
  const flags = b.readUInt32LE(O.flags);
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
