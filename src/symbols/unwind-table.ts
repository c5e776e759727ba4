// The BPF unwind table of one Go binary: for every 4 KiB page of its Go text (counted from minpc), the SP-delta
// ranges that intersect the page, so the BPF sampler can find the return address of the function at any sampled
// PC ([SP + spdelta]) and tell Go code from assembly (R14 holds g only in Go code) without decoding varints.
//
//   const t = buildUnwindTable(GoBinary.open(path));
//   for (const [key, value] of t.entries(binaryId)) pages.update(key, value);   // unwind_pages, profile.bpf.c
//   t.lookup(linkPc)     // { spdelta, flags } — what the BPF side finds for that PC
//
// Mirrors bpf/profile.h (UNWIND_*, struct unwind_key, struct unwind_chunk); the layout is described there.

import { array, i32, struct, u16, u32, u8 } from '../bpf/codec';
import type { GoBinary } from '../gosym/binary';
import { ChangePoints, FUNC_FLAG_ASM, FUNC_FLAG_SPWRITE, FUNC_FLAG_TOPFRAME } from '../gosym/pclntab';
import { INJECTED_CALL_FUNCS, TOP_FRAME_FUNCS } from '../gosym/runtime-frames';

export const UNWIND_PAGE_SHIFT = 12;
export const UNWIND_PAGE_SIZE = 1 << UNWIND_PAGE_SHIFT;
export const UNWIND_CHUNK_SHIFT = 28;
export const UNWIND_MAX_CHUNKS = 8;
export const UNWIND_CHUNK_RANGES = 72;

/** unwind_chunk.flags[i] */
export const UnwindFlag = {
  /** Compiled Go code (not assembly): R14 holds g there (amd64, Go ≥ 1.17). */
  GO: 0x01,
  /** runtime.goexit, mstart, rt0_go, sigtramp: the stack ends here. */
  TOP_FRAME: 0x02,
  /** The function writes SP (a stack switch): its SP delta is not trustworthy. */
  SPWRITE: 0x04,
  /** No function or no pcsp data: unwind by frame pointer only. */
  NO_INFO: 0x08,
} as const;

/** struct unwind_key */
export const UnwindKey = struct({ binary_id: u32, page: u32 });
/** struct unwind_chunk (508 bytes) */
export const UnwindChunk = struct({
  count: u16,
  end: u16,
  start: array(u16, UNWIND_CHUNK_RANGES),
  spdelta: array(i32, UNWIND_CHUNK_RANGES),
  flags: array(u8, UNWIND_CHUNK_RANGES),
});

const OFF_COUNT = UnwindChunk.offsets.count;
const OFF_END = UnwindChunk.offsets.end;
const OFF_START = UnwindChunk.offsets.start;
const OFF_SPDELTA = UnwindChunk.offsets.spdelta;
const OFF_FLAGS = UnwindChunk.offsets.flags;

/**
 * The runtime's assembly functions where a stack switches to the system stack (g0): Go's traceback jumps back to
 * the goroutine's stack at systemstack and morestack (through g.sched) and asmcgocall (a cgo call, through
 * g.syscallsp), and ends a g0 stack at mcall.
 */
export type StackSwitch = 'systemstack' | 'morestack' | 'asmcgocall' | 'mcall';
const SWITCH_NAMES: ReadonlyMap<string, StackSwitch> = new Map([
  ['runtime.systemstack', 'systemstack'], ['runtime.morestack', 'morestack'], ['runtime.asmcgocall', 'asmcgocall'],
  ['runtime.mcall', 'mcall'],
] as const);


export interface UnwindRangeInfo {
  /** Bytes below the function's entry SP (-1 when unknown). */
  spdelta: number;
  /** UnwindFlag bits. */
  flags: number;
}

export interface UnwindTableStats {
  functions: number;
  /** Functions whose code is assembly (no GO flag). */
  asmFunctions: number;
  /** Change points after merging equal neighbours. */
  ranges: number;
  pages: number;
  /** Map entries (pages plus continuation chunks). */
  entries: number;
  /** Ranges left out because a page needed more than UNWIND_MAX_CHUNKS chunks (they fall back to frame pointers). */
  droppedRanges: number;
  /** How the GO flag was decided: the pclntab's Asm flag (Go ≥ 1.19), or the function's file ending in .s. */
  asmFrom: 'flag' | 'file';
  topFrameFrom: 'flag' | 'name';
}

