// Writes what profile.bpf.c needs about Go processes into its maps, and takes it out again:
//   unwind_pages   one binary's unwind table (unwind-table.ts), written once however many processes run it,
//                  removed when the last of them is gone (refcounted by binary);
//   proc_configs   per process: which table, load bias, Go text range, where g, goid and pprof labels are.
// Both maps are bounded; what does not fit is refused (and counted), never half-written: a process whose table
// did not fit still gets its config (goroutine IDs, frame-pointer unwinding).
//
//   const info = goBinaryInfo(GoBinary.open(exe), exeKey);
//   injector.addProcess(pid, info, bias);   …   injector.removeProcess(pid);
//
// Mirrors struct proc_config and PROC_F_* of bpf/profile.h.

import { array, i32, struct, u16, u32, u64, u8, type CodecValue } from '../bpf/codec';
import type { BpfMap } from '../bpf/object';
import type { GoBinary } from '../gosym/binary';
import type { ElfFile } from '../gosym/elf';
import { PF_X, PT_LOAD } from '../gosym/elf';
import { LABEL_MAP, LABEL_SLICE, labelsEra, STRING_HEADER } from '../gosym/pprof-labels';
import { goroutineLayout, type GoroutineLayout } from '../gosym/goroutine-layout';
import type { Mapping } from '../proc/maps';
import { buildUnwindTable, findTlsGOffset, unwindKeys, type StackSwitch, type UnwindTable, type UnwindTableStats } from './unwind-table';

export const PROC_TOP_FRAMES = 4;
export const PROC_INJECTED_CALLS = 4;

/** proc_config.flags */
export const ProcFlag = {
  /** amd64, Go ≥ 1.17: in Go code R14 holds the current g. */
  R14_G: 0x01,
  /** g is at fs_base + tls_g_offset. */
  TLS_G: 0x02,
  /** g_goid, g_m, m_curg are known. */
  GOID: 0x04,
  /** proc_config.sw is known: samples on g0 join their goroutine's stack. */
  SWITCH: 0x08,
} as const;

/** stack_switch.start/end indexes (SWITCH_*) */
export const SWITCH_FUNCS: readonly StackSwitch[] = ['systemstack', 'morestack', 'asmcgocall', 'mcall'];

/** struct stack_switch (104 bytes) */
export const StackSwitchConfig = struct({
  m_g0: u32,
  g_status: u32,
  g_stack_lo: u32,
  g_stack_hi: u32,
  g_sched_sp: u32,
  g_sched_pc: u32,
  g_sched_bp: u32,
  g_syscall_sp: u32,
  g_syscall_pc: u32,
  pad: u32,
  start: array(u64, SWITCH_FUNCS.length),
  end: array(u64, SWITCH_FUNCS.length),
});
export type StackSwitchValue = CodecValue<typeof StackSwitchConfig>;

/** labels_layout.kind */
export const LabelsKind = { NONE: 0, MAP: 1, SLICE: 2 } as const;

/** struct labels_layout (32 bytes) */
export const LabelsLayout = struct({
  g_labels: u32,
  kind: u8,
  entries: u8,
  min_tophash: u8,
  same_size_grow: u8,
  hmap_count: u8,
  hmap_b: u8,
  hmap_flags: u8,
  hmap_buckets: u8,
  hmap_oldbuckets: u8,
  pad: array(u8, 3),
  bucket_size: u16,
  bucket_overflow: u16,
  slice_array: u16,
  slice_len: u16,
  key_at: u16,
  value_at: u16,
  stride: u16,
  pad2: u16,
});
export type LabelsLayoutValue = CodecValue<typeof LabelsLayout>;

/** struct proc_config (320 bytes) */
export const ProcConfig = struct({
  binary_id: u32,
  flags: u32,
  bias: u64,
  minpc: u64,
  maxpc: u64,
  tls_g_offset: i32,
  g_goid: u32,
  g_m: u32,
  m_curg: u32,
  top_start: array(u64, PROC_TOP_FRAMES),
  top_end: array(u64, PROC_TOP_FRAMES),
  injected_start: array(u64, PROC_INJECTED_CALLS),
  injected_end: array(u64, PROC_INJECTED_CALLS),
  labels: LabelsLayout,
  sw: StackSwitchConfig,
  start_ticks: u64,
});
export type ProcConfigValue = CodecValue<typeof ProcConfig>;

