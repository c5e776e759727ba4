// Kernel text symbols from /proc/kallsyms, sorted for binary search. As root the addresses are real; without
// the privilege they read as zero and nothing can be symbolized (lookups then return undefined).
//
// Kernel addresses are 64-bit values in the top of the address space (0xffff…), which a JS number cannot hold
// exactly; they are kept as offsets from KERNEL_BASE (< 2^48, exact in a double) and handed out as bigints.

import * as fs from 'node:fs';
import { lastAtOrBelow } from './sorted';

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

export class KernelSymbols {
  private starts = new Float64Array(0);
  private names: string[] = [];
  private modules: Array<string | undefined> = [];
  private loadedAt = 0;

  constructor(private readonly path = '/proc/kallsyms') {}

  /** Reads the table (again). Never throws: an unreadable file leaves an empty table. */
  load(): void {
    this.loadedAt = Date.now();
    let text: string;
    try {
      text = fs.readFileSync(this.path, 'latin1');
    } catch {
      this.starts = new Float64Array(0);
      this.names = [];
      this.modules = [];
      return;
    }
    const rows: Array<{ off: number; name: string; module: string | undefined }> = [];
    let pos = 0;
    while (pos < text.length) {
      let nl = text.indexOf('\n', pos);
      if (nl < 0) nl = text.length;
      const line = text.slice(pos, nl);
      pos = nl + 1;
      // "ffffffff81000000 T _stext" or "ffffffffc0a01000 t foo\t[module]"
      const sp1 = line.indexOf(' ');
      if (sp1 !== 16 || line.length < 20) continue;
      const type = line[17];
      if (type !== 't' && type !== 'T' && type !== 'w' && type !== 'W') continue;
      if (!line.startsWith('ffff')) continue; // zeroed (unprivileged) or not a kernel address
      const off = parseInt(line.slice(4, 16), 16);
      if (!Number.isFinite(off)) continue;
      let name = line.slice(19);
      let module: string | undefined;
      const tab = name.indexOf('\t');
      if (tab >= 0) {
        const m = /\[([^\]]+)\]/.exec(name.slice(tab));
        module = m ? m[1] : undefined;
        name = name.slice(0, tab);
      }
      rows.push({ off, name, module });
    }
    rows.sort((a, b) => a.off - b.off);
    this.starts = new Float64Array(rows.length);
    this.names = new Array<string>(rows.length);
    this.modules = new Array<string | undefined>(rows.length);
    rows.forEach((r, i) => {
      this.starts[i] = r.off;
      this.names[i] = r.name;
      this.modules[i] = r.module;
    });
  }

  /** Reloads when the table is older than maxAgeMs (modules and BPF programs come and go). */
  refreshIfOlderThan(maxAgeMs: number): void {
    if (this.loadedAt === 0 || Date.now() - this.loadedAt > maxAgeMs) this.load();
  }

  get size(): number {
    return this.names.length;
  }

  /** Lowest and highest symbol address (undefined when the table is empty). */
  range(): { start: bigint; end: bigint } | undefined {
    if (this.starts.length === 0) return undefined;
    return {
      start: KERNEL_BASE + BigInt(this.starts[0]!),
      end: KERNEL_BASE + BigInt(this.starts[this.starts.length - 1]!),
    };
  }

  /** The symbol containing an address: the last one starting at or below it. */
  lookup(addr: bigint): KernelSymbol | undefined {
    if (this.loadedAt === 0) this.load();
    const off = offsetOf(BigInt.asUintN(64, addr));
    if (off === undefined) return undefined;
    const i = lastAtOrBelow(this.starts, off);
    if (i < 0) return undefined;
    return { name: this.names[i]!, module: this.modules[i], start: KERNEL_BASE + BigInt(this.starts[i]!) };
  }
}

