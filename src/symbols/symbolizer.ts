// Sampled addresses → frames, per process: user PCs through the process's executable mappings to the Go table
// (inlined calls expanded, innermost first) or to ELF .symtab/.dynsym for native code; kernel PCs through
// /proc/kallsyms.
//
// Per process: its executable mappings from /proc/PID/maps, each resolved to a binary (through
// /proc/PID/map_files/…, /proc/PID/root/<path> or /proc/PID/exe, so binaries in other mount namespaces and deleted
// ones work) and to a load bias. Per binary (keyed by device, inode, size and mtime of the file actually opened):
// the open tables, shared by every process mapping that file, closed once no process has used them for a while.
//
// Nothing here throws because a process went away: what was read while it lived is kept (and its binaries stay
// open through their file descriptors), and what was never read gives address-only locations.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { BufferSource, FormatError } from '../gosym/bytes';
import { ElfFile, PF_X, PT_LOAD } from '../gosym/elf';
import { GoBinary } from '../gosym/binary';
import { mayBeGo, readGoBuildId } from '../gosym/buildinfo';
import { KernelSymbols, kernelAddress } from './kallsyms';
import { NativeSymbols } from './native-elf';
import { ReaderThread } from './reader-thread';
import { isExecutable, isFileBacked, Mapping as ProcMapping, readMaps as readProcMaps } from '../proc/maps';
import { ProcessMemory } from '../proc/memory';
import { processIdentity } from '../proc/process';
import type { ResolvedFrame, ResolvedMapping as ProfileMapping } from '../profile/builder';
import { mappedFileKey, MappedFileSource, openInProcessRoot, openMappedFile } from '../proc/open-mapped';

/** The symbolizer answers in the shapes the profile builder takes (it is the builder's StackResolver). */
export type SymFrame = ResolvedFrame;
export type SymMapping = ProfileMapping;

/** One symbolized address. `address` is the address looked up: the sampled PC, or a return address minus 1. */
export interface SymLocation {
  mapping: SymMapping | undefined;
  address: bigint;
  /** Innermost first; [] when nothing is known about the address (or not yet: see `later`). */
  frames: SymFrame[];
  /** Set while the file's symbol table is being read on the reader thread: the frames, once settled() resolves. */
  later?: () => SymFrame[];
}

export interface SymbolizerOptions {
  /** Where proc is mounted ('/proc'). */
  procRoot?: string;
  kallsymsPath?: string;
  /** How often (ms) a process in use is checked for exec or PID reuse (its exe and start time). Default 2000. */
  revalidateMs?: number;
  /** How long (ms) the tables of a process that is gone are kept after its last use. Default 60 s. */
  goneRetentionMs?: number;
  /**
   * How long (ms) the tables of a running process nobody asks about are kept (they are read again when needed),
   * so a node-wide profile does not pin every binary of the node. Default 5 min.
   */
  idleProcessMs?: number;
  /** How long (ms) a binary no process uses stays open. Default 60 s. */
  binaryIdleMs?: number;
  /** Kernel symbols are reloaded when older than this (ms; modules and BPF programs come and go). Default 5 min. */
  kallsymsMaxAgeMs?: number;
  /**
   * Open binaries through /proc/PID/map_files first (default true). Opening those needs CAP_SYS_ADMIN; without it
   * the symbolizer uses /proc/PID/exe for the main executable and the path resolved inside the process's root.
   */
  mapFiles?: boolean;
  /** Told (one line naming the pid) when a process's file is refused or unreadable; once per file and problem. */
  onWarning?: (message: string) => void;
  /**
   * Where big native symbol tables are built (e.g. node's 80k symbols, 150–350 ms): off the event loop, the
   * addresses that wait for one answered through SymLocation.later. Without it they are built here, at once.
   */
  reader?: ReaderThread;
}

export interface SymbolizerStats {
  processes: number;
  binaries: number;
  kernelSymbols: number;
  /** Times a process's /proc/PID/maps was read. */
  mapReads: number;
}

const NO_FRAMES: SymFrame[] = [];
const ADDRESS_CACHE_LIMIT = 1 << 16;
/** Native symbol tables with more entries than this are built on the reader thread (libc's few thousand: here). */
const READ_ELSEWHERE_ENTRIES = 8192;