/** What the BPF side needs from one Go binary, computed once per file. */
export interface GoBinaryInfo {
  /** File identity (Executable.key): processes running the same bytes share one table. */
  key: string;
  goVersion: string;
  buildId: string | undefined;
  arch: 'amd64' | 'arm64';
  /** Link-time [minpc, maxpc) of the Go text. */
  minpc: number;
  maxpc: number;
  /** The table, until it is written or refused (then only its chunk counts are kept, for removal). */
  table: UnwindTable | undefined;
  tableStats: UnwindTableStats;
  chunkCounts: Uint8Array;
  topFrames: ReadonlyArray<readonly [number, number]>;
  /** Link-time [start, end) of the injected-call functions the binary has (gosym/runtime-frames.ts), at most PROC_INJECTED_CALLS. */
  injectedCalls: ReadonlyArray<readonly [number, number]>;
  flags: number;
  tlsGOffset: number;
  offsets: { gGoid: number; gM: number; mCurg: number; source: string };
  /** Where the goroutines' pprof labels are (kind NONE: not read). */
  labels: LabelsLayoutValue;
  /** Where a goroutine served on g0 left its stack (with ProcFlag.SWITCH). */
  sw: StackSwitchValue;
  /** Loadable segments (link-time), to turn a process's mappings into a load bias. */
  segments: ReadonlyArray<{ vaddr: number; offset: number; filesz: number; memsz: number; flags: number }>;
  /** Something in the file was corrupt or over a cap and was worked around (for the log), e.g. unreadable DWARF. */
  problem?: string;
}

/** Reads what the BPF side needs from a Go binary (its table, runtime.g offsets, g's TLS slot). */
export function goBinaryInfo(bin: GoBinary, key: string): GoBinaryInfo {
  const table = buildUnwindTable(bin);
  const off = goroutineLayout(bin.elf, bin.version.major > 0 ? bin.version : undefined, bin.arch);
  const tls = findTlsGOffset(bin);
  let flags = ProcFlag.GOID;
  if (off.gSyscallSp >= 0 && off.gSyscallPc >= 0 && off.mG0 >= 0) flags |= ProcFlag.SWITCH;
  if (bin.arch === 'amd64' && (bin.version.major > 1 || bin.version.minor >= 17)) flags |= ProcFlag.R14_G;
  if (tls !== undefined) flags |= ProcFlag.TLS_G;
  const problem = off.detail?.startsWith('unreadable DWARF') ? off.detail.slice(0, off.detail.indexOf(';')) : undefined;
  return {
    ...(problem === undefined ? {} : { problem }),
    key,
    goVersion: bin.version.text,
    buildId: bin.buildId,
    arch: bin.arch,
    minpc: table.minpc,
    maxpc: table.maxpc,
    table,
    tableStats: table.stats,
    chunkCounts: table.chunkCounts,
    topFrames: table.topFrames.slice(0, PROC_TOP_FRAMES),
    injectedCalls: table.injectedCalls.slice(0, PROC_INJECTED_CALLS),
    flags,
    tlsGOffset: tls ?? 0,
    offsets: { gGoid: off.gGoid, gM: off.gM, mCurg: off.mCurg, source: off.detail ? `${off.source} (${off.detail})` : off.source },
    labels: labelsLayout(off.gLabels, bin.version.major === 1 ? bin.version.minor : undefined),
    sw: stackSwitch(off, table.switches),
    segments: loadSegments(bin.elf),
  };
}

/**
 * proc_config.labels for a binary: g.labels' offset and the layout of its release's label sets
 * (gosym/pprof-labels.ts). Not read when the offset or the release is unknown.
 */
