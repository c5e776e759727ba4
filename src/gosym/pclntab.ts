// Go's pclntab: the function table, names, files, and the pcvalue tables (line, file, SP delta, inline index).
// One place (`layoutFor`) decides what a header generation looks like; everything else reads fields through it.
// Semantics follow debug/gosym for file/line (what `go tool addr2line` prints) and runtime/symtab.go for pcdata.

import { FormatError, readCString } from './bytes';
import { PcTablesOnDemand, type PcChunking } from './pc-tables';

export type PclnGeneration = 'go1.2' | 'go1.16' | 'go1.18' | 'go1.20';

const MAGICS: Record<number, PclnGeneration> = {
  0xfffffffb: 'go1.2',
  0xfffffffa: 'go1.16',
  0xfffffff0: 'go1.18',
  0xfffffff1: 'go1.20',
};

/**
 * The varint at d[pos] as debug/gosym reads pcvalue tables (uint32: bits past 32 dropped), or -1 when it runs
 * off the end of the data or is longer than a table writes.
 */
function uvarintAt(d: Buffer, pos: number): number {
  let v = 0;
  let mul = 1;
  for (;;) {
    if (pos >= d.length) return -1;
    const b = d[pos++]!;
    v += (b & 0x7f) * mul;
    if (b < 0x80) return v % 2 ** 32;
    mul *= 128;
    if (mul > 2 ** 35) return -1;
  }
}

/** Where the varint at d[pos] ends; only for one uvarintAt accepted. */
function uvarintEnd(d: Buffer, pos: number): number {
  while (d[pos++]! >= 0x80);
  return pos;
}

/** The step readStep read last: its value delta (zigzag decoded) and its PC delta (in quanta). */
let stepValueDelta = 0;
let stepPcDelta = 0;
/** readStep: the bytes ended, or a varint was longer than a table writes. */
const STEP_TRUNCATED = -1;
/** readStep: the table ended (a zero value delta after its first step). */
const STEP_END = -2;

/**
 * Reads the (value delta, PC delta) step of a pc-value table at d[pos] into stepValueDelta/stepPcDelta and returns
 * the position after it, or STEP_TRUNCATED / STEP_END (debug/gosym's step). One- and two-byte varints, most of
 * them, are read inline: this is the hot path of every lookup.
 */
function readStep(d: Buffer, pos: number, atEntry: boolean): number {
  const len = d.length;
  if (pos + 1 >= len) return STEP_TRUNCATED; // a step is two varints
  let uv = d[pos]!;
  if (uv < 0x80) {
    pos++;
  } else if (d[pos + 1]! < 0x80) {
    uv = (uv & 0x7f) | (d[pos + 1]! << 7);
    pos += 2;
  } else {
    uv = uvarintAt(d, pos);
    if (uv < 0) return STEP_TRUNCATED;
    pos = uvarintEnd(d, pos);
  }
  if (uv === 0 && !atEntry) return STEP_END;
  if (pos >= len) return STEP_TRUNCATED;
  let pd = d[pos++]!;
  if (pd >= 0x80) {
    pd = uvarintAt(d, pos - 1);
    if (pd < 0) return STEP_TRUNCATED;
    pos = uvarintEnd(d, pos);
  }
  stepValueDelta = (uv >>> 1) ^ -(uv & 1); // zigzag: an odd uv is -(uv >> 1) - 1
  stepPcDelta = pd;
  return pos;
}

export function pclnGenerationOf(magic: number): PclnGeneration | undefined {
  return MAGICS[magic];
}

/** Byte offsets inside a `_func` record for one generation (64-bit; field widths as in runtime/runtime2.go). */
export interface FuncLayout {
  entrySize: number; // 4 (entryOff) from 1.18, else ptrSize (absolute entry PC)
  funcIdOff: number;
  flagOff: number | undefined;
  nfuncdataOff: number;
  size: number; // where pcdata[] starts
  funcdataIsOffset: boolean; // 1.18+: u32 offsets from moduledata.gofunc; before: absolute pointers
}