/** An UnwindTable as structured-clone data (UnwindTable.toData). */
export interface UnwindTableData {
  minpc: number;
  maxpc: number;
  starts: Float64Array;
  deltas: Int32Array;
  flags: Uint8Array;
  topFrames: ReadonlyArray<readonly [number, number]>;
  switches: Partial<Record<StackSwitch, readonly [number, number]>>;
  injectedCalls: ReadonlyArray<readonly [number, number]>;
  stats: Omit<UnwindTableStats, 'ranges' | 'pages' | 'entries' | 'droppedRanges'>;
}

/** The link-time text the table covers and its ranges: every PC in [minpc, maxpc) is in exactly one range. */
export class UnwindTable {
  /** Start PC (link-time) of range i; range i ends where range i + 1 starts (the last at maxpc). */
  readonly starts: Float64Array;
  readonly deltas: Int32Array;
  readonly flags: Uint8Array;
  /** Index of the first range of each page (the one holding the page's first byte). */
  private readonly pageFirst: Uint32Array;
  /** Chunks (map entries) of each page. */
  readonly chunkCounts: Uint8Array;
  readonly stats: UnwindTableStats;

  constructor(
    readonly minpc: number,
    readonly maxpc: number,
    starts: Float64Array,
    deltas: Int32Array,
    flags: Uint8Array,
    /** Link-time [start, end) of the TopFrame functions. */
    readonly topFrames: ReadonlyArray<readonly [number, number]>,
    /** Link-time [start, end) of the stack-switching functions the binary has. */
    readonly switches: Partial<Record<StackSwitch, readonly [number, number]>>,
    /** Link-time [start, end) of the injected-call functions the binary has (gosym/runtime-frames.ts). */
    readonly injectedCalls: ReadonlyArray<readonly [number, number]>,
    stats: Omit<UnwindTableStats, 'ranges' | 'pages' | 'entries' | 'droppedRanges'>,
  ) {
    this.starts = starts;
    this.deltas = deltas;
    this.flags = flags;
    const pages = Math.ceil((maxpc - minpc) / UNWIND_PAGE_SIZE);
    if (pages >= 2 ** UNWIND_CHUNK_SHIFT) throw new RangeError(`Go text of ${maxpc - minpc} bytes is too large for the unwind table`);
    this.pageFirst = new Uint32Array(pages);
    this.chunkCounts = new Uint8Array(pages);
    let r = 0;
    let entries = 0;
    let dropped = 0;
    for (let p = 0; p < pages; p++) {
      const base = minpc + p * UNWIND_PAGE_SIZE;
      while (r + 1 < starts.length && starts[r + 1]! <= base) r++;
      this.pageFirst[p] = r;
      const n = this.rangesInPage(p);
      const chunks = Math.ceil(n / UNWIND_CHUNK_RANGES);
      this.chunkCounts[p] = Math.min(chunks, UNWIND_MAX_CHUNKS);
      entries += this.chunkCounts[p]!;
      if (chunks > UNWIND_MAX_CHUNKS) dropped += n - UNWIND_MAX_CHUNKS * UNWIND_CHUNK_RANGES;
    }
    this.stats = { ...stats, ranges: starts.length, pages, entries, droppedRanges: dropped };
  }

  /** The table as plain data whose arrays can be handed to another thread (fromData makes it a table again). */
  toData(): UnwindTableData {
    const { functions, asmFunctions, asmFrom, topFrameFrom } = this.stats;
    return {
      minpc: this.minpc, maxpc: this.maxpc, starts: this.starts, deltas: this.deltas, flags: this.flags,
      topFrames: this.topFrames, switches: this.switches, injectedCalls: this.injectedCalls, stats: { functions, asmFunctions, asmFrom, topFrameFrom },
    };
  }

  static fromData(d: UnwindTableData): UnwindTable {
    return new UnwindTable(d.minpc, d.maxpc, d.starts, d.deltas, d.flags, d.topFrames, d.switches, d.injectedCalls, d.stats);
  }

  /** What toData() hands over without copying. */
  static transferables(d: UnwindTableData): ArrayBuffer[] {
    return [d.starts.buffer as ArrayBuffer, d.deltas.buffer as ArrayBuffer, d.flags.buffer as ArrayBuffer];
  }

  get pageCount(): number {
    return this.pageFirst.length;
  }

  /** Ranges intersecting page p. */
  private rangesInPage(p: number): number {
    const end = Math.min(this.minpc + (p + 1) * UNWIND_PAGE_SIZE, this.maxpc);
    let i = this.pageFirst[p]!;
    const first = i;
    while (i < this.starts.length && this.starts[i]! < end) i++;
    return i - first;
  }

