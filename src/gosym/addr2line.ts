// The two output formats of `quietflame addr2line`: Go's own (byte for byte what `go tool addr2line` prints)
// and one JSON line per address with the inlined frames. Input and output stay in Buffers: a batch of 200,000
// addresses should not cost 400,000 short-lived strings. The CLI is a short-lived process, so what counts is
// cold speed: few passes over the batch, one loop per function (see radix.ts), and few fresh pages touched.

import { REVERSE_SYNTAX } from './address-lines';
import { GoBinary } from './binary';
import { FormatError } from './bytes';
import { FunctionRuns, Pclntab } from './pclntab';
import { radixSortPairs } from './radix';
import { hugePageBytes, ScratchArrays } from './huge-pages';

/** Takes output as it is produced; the chunk's memory is reused once the call returns, so write it synchronously. */
export type WriteChunk = (chunk: Buffer) => void;

/** Output is handed over in chunks of about this many bytes: a 200,000-address answer is 13 MB. */
const CHUNK = 1 << 18;
const FIRST_CHUNK = 1 << 12;

/** Grows as bytes are appended (by doubling: capacity that is never written costs no memory). */
class OutputBuffer {
  buf: Buffer;
  len = 0;

  constructor(capacity = 1 << 16) {
    this.buf = hugePageBytes(capacity); // the dictionary and answers of a big batch: touched once, in huge pages
  }

  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }

  text(s: string): void {
    this.reserve(s.length * 3);
    this.len += this.buf.write(s, this.len, 'utf8');
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b;
  }

  /** Appends the NUL-terminated string at src[at] (without the NUL), byte by byte: no string is made. */
  cString(src: Buffer, at: number): void {
    if (at < 0) throw new FormatError(`string offset ${at} outside its table`);
    const srcEnd = src.length;
    let buf = this.buf;
    let len = this.len;
    for (let p = at; ; p++) {
      if (p >= srcEnd) throw new FormatError(`unterminated string at offset ${at} of its table`);
      const c = src[p]!;
      if (c === 0) break;
      if (len === buf.length) {
        this.len = len;
        this.reserve(1);
        buf = this.buf;
      }
      buf[len++] = c;
    }
    this.len = len;
  }
}

/** Growing Int32Array. */
class Int32List {
  private a = new Int32Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.a.length) {
      const bigger = new Int32Array(this.a.length * 2);
      bigger.set(this.a);
      this.a = bigger;
    }
    this.a[this.length++] = v;
  }
  take(): Int32Array {
    return this.a.subarray(0, this.length);
  }
}

/** Entries every batch's dictionary starts with: an unknown PC (followed by its line, 0) and the reverse syntax. */
const UNKNOWN_ENTRY = 0;
const REVERSE_ENTRY = 1;
const FIXED_ENTRIES = ['?\n?:', '!reverse translation not implemented\n']; // cmd/addr2line says the same

/**
 * Every answer is "function\nfile:" followed by its line: those prefixes are copied once per function and file
 * run into a dictionary of byte strings (entry e is bytes[heads[e], heads[e + 1])), and the answers are written
 * after them in the same buffer, so each answer's prefix is one copyWithin (a native memmove, and Buffer.copy's
 * argument checks cost more than the copy).
 */
class Dictionary {
  readonly bytes: OutputBuffer;
  private readonly heads = new Int32List();
  private entryStart = 0;
  longest = 0;

  constructor(capacity: number) {
    this.bytes = new OutputBuffer(capacity);
    this.heads.push(0);
    for (const t of FIXED_ENTRIES) {
      this.bytes.text(t);
      this.close();
    }
  }

  /** Adds "name\nfile:" from the table's NUL-terminated strings (fileAt < 0: no file); returns its entry. */
  add(data: Buffer, nameAt: number, fileAt: number): number {
    const b = this.bytes;
    b.cString(data, nameAt);
    b.byte(0x0a);
    if (fileAt >= 0) b.cString(data, fileAt);
    b.byte(0x3a);
    return this.close();
  }