/**
 * The symbol tables of one file, shared by all processes that map it. A Go binary's table is read when the file is
 * opened; ELF symbols only when an address first asks for them (a process maps many libraries and most are never
 * sampled). The file, and its separate debug file, stay open meanwhile so that works after the process is gone.
 */
class BinaryTables {
  users = 0;
  idleSince: number | undefined = Date.now();
  private nativeSyms: NativeSymbols | undefined;
  /** The ELF symbols being built on the reader thread: the files stay open until it answers. */
  private nativeRead: Promise<void> | undefined;
  private closeWhenRead = false;
  private readonly debug: ElfFile | undefined;
  private functions: boolean | undefined;
  readonly buildId: string;

  /**
   * @param findDebug finds the separate debug file of a native binary by its build ID (only native binaries
   *   ask: Go binaries have their own table).
   * @param reading where big ELF symbol tables are built (undefined: here), and who is told when one is
   */
  constructor(
    readonly key: string,
    readonly elf: ElfFile,
    readonly go: GoBinary | undefined,
    findDebug: (buildId: string) => ElfFile | undefined,
    private readonly reading: { reader: ReaderThread; started(read: Promise<void>): void; done(b: BinaryTables): void } | undefined,
  ) {
    let buildId = '';
    try {
      buildId = elf.gnuBuildId() ?? '';
    } catch {
      // unreadable notes: no build ID
    }
    this.buildId = buildId;
    if (!go && buildId) this.debug = findDebug(buildId);
  }

  /** Whether the file has anything to name functions with (a Go table, or ELF function symbols). */
  get hasFunctions(): boolean {
    if (this.functions !== undefined) return this.functions;
    if (this.go !== undefined) return (this.functions = true);
    const table = this.native();
    if (table === undefined) return true; // being read: only tables with thousands of entries are
    return (this.functions = table.size > 0);
  }

  /**
   * ELF function symbols, decoded on first use (for Go binaries only when a PC misses the Go table); undefined
   * while a big table is built on the reader thread.
   */
  native(): NativeSymbols | undefined {
    if (this.nativeSyms !== undefined || this.nativeRead !== undefined) return this.nativeSyms;
    const debug = this.go ? undefined : this.debug;
    const reading = this.reading;
    if (reading && ReaderThread.canRead([this.elf, debug]) && NativeSymbols.entriesIn(this.elf, debug) > READ_ELSEWHERE_ENTRIES) {
      this.nativeRead = reading.reader.nativeSymbols(this.elf, debug).then(
        (table) => {
          this.nativeSyms = table;
        },
        () => {
          this.nativeSyms = NativeSymbols.empty(); // the thread gave up on it (time, heap): its addresses stay unnamed
        },
      ).finally(() => {
        this.nativeRead = undefined;
        if (this.closeWhenRead) this.close();
        reading.done(this);
      });
      reading.started(this.nativeRead);
      return undefined;
    }
    this.nativeSyms = NativeSymbols.bestOf(this.elf, debug);
    return this.nativeSyms;
  }

  /** Frames at a link-time address; undefined while the ELF symbols it needs are being read elsewhere. */
  frames(vaddr: number): SymFrame[] | undefined {
    if (this.go) {
      try {
        const f: SymFrame[] = this.go.frames(vaddr);
        if (f.length > 0 && this.go.isWrapper(vaddr)) f[f.length - 1] = { ...f[f.length - 1]!, wrapper: true };
        if (f.length > 0) return f;
      } catch {
        // a corrupt record for this function: try the ELF symbols
      }
    }
    const table = this.native();
    if (table === undefined) return undefined;
    const sym = table.lookup(vaddr);
    return sym ? [{ function: sym.name, file: '', line: 0 }] : NO_FRAMES;
  }

  close(): void {
    if (this.nativeRead !== undefined) {
      this.closeWhenRead = true; // the reader thread reads through these descriptors
      return;
    }
    for (const f of [this.elf, this.debug]) {
      try {
        f?.close();
      } catch {
        // already closed
      }
    }
  }
}

interface ResolvedMapping {
  m: ProcMapping;
  binary: BinaryTables | undefined;
  /** runtime address − link-time address */
  bias: number;
  /** Made when an address first falls in the mapping (it may ask for the file's symbols). */
  info: SymMapping | undefined;
  /**
   * Executable memory with no file behind it (JIT code, [vsyscall]): known, so that its addresses do not send the
   * process's maps to be read again (and its cached answers thrown away) every second; listed without a mapping.
   */
  anonymous: boolean;
}