  /** The range holding a link-time PC, straight from the ranges (no page encoding involved). */
  lookup(pc: number): UnwindRangeInfo | undefined {
    if (pc < this.minpc || pc >= this.maxpc) return undefined;
    let lo = 0;
    let hi = this.starts.length;
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (this.starts[mid]! <= pc) lo = mid;
      else hi = mid;
    }
    return { spdelta: this.deltas[lo]!, flags: this.flags[lo]! };
  }

  /**
   * unwind_pages entries for this binary under binaryId: [struct unwind_key, struct unwind_chunk] as bytes. With
   * reuse, every entry comes in the same two Buffers (valid until the next one): what a map update needs, without
   * thousands of small allocations for a big binary.
   */
  *entries(binaryId: number, reuse = false): IterableIterator<[Buffer, Buffer]> {
    const shared: [Buffer, ChunkWriter] | undefined = reuse ? [Buffer.alloc(UnwindKey.size), new ChunkWriter()] : undefined;
    for (let p = 0; p < this.pageCount; p++) {
      const base = this.minpc + p * UNWIND_PAGE_SIZE;
      const pageEnd = Math.min(UNWIND_PAGE_SIZE, this.maxpc - base);
      const first = this.pageFirst[p]!;
      const n = this.rangesInPage(p);
      const chunks = this.chunkCounts[p]!;
      for (let c = 0; c < chunks; c++) {
        const from = first + c * UNWIND_CHUNK_RANGES;
        const count = Math.min(UNWIND_CHUNK_RANGES, first + n - from);
        const next = from + count;
        const end = next < first + n ? this.starts[next]! - base : pageEnd;
        const w = shared ? shared[1] : new ChunkWriter();
        w.write(count, end, this.starts, this.deltas, this.flags, from, base);
        yield [unwindKey(binaryId, p, c, shared?.[0]), w.bytes];
      }
    }
  }
}

/**
 * One struct unwind_chunk written through typed-array views of its bytes (in the host's byte order, as BPF maps
 * hold them): a few array stores per range rather than a Buffer method call per field.
 */
class ChunkWriter {
  readonly bytes: Buffer;
  private readonly u16: Uint16Array;
  private readonly spdelta: Int32Array;

  constructor() {
    const ab = new ArrayBuffer(UnwindChunk.size);
    this.bytes = Buffer.from(ab);
    this.u16 = new Uint16Array(ab, 0, OFF_SPDELTA / 2); // count, end, start[] (count and end come first)
    this.spdelta = new Int32Array(ab, OFF_SPDELTA, UNWIND_CHUNK_RANGES);
  }

  /** Ranges [from, from + count) of the table, starts as offsets from the page's base; the rest zeroed. */
  write(count: number, end: number, starts: Float64Array, deltas: Int32Array, flags: Uint8Array, from: number, base: number): void {
    const u16 = this.u16;
    u16[OFF_COUNT / 2] = count;
    u16[OFF_END / 2] = end;
    for (let i = 0; i < count; i++) u16[OFF_START / 2 + i] = Math.max(0, starts[from + i]! - base);
    u16.fill(0, OFF_START / 2 + count, OFF_START / 2 + UNWIND_CHUNK_RANGES);
    this.spdelta.set(deltas.subarray(from, from + count));
    this.spdelta.fill(0, count);
    this.bytes.set(flags.subarray(from, from + count), OFF_FLAGS);
    this.bytes.fill(0, OFF_FLAGS + count);
  }
}

export function unwindKey(binaryId: number, page: number, chunk: number, into?: Buffer): Buffer {
  const key = into ?? Buffer.alloc(UnwindKey.size);
  key.writeUInt32LE(binaryId, UnwindKey.offsets.binary_id);
  key.writeUInt32LE((page | (chunk << UNWIND_CHUNK_SHIFT)) >>> 0, UnwindKey.offsets.page);
  return key;
}

/** The keys entries(binaryId) wrote, from the chunk counts alone (what removal needs to keep); reuse as there. */
export function* unwindKeys(binaryId: number, chunkCounts: Uint8Array, reuse = false): IterableIterator<Buffer> {
  const shared = reuse ? Buffer.alloc(UnwindKey.size) : undefined;
  for (let p = 0; p < chunkCounts.length; p++) for (let c = 0; c < chunkCounts[p]!; c++) yield unwindKey(binaryId, p, c, shared);
}

