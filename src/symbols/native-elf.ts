// Function symbols of a native ELF file (libc, ld.so, the C part of a cgo binary) from .symtab and .dynsym:
// link-time address → function name. No file names or lines (that would take DWARF).

import { ElfFile, ElfSymbol } from '../gosym/elf';
import { lastAtOrBelow } from './sorted';

const STT_FUNC = 2;
const STT_GNU_IFUNC = 10;
const SHF_EXECINSTR = 4n;

/** Of several names at one address (write, __write, __libc_write), the one a person would look for. */
function betterName(a: string, b: string): string {
  const ua = /^_*/.exec(a)![0].length;
  const ub = /^_*/.exec(b)![0].length;
  if (ua !== ub) return ua < ub ? a : b;
  if (a.length !== b.length) return a.length < b.length ? a : b;
  return a < b ? a : b;
}

export class NativeSymbols {
  /** Sorted, one entry per address. */
  private readonly starts: Float64Array;
  private readonly ends: Float64Array;
  private readonly names: string[];

  /**
   * @param debug the file's separate debug file (/usr/lib/debug/.build-id/…), whose .symtab holds the static
   *   functions a stripped library lost.
   */
  static fromElf(elf: ElfFile, debug?: ElfFile): NativeSymbols {
    const syms: ElfSymbol[] = [];
    const tables: Array<[ElfFile, '.symtab' | '.dynsym']> = [[elf, '.symtab'], [elf, '.dynsym']];
    if (debug) tables.push([debug, '.symtab']);
    for (const [file, table] of tables) {
      for (const s of file.symbols(table)) {
        if ((s.type === STT_FUNC || s.type === STT_GNU_IFUNC) && s.value !== 0 && s.name !== '') syms.push(s);
      }
    }
    const text = elf.sections
      .filter((s) => (s.flags & SHF_EXECINSTR) !== 0n && s.addr !== 0 && s.size > 0)
      .map((s) => [s.addr, s.addr + s.size] as const);
    return new NativeSymbols(syms, text);
  }

  /**
   * @param text executable section ranges: a symbol without a size ends at the next symbol or at the end of its
   *   section, whichever comes first.
   */
  constructor(syms: readonly ElfSymbol[], text: ReadonlyArray<readonly [number, number]> = []) {
    const byAddr = new Map<number, { size: number; name: string }>();
    for (const s of syms) {
      const prev = byAddr.get(s.value);
      if (!prev) byAddr.set(s.value, { size: s.size, name: s.name });
      else byAddr.set(s.value, { size: Math.max(prev.size, s.size), name: betterName(prev.name, s.name) });
    }
    const addrs = [...byAddr.keys()].sort((a, b) => a - b);
    this.starts = new Float64Array(addrs.length);
    this.ends = new Float64Array(addrs.length);
    this.names = new Array<string>(addrs.length);
    addrs.forEach((a, i) => {
      const e = byAddr.get(a)!;
      this.starts[i] = a;
      this.names[i] = e.name;
      if (e.size > 0) {
        this.ends[i] = a + e.size;
      } else {
        let end = i + 1 < addrs.length ? addrs[i + 1]! : Number.MAX_SAFE_INTEGER;
        const sec = text.find(([lo, hi]) => a >= lo && a < hi);
        if (sec) end = Math.min(end, sec[1]);
        else if (end === Number.MAX_SAFE_INTEGER) end = a + 1;
        this.ends[i] = end;
      }
    });
  }

  get size(): number {
    return this.names.length;
  }

  /** The function containing a link-time address, or undefined. */
  lookup(vaddr: number): { name: string; start: number } | undefined {
    const i = lastAtOrBelow(this.starts, vaddr);
    if (i < 0 || vaddr >= this.ends[i]!) return undefined;
    return { name: this.names[i]!, start: this.starts[i]! };
  }
}