export function funcLayout(gen: PclnGeneration, ptrSize: number): FuncLayout {
  switch (gen) {
    case 'go1.2': // 1.12–1.15 layout
      return { entrySize: ptrSize, funcIdOff: ptrSize + 28, flagOff: undefined, nfuncdataOff: ptrSize + 31, size: ptrSize + 32, funcdataIsOffset: false };
    case 'go1.16':
      return { entrySize: ptrSize, funcIdOff: ptrSize + 32, flagOff: ptrSize + 33, nfuncdataOff: ptrSize + 35, size: ptrSize + 36, funcdataIsOffset: false };
    case 'go1.18':
      return { entrySize: 4, funcIdOff: 36, flagOff: 37, nfuncdataOff: 39, size: 40, funcdataIsOffset: true };
    case 'go1.20': // startLine was added before funcID
      return { entrySize: 4, funcIdOff: 40, flagOff: 41, nfuncdataOff: 43, size: 44, funcdataIsOffset: true };
  }
}

export const FUNC_FLAG_TOPFRAME = 1;
export const FUNC_FLAG_SPWRITE = 2;
export const FUNC_FLAG_ASM = 4;

export interface PclnHeader {
  generation: PclnGeneration;
  quantum: number;
  ptrSize: number;
  nfunc: number;
  /** The text start stored in the header (1.18+); 0 when the linker did not write it (Go 1.26). */
  textStart: number;
}

/** Parses and validates the fixed header; throws FormatError when the bytes are not a pclntab. */
export function parsePclnHeader(data: Buffer): PclnHeader {
  if (data.length < 16) throw new FormatError(`pclntab too short (${data.length} bytes)`);
  const magic = data.readUInt32LE(0);
  const generation = pclnGenerationOf(magic);
  if (!generation) throw new FormatError(`unknown pclntab magic 0x${magic.toString(16)}`);
  const quantum = data[6]!;
  const ptrSize = data[7]!;
  if (data[4] !== 0 || data[5] !== 0 || ![1, 2, 4].includes(quantum) || ptrSize !== 8) {
    throw new FormatError(`bad pclntab header (pad ${data[4]},${data[5]}, quantum ${quantum}, pointer size ${ptrSize}; only 64-bit is supported)`);
  }
  const word = (i: number): number => readWord(data, 8 + i * ptrSize);
  const nfunc = word(0);
  const textStart = generation === 'go1.18' || generation === 'go1.20' ? word(2) : 0;
  return { generation, quantum, ptrSize, nfunc, textStart };
}

function readWord(data: Buffer, off: number): number {
  if (off < 0 || off + 8 > data.length) throw new FormatError(`pclntab word at ${off} is outside the table (${data.length} bytes)`);
  const v = data.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(`pclntab word at ${off} is implausibly large`);
  return Number(v);
}

/** A function record: what the rest of the package needs, decoded on demand. */
export interface FuncInfo {
  readonly index: number;
  readonly entry: number; // link-time address
  readonly end: number; // next function's entry
  readonly off: number; // offset of the _func record in the table data
}

/** Where a pc-value table's value changes: pcs[i] starts values[i] (count of them), up to `end`. Reused. */
export class ChangePoints {
  pcs = new Float64Array(64);
  values = new Int32Array(64);
  count = 0;
  /** The first PC the table does not cover (or the function's end). */
  end = 0;

  grow(): void {
    const pcs = new Float64Array(this.pcs.length * 2);
    pcs.set(this.pcs);
    this.pcs = pcs;
    const values = new Int32Array(this.values.length * 2);
    values.set(this.values);
    this.values = values;
  }
}

/**
 * Ascending PCs by function: run r is function funcs[r] (an index for funcAt), for the PCs at
 * [ends[r - 1], ends[r]) (from 0 for the first). Indices, not FuncInfo objects: 20,000 objects held across a
 * batch's passes would be copied by each young-generation collection; made again per pass, they die young.
 */
export interface FunctionRuns {
  readonly funcs: Int32Array;
  readonly ends: Int32Array;
}

export class Pclntab {
  readonly header: PclnHeader;
  readonly generation: PclnGeneration;
  readonly nfunc: number;
  readonly quantum: number;
  private readonly layout: FuncLayout;
  private readonly funcnameBase: number;
  private readonly cutabBase: number;
  private readonly filetabBase: number;
  private readonly pctabBase: number;
  private readonly functabBase: number;
  private readonly functabEntrySize: number;
  /** Text start that functab entry offsets are added to (1.18+); 0 for absolute-PC generations. */
  readonly textStart: number;
  private readonly nameCache = new Map<number, string>();
  private readonly nameByIndex: Array<string | undefined> = [];
  private readonly fileCache = new Map<number, string>();
  private firstPc = 0;
  private endPc = 0;
  /** Little-endian reads on the hot paths: Buffer.readUInt32LE validates its argument on every call. */
  private readonly view: DataView;

