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
  if (buf.indexOf(0x3a, start) >= 0 && buf.indexOf(0x3a, start) < end) return REVERSE_SYNTAX;
  if (end - start >= 2 && buf[start] === 0x30 && buf[start + 1] === 0x78) start += 2;
  if (start === end) return 0;
  let v = 0;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
    else return 0;
    v = v * 16 + d;
  }
  return v > Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : v;
}

/** Grows as answers are appended; strings that repeat (function and file names) are encoded once. */
class OutputBuffer {
  private buf = Buffer.allocUnsafe(1 << 16);
  private len = 0;
  private readonly encoded = new Map<string, Buffer>();

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }

  /** Appends a string that recurs (cached as bytes). */
  name(s: string): void {
    let b = this.encoded.get(s);
    if (!b) {
      b = Buffer.from(s, 'utf8');
      this.encoded.set(s, b);
    }
    this.reserve(b.length);
    this.buf.set(b, this.len); // TypedArray.set: far cheaper than Buffer.copy for short names
    this.len += b.length;
  }

  ascii(s: string): void {
    this.reserve(s.length);
    this.len += this.buf.write(s, this.len, 'latin1');
  }

  byte(c: number): void {
    this.reserve(1);
    this.buf[this.len++] = c;
  }

  take(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

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
  const names: Array<string | undefined> = new Array(n); // in input order
  const files: string[] = new Array(n);
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
    for (let j = k; j < end; j++) {
      const i = order[j]!;
      names[i] = name;
      files[i] = pcln.fileName(f, fnos[j]!);
      lineOf[i] = lines[j]!;
    }
    k = end;
  }
  const out = new OutputBuffer();
  for (let i = 0; i < n; i++) {
    if (pcs[i] === REVERSE_SYNTAX) {
      out.ascii('!reverse translation not implemented\n'); // cmd/addr2line says the same
    } else if (names[i] === undefined) {
      out.ascii('?\n?:0\n');
    } else {
      out.name(names[i]!);
      out.byte(0x0a);
      out.name(files[i]!);
      out.ascii(`:${lineOf[i]}\n`);
    }
  }
  return out.take();
}

/** Indices of pcs in ascending order of value (a packed numeric sort when addresses fit in 32 bits). */
function ascendingOrder(pcs: Float64Array): Uint32Array {
  const n = pcs.length;
  const order = new Uint32Array(n);
  if (n < 2 ** 21 && pcs.every((p) => p < 2 ** 32)) {
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
    out.name(JSON.stringify({ pc: '0x' + pc.toString(16), frames: bin.frames(pc) }));
    out.byte(0x0a);
  }
  return out.take();
}