interface ProcessState {
  pid: number;
  startTime: string | undefined;
  exeId: string | undefined;
  mappings: ResolvedMapping[];
  mapsReadAt: number;
  checkedAt: number;
  lastUsed: number;
  gone: boolean;
  cache: Map<number, SymLocation>;
  /** Changes whenever this process's answers may (new mappings read); a new state gets a new one too. */
  epoch: number;
  /** Kept however long it goes unused (keepProcess). */
  kept?: boolean;
}

function hex(n: number): string {
  return n.toString(16);
}

/** Does this ELF file carry Go's tables (checked cheaply, before any scan for them)? */
function looksLikeGo(elf: ElfFile): boolean {
  if (elf.sections.length > 0 && mayBeGo(elf)) return true;
  try {
    return readGoBuildId(elf) !== undefined; // Go's build ID in a note or at the start of the text
  } catch {
    return false;
  }
}

/**
 * runtime − link-time address for a mapping of `elf`: a byte at file offset o in a PT_LOAD segment has link-time
 * address p_vaddr + (o − p_offset), and the mapping puts file offset m.offset at m.start, so
 * link = pc − (m.start − m.offset) + (p_vaddr − p_offset). The segment is the PT_LOAD whose file range the mapping
 * covers most (executable ones first for an executable mapping). 0 for non-PIE executables; for a Go PIE (linked
 * at 0x400000) the start of its first mapping minus 0x400000.
 */
export function mappingLoadBias(elf: ElfFile, m: { start: number; end: number; offset: number; perms: string }): number {
  let best: { seg: (typeof elf.segments)[number]; score: number } | undefined;
  const lo = m.offset;
  const hi = m.offset + (m.end - m.start);
  for (const seg of elf.segments) {
    if (seg.type !== PT_LOAD) continue;
    const overlap = Math.min(hi, seg.offset + Math.max(seg.filesz, 1)) - Math.max(lo, seg.offset);
    if (overlap <= 0) continue;
    const execMatch = ((seg.flags & PF_X) !== 0) === (m.perms[2] === 'x') ? 1 : 0;
    const score = execMatch * 2 ** 52 + overlap;
    if (!best || score > best.score) best = { seg, score };
  }
  if (!best) return m.start - m.offset - elf.baseVaddr();
  return m.start - m.offset + best.seg.offset - best.seg.vaddr;
}

export class Symbolizer {
  private readonly procRoot: string;
  private readonly revalidateMs: number;
  private readonly goneRetentionMs: number;
  private readonly binaryIdleMs: number;
  private readonly idleProcessMs: number;
  private readonly kallsymsMaxAgeMs: number;
  private mapReads = 0;
  /** The vDSO last read and its key: one compare instead of a parse for each new process. */
  private lastVdso: { bytes: Buffer; key: string } | undefined;
  private readonly mapFiles: boolean;
  private readonly onWarning: ((message: string) => void) | undefined;
  private readonly warned = new Set<string>();
  private readonly processes = new Map<number, ProcessState>();
  private readonly binaries = new Map<string, BinaryTables>();
  /** Keys of files that could not be read as ELF, so they are not retried for every process. */
  private readonly unreadable = new Set<string>();
  private readonly kernel: KernelSymbols;
  private kernelMappingInfo: SymMapping | undefined;
  private readonly kernelCache = new Map<bigint, SymLocation>();
  private kernelLoadedAt = 0;
  private kernelEpochs = 0;
  private lastPrune = Date.now();
  /** Answers for stacks of a process that is gone and whose PID another process has now. */
  private unknownProcess: ProcessState | undefined;
  private epochs = 0;
  /** Native symbol tables being built on the reader thread. */
  private readonly reads = new Set<Promise<void>>();
  private readonly reading: ConstructorParameters<typeof BinaryTables>[4];

