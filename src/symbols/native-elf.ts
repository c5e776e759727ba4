// Function symbols of a native ELF file (libc, ld.so, the C part of a cgo binary) from .symtab and .dynsym:
// link-time address → function name. No file names or lines (that would take DWARF).
//
// Kept compact because some files are huge (node: 185k symbols, 7 MiB of names): addresses in typed arrays and
// each name as an offset into its string table, read from the file (pread) when a lookup asks for it. The
// tables are parsed straight from the section bytes, so no per-symbol objects are made at all.

import type { ByteSource } from '../gosym/bytes';
import { FormatError } from '../gosym/bytes';
import { ElfFile, SHF_COMPRESSED, SHT_DYNSYM, SHT_NOBITS, SHT_SYMTAB } from '../gosym/elf';
import { lastAtOrBelow, sortedOrder } from './sorted';

const STT_FUNC = 2;
const STT_GNU_IFUNC = 10;
const SHF_EXECINSTR = 4n;
const SYM_SIZE = 24;
const UNDERSCORE = 0x5f;
/** Names looked up once are kept (they repeat across processes of the same file), up to this many. */
const NAME_CACHE_LIMIT = 4096;

/**
 * A table as it crosses threads (built on the reader's thread, used on the agent's): its arrays, and for each
 * string table the index of the file (of those given to fromData) its names are read from, or its bytes.
 */
export interface NativeSymbolsData {
  ranges: Ranges;
  nameOff: Uint32Array;
  nameTable: Uint8Array;
  names: Array<{ file: number; offset: number; size: number } | { bytes: Uint8Array }>;
}

/** Where one table's names live: in the file (read on demand) or, for a compressed string table, in memory. */
interface NameSource {
  source: ByteSource | undefined;
  /** File offset of the string table (source) or the table itself. */
  offset: number;
  size: number;
  bytes: Buffer | undefined;
}

/** A symbol table's string table while the symbols are being sorted out. */
interface StrTab {
  bytes: Buffer;
  src: NameSource;
}

/**
 * Of several names at one address (write, __write, __libc_write), the one a person would look for: fewer leading
 * underscores, then shorter, then the first in byte order. True when name a is the better one. (One walk over the
 * bytes: most pairs are the same name from .symtab and .dynsym.)
 */
function better(a: Buffer, ao: number, b: Buffer, bo: number): boolean {
  let ua = 0;
  while (a[ao + ua] === UNDERSCORE) ua++;
  let ub = 0;
  while (b[bo + ub] === UNDERSCORE) ub++;
  if (ua !== ub) return ua < ub;
  let first = 0; // sign of the first differing byte
  let i = ua;
  for (;; i++) {
    const x = a[ao + i]!;
    const y = b[bo + i]!;
    if (x !== y) {
      if (x === 0) return true; // a is a prefix of b: shorter
      if (y === 0) return false;
      first = x < y ? -1 : 1;
      break;
    }
    if (x === 0) return false; // equal names
  }
  // Same length decides by the first difference; otherwise the shorter wins.
  const la = a.indexOf(0, ao + i) - ao;
  const lb = b.indexOf(0, bo + i) - bo;
  return la !== lb ? la < lb : first < 0;
}

/**
 * Sorted, non-empty [start, start + length) address ranges, one per address: starts as offsets from base. 32-bit
 * where they fit (a file's functions span far less than 4 GiB, and few are longer), else 64-bit.
 */
export interface Ranges {
  base: number;
  starts: Uint32Array | Float64Array;
  lengths: Uint32Array | Float64Array;
}

function compactRanges(starts: Float64Array, ends: Float64Array): Ranges {
  const n = starts.length;
  const base = n > 0 ? starts[0]! : 0;
  let maxLength = 0;
  for (let i = 0; i < n; i++) maxLength = Math.max(maxLength, ends[i]! - starts[i]!);
  const offsets = n > 0 && starts[n - 1]! - base < 2 ** 32 ? new Uint32Array(n) : new Float64Array(n);
  const lengths = maxLength < 2 ** 32 ? new Uint32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) {
    offsets[i] = starts[i]! - base;
    lengths[i] = ends[i]! - starts[i]!;
  }
  return { base, starts: offsets, lengths };
}