/**
 * What profile.bpf.c's find_range() answers for offset rel (= link-time PC − minpc), given a way to read map
 * entries: the same chunk walk and binary search, for tests of the encoding.
 */
export function findRange(get: (key: Buffer) => Buffer | undefined, binaryId: number, rel: number): UnwindRangeInfo | undefined {
  const page = Math.floor(rel / UNWIND_PAGE_SIZE);
  const off = rel % UNWIND_PAGE_SIZE;
  let v: Buffer | undefined;
  for (let k = 0; k < UNWIND_MAX_CHUNKS; k++) {
    v = get(unwindKey(binaryId, page, k));
    if (v === undefined || off < v.readUInt16LE(OFF_END)) break;
  }
  if (v === undefined || off >= v.readUInt16LE(OFF_END)) return undefined;
  let lo = 0;
  let hi = v.readUInt16LE(OFF_COUNT);
  if (hi === 0 || hi > UNWIND_CHUNK_RANGES) return undefined;
  for (let i = 0; i < 7 && hi - lo > 1; i++) {
    const mid = (lo + hi) >>> 1;
    if (v.readUInt16LE(OFF_START + 2 * mid) <= off) lo = mid;
    else hi = mid;
  }
  if (v.readUInt16LE(OFF_START + 2 * lo) > off) return undefined;
  return { spdelta: v.readInt32LE(OFF_SPDELTA + 4 * lo), flags: v[OFF_FLAGS + lo]! };
}

/** Builds the table from a Go binary's pclntab (every function's pcsp table and flags). */
export function buildUnwindTable(bin: GoBinary): UnwindTable {
  const pcln = bin.pcln;
  const n = pcln.nfunc;
  let asmFlag = false;
  let topFlag = false;
  for (let i = 0; i < n; i++) {
    const fl = pcln.funcFlag(pcln.funcAt(i));
    if (fl & FUNC_FLAG_ASM) asmFlag = true;
    if (fl & FUNC_FLAG_TOPFRAME) topFlag = true;
    if (asmFlag && topFlag) break;
  }

  let cap = Math.max(1024, n * 4);
  let starts = new Float64Array(cap);
  let deltas = new Int32Array(cap);
  let flags = new Uint8Array(cap);
  let len = 0;
  const push = (start: number, delta: number, fl: number): void => {
    if (len > 0 && deltas[len - 1] === delta && flags[len - 1] === fl) return; // same as the range before
    if (len === cap) {
      cap *= 2;
      const s = new Float64Array(cap);
      s.set(starts);
      starts = s;
      const d = new Int32Array(cap);
      d.set(deltas);
      deltas = d;
      const f = new Uint8Array(cap);
      f.set(flags);
      flags = f;
    }
    starts[len] = start;
    deltas[len] = delta;
    flags[len] = fl;
    len++;
  };

  const topFrames: Array<[number, number]> = [];
  const switches: Partial<Record<StackSwitch, readonly [number, number]>> = {};
  let asmFunctions = 0;
  const changes = new ChangePoints();
  for (let i = 0; i < n; i++) {
    const f = pcln.funcAt(i);
    if (f.end <= f.entry) continue;
    const ff = pcln.funcFlag(f);
    const isAsm = asmFlag ? (ff & FUNC_FLAG_ASM) !== 0 : pcln.file(f, f.entry).endsWith('.s');
    const isTop = topFlag ? (ff & FUNC_FLAG_TOPFRAME) !== 0 : TOP_FRAME_FUNCS.has(pcln.funcName(f));
    let fl = isAsm ? 0 : UnwindFlag.GO;
    if (isAsm) {
      asmFunctions++;
      const sw = SWITCH_NAMES.get(pcln.funcName(f));
      if (sw) switches[sw] = [f.entry, f.end];
    }
    if (isTop) {
      fl |= UnwindFlag.TOP_FRAME;
      topFrames.push([f.entry, f.end]);
    }
    if (ff & FUNC_FLAG_SPWRITE) fl |= UnwindFlag.SPWRITE;
    pcln.spDeltaChanges(f, changes);
    if (changes.count === 0) {
      push(f.entry, -1, fl | UnwindFlag.NO_INFO);
      continue;
    }
    for (let k = 0; k < changes.count; k++) {
      const delta = changes.values[k]!;
      push(changes.pcs[k]!, delta, delta < 0 ? fl | UnwindFlag.NO_INFO : fl);
    }
    if (changes.end < f.end) push(changes.end, -1, fl | UnwindFlag.NO_INFO);
  }
  const minpc = pcln.minPc;
  const maxpc = pcln.maxPc;
  if (len === 0 || starts[0] !== minpc) throw new RangeError('pclntab: the first function does not start at minpc');
  const injectedCalls = INJECTED_CALL_FUNCS.flatMap((name) => pcln.funcIndexesNamed(name, true).slice(0, 1))
    .map((i): readonly [number, number] => [pcln.funcAt(i).entry, pcln.funcAt(i).end]);
  return new UnwindTable(minpc, maxpc, starts.slice(0, len), deltas.slice(0, len), flags.slice(0, len), topFrames, switches, injectedCalls, {
    functions: n,
    asmFunctions,
    asmFrom: asmFlag ? 'flag' : 'file',
    topFrameFrom: topFlag ? 'flag' : 'name',
  });
}