  constructor(opts: SymbolizerOptions = {}) {
    this.procRoot = opts.procRoot ?? '/proc';
    this.revalidateMs = opts.revalidateMs ?? 2000;
    this.goneRetentionMs = opts.goneRetentionMs ?? 60_000;
    this.binaryIdleMs = opts.binaryIdleMs ?? 60_000;
    this.idleProcessMs = opts.idleProcessMs ?? 5 * 60_000;
    this.kallsymsMaxAgeMs = opts.kallsymsMaxAgeMs ?? 5 * 60_000;
    this.mapFiles = opts.mapFiles ?? true;
    this.onWarning = opts.onWarning;
    this.kernel = new KernelSymbols(opts.kallsymsPath ?? `${this.procRoot}/kallsyms`);
    const reader = opts.reader;
    this.reading = reader && {
      reader,
      started: (read) => {
        this.reads.add(read);
        void read.finally(() => this.reads.delete(read));
      },
      done: (b) => this.tableArrived(b),
    };
  }

  /** Resolves once every symbol table asked for so far is built (SymLocation.later then answers). */
  async settled(): Promise<void> {
    while (this.reads.size > 0) await Promise.all(this.reads);
  }

  /** A table built elsewhere arrived: the processes using its file answer differently from now on. */
  private tableArrived(b: BinaryTables): void {
    for (const st of this.processes.values()) {
      if (!st.mappings.some((rm) => rm.binary === b)) continue;
      st.cache.clear();
      st.epoch = ++this.epochs;
    }
  }

  /**
   * A user stack of process pid (runtime addresses, innermost first): stack[0] is looked up as is, every later
   * entry (a return address) at address − 1. spCaller: stack[1] is the word at the leaf's SP (RawSample.spCaller),
   * kept only where the leaf is Go code that had not set up its frame (anywhere else it is left out).
   */
  resolveUser(pid: number, stack: readonly number[], timeNs?: bigint, spCaller = false): SymLocation[] {
    const now = Date.now();
    this.maybePrune(now);
    const state = this.processAt(pid, now, timeNs);
    const out: SymLocation[] = [];
    for (let i = 0; i < stack.length; i++) {
      // After stack[0]'s lookup, which reads the maps again if they do not know the address yet.
      if (i === 1 && spCaller && !this.frameNotSetUp(state, stack[0]!)) continue;
      const pc = stack[i]!;
      out.push(this.resolveIn(state, i === 0 || pc === 0 ? pc : pc - 1, now));
    }
    return out;
  }

  /** Is pc in Go code of the process whose function has no frame of its own there (GoBinary.frameNotSetUp)? */
  private frameNotSetUp(st: ProcessState, pc: number): boolean {
    const rm = this.findMapping(st, pc);
    const go = rm?.binary?.go;
    if (!go) return false;
    try {
      return go.frameNotSetUp(pc - rm.bias);
    } catch {
      return false; // a corrupt pcsp table: the frame-pointer walk's stack as it came
    }
  }

  /**
   * A number that changes whenever resolveUser's answers for this process may change (exec, PID reuse, its
   * mappings read again): within one epoch the same stack gives the same locations, so callers may reuse them.
   * Does the upkeep a resolveUser call would (revalidation, pruning).
   */
  userEpoch(pid: number, timeNs?: bigint): number {
    const now = Date.now();
    this.maybePrune(now);
    return this.processAt(pid, now, timeNs).epoch;
  }

  /** The same for resolveKernel: changes when the kernel symbols are read again. */
  kernelEpoch(): number {
    this.kernelMapping();
    return this.kernelEpochs;
  }

  /** One user address, looked up exactly as given. */
  resolveUserAddress(pid: number, address: number): SymLocation {
    const now = Date.now();
    return this.resolveIn(this.process(pid, now), address, now);
  }

  /** A kernel stack, innermost first, same convention as resolveUser. Addresses as for kernelAddress(). */
  resolveKernel(stack: ReadonlyArray<number | bigint>): SymLocation[] {
    const mapping = this.kernelMapping();
    return stack.map((a, i) => {
      let addr = kernelAddress(a);
      if (i > 0 && addr !== 0n) addr -= 1n;
      let loc = this.kernelCache.get(addr);
      if (!loc) {
        const sym = this.kernel.lookup(addr);
        loc = { mapping, address: addr, frames: sym ? [{ function: sym.name, file: '', line: 0 }] : NO_FRAMES };
        if (this.kernelCache.size >= ADDRESS_CACHE_LIMIT) this.kernelCache.clear();
        this.kernelCache.set(addr, loc);
      }
      return loc;
    });
  }