export class NativeSymbols {
  private readonly ranges: Ranges;
  /** Name of entry i: offset nameOff[i] in the string table of nameSources[nameTable[i]]. */
  private readonly nameOff: Uint32Array;
  private readonly nameTable: Uint8Array;
  private readonly nameSources: NameSource[];
  private readonly nameCache = new Map<number, string>();

  /**
   * @param debug the file's separate debug file (/usr/lib/debug/.build-id/…), whose .symtab holds the static
   *   functions a stripped library lost. Names are read from the files when looked up: both must stay open
   *   as long as this table is used.
   */
  static fromElf(elf: ElfFile, debug?: ElfFile): NativeSymbols {
    const tables: Array<[ElfFile, string]> = [[elf, '.symtab'], [elf, '.dynsym']];
    if (debug) tables.push([debug, '.symtab']);
    const text = elf.sections
      .filter((s) => (s.flags & SHF_EXECINSTR) !== 0n && s.addr !== 0 && s.size > 0)
      .map((s) => [s.addr, s.addr + s.size] as const);
    const t = build(tables, text);
    return new NativeSymbols(t.ranges, t.nameOff, t.nameTable, t.sources);
  }

  /**
   * fromElf, falling back to the file's own symbols when its debug file is the problem, and to an empty table when
   * the file's symbols are unreadable too.
   */
  static bestOf(elf: ElfFile, debug?: ElfFile): NativeSymbols {
    for (const d of debug ? [debug, undefined] : [undefined]) {
      try {
        return NativeSymbols.fromElf(elf, d);
      } catch {
        // try the next
      }
    }
    return NativeSymbols.empty();
  }

  /** About how many symbols fromElf would look at (the entries of the tables it reads): what building it costs. */
  static entriesIn(elf: ElfFile, debug?: ElfFile): number {
    let n = 0;
    for (const [file, name] of [[elf, '.symtab'], [elf, '.dynsym'], [debug, '.symtab']] as const) {
      const sec = file?.section(name);
      if (sec && (sec.type === SHT_SYMTAB || sec.type === SHT_DYNSYM)) n += Math.floor(sec.size / SYM_SIZE);
    }
    return n;
  }

  /** The table made on another thread; `files` are this thread's sources of the files toData was given. */
  static fromData(d: NativeSymbolsData, files: readonly ByteSource[]): NativeSymbols {
    const sources = d.names.map((n): NameSource => {
      if ('bytes' in n) return { source: undefined, offset: 0, size: n.bytes.length, bytes: Buffer.from(n.bytes.buffer, n.bytes.byteOffset, n.bytes.length) };
      const source = files[n.file];
      if (!source) throw new Error(`symbol names in file ${n.file}, which was not given`);
      return { source, offset: n.offset, size: n.size, bytes: undefined };
    });
    return new NativeSymbols(d.ranges, d.nameOff, d.nameTable, sources);
  }

  /** What fromData makes this table again from; `files` are the sources (in order) the names are read from. */
  toData(files: readonly ByteSource[]): NativeSymbolsData {
    const names = this.nameSources.map((n) => {
      // Copied: a Buffer may be a slice of a pooled ArrayBuffer, which cannot be handed over.
      if (n.bytes) return { bytes: new Uint8Array(n.bytes) };
      const file = files.indexOf(n.source!);
      if (file < 0) throw new Error('symbol names in a file that was not given');
      return { file, offset: n.offset, size: n.size };
    });
    return { ranges: this.ranges, nameOff: this.nameOff, nameTable: this.nameTable, names };
  }

  /** The ArrayBuffers of a table's data, to hand over rather than copy. */
  static transferables(d: NativeSymbolsData): ArrayBuffer[] {
    const arrays: ArrayBufferView[] = [d.ranges.starts, d.ranges.lengths, d.nameOff, d.nameTable];
    for (const n of d.names) if ('bytes' in n) arrays.push(n.bytes);
    return [...new Set(arrays.map((a) => a.buffer as ArrayBuffer))];
  }

  /** An empty table. */
  static empty(): NativeSymbols {
    return new NativeSymbols({ base: 0, starts: new Uint32Array(0), lengths: new Uint32Array(0) }, new Uint32Array(0), new Uint8Array(0), []);
  }

  private constructor(ranges: Ranges, nameOff: Uint32Array, nameTable: Uint8Array, sources: NameSource[]) {
    this.ranges = ranges;
    this.nameOff = nameOff;
    this.nameTable = nameTable;
    this.nameSources = sources;
  }