/**
 * Text read at a time by findTlsGOffset: the runtime's TLS loads come first (within the first 0.1 MiB of every
 * binary built here), so a big binary's whole text (18 MiB) is neither read nor held for them.
 */
const TLS_SCAN_CHUNK = 256 << 10;
const TLS_SCAN_HITS = 64;

/**
 * Where linux/amd64 Go code finds g in TLS, as an offset from the FS base: read off the instructions the
 * compiler and linker emitted (which is what the runtime itself uses), so internally and externally linked
 * binaries, PIE or not, and stripped ones all work. -8 for every binary built here so far.
 *   mov reg, fs:[disp32]                       64 REX 8b modrm(00 reg 100) 25 disp32   (non-PIE)
 *   mov reg, imm32 ; mov reg, fs:[reg]         REX c7 c0+r imm32 ; 64 REX 8b modrm(00 reg r)   (PIE)
 * Only negative offsets count (g sits below the thread pointer; C code's fs:0x28 stack guard does not), and only
 * code inside the Go text. undefined when nothing was found (arm64, or an unusual link).
 */
export function findTlsGOffset(bin: GoBinary): number | undefined {
  if (bin.arch !== 'amd64') return undefined;
  const minpc = bin.pcln.minPc;
  const maxpc = bin.pcln.maxPc;
  const votes = new Map<number, number>();
  let found = 0;
  for (let base = minpc; base < maxpc && found < TLS_SCAN_HITS; base += TLS_SCAN_CHUNK) {
    // 7 bytes before the chunk (the PIE form's mov imm32) and 8 after (a load that straddles its end).
    const from = Math.max(minpc, base - 7);
    let text: Buffer;
    try {
      text = bin.elf.readAt(from, Math.min(maxpc, base + TLS_SCAN_CHUNK + 8) - from);
    } catch {
      return undefined;
    }
    const end = Math.min(base + TLS_SCAN_CHUNK, maxpc) - from; // this chunk answers for [base, base + CHUNK)
    for (let i = text.indexOf(0x64, base - from); i >= 0 && i < end && i + 9 <= text.length && found < TLS_SCAN_HITS; i = text.indexOf(0x64, i + 1)) {
      const disp = tlsLoadDisp(text, i);
      if (disp === undefined) continue;
      votes.set(disp, (votes.get(disp) ?? 0) + 1);
      found++;
    }
  }
  let best: number | undefined;
  let bestVotes = 0;
  for (const [d, v] of votes) {
    if (v > bestVotes) {
      best = d;
      bestVotes = v;
    }
  }
  return best;
}

/** The negative TLS offset (-4096 ≤ d < 0) that the fs-prefixed load at text[i] (0x64) reads, if it is one. */
function tlsLoadDisp(text: Buffer, i: number): number | undefined {
  const rex = text[i + 1]!;
  const op = text[i + 2]!;
  if ((rex & 0xf0) !== 0x40 || (op !== 0x8b && op !== 0x89)) return undefined;
  const modrm = text[i + 3]!;
  let disp: number | undefined;
  if ((modrm & 0xc7) === 0x04 && text[i + 4] === 0x25) {
    disp = text.readInt32LE(i + 5);
  } else if ((modrm & 0xc0) === 0 && (modrm & 7) !== 4 && (modrm & 7) !== 5 && i >= 7) {
    const r = modrm & 7;
    const mrex = text[i - 7]!;
    if ((mrex & 0xf8) === 0x48 && text[i - 6] === 0xc7 && text[i - 5] === 0xc0 + r && (mrex & 1) === (rex & 1)) disp = text.readInt32LE(i - 4);
  }
  return disp === undefined || disp >= 0 || disp < -4096 ? undefined : disp;
}
