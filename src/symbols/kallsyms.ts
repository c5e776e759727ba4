// Kernel text symbols from /proc/kallsyms, sorted for binary search. As root the addresses are real; without
// the privilege they read as zero and nothing can be symbolized (lookups then return undefined).
//
// Kernel addresses are 64-bit values in the top of the address space (0xffff…), which a JS number cannot hold
// exactly; they are kept as offsets from KERNEL_BASE (< 2^48, exact in a double) and handed out as bigints.

import * as fs from 'node:fs';
import { lastAtOrBelow, sortedOrder } from './sorted';

export const KERNEL_BASE = 0xffff000000000000n;

/**
 * A kernel address from the sampler as an unsigned 64-bit bigint. Accepts a bigint, a negative number (the
 * address read as a signed int64: exact, since kernel addresses are within 2^48 of 2^64), or a non-negative number
 * (exact only below 2^53; larger ones were already rounded by whoever made them a number).
 */
export function kernelAddress(a: number | bigint): bigint {
  if (typeof a === 'bigint') return BigInt.asUintN(64, a);
  if (!Number.isFinite(a)) return 0n;
  return BigInt.asUintN(64, BigInt(Math.trunc(a)));
}

/** Offset of an unsigned kernel address from KERNEL_BASE, or undefined when it is not a kernel address. */
function offsetOf(addr: bigint): number | undefined {
  if (addr < KERNEL_BASE) return undefined;
  return Number(addr - KERNEL_BASE);
}

export interface KernelSymbol {
  name: string;
  /** Module name for symbols of loadable modules ('[bpf]' programs give 'bpf'); undefined for the core kernel. */
  module: string | undefined;
  start: bigint;
}

// The file is read in chunks and parsed as bytes, without making a string of it or of its lines: it is megabytes
// long (120k+ symbols) and read again every few minutes.
const SPACE = 0x20;
const TAB = 0x09;
const NL = 0x0a;
const CHUNK = 64 << 10;

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

function grow<T extends Float64Array | Uint32Array | Uint16Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** Text symbols in file order, collected line by line. */
class Collector {
  n = 0;
  offs = new Float64Array(16384);
  /** End of symbol i's name in names (its start is the previous end). */
  nameEnds = new Uint32Array(16384);
  mods = new Uint16Array(16384);
  names = Buffer.allocUnsafe(256 << 10);
  nameBytes = 0;
  readonly moduleNames: Array<string | undefined> = [undefined];
  private readonly moduleIds = new Map<string, number>();

  /** Parses the complete lines in b[from, to). */
  lines(b: Buffer, from: number, to: number): void {
    for (let pos = from; pos < to; ) {
      let nl = b.indexOf(NL, pos);
      if (nl < 0 || nl > to) nl = to;
      this.line(b, pos, nl);
      pos = nl + 1;
    }
  }

  /** "ffffffff81000000 T _stext" or "ffffffffc0a01000 t foo\t[module]", b[line, nl). */
  private line(b: Buffer, line: number, nl: number): void {
    if (nl - line < 20 || b[line + 16] !== SPACE) return;
    const type = b[line + 17];
    if (type !== 0x74 && type !== 0x54 && type !== 0x77 && type !== 0x57) return; // t T w W
    if (b[line] !== 0x66 || b[line + 1] !== 0x66 || b[line + 2] !== 0x66 || b[line + 3] !== 0x66) return; // zeroed, or not a kernel address
    let off = 0;
    for (let i = line + 4; i < line + 16; i++) {
      const d = hexDigit(b[i]!);
      if (d < 0) return;
      off = off * 16 + d;
    }
    const nameStart = line + 19;
    let nameEnd = nameStart;
    while (nameEnd < nl && b[nameEnd] !== TAB) nameEnd++;
    const mod = nameEnd < nl ? this.module(b, nameEnd, nl) : 0;
    this.add(off, b, nameStart, nameEnd, mod);
  }

  /** The module id of "\t[name]" in b[from, nl) (0: none). */
  private module(b: Buffer, from: number, nl: number): number {
    const open = b.indexOf(0x5b, from); // [
    if (open < 0 || open >= nl) return 0;
    const close = b.indexOf(0x5d, open + 1); // ]
    if (close <= open + 1 || close >= nl) return 0;
    const name = b.toString('latin1', open + 1, close);
    let id = this.moduleIds.get(name);
    if (id === undefined) {
      if (this.moduleNames.length >= 0xffff) return 0;
      id = this.moduleNames.length;
      this.moduleNames.push(name);
      this.moduleIds.set(name, id);
    }
    return id;
  }

  private add(off: number, b: Buffer, nameStart: number, nameEnd: number, mod: number): void {
    if (this.n === this.offs.length) {
      const cap = this.n * 2;
      this.offs = grow(this.offs, new Float64Array(cap));
      this.nameEnds = grow(this.nameEnds, new Uint32Array(cap));
      this.mods = grow(this.mods, new Uint16Array(cap));
    }
    const len = nameEnd - nameStart;
    if (this.nameBytes + len > this.names.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.names.length * 2, this.nameBytes + len));
      this.names.copy(bigger, 0, 0, this.nameBytes);
      this.names = bigger;
    }
    this.nameBytes += b.copy(this.names, this.nameBytes, nameStart, nameEnd);
    this.offs[this.n] = off;
    this.nameEnds[this.n] = this.nameBytes;
    this.mods[this.n] = mod;
    this.n++;
  }
}