export function labelsLayout(gLabels: number, goMinor: number | undefined): LabelsLayoutValue {
  const era = gLabels >= 0 && goMinor !== undefined ? labelsEra(goMinor) : undefined;
  const M = LABEL_MAP;
  const S = LABEL_SLICE;
  return {
    g_labels: Math.max(gLabels, 0),
    kind: era === 'map' ? LabelsKind.MAP : era === 'slice' ? LabelsKind.SLICE : LabelsKind.NONE,
    entries: M.entries,
    min_tophash: M.minTopHash,
    same_size_grow: M.sameSizeGrow,
    hmap_count: M.count,
    hmap_b: M.B,
    hmap_flags: M.flags,
    hmap_buckets: M.buckets,
    hmap_oldbuckets: M.oldbuckets,
    pad: [0, 0, 0],
    bucket_size: M.bucketSize,
    bucket_overflow: M.overflow,
    slice_array: S.array,
    slice_len: S.len,
    key_at: era === 'map' ? M.keys : S.key,
    value_at: era === 'map' ? M.values : S.value,
    stride: era === 'map' ? STRING_HEADER : S.entrySize,
    pad2: 0,
  };
}

/** proc_config.sw: runtime.g's saved-state offsets and the link-time ranges of the stack-switching functions. */
export function stackSwitch(off: GoroutineLayout, switches: UnwindTable['switches']): StackSwitchValue {
  const at = (o: number): number => Math.max(o, 0);
  return {
    m_g0: at(off.mG0),
    g_status: off.gAtomicStatus,
    g_stack_lo: off.gStackLo,
    g_stack_hi: off.gStackHi,
    g_sched_sp: off.gSchedSp,
    g_sched_pc: off.gSchedPc,
    g_sched_bp: off.gSchedBp,
    g_syscall_sp: at(off.gSyscallSp),
    g_syscall_pc: at(off.gSyscallPc),
    pad: 0,
    start: SWITCH_FUNCS.map((k) => BigInt(switches[k]?.[0] ?? 0)),
    end: SWITCH_FUNCS.map((k) => BigInt(switches[k]?.[1] ?? 0)),
  };
}

/** The PT_LOAD segments of an ELF file, as loadBias() needs them. */
export function loadSegments(elf: ElfFile): GoBinaryInfo['segments'] {
  return elf.segments
    .filter((s) => s.type === PT_LOAD)
    .map((s) => ({ vaddr: s.vaddr, offset: s.offset, filesz: s.filesz, memsz: s.memsz, flags: s.flags }));
}

/**
 * runtime − link-time address of the binary's Go text in a process, from the process's mappings of the file
 * (mappings of its inode): the executable mapping that holds the text's first byte. undefined when the text is
 * not mapped (yet).
 */
export function loadBias(info: Pick<GoBinaryInfo, 'segments' | 'minpc'>, fileMappings: readonly Mapping[]): number | undefined {
  const seg = info.segments.find((s) => (s.flags & PF_X) !== 0 && s.vaddr <= info.minpc && info.minpc < s.vaddr + s.filesz);
  if (seg === undefined) return undefined;
  const textOffset = seg.offset + (info.minpc - seg.vaddr); // file offset of minpc
  for (const m of fileMappings) {
    if (m.perms[2] !== 'x') continue;
    if (m.offset <= textOffset && textOffset < m.offset + (m.end - m.start)) return m.start - m.offset - (seg.vaddr - seg.offset);
  }
  return undefined;
}

export interface InjectResult {
  /** binary_id in unwind_pages, 0 when the process runs without a table. */
  binaryId: number;
  /** Why there is no table (tables disabled, map full), when there is none. */
  noTable?: string;
}

export interface InjectorStats {
  /** Binaries whose info (and table, if written) is held: those of live processes and the idle ones. */
  binaries: number;
  /** Binaries with no process left, kept for the next process of the same file. */
  idleBinaries: number;
  processes: number;
  unwindEntries: number;
  unwindCapacity: number;
  configEntries: number;
  configCapacity: number;
  /** Binaries whose table did not fit in unwind_pages (their processes unwind by frame pointer). */
  tablesRefused: number;
  /** Processes that got no config because proc_configs was full. */
  processesRefused: number;
}