  private close(): number {
    const end = this.bytes.len;
    this.heads.push(end);
    if (end - this.entryStart > this.longest) this.longest = end - this.entryStart;
    this.entryStart = end;
    return this.heads.length - 2;
  }

  offsets(): Int32Array {
    return this.heads.take();
  }
}

/**
 * Answers in `go tool addr2line` format (two lines each) for a batch of parsed input lines. The PCs are answered
 * in address order, so each function's line and file tables are decoded once per batch, not once per address.
 */
export function goAddr2line(bin: GoBinary, pcs: Float64Array, write: WriteChunk): void {
  const pcln = bin.pcln;
  // Nine arrays of a batch's length (entryOf, lineOf, the sort's keys and indices and their spares, the sorted PCs,
  // their lines and file numbers): 40 bytes an address, in one block of huge pages.
  const scratch = new ScratchArrays(pcs.length * 40 + 64);
  const entryOf = scratch.int32(pcs.length).fill(UNKNOWN_ENTRY); // per input line, until found
  const lineOf = scratch.int32(pcs.length);
  const { sorted, order } = knownPcsInOrder(pcln.minPc, pcln.maxPc, pcs, entryOf, scratch);
  // A guess at the dictionary's size: pages it leaves unwritten cost nothing, a second copy would.
  const dict = new Dictionary(Math.min(sorted.length, 4 * pcln.nfunc) * 96 + 256);
  findAnswers(pcln, sorted, order, dict, entryOf, lineOf, scratch);
  writeAnswers(dict, entryOf, lineOf, write);
}

/**
 * The PCs inside the function table, ascending, with their input indices; marks reverse-syntax lines in entryOf
 * on the way (everything else outside the table stays unknown).
 */
function knownPcsInOrder(lo: number, hi: number, pcs: Float64Array, entryOf: Int32Array, scratch: ScratchArrays): { sorted: Float64Array; order: Uint32Array } {
  const keys = scratch.uint32(pcs.length);
  const order = scratch.uint32(pcs.length);
  const count = collectKnown(pcs, lo, hi, keys, order, entryOf);
  if (hi - lo > 2 ** 32) {
    // Only a corrupt table spans 4 GiB (the keys wrapped): a comparison sort of the PCs themselves.
    const byPc = order.subarray(0, count).sort((a, b) => pcs[a]! - pcs[b]!);
    return { sorted: gatherPcs(pcs, byPc), order: byPc };
  }
  const r = radixSortPairs(keys, order, count, hi - lo - 1, scratch.uint32(pcs.length), scratch.uint32(pcs.length));
  return { sorted: offsetsToPcs(r.keys, scratch.float64(count), lo), order: r.idx };
}

/** Keys (pc - lo) and input indices of the PCs in [lo, hi); returns how many. */
function collectKnown(pcs: Float64Array, lo: number, hi: number, keys: Uint32Array, order: Uint32Array, entryOf: Int32Array): number {
  let count = 0;
  for (let i = 0; i < pcs.length; i++) {
    const pc = pcs[i]!;
    if (pc >= lo && pc < hi) {
      keys[count] = pc - lo;
      order[count++] = i;
    } else if (pc === REVERSE_SYNTAX) {
      entryOf[i] = REVERSE_ENTRY;
    }
  }
  return count;
}

function offsetsToPcs(keys: Uint32Array, out: Float64Array, lo: number): Float64Array {
  const count = out.length;
  for (let k = 0; k < count; k++) out[k] = keys[k]! + lo;
  return out;
}

function gatherPcs(pcs: Float64Array, order: Uint32Array): Float64Array {
  const out = new Float64Array(order.length);
  for (let k = 0; k < order.length; k++) out[k] = pcs[order[k]!]!;
  return out;
}

/**
 * Run by run (one per function): decodes every run's line table, then every file table, then notes each answer.
 * Three short loops rather than one long one: each is compiled on its own, early, and quickly. A function whose
 * code alternates between files (inlined calls) reuses its entry for a file it has already had.
 */