  /** Reads a process's mappings now (e.g. right after exec) so its samples symbolize even after it exits. */
  observeProcess(pid: number): void {
    this.process(pid, Date.now());
  }

  /**
   * Reads a process's mappings and every file's symbol tables now, and keeps them however long they go unused
   * (while the process lives): for a process that is in every node-wide profile, such as the agent itself, so
   * that no profile after a long idle period pays for them.
   */
  keepProcess(pid: number): void {
    const st = this.process(pid, Date.now());
    st.kept = true;
    for (const rm of st.mappings) if (rm.binary) void rm.binary.hasFunctions;
  }

  /**
   * Drops what is known about a process (it exited, or exec'd a new image). With startTime (/proc/PID/stat's),
   * only if what is known is of that process (or of one already gone), not of a later one with the same PID.
   */
  forgetProcess(pid: number, startTime?: bigint): void {
    const st = this.processes.get(pid);
    if (!st) return;
    if (startTime !== undefined && st.startTime !== undefined && st.startTime !== startTime.toString()) return;
    this.processes.delete(pid);
    this.release(st, Date.now());
  }

  /**
   * Drops processes that are gone (or idle for long), and closes binaries that no process has used for a while.
   * Runs by itself every 10 s while stacks are resolved.
   */
  prune(now = Date.now()): void {
    this.lastPrune = now;
    for (const st of [...this.processes.values()]) {
      const idle = now - st.lastUsed;
      if (idle < this.goneRetentionMs) continue;
      if ((st.kept || idle < this.idleProcessMs) && !st.gone && this.sameProcess(st)) continue;
      this.processes.delete(st.pid);
      this.release(st, now);
    }
    if (this.unreadable.size > 4096) this.unreadable.clear();
    for (const [key, b] of this.binaries) {
      if (b.users === 0 && b.idleSince !== undefined && now - b.idleSince >= this.binaryIdleMs) {
        this.binaries.delete(key);
        b.close();
      }
    }
  }

  stats(): SymbolizerStats {
    return { processes: this.processes.size, binaries: this.binaries.size, kernelSymbols: this.kernel.size, mapReads: this.mapReads };
  }

  /** Closes every binary. The symbolizer can be used again afterwards (it reopens what it needs). */
  close(): void {
    this.processes.clear();
    for (const b of this.binaries.values()) b.close();
    this.binaries.clear();
    this.unreadable.clear();
  }

  // ---- processes

  private maybePrune(now: number): void {
    if (now - this.lastPrune >= 10_000) this.prune(now);
  }

  private exeId(pid: number): string | undefined {
    try {
      const st = fs.statSync(`${this.procRoot}/${pid}/exe`);
      return `${st.dev}:${st.ino}`;
    } catch {
      return undefined;
    }
  }

  /** Is the process we read still the one with this PID, and still running the same executable? */
  private sameProcess(st: ProcessState): boolean {
    const start = readProcStartTime(st.pid, this.procRoot);
    if (start === undefined) return false;
    return start === st.startTime && this.exeId(st.pid) === st.exeId;
  }

  /**
   * The process a stack taken at timeNs (CLOCK_MONOTONIC) belongs to: not the one now under that PID if it started
   * after the stack was taken (the stack's process exited and the PID was reused before its samples were looked at).
   * Then an empty state answers: no symbols rather than another binary's.
   */
  private processAt(pid: number, now: number, timeNs: bigint | undefined): ProcessState {
    const st = this.process(pid, now);
    if (timeNs === undefined || st.startTime === undefined) return st;
    // /proc/PID/stat counts 10 ms ticks of CLOCK_BOOTTIME, and bootOffsetNs() is as coarse: 30 ms of slack.
    const startNs = BigInt(st.startTime) * 10_000_000n - bootOffsetNs();
    if (timeNs + 30_000_000n >= startNs) return st;
    return (this.unknownProcess ??= { pid: 0, startTime: undefined, exeId: undefined, mappings: [], mapsReadAt: now, checkedAt: now, lastUsed: now, gone: true, cache: new Map(), epoch: ++this.epochs });
  }