interface BinaryEntry {
  id: number;
  info: GoBinaryInfo;
  users: Set<number>;
  /** Entries written to unwind_pages (0 = no table). */
  entries: number;
}

export interface InjectorOptions {
  /** Write unwind tables (default true). false: configs only, so the BPF side unwinds by frame pointer alone. */
  tables?: boolean;
  /**
   * Binaries kept (info and table in unwind_pages) after their last process exited, so that the next process of
   * the same file costs one config write, not a table build and thousands of map writes (default 8; the least
   * recently used go first, and any of them when a new table needs the room).
   */
  idleBinaries?: number;
}

export class UnwindInjector {
  private readonly binaries = new Map<string, BinaryEntry>();
  private readonly processes = new Map<number, BinaryEntry>();
  private nextId = 1;
  private usedEntries = 0;
  private refusedTables = 0;
  private refusedProcesses = 0;
  private readonly tables: boolean;
  private readonly keepIdle: number;
  /** Binaries without processes, least recently used first. */
  private readonly idle = new Map<string, BinaryEntry>();

  constructor(
    private readonly pages: BpfMap<Buffer, Buffer>,
    private readonly configs: BpfMap<number, Buffer>,
    options: InjectorOptions = {},
  ) {
    this.tables = options.tables ?? true;
    this.keepIdle = options.idleBinaries ?? 8;
  }

  /** The info of a binary held (with processes or idle), to configure another process of the same file. */
  binaryInfo(key: string): GoBinaryInfo | undefined {
    return this.binaries.get(key)?.info;
  }

  has(pid: number): boolean {
    return this.processes.has(pid);
  }

  /** binary_id of a process's table (0 = none), or undefined when the process is not configured. */
  binaryIdOf(pid: number): number | undefined {
    const b = this.processes.get(pid);
    return b === undefined ? undefined : b.entries > 0 ? b.id : 0;
  }

  /**
   * Configures a process (replacing an earlier config of the same PID). The table is written first, so the BPF
   * side never sees a config that names a missing table. Returns undefined when proc_configs is full.
   * startTicks: the process's start time (/proc/PID/stat field 22); the BPF side uses the config only for the
   * process that started then.
   */
  addProcess(pid: number, info: GoBinaryInfo, bias: number, startTicks = 0n): InjectResult | undefined {
    if (this.processes.has(pid)) this.removeProcess(pid);
    if (this.processes.size >= this.configs.maxEntries) {
      this.refusedProcesses++;
      return undefined;
    }
    let b = this.binaries.get(info.key);
    let noTable: string | undefined;
    if (b !== undefined) this.idle.delete(info.key);
    if (b === undefined) {
      b = { id: this.nextId++, info, users: new Set(), entries: 0 };
      noTable = this.writeTable(b);
      this.binaries.set(info.key, b);
    } else if (b.entries === 0) {
      noTable = this.tables ? 'unwind table did not fit' : 'unwind tables disabled';
    }
    b.users.add(pid);
    this.processes.set(pid, b);
    try {
      this.configs.update(pid, this.encodeConfig(b, bias, startTicks));
    } catch (err) {
      this.detach(pid, b);
      throw err;
    }
    return noTable === undefined ? { binaryId: b.id } : { binaryId: 0, noTable };
  }

  /**
   * Removes a process's config (which the BPF side may have removed already, at the process's exit), and its
   * binary's table when it was the last user. false when unknown.
   */
  removeProcess(pid: number): boolean {
    const b = this.processes.get(pid);
    if (b === undefined) return false;
    this.configs.delete(pid);
    this.detach(pid, b);
    return true;
  }

  /** Removes everything this injector wrote. */
  clear(): void {
    for (const pid of [...this.processes.keys()]) this.removeProcess(pid);
    while (this.evictIdle());
  }