function findAnswers(pcln: Pclntab, sorted: Float64Array, order: Uint32Array, dict: Dictionary, entryOf: Int32Array, lineOf: Int32Array, scratch: ScratchArrays): void {
  const lines = scratch.int32(sorted.length);
  const fnos = scratch.int32(sorted.length);
  const runs = pcln.functionRuns(sorted);
  pcln.linesOfRuns(runs, sorted, lines);
  pcln.fileNumbersOfRuns(runs, sorted, fnos);
  noteAnswers(pcln, runs, order, lines, fnos, dict, entryOf, lineOf);
}

function noteAnswers(pcln: Pclntab, runs: FunctionRuns, order: Uint32Array, lines: Int32Array, fnos: Int32Array, dict: Dictionary, entryOf: Int32Array, lineOf: Int32Array): void {
  const seenFno = new Int32Array(16); // this function's files so far, and their entries
  const seenEntry = new Int32Array(16);
  const data = pcln.data;
  const { funcs, ends } = runs;
  let k = 0;
  for (let r = 0; r < funcs.length; r++) {
    const f = pcln.funcAt(funcs[r]!);
    const end = ends[r]!;
    const nameAt = pcln.funcNameOffset(f);
    let seen = 0;
    let entry = 0;
    for (let j = k; j < end; j++) {
      const fno = fnos[j]!;
      if (j === k || fno !== fnos[j - 1]) {
        let s = 0;
        while (s < seen && seenFno[s] !== fno) s++;
        if (s < seen) {
          entry = seenEntry[s]!;
        } else {
          entry = dict.add(data, nameAt, pcln.fileNameOffset(f, fno));
          if (seen < seenFno.length) {
            seenFno[seen] = fno;
            seenEntry[seen++] = entry;
          }
        }
      }
      const i = order[j]!;
      entryOf[i] = entry;
      lineOf[i] = lines[j]!;
    }
    k = end;
  }
}

/**
 * Writes the answers in input order, in chunks: dictionary entry + decimal line + newline each. The first chunk
 * is small, so the write of a full chunk has run before the JIT compiles the loop: compiled without it, the loop
 * was thrown away at the first full chunk and ran uncompiled for the next thousands of answers.
 */
function writeAnswers(dict: Dictionary, entryOf: Int32Array, lineOf: Int32Array, write: WriteChunk): void {
  const heads = dict.offsets();
  const start = dict.bytes.len;
  const room = dict.longest + 12; // 12: "-2147483648\n"
  dict.bytes.reserve(Math.min(CHUNK, entryOf.length * room) + room);
  const out = dict.bytes.buf;
  const fullLimit = Math.min(out.length - room, start + CHUNK); // the same pages, chunk after chunk
  let limit = Math.min(fullLimit, start + FIRST_CHUNK);
  let at = start;
  for (let i = 0; i < entryOf.length; i++) {
    if (at > limit) {
      write(out.subarray(start, at));
      at = start;
      limit = fullLimit;
    }
    const e = entryOf[i]!;
    const from = heads[e]!;
    const to = heads[e + 1]!;
    out.copyWithin(at, from, to);
    at += to - from;
    if (e === REVERSE_ENTRY) continue;
    let line = lineOf[i]!;
    if (line < 0) {
      out[at++] = 0x2d;
      line = -line;
    }
    let digits = 1;
    for (let x = line; x >= 10; x = (x / 10) | 0) digits++;
    at += digits;
    for (let p = at - 1; p >= at - digits; p--) {
      out[p] = 0x30 + (line % 10);
      line = (line / 10) | 0;
    }
    out[at++] = 0x0a;
  }
  if (at > start) write(out.subarray(start, at));
}

/** One JSON line per input: {"pc":"0x…","frames":[{function,file,line},…]} innermost first. */
export function inlineAddr2line(bin: GoBinary, pcs: Float64Array, write: WriteChunk): void {
  const out = new OutputBuffer();
  for (const p of pcs) {
    const pc = p === REVERSE_SYNTAX ? 0 : p;
    out.text(JSON.stringify({ pc: '0x' + pc.toString(16), frames: bin.frames(pc) }) + '\n');
    if (out.len >= CHUNK) {
      write(out.buf.subarray(0, out.len));
      out.len = 0;
    }
  }
  if (out.len > 0) write(out.buf.subarray(0, out.len));
}