  private process(pid: number, now: number): ProcessState {
    let st = this.processes.get(pid);
    if (st && !st.gone && now - st.checkedAt >= this.revalidateMs) {
      st.checkedAt = now;
      const start = readProcStartTime(pid, this.procRoot);
      if (start === undefined) {
        st.gone = true; // keep what we have: its samples may still be arriving
      } else if (start !== st.startTime || this.exeId(pid) !== st.exeId) {
        this.processes.delete(pid); // PID reuse or exec: a different image
        this.release(st, now);
        st = undefined;
      }
    }
    if (!st) {
      st = {
        pid,
        startTime: readProcStartTime(pid, this.procRoot),
        exeId: this.exeId(pid),
        mappings: [],
        mapsReadAt: 0,
        checkedAt: now,
        lastUsed: now,
        gone: false,
        cache: new Map(),
        epoch: ++this.epochs,
      };
      this.processes.set(pid, st);
      this.readMappings(st, now);
    }
    st.lastUsed = now;
    return st;
  }

  private release(st: ProcessState, now: number): void {
    for (const rm of st.mappings) {
      if (rm.binary) this.unuse(rm.binary, now);
    }
    st.mappings = [];
    st.cache.clear();
  }

  private unuse(b: BinaryTables, now: number): void {
    b.users--;
    if (b.users <= 0) {
      b.users = 0;
      b.idleSince = now;
    }
  }

  /** (Re)reads /proc/PID/maps. Returns false when the process is gone. */
  private readMappings(st: ProcessState, now: number): boolean {
    st.mapsReadAt = now;
    this.mapReads++;
    const maps = readProcMaps(st.pid, this.procRoot);
    if (!maps) {
      st.gone = true;
      return false;
    }
    const old = st.mappings;
    const fresh: ResolvedMapping[] = [];
    for (const m of maps) {
      if (!isExecutable(m)) continue;
      const prev = old.find((r) => r.m.start === m.start && r.m.end === m.end && r.m.offset === m.offset && r.m.inode === m.inode && r.m.path === m.path);
      if (prev) {
        fresh.push(prev);
        continue;
      }
      const rm = this.resolveMapping(st.pid, m);
      if (rm) fresh.push(rm);
    }
    for (const r of old) {
      if (!fresh.includes(r) && r.binary) this.unuse(r.binary, now);
    }
    fresh.sort((a, b) => a.m.start - b.m.start);
    // The same executable mappings: the answers given stay right (and callers' caches keyed by the epoch too).
    if (fresh.length === old.length && fresh.every((r, i) => r === old[i])) return true;
    st.mappings = fresh;
    st.cache.clear();
    st.epoch = ++this.epochs;
    return true;
  }

  private resolveMapping(pid: number, m: ProcMapping): ResolvedMapping | undefined {
    let binary: BinaryTables | undefined;
    if (isFileBacked(m)) binary = this.fileBinary(pid, m);
    else if (m.path === '[vdso]') binary = this.vdsoBinary(pid, m);
    else return { m, binary: undefined, bias: m.start - m.offset, info: undefined, anonymous: true }; // no file, no symbols
    if (binary) {
      binary.users++;
      binary.idleSince = undefined;
    }
    let bias = m.start - m.offset;
    if (binary) {
      try {
        bias = mappingLoadBias(binary.elf, m);
      } catch {
        // keep the naive bias
      }
    }
    return { m, binary, bias, info: undefined, anonymous: false };
  }

  private mappingInfo(rm: ResolvedMapping): SymMapping {
    if (rm.info) return rm.info;
    const { m, binary } = rm;
    const go = binary?.go !== undefined;
    rm.info = {
      key: binary ? `${binary.key}@${hex(m.start)}-${hex(m.end)}+${hex(m.offset)}` : `file:${m.dev}:${m.inode}:${m.path}@${hex(m.start)}-${hex(m.end)}+${hex(m.offset)}`,
      start: BigInt(m.start),
      limit: BigInt(m.end),
      offset: BigInt(m.offset),
      file: m.path,
      buildId: binary?.buildId ?? '',
      hasFunctions: binary?.hasFunctions ?? false,
      hasFilenames: go,
      hasLineNumbers: go,
      hasInlineFrames: go,
    };
    return rm.info;
  }