  get size(): number {
    return this.ranges.starts.length;
  }

  /** The function containing a link-time address, or undefined (also when its name can no longer be read). */
  lookup(vaddr: number): { name: string; start: number } | undefined {
    const { base, starts, lengths } = this.ranges;
    const i = lastAtOrBelow(starts, vaddr - base);
    if (i < 0 || vaddr - base - starts[i]! >= lengths[i]!) return undefined;
    const name = this.name(i);
    return name === undefined ? undefined : { name, start: base + starts[i]! };
  }

  private name(i: number): string | undefined {
    const cached = this.nameCache.get(i);
    if (cached !== undefined) return cached;
    const src = this.nameSources[this.nameTable[i]!]!;
    let name: string | undefined;
    try {
      name = readName(src, this.nameOff[i]!);
    } catch {
      return undefined; // the file was closed under us
    }
    if (this.nameCache.size >= NAME_CACHE_LIMIT) this.nameCache.clear();
    this.nameCache.set(i, name);
    return name;
  }
}

/** The NUL-terminated UTF-8 name at `off` of a string table (its NUL was checked when the table was built). */
function readName(src: NameSource, off: number): string {
  if (src.bytes) return src.bytes.toString('utf8', off, src.bytes.indexOf(0, off));
  for (let want = 128; ; want *= 4) {
    const len = Math.min(want, src.size - off);
    const chunk = src.source!.read(src.offset + off, len);
    const nul = chunk.indexOf(0);
    if (nul >= 0) return chunk.toString('utf8', 0, nul);
    if (len < want) throw new FormatError(`unterminated symbol name at ${off}`);
  }
}

/** A symbol table: its entries a chunk at a time (symbol tables run to megabytes), and its string table. */
interface SymTab {
  count: number;
  chunks: () => IterableIterator<Buffer>;
  strtab: StrTab;
}

/** Entries read at once from a symbol table: whole Elf64_Syms. */
const CHUNK_ENTRIES = 8192;

function openTable(file: ElfFile, name: string): SymTab | undefined {
  const sec = file.section(name);
  if (!sec || (sec.type !== SHT_SYMTAB && sec.type !== SHT_DYNSYM)) return undefined;
  const strSec = file.sections[sec.link];
  let bytes: Buffer = Buffer.alloc(0);
  let src: NameSource = { source: undefined, offset: 0, size: 0, bytes };
  if (strSec) {
    bytes = file.sectionData(strSec);
    const inFile = strSec.type !== SHT_NOBITS && (strSec.flags & BigInt(SHF_COMPRESSED)) === 0n && !strSec.name.startsWith('.zdebug_');
    src = inFile ? { source: file.source, offset: strSec.offset, size: strSec.size, bytes: undefined } : { source: undefined, offset: 0, size: bytes.length, bytes };
  }
  const plain = (sec.flags & BigInt(SHF_COMPRESSED)) === 0n;
  const whole = plain ? undefined : file.sectionData(sec);
  const count = Math.floor((whole ? whole.length : sec.size) / SYM_SIZE);
  // Entry 0 is the null symbol.
  function* chunks(): IterableIterator<Buffer> {
    for (let e = 1; e < count; e += CHUNK_ENTRIES) {
      const k = Math.min(CHUNK_ENTRIES, count - e);
      yield whole ? whole.subarray(e * SYM_SIZE, (e + k) * SYM_SIZE) : file.source.read(sec!.offset + e * SYM_SIZE, k * SYM_SIZE);
    }
  }
  return { count, chunks, strtab: { bytes, src } };
}

/** Symbols while they are collected: parallel arrays, n in use. */
interface Collected {
  value: Float64Array;
  size: Float64Array;
  off: Uint32Array;
  tab: Uint8Array;
  n: number;
}

/** Words of a buffer (copied when it is not 4-byte aligned). */
function words(b: Buffer): Uint32Array {
  if (b.byteOffset % 4 !== 0) b = Buffer.from(b);
  return new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2);
}

function tooLarge(hi: number, lo: number): FormatError {
  return new FormatError(`symbol value 0x${(hi * 2 ** 32 + lo).toString(16)} is too large`);
}