/** Feeds the file's complete lines to the collector, a chunk at a time. Throws when it cannot be read. */
function readLines(path: string, c: Collector): void {
  const fd = fs.openSync(path, 'r');
  try {
    const chunk = Buffer.allocUnsafe(CHUNK);
    let have = 0; // bytes in chunk: the unfinished line of the last read, then this read's
    let skipping = false; // inside a line longer than a chunk (not a kallsyms line): dropped
    for (;;) {
      const n = fs.readSync(fd, chunk, have, CHUNK - have, null);
      const end = have + n;
      let from = 0;
      if (skipping) {
        const nl = chunk.indexOf(NL, 0);
        if (nl < 0 || nl >= end) {
          have = 0;
          if (n === 0) return;
          continue;
        }
        from = nl + 1;
        skipping = false;
      }
      if (n === 0) {
        c.lines(chunk, from, end); // the last line may lack its newline
        return;
      }
      const last = chunk.lastIndexOf(NL, end - 1);
      const upto = last >= from ? last + 1 : from;
      c.lines(chunk, from, upto);
      if (upto === from && end === CHUNK) {
        skipping = true;
        have = 0;
        continue;
      }
      chunk.copy(chunk, 0, upto, end);
      have = end - upto;
    }
  } finally {
    fs.closeSync(fd);
  }
}

export class KernelSymbols {
  /**
   * Symbol starts in ascending order, as offsets from KERNEL_BASE + startBase: 32-bit when the table spans less
   * than 4 GiB (the kernel, its modules and BPF programs lie within 2 GiB of each other), else 64-bit.
   */
  private starts: Uint32Array | Float64Array = new Uint32Array(0);
  private startBase = 0;
  /** In the same order: where each name ends in names (strings are made on lookup), and its module. */
  private names: Buffer = Buffer.alloc(0);
  private nameEnds = new Uint32Array(0);
  private moduleOf = new Uint16Array(0);
  /** Module names; 0 is the core kernel. */
  private moduleNames: Array<string | undefined> = [undefined];
  private loadedAt = 0;

  constructor(private readonly path = '/proc/kallsyms') {}

  /** Reads the table (again). Never throws: an unreadable file leaves an empty table. */
  load(): void {
    this.loadedAt = Date.now();
    const c = new Collector();
    try {
      readLines(this.path, c);
    } catch {
      this.clear();
      return;
    }
    // Laid out again in address order (equal addresses in file order: a lookup then finds the last of them), so
    // that no permutation is kept beside the table.
    const n = c.n;
    const order = sortedOrder(c.offs, n);
    const base = n > 0 ? c.offs[order[0]!]! : 0;
    const span = n > 0 ? c.offs[order[n - 1]!]! - base : 0;
    const starts = span < 2 ** 32 ? new Uint32Array(n) : new Float64Array(n);
    const names = Buffer.allocUnsafe(c.nameBytes);
    const nameEnds = new Uint32Array(n);
    const moduleOf = new Uint16Array(n);
    let at = 0;
    for (let k = 0; k < n; k++) {
      const i = order[k]!;
      starts[k] = c.offs[i]! - base;
      at += c.names.copy(names, at, i > 0 ? c.nameEnds[i - 1]! : 0, c.nameEnds[i]!);
      nameEnds[k] = at;
      moduleOf[k] = c.mods[i]!;
    }
    this.starts = starts;
    this.startBase = base;
    this.names = names;
    this.nameEnds = nameEnds;
    this.moduleOf = moduleOf;
    this.moduleNames = c.moduleNames;
  }

  private clear(): void {
    this.starts = new Uint32Array(0);
    this.startBase = 0;
    this.names = Buffer.alloc(0);
    this.nameEnds = new Uint32Array(0);
    this.moduleOf = new Uint16Array(0);
    this.moduleNames = [undefined];
  }

  /** Reloads when the table is older than maxAgeMs (modules and BPF programs come and go). */
  refreshIfOlderThan(maxAgeMs: number): void {
    if (this.loadedAt === 0 || Date.now() - this.loadedAt > maxAgeMs) this.load();
  }

  get size(): number {
    return this.starts.length;
  }

  /** Lowest and highest symbol address (undefined when the table is empty). */
  range(): { start: bigint; end: bigint } | undefined {
    if (this.starts.length === 0) return undefined;
    return {
      start: KERNEL_BASE + BigInt(this.startBase + this.starts[0]!),
      end: KERNEL_BASE + BigInt(this.startBase + this.starts[this.starts.length - 1]!),
    };
  }

  /** The symbol containing an address: the last one starting at or below it. */
  lookup(addr: bigint): KernelSymbol | undefined {
    if (this.loadedAt === 0) this.load();
    const off = offsetOf(BigInt.asUintN(64, addr));
    if (off === undefined) return undefined;
    const k = lastAtOrBelow(this.starts, off - this.startBase);
    if (k < 0) return undefined;
    const name = this.names.toString('latin1', k > 0 ? this.nameEnds[k - 1]! : 0, this.nameEnds[k]!);
    return { name, module: this.moduleNames[this.moduleOf[k]!], start: KERNEL_BASE + BigInt(this.startBase + this.starts[k]!) };
  }
}