  private fileBinary(pid: number, m: ProcMapping): BinaryTables | undefined {
    // Most new processes run files already read (a fork-exec storm runs the same few): one stat tells.
    const seen = this.mapFiles ? mappedFileKey(pid, m, this.procRoot) : undefined;
    if (seen !== undefined && (this.binaries.has(seen) || this.unreadable.has(seen))) return this.binaries.get(seen);
    let opened: MappedFileSource | undefined;
    try {
      opened = openMappedFile(pid, m, { procRoot: this.procRoot, mapFiles: this.mapFiles, isExe: m.path === this.exePath(pid) });
    } catch (e) {
      this.warnOnce(`${pid}:${m.dev}:${m.inode}`, (e as Error).message);
      return undefined;
    }
    if (opened === undefined) return undefined;
    const { key } = opened;
    const known = this.binaries.get(key);
    if (known !== undefined || this.unreadable.has(key)) {
      opened.source.close();
      return known;
    }
    let elf: ElfFile;
    try {
      elf = new ElfFile(opened.source, m.path);
    } catch (e) {
      opened.source.close();
      this.unreadable.add(key);
      if (e instanceof FormatError) this.warnOnce(key, `pid ${pid}: ${m.path}: ${e.message}; its samples are not symbolized`);
      return undefined;
    }
    const b = this.tables(key, elf, pid);
    if (!b) this.unreadable.add(key);
    return b;
  }

  private exePath(pid: number): string | undefined {
    try {
      return fs.readlinkSync(`${this.procRoot}/${pid}/exe`).replace(/ \(deleted\)$/, '');
    } catch {
      return undefined;
    }
  }