/** Appends the named, non-zero function symbols of one Elf64_Sym table; names must be NUL-terminated. */
function collect(data: Buffer, str: Buffer, t: number, c: Collected): void {
  const w = words(data);
  const lastNul = str.lastIndexOf(0);
  const { value, size, off, tab } = c;
  let n = c.n;
  for (let o = 0; o + SYM_SIZE <= data.length; o += SYM_SIZE) {
    const i = o >>> 2;
    const nameOff = w[i]!;
    const vhi = w[i + 3]!;
    const shi = w[i + 5]!;
    if (vhi >= 0x200000) throw tooLarge(vhi, w[i + 2]!); // above 2^53: corrupt
    if (shi >= 0x200000) throw tooLarge(shi, w[i + 4]!);
    if (nameOff >= str.length) continue; // no name
    if (nameOff > lastNul) throw new FormatError(`unterminated symbol name at ${nameOff}`);
    const type = data[o + 4]! & 0xf;
    const v = vhi * 2 ** 32 + w[i + 2]!;
    if ((type !== STT_FUNC && type !== STT_GNU_IFUNC) || v === 0 || str[nameOff] === 0) continue;
    value[n] = v;
    size[n] = shi * 2 ** 32 + w[i + 4]!;
    off[n] = nameOff;
    tab[n] = t;
    n++;
  }
  c.n = n;
}

interface Built {
  ranges: Ranges;
  nameOff: Uint32Array;
  nameTable: Uint8Array;
  sources: NameSource[];
}

function build(tables: ReadonlyArray<readonly [ElfFile, string]>, text: ReadonlyArray<readonly [number, number]>): Built {
  // 1. Function symbols of every table: address, size, name (table, offset).
  const opened: SymTab[] = [];
  for (const [file, name] of tables) {
    const t = openTable(file, name);
    if (t) opened.push(t);
  }
  const cap = opened.reduce((sum, t) => sum + t.count, 0);
  const c: Collected = { value: new Float64Array(cap), size: new Float64Array(cap), off: new Uint32Array(cap), tab: new Uint8Array(cap), n: 0 };
  opened.forEach((t, i) => {
    for (const chunk of t.chunks()) collect(chunk, t.strtab.bytes, i, c);
  });
  const strtabs = opened.map((t) => t.strtab);
  // 2. Sorted by address, one entry per address (the largest size, the better name).
  const order = sortedOrder(c.value, c.n);
  let u = 0;
  for (let k = 0; k < c.n; k++) if (k === 0 || c.value[order[k]!] !== c.value[order[k - 1]!]) u++;
  const starts = new Float64Array(u);
  const sizes = new Float64Array(u);
  const nameOff = new Uint32Array(u);
  const nameTable = new Uint8Array(u);
  let j = -1;
  for (let k = 0; k < c.n; k++) {
    const i = order[k]!;
    if (j >= 0 && starts[j] === c.value[i]) {
      if (c.size[i]! > sizes[j]!) sizes[j] = c.size[i]!;
      if (better(strtabs[c.tab[i]!]!.bytes, c.off[i]!, strtabs[nameTable[j]!]!.bytes, nameOff[j]!)) {
        nameOff[j] = c.off[i]!;
        nameTable[j] = c.tab[i]!;
      }
      continue;
    }
    j++;
    starts[j] = c.value[i]!;
    sizes[j] = c.size[i]!;
    nameOff[j] = c.off[i]!;
    nameTable[j] = c.tab[i]!;
  }
  return { ranges: compactRanges(starts, endsOf(starts, sizes, u, text)), nameOff, nameTable, sources: strtabs.map((s) => s.src) };
}

/** Ends: a symbol without a size ends at the next symbol or at the end of its section, whichever is first. */
function endsOf(starts: Float64Array, sizes: Float64Array, u: number, text: ReadonlyArray<readonly [number, number]>): Float64Array {
  const ends = new Float64Array(u);
  for (let i = 0; i < u; i++) {
    const a = starts[i]!;
    if (sizes[i]! > 0) {
      ends[i] = a + sizes[i]!;
      continue;
    }
    let end = i + 1 < u ? starts[i + 1]! : Number.MAX_SAFE_INTEGER;
    let inText = false;
    for (const [lo, hi] of text) {
      if (a >= lo && a < hi) {
        end = Math.min(end, hi);
        inText = true;
        break;
      }
    }
    if (!inText && end === Number.MAX_SAFE_INTEGER) end = a + 1;
    ends[i] = end;
  }
  return ends;
}
