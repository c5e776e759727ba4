// The two output formats of `quietflame addr2line`: Go's own (byte for byte what `go tool addr2line` prints)
// and one JSON line per address with the inlined frames. Input and output stay in Buffers: a batch of 200,000
// addresses should not cost 400,000 short-lived strings.

import { GoBinary } from './binary';

/** Marks an input line with a ':' (cmd/addr2line's unimplemented file:line → pc syntax). */
export const REVERSE_SYNTAX = -1;

/**
 * Parses the input line buf[start, end) the way cmd/addr2line does: a trailing \r dropped (bufio.ScanLines),
 * one "0x" stripped, hex; anything unparsable is PC 0, anything above 2^53 (only unknown addresses live there)
 * is clamped to 2^53 − 1.
 */
export function parseAddressLine(buf: Buffer, start: number, end: number): number {
  if (end > start && buf[end - 1] === 0x0d) end--;
  if (end - start >= 2 && buf[start] === 0x30 && buf[start + 1] === 0x78) start += 2;
  let v = 0;
  let valid = start < end;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c >= 0x30 && c <= 0x39) v = v * 16 + (c - 0x30);
    else if (c >= 0x61 && c <= 0x66) v = v * 16 + (c - 0x57);
    else if (c >= 0x41 && c <= 0x46) v = v * 16 + (c - 0x37);
    else if (c === 0x3a) return REVERSE_SYNTAX;
    else valid = false; // keep looking for a ':' further on
  }
  if (!valid) return 0;
  return v > Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : v;
}

/**
 * Parses every complete line of buf[start, end) into out; returns where the unfinished last line starts.
 * One pass over the bytes (a native indexOf per line costs more than the parsing).
 */
export function parseAddressLines(buf: Buffer, start: number, end: number, out: number[]): number {
  let lineStart = start;
  for (let i = start; i < end; i++) {
    if (buf[i] === 0x0a) {
      out.push(parseAddressLine(buf, lineStart, i));
      lineStart = i + 1;
    }
  }
  return lineStart;
}

/** Grows as answers are appended. */
class OutputBuffer {
  private buf = Buffer.allocUnsafe(1 << 16);
  private len = 0;

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }

  get length(): number {
    return this.len;
  }

  text(s: string): void {
    this.reserve(s.length * 3);
    this.len += this.buf.write(s, this.len, 'utf8');
  }

  take(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

const UNKNOWN = Buffer.from('?\n?:0\n');
const REVERSE_ANSWER = Buffer.from('!reverse translation not implemented\n'); // cmd/addr2line says the same

/**
 * Answers in `go tool addr2line` format (two lines each) for a batch of parsed input lines. The PCs are answered
 * in address order, so each function's line and file tables are decoded once per batch, not once per address.
 */
export function goAddr2line(bin: GoBinary, pcs: Float64Array): Buffer {
  const n = pcs.length;
  const order = ascendingOrder(pcs);
  const sorted = new Float64Array(n);
  for (let k = 0; k < n; k++) sorted[k] = pcs[order[k]!]!;
  const lines = new Int32Array(n); // in sorted order
  const fnos = new Int32Array(n);
  // Each answer is "function\nfile:" (encoded once per function and file into one dictionary) plus its line.
  const dict = new OutputBuffer();
  const heads: number[] = []; // dictionary offsets of entry e: [heads[e], heads[e + 1])
  const answer = new Int32Array(n).fill(-1); // per input line: a dictionary entry, or -1 when unknown
  const lineOf = new Int32Array(n);
  const pcln = bin.pcln;
  for (let k = 0; k < n; ) {
    const fi = sorted[k]! < 0 ? -1 : pcln.findIndex(sorted[k]!);
    if (fi < 0) {
      k++;
      continue;
    }
    const f = pcln.funcAt(fi);
    let end = k + 1;
    while (end < n && sorted[end]! < f.end) end++;
    pcln.linesAt(f, sorted, k, end, lines);
    pcln.fileNumbersAt(f, sorted, k, end, fnos);
    const name = pcln.funcName(f);
    let lastFno = NaN;
    for (let j = k; j < end; j++) {
      if (fnos[j] !== lastFno) {
        lastFno = fnos[j]!;
        heads.push(dict.length);
        dict.text(`${name}\n${pcln.fileName(f, lastFno)}:`);
      }
      const i = order[j]!;
      answer[i] = heads.length - 1;
      lineOf[i] = lines[j]!;
    }
    k = end;
  }
  heads.push(dict.length);
  return assemble(dict.take(), Int32Array.from(heads), answer, lineOf, pcs);
}

/**
 * Writes the answers in input order: dictionary entry + decimal line + newline each. One tight loop over locals
 * (this runs once per address, so calls and property writes here are what the CLI's speed comes down to).
 */
function assemble(words: Buffer, heads: Int32Array, answer: Int32Array, lineOf: Int32Array, pcs: Float64Array): Buffer {
  const n = answer.length;
  let size = 0;
  for (let i = 0; i < n; i++) {
    const e = answer[i]!;
    size += e >= 0 ? heads[e + 1]! - heads[e]! + 12 : pcs[i] === REVERSE_SYNTAX ? REVERSE_ANSWER.length : UNKNOWN.length;
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const e = answer[i]!;
    if (e < 0) {
      const b = pcs[i] === REVERSE_SYNTAX ? REVERSE_ANSWER : UNKNOWN;
      for (let k = 0; k < b.length; k++) out[at++] = b[k]!;
      continue;
    }
    at += words.copy(out, at, heads[e]!, heads[e + 1]!); // entries are long (paths): one memcpy beats a byte loop
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
  return out.subarray(0, at);
}

/** Indices of pcs in ascending order of value (a packed numeric sort when addresses fit in 32 bits). */
function ascendingOrder(pcs: Float64Array): Uint32Array {
  const n = pcs.length;
  const order = new Uint32Array(n);
  let max = 0;
  for (let i = 0; i < n; i++) if (pcs[i]! > max) max = pcs[i]!;
  if (n < 2 ** 21 && max < 2 ** 32) {
    const packed = new Float64Array(n);
    for (let i = 0; i < n; i++) packed[i] = (pcs[i]! + 1) * 2 ** 21 + i; // +1: REVERSE_SYNTAX (-1) sorts first
    packed.sort();
    for (let k = 0; k < n; k++) order[k] = packed[k]! % 2 ** 21;
    return order;
  }
  for (let i = 0; i < n; i++) order[i] = i;
  return order.sort((a, b) => pcs[a]! - pcs[b]!);
}

/** One JSON line per input: {"pc":"0x…","frames":[{function,file,line},…]} innermost first. */
export function inlineAddr2line(bin: GoBinary, pcs: Float64Array): Buffer {
  const out = new OutputBuffer();
  for (const p of pcs) {
    const pc = p === REVERSE_SYNTAX ? 0 : p;
    out.text(JSON.stringify({ pc: '0x' + pc.toString(16), frames: bin.frames(pc) }) + '\n');
  }
  return out.take();
}