  /** One log line per problem and file (a hostile binary in many processes is reported once). */
  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    if (this.warned.size >= 4096) this.warned.clear();
    this.warned.add(key);
    this.onWarning?.(message);
  }

  /**
   * The separate debug file for a build ID (/usr/lib/debug/.build-id/ab/cdef….debug), looked for in the process's
   * root (never leaving it) and then in ours; only accepted when its build ID matches.
   */
  private debugFile(buildId: string, pid: number | undefined): ElfFile | undefined {
    if (!/^[0-9a-f]{4,}$/.test(buildId)) return undefined;
    const rel = `/usr/lib/debug/.build-id/${buildId.slice(0, 2)}/${buildId.slice(2)}.debug`;
    const opens: Array<() => ElfFile | undefined> = [() => ElfFile.open(rel)];
    if (pid !== undefined) {
      opens.unshift(() => {
        const src = openInProcessRoot(pid, rel, this.procRoot);
        return src && new ElfFile(src, rel);
      });
    }
    for (const open of opens) {
      let elf: ElfFile | undefined;
      try {
        elf = open();
        if (elf?.gnuBuildId() === buildId) return elf;
      } catch {
        // not there
      }
      elf?.close();
    }
    return undefined;
  }

  /** Builds the tables of an opened ELF file (closing it when it is of no use). */
  private tables(key: string, elf: ElfFile, pid?: number): BinaryTables | undefined {
    let go: GoBinary | undefined;
    if (looksLikeGo(elf)) {
      try {
        go = new GoBinary(elf, { pcTablesOnDemand: true }); // kept while its processes run, asked for few PCs
      } catch {
        go = undefined; // Go, but its table is gone or corrupt (the sampler logs why): the ELF symbols may still help
      }
    }
    try {
      const b = new BinaryTables(key, elf, go, (id) => this.debugFile(id, pid), this.reading);
      this.binaries.set(key, b);
      return b;
    } catch {
      elf.close();
      return undefined;
    }
  }

  /** The vDSO, read from the process's memory (it is the same image in every process of this kernel). */
  private vdsoBinary(pid: number, m: ProcMapping): BinaryTables | undefined {
    const size = m.end - m.start;
    if (size <= 0 || size > 1 << 20) return undefined;
    let buf: Buffer;
    try {
      buf = new ProcessMemory(pid).readUpTo(m.start, size);
    } catch {
      return undefined;
    }
    if (buf.length < 64) return undefined;
    // Every 64-bit process of this kernel has the same vDSO: the same bytes as last time are the same tables.
    const last = this.lastVdso;
    if (last !== undefined && last.bytes.equals(buf)) {
      const known = this.binaries.get(last.key);
      if (known) return known;
    }
    let elf: ElfFile;
    try {
      elf = new ElfFile(new BufferSource(buf), '[vdso]');
    } catch {
      return undefined;
    }
    let id: string;
    try {
      id = elf.gnuBuildId() ?? crypto.createHash('sha1').update(buf).digest('hex');
    } catch {
      return undefined;
    }
    const key = `vdso:${id}`;
    this.lastVdso = { bytes: buf, key };
    const known = this.binaries.get(key);
    if (known) return known;
    return this.tables(key, elf, pid);
  }

  // ---- addresses

  private findMapping(st: ProcessState, addr: number): ResolvedMapping | undefined {
    const ms = st.mappings;
    let lo = 0;
    let hi = ms.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ms[mid]!.m.start > addr) hi = mid;
      else lo = mid + 1;
    }
    const r = ms[lo - 1];
    return r && addr < r.m.end ? r : undefined;
  }

  private resolveIn(st: ProcessState, addr: number, now: number): SymLocation {
    const cached = st.cache.get(addr);
    if (cached) return cached;
    let rm = this.findMapping(st, addr);
    if (!rm && !st.gone && now - st.mapsReadAt >= 1000) {
      // Perhaps mapped since we looked (dlopen, a new thread's vDSO use…): read the maps again, at most once a second.
      this.readMappings(st, now);
      rm = this.findMapping(st, addr);
    }
    let loc: SymLocation;
    if (!rm || rm.anonymous) {
      loc = { mapping: undefined, address: BigInt(addr), frames: NO_FRAMES };
    } else {
      const { binary } = rm;
      const vaddr = addr - rm.bias;
      const frames = binary ? binary.frames(vaddr) : NO_FRAMES;
      loc = { mapping: this.mappingInfo(rm), address: BigInt(addr), frames: frames ?? NO_FRAMES };
      if (frames === undefined) loc.later = () => binary!.frames(vaddr) ?? NO_FRAMES;
    }
    if (st.cache.size >= ADDRESS_CACHE_LIMIT) st.cache.clear();
    st.cache.set(addr, loc);
    return loc;
  }

  // ---- kernel

  /**
   * Reads /proc/kallsyms again when it is older than half its maximum age (or was never read), so that a caller
   * that runs this at start and on a timer keeps symbolization from ever waiting for it.
   */
  refreshKernel(): void {
    if (this.kernelMappingInfo !== undefined && Date.now() - this.kernelLoadedAt <= this.kallsymsMaxAgeMs / 2) return;
    this.kernel.load();
    this.kernelMappingInfo = undefined;
    this.kernelMapping();
  }

  private kernelMapping(): SymMapping {
    const now = Date.now();
    if (this.kernelMappingInfo === undefined || now - this.kernelLoadedAt > this.kallsymsMaxAgeMs) {
      this.kernel.refreshIfOlderThan(this.kallsymsMaxAgeMs);
      this.kernelLoadedAt = now;
      this.kernelCache.clear();
      this.kernelEpochs++;
      const range = this.kernel.range();
      this.kernelMappingInfo = {
        key: 'kernel',
        start: range ? range.start : 0n,
        limit: range ? 0xffffffffffffffffn : 0n, // modules and BPF programs lie above the last core symbol
        offset: 0n,
        file: '[kernel.kallsyms]',
        buildId: '',
        hasFunctions: this.kernel.size > 0,
        hasFilenames: false,
        hasLineNumbers: false,
        hasInlineFrames: false,
      };
    }
    return this.kernelMappingInfo;
  }
}

/** The process's start time as a string (clock ticks since boot; with the PID it survives PID reuse), or undefined once gone. */
let bootOffset: bigint | undefined;

/** CLOCK_BOOTTIME − CLOCK_MONOTONIC (time spent suspended), from /proc/uptime at first use (10 ms resolution). */
function bootOffsetNs(): bigint {
  if (bootOffset === undefined) {
    const mono = process.hrtime.bigint();
    const up = /^(\d+)\.(\d+)/.exec(fs.readFileSync('/proc/uptime', 'utf8'));
    const boot = up ? BigInt(up[1]!) * 1_000_000_000n + BigInt(up[2]!.padEnd(9, '0').slice(0, 9)) : mono;
    bootOffset = boot > mono ? boot - mono : 0n;
  }
  return bootOffset;
}

function readProcStartTime(pid: number, procRoot: string): string | undefined {
  return processIdentity(pid, procRoot)?.startTime.toString();
}