  /**
   * @param data the table, starting at its header (bytes after the table may follow).
   * @param textStart for 1.18+: the address functab offsets are relative to (see findTextStart); ignored before.
   * @param pcTables set by withPcTablesOnDemand: data then lacks the pctab (functab follows filetab at once).
   */
  constructor(
    readonly data: Buffer,
    textStart: number,
    private readonly pcTables?: PcTablesOnDemand,
  ) {
    const h = parsePclnHeader(data);
    this.view = new DataView(data.buffer, data.byteOffset, data.length);
    this.header = h;
    this.generation = h.generation;
    this.nfunc = h.nfunc;
    this.quantum = h.quantum;
    this.layout = funcLayout(h.generation, h.ptrSize);
    const p = h.ptrSize;
    const word = (i: number): number => readWord(data, 8 + i * p);
    switch (h.generation) {
      case 'go1.2':
        this.funcnameBase = 0;
        this.cutabBase = 0;
        this.pctabBase = 0;
        this.functabBase = 8 + p;
        this.functabEntrySize = 2 * p;
        this.filetabBase = data.readUInt32LE(this.checkedOffset(this.functabBase + h.nfunc * 2 * p + p, 4));
        this.textStart = 0;
        break;
      case 'go1.16':
        this.funcnameBase = word(2);
        this.cutabBase = word(3);
        this.filetabBase = word(4);
        this.pctabBase = word(5);
        this.functabBase = word(6);
        this.functabEntrySize = 2 * p;
        this.textStart = 0;
        break;
      default:
        this.funcnameBase = word(3);
        this.cutabBase = word(4);
        this.filetabBase = word(5);
        this.pctabBase = word(6);
        this.functabBase = word(7);
        this.functabEntrySize = 8;
        this.textStart = textStart;
    }
    if (pcTables !== undefined) this.functabBase = this.pctabBase; // the pctab was cut out of data
    if (h.nfunc <= 0 || h.nfunc > 1e8) throw new FormatError(`implausible function count ${h.nfunc}`);
    for (const [what, off] of [['funcnametab', this.funcnameBase], ['cutab', this.cutabBase], ['filetab', this.filetabBase], ['pctab', this.pctabBase]] as const) {
      if (off >= data.length) throw new FormatError(`pclntab ${what} offset ${off} is outside the table (${data.length} bytes)`);
    }
    // functab = nfunc pairs plus the end PC of the last function.
    this.checkedOffset(this.functabBase, this.functabEntrySize * h.nfunc + this.functabEntrySize / 2);
    this.firstPc = this.pcAt(0);
    this.endPc = this.pcAt(h.nfunc);
    if (this.endPc < this.firstPc) throw new FormatError('pclntab function table is not sorted');
  }

  private u32(at: number): number {
    return this.view.getUint32(at, true);
  }

  /** Exact below 2^53, like Number(readBigUInt64LE) (which allocates a BigInt per read). */
  private u64(at: number): number {
    return this.view.getUint32(at, true) + this.view.getUint32(at + 4, true) * 2 ** 32;
  }

  private checkedOffset(off: number, len: number): number {
    if (off < 0 || off + len > this.data.length) throw new FormatError(`pclntab range [${off}, +${len}) is outside the table (${this.data.length} bytes)`);
    return off;
  }

  /** Entry PC of function i (i == nfunc gives the end of the last function). */
  pcAt(i: number): number {
    const o = this.functabBase + i * this.functabEntrySize;
    if (this.functabEntrySize === 8) return this.textStart + this.u32(o);
    return this.u64(o);
  }

  private funcOffAt(i: number): number {
    const o = this.functabBase + i * this.functabEntrySize + this.functabEntrySize / 2;
    const rel = this.functabEntrySize === 8 ? this.u32(o) : this.u64(o);
    return this.generation === 'go1.2' ? rel : this.functabBase + rel;
  }

  get minPc(): number {
    return this.firstPc;
  }
  get maxPc(): number {
    return this.endPc;
  }