  stats(): InjectorStats {
    return {
      binaries: this.binaries.size,
      idleBinaries: this.idle.size,
      processes: this.processes.size,
      unwindEntries: this.usedEntries,
      unwindCapacity: this.pages.maxEntries,
      configEntries: this.processes.size,
      configCapacity: this.configs.maxEntries,
      tablesRefused: this.refusedTables,
      processesRefused: this.refusedProcesses,
    };
  }

  private detach(pid: number, b: BinaryEntry): void {
    this.processes.delete(pid);
    b.users.delete(pid);
    if (b.users.size > 0) return;
    // A table that did not fit is not kept: the next process gets another chance at it.
    if (this.tables && b.entries === 0) return this.drop(b);
    this.idle.set(b.info.key, b);
    while (this.idle.size > this.keepIdle) this.evictIdle();
  }

  /** Forgets the least recently used idle binary; false when none. */
  private evictIdle(): boolean {
    const first = this.idle.values().next();
    if (first.done === true) return false;
    this.drop(first.value);
    return true;
  }

  /** Forgets a binary without processes and takes its table out of unwind_pages. */
  private drop(b: BinaryEntry): void {
    this.idle.delete(b.info.key);
    this.binaries.delete(b.info.key);
    if (b.entries > 0) {
      for (const key of unwindKeys(b.id, b.info.chunkCounts, true)) this.pages.delete(key);
      this.usedEntries -= b.entries;
      b.entries = 0;
    }
  }

  /**
   * Writes a binary's table if it fits; returns why not otherwise. Either way the table is let go (a binary's
   * table is written once or never; removal needs only the chunk counts).
   */
  private writeTable(b: BinaryEntry): string | undefined {
    const table = b.info.table;
    b.info.table = undefined;
    if (!this.tables) return 'unwind tables disabled';
    if (table === undefined) return 'unwind table unavailable';
    const need = table.stats.entries;
    while (this.usedEntries + need > this.pages.maxEntries && this.evictIdle());
    if (this.usedEntries + need > this.pages.maxEntries) {
      this.refusedTables++;
      return `unwind table did not fit (${need} entries needed, ${this.pages.maxEntries - this.usedEntries} of ${this.pages.maxEntries} free)`;
    }
    let written = 0;
    try {
      for (const [key, value] of table.entries(b.id, true)) {
        this.pages.update(key, value);
        written++;
      }
    } catch (err) {
      // e.g. E2BIG/ENOMEM: take back what was written, the process unwinds by frame pointer.
      let n = 0;
      for (const key of unwindKeys(b.id, table.chunkCounts, true)) {
        if (n++ >= written) break;
        this.pages.delete(key);
      }
      this.refusedTables++;
      return `unwind table could not be written: ${(err as Error).message}`;
    }
    b.entries = written;
    this.usedEntries += written;
    return undefined;
  }

  private encodeConfig(b: BinaryEntry, bias: number, startTicks: bigint): Buffer {
    const info = b.info;
    return ProcConfig.encode({
      binary_id: b.entries > 0 ? b.id : 0,
      flags: info.flags,
      bias: BigInt.asUintN(64, BigInt(bias)),
      minpc: BigInt(info.minpc),
      maxpc: BigInt(info.maxpc),
      tls_g_offset: info.tlsGOffset,
      g_goid: info.offsets.gGoid,
      g_m: info.offsets.gM,
      m_curg: info.offsets.mCurg,
      top_start: rangeEnds(info.topFrames, PROC_TOP_FRAMES, 0),
      top_end: rangeEnds(info.topFrames, PROC_TOP_FRAMES, 1),
      injected_start: rangeEnds(info.injectedCalls, PROC_INJECTED_CALLS, 0),
      injected_end: rangeEnds(info.injectedCalls, PROC_INJECTED_CALLS, 1),
      labels: info.labels,
      sw: info.sw,
      start_ticks: startTicks,
    });
  }
}

/** One end (0 = start, 1 = end) of each of at most n [start, end) ranges, as a config array of n (0 = unused). */
function rangeEnds(ranges: ReadonlyArray<readonly [number, number]>, n: number, end: 0 | 1): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i < n; i++) out.push(BigInt(ranges[i]?.[end] ?? 0));
  return out;
}
