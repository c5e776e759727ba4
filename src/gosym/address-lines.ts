// The input side of `quietflame addr2line`: lines of hex addresses, parsed the way cmd/addr2line parses them,
// straight from the bytes read into a reusable Float64Array (no strings, no boxed numbers).

import { hugePageBytes } from './huge-pages';

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
    const d = HEX_VALUE[c]!;
    if (d >= 0) v = v * 16 + d;
    else if (c === 0x3a) return REVERSE_SYNTAX;
    else valid = false; // keep looking for a ':' further on
  }
  if (!valid) return 0;
  return v > Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : v;
}

const HEX_VALUE = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let c = 0; c < 10; c++) t[0x30 + c] = c;
  for (let c = 0; c < 6; c++) t[0x61 + c] = t[0x41 + c] = 10 + c;
  return t;
})();

/**
 * Parsed addresses of one batch. The storage is reused from batch to batch (pages a big batch has touched are
 * not touched again for the next), so a batch must be answered before more lines are parsed.
 */
export class PcBatch {
  private pcs = float64s(1 << 18); // 2 MiB; faulted in as lines arrive
  length = 0;

  push(pc: number): void {
    if (this.length === this.pcs.length) {
      const bigger = float64s(this.pcs.length * 4);
      bigger.set(this.pcs);
      this.pcs = bigger;
    }
    this.pcs[this.length++] = pc;
  }

  /** The batch so far, valid until the next push; the next push starts a new batch. */
  take(): Float64Array {
    const out = this.pcs.subarray(0, this.length);
    this.length = 0;
    return out;
  }
}

function float64s(n: number): Float64Array {
  const bytes = hugePageBytes(n * 8);
  return new Float64Array(bytes.buffer, bytes.byteOffset, n);
}

/**
 * Parses every complete line of buf[start, end) into out; returns where the unfinished last line starts.
 * One pass over the bytes; a line that is not plain [0x]hex goes to parseAddressLine for Go's quirks.
 */
export function parseAddressLines(buf: Buffer, start: number, end: number, out: PcBatch): number {
  let lineStart = start;
  let v = 0;
  let plain = true;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    const d = HEX_VALUE[c]!;
    if (d >= 0) {
      v = v * 16 + d;
    } else if (c === 0x0a) {
      out.push(!plain ? parseAddressLine(buf, lineStart, i) : v > Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : v);
      lineStart = i + 1;
      v = 0;
      plain = true;
    } else if (c !== 0x78 || i !== lineStart + 1 || buf[lineStart] !== 0x30) {
      plain = false; // not the x of a leading 0x
    }
  }
  return lineStart;
}