  /** Index of the function whose [entry, next entry) holds pc, or -1 (debug/gosym's findFunc). */
  findIndex(pc: number): number {
    if (pc < this.firstPc || pc >= this.endPc) return -1;
    let lo = 0;
    let hi = this.nfunc; // first i with pcAt(i) > pc, minus one
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.pcAt(mid) > pc) hi = mid;
      else lo = mid + 1;
    }
    return lo - 1;
  }

  /**
   * findIndex for PCs taken in ascending order: `from` is the answer for the previous (lower) PC, or -1. The next
   * function is checked before searching, since a sorted batch usually moves on by a function or two.
   */
  findIndexFrom(pc: number, from: number): number {
    if (from >= 0 && pc >= this.pcAt(from)) {
      if (pc < this.pcAt(from + 1)) return from;
      if (from + 2 <= this.nfunc && pc < this.pcAt(from + 2)) return from + 1;
    }
    return this.findIndex(pc);
  }

  funcAt(i: number): FuncInfo {
    const off = this.funcOffAt(i);
    if (off < 0 || off + this.layout.size > this.data.length) throw new FormatError(`_func record ${i} at ${off} is outside the table`);
    return { index: i, entry: this.pcAt(i), end: this.pcAt(i + 1), off };
  }

  find(pc: number): FuncInfo | undefined {
    const i = this.findIndex(pc);
    return i < 0 ? undefined : this.funcAt(i);
  }

  /** The n-th uint32 field after the entry (1 = nameOff, 2 = args, 4 = pcsp, 5 = pcfile, 6 = pcln, 7 = npcdata, 8 = cuOffset). */
  private field(f: FuncInfo, n: number): number {
    return this.u32(f.off + this.layout.entrySize + 4 * (n - 1));
  }

  funcName(f: FuncInfo): string {
    let s = this.nameByIndex[f.index];
    if (s === undefined) {
      s = this.nameAt(this.field(f, 1));
      this.nameByIndex[f.index] = s;
    }
    return s;
  }

  /** Where f's NUL-terminated name starts in `data` (for callers that copy bytes rather than make strings). */
  funcNameOffset(f: FuncInfo): number {
    return this.funcnameBase + this.field(f, 1);
  }

  /**
   * Indexes of the functions whose names end with `suffix` (are `suffix`, with whole), ascending: one search of the
   * name bytes for every name that matches, then one integer compare per function, no string per function.
   */
  funcIndexesNamed(suffix: string, whole = false): number[] {
    const d = this.data;
    const needle = Buffer.from(`${suffix}\0`, 'utf8');
    // go1.16+: funcnametab ends where cutab starts; go1.2: names lie anywhere in the table.
    const end = this.cutabBase > this.funcnameBase ? this.cutabBase : d.length;
    const starts = new Set<number>();
    for (let at = d.indexOf(needle, this.funcnameBase); at >= 0 && at + needle.length <= end; at = d.indexOf(needle, at + 1)) {
      const start = at > this.funcnameBase ? Math.max(this.funcnameBase, d.lastIndexOf(0, at - 1) + 1) : at;
      if (!whole || start === at) starts.add(start - this.funcnameBase);
    }
    const out: number[] = [];
    if (starts.size === 0) return out;
    const nameField = this.layout.entrySize;
    for (let i = 0; i < this.nfunc; i++) {
      const off = this.funcOffAt(i);
      if (off >= 0 && off + this.layout.size <= d.length && starts.has(this.u32(off + nameField))) out.push(i);
    }
    return out;
  }

  /** A function name by its offset in funcnametab (also used by inline tree records). */
  nameAt(nameOff: number): string {
    let s = this.nameCache.get(nameOff);
    if (s === undefined) {
      s = readCString(this.data, this.funcnameBase + nameOff);
      this.nameCache.set(nameOff, s);
    }
    return s;
  }

  funcFlag(f: FuncInfo): number {
    return this.layout.flagOff === undefined ? 0 : this.data[f.off + this.layout.flagOff]!;
  }

  funcId(f: FuncInfo): number {
    return this.data[f.off + this.layout.funcIdOff]!;
  }

  private readonly scratchTarget = new Float64Array(1);
  private readonly scratchValue = new Int32Array(1);

  /** pcvalue as debug/gosym decodes it (table offset 0 is decoded, not treated as absent). */
  private pcvalue(tableOff: number, entry: number, target: number): number {
    this.scratchTarget[0] = target;
    this.pcvalues(tableOff, entry, this.scratchTarget, 0, 1, this.scratchValue);
    return this.scratchValue[0]!;
  }

  /** Values of one table at many PCs in one pass: targets[from..to) ascending, answers into out[from..to). */
  private pcvalues(tableOff: number, entry: number, targets: Float64Array, from: number, to: number, out: Int32Array): void {
    const tables = this.pcTables;
    if (tables === undefined) {
      this.decodeValues(this.data, this.pctabBase + tableOff, entry, targets, from, to, out);
      return;
    }
    const w = tables.window(tableOff, false);
    if (this.decodeValues(w.bytes, w.pos, entry, targets, from, to, out) || w.whole) return;
    const all = tables.window(tableOff, true); // the table runs past the chunk
    this.decodeValues(all.bytes, all.pos, entry, targets, from, to, out);
  }

  /**
   * The decoding of pcvalues, over the table at d[pos] (readStep, step by step). False when the bytes ended (or a
   * varint was too long) before the table did or every target was answered: answers past that point are -1.
   */
  private decodeValues(d: Buffer, pos: number, entry: number, targets: Float64Array, from: number, to: number, out: Int32Array): boolean {
    const quantum = this.quantum;
    let pc = entry;
    let val = -1;
    let k = from;
    let at = pos;
    while ((at = readStep(d, at, pc === entry)) >= 0) {
      val = (val + stepValueDelta) | 0;
      pc += stepPcDelta * quantum;
      while (k < to && targets[k]! < pc) out[k++] = val;
      if (k === to) return true;
    }
    while (k < to) out[k++] = -1; // the table ended first
    return at === STEP_END;
  }

  /** pcdata as the runtime reads it: an absent table (offset 0) gives -1. */
  private pcvalueOrAbsent(tableOff: number, entry: number, target: number): number {
    return tableOff === 0 ? -1 : this.pcvalue(tableOff, entry, target);
  }

  line(f: FuncInfo, pc: number): number {
    return this.pcvalue(this.field(f, 6), f.entry, pc);
  }

  /**
   * Splits ascending PCs, all in [minPc, maxPc), into runs by function (see FunctionRuns): the decoding that
   * follows is then one loop over the runs, which the JIT compiles once for the whole batch.
   */
  functionRuns(pcs: Float64Array): FunctionRuns {
    const funcs = new Int32Array(Math.min(pcs.length, this.nfunc));
    const ends = new Int32Array(funcs.length);
    let fi = -1;
    let r = 0;
    for (let k = 0; k < pcs.length; r++) {
      fi = this.findIndexFrom(pcs[k]!, fi);
      const fend = this.pcAt(fi + 1);
      let end = k + 1;
      while (end < pcs.length && pcs[end]! < fend) end++;
      funcs[r] = fi;
      ends[r] = end;
      k = end;
    }
    return { funcs: funcs.subarray(0, r), ends: ends.subarray(0, r) };
  }

  /** Lines at the PCs of every run (the same ascending pcs that made the runs), into out. */
  linesOfRuns(runs: FunctionRuns, pcs: Float64Array, out: Int32Array): void {
    this.valuesOfRuns(6, runs, pcs, out);
  }

  /** File numbers at the PCs of every run; turn each into a name with fileName. */
  fileNumbersOfRuns(runs: FunctionRuns, pcs: Float64Array, out: Int32Array): void {
    this.valuesOfRuns(5, runs, pcs, out);
  }

  private valuesOfRuns(field: number, runs: FunctionRuns, pcs: Float64Array, out: Int32Array): void {
    const { funcs, ends } = runs;
    let from = 0;
    for (let r = 0; r < funcs.length; r++) {
      const f = this.funcAt(funcs[r]!);
      this.pcvalues(this.field(f, field), f.entry, pcs, from, ends[r]!, out);
      from = ends[r]!;
    }
  }

  /** File name at pc, '' when unknown (debug/gosym's go12PCToFile). */
  file(f: FuncInfo, pc: number): string {
    return this.fileName(f, this.pcvalue(this.field(f, 5), f.entry, pc));
  }

  /** The name of f's file number fno, '' when there is none. */
  fileName(f: FuncInfo, fno: number): string {
    const at = this.fileNameOffset(f, fno);
    if (at < 0) return '';
    let s = this.fileCache.get(at);
    if (s === undefined) {
      s = readCString(this.data, at);
      this.fileCache.set(at, s);
    }
    return s;
  }

  /** Where the NUL-terminated name of f's file number fno starts in `data`, or -1 when there is none. */
  fileNameOffset(f: FuncInfo, fno: number): number {
    if (this.generation === 'go1.2') {
      if (fno <= 0) return -1;
      const at = this.filetabBase + 4 * fno;
      if (at + 4 > this.data.length) return -1;
      return this.u32(at);
    }
    if (fno < 0) return -1;
    const at = this.cutabBase + (this.field(f, 8) + fno) * 4;
    if (at + 4 > this.data.length) return -1;
    const nameOff = this.u32(at);
    return nameOff === 0xffffffff ? -1 : this.filetabBase + nameOff;
  }

  /**
   * The same table without its pctab in memory (three quarters of it): the pc-value tables are read through
   * `read(offset in the pclntab, length)` a chunk at a time (PcTablesOnDemand), the answers are the same. Itself
   * for the go1.2 layout, whose tables lie among the function records.
   */
  withPcTablesOnDemand(read: (offset: number, length: number) => Buffer, chunking?: PcChunking): Pclntab {
    const start = this.pctabBase;
    const end = this.functabBase; // the pctab lies between filetab and functab
    if (this.pcTables !== undefined || this.generation === 'go1.2') return this;
    if (!(this.funcnameBase < start && this.cutabBase < start && this.filetabBase < start && start <= end)) return this;
    const data = Buffer.concat([this.data.subarray(0, start), this.data.subarray(end)]);
    return new Pclntab(data, this.textStart, new PcTablesOnDemand((off, length) => read(start + off, length), end - start, chunking));
  }

  /** Bytes the function has below its entry SP at pc (runtime pcsp), or -1 when unknown. */
  spDelta(f: FuncInfo, pc: number): number {
    return this.pcvalueOrAbsent(this.field(f, 4), f.entry, pc);
  }

  /**
   * The pcsp table's change points into out (reused): where the SP delta changes, for the BPF side (which cannot
   * decode varints), and the first PC it does not cover (spDelta is -1 from there: alignment padding after the
   * code), or f.end at most.
   */
  spDeltaChanges(f: FuncInfo, out: ChangePoints): void {
    out.count = 0;
    out.end = f.entry;
    const off = this.field(f, 4);
    if (off === 0) return;
    const tables = this.pcTables;
    if (tables === undefined) {
      this.decodeChanges(this.data, this.pctabBase + off, f.entry, f.end, out);
      return;
    }
    const w = tables.window(off, false);
    if (this.decodeChanges(w.bytes, w.pos, f.entry, f.end, out) || w.whole) return;
    const all = tables.window(off, true); // the table runs past the chunk
    this.decodeChanges(all.bytes, all.pos, f.entry, f.end, out);
  }

  /**
   * Every change of value of the table at d[pos] below endPc, into out (decodeValues' steps, recording where the
   * value changes instead of answering PCs). False when the bytes ended (or a varint was too long) before the
   * table or endPc did.
   */
  private decodeChanges(d: Buffer, pos: number, entry: number, endPc: number, out: ChangePoints): boolean {
    const quantum = this.quantum;
    let pc = entry;
    let val = -1;
    let n = 0;
    let at = pos;
    while (pc < endPc && (at = readStep(d, at, pc === entry)) >= 0) {
      const v = (val + stepValueDelta) | 0;
      if (n === 0 || v !== val) {
        if (n === out.pcs.length) out.grow();
        out.pcs[n] = pc;
        out.values[n] = v;
        n++;
      }
      val = v;
      pc += stepPcDelta * quantum;
    }
    out.count = n;
    out.end = Math.min(pc, endPc);
    return pc >= endPc || at === STEP_END;
  }

  private npcdata(f: FuncInfo): number {
    return this.field(f, 7);
  }

  /** pcdata table `index` at pc (runtime pcdatavalue): -1 when the function has no such table. */
  pcdata(f: FuncInfo, index: number, pc: number): number {
    if (index >= this.npcdata(f)) return -1;
    const at = f.off + this.layout.size + 4 * index;
    if (at + 4 > this.data.length) return -1;
    return this.pcvalueOrAbsent(this.u32(at), f.entry, pc);
  }

  /**
   * Where funcdata `index` lives: for 1.18+ an offset from moduledata.gofunc, before that an absolute address.
   * undefined when the function has none.
   */
  funcdata(f: FuncInfo, index: number): { kind: 'gofunc-offset' | 'address'; value: number } | undefined {
    const nfuncdata = this.data[f.off + this.layout.nfuncdataOff]!;
    if (index >= nfuncdata) return undefined;
    let at = f.off + this.layout.size + 4 * this.npcdata(f);
    if (this.layout.funcdataIsOffset) {
      at += 4 * index;
      if (at + 4 > this.data.length) return undefined;
      const v = this.u32(at);
      return v === 0xffffffff ? undefined : { kind: 'gofunc-offset', value: v };
    }
    at = (at + 7) & ~7; // pointers are 8-aligned after pcdata
    at += 8 * index;
    if (at + 8 > this.data.length) return undefined;
    const v = this.u64(at);
    return v === 0 ? undefined : { kind: 'address', value: v };
  }
}
