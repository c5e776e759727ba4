// The words a Go binary prints for each g.waitreason ("chan receive", "select", "IO wait"…): its own
// runtime.waitReasonStrings table, read from the binary rather than kept per release here (the enum gains,
// loses and reorders values between releases).
//
// With a symbol table the array is found by name. Stripped binaries still hold the array and its strings: entry 1
// has been "GC assist marking" in every release 1.11…1.26, so the array is where a {pointer, 17} string header
// points at those bytes, one 16-byte header after an empty entry 0 (waitReasonZero). PIE data words hold their
// pointers in R_*_RELATIVE relocations; they are applied before searching.

import type { ElfFile } from './elf';
import { applyRelativeRelocs, PF_W, PT_LOAD } from './elf';

const ANCHOR = Buffer.from('GC assist marking');
/** More than any release has (1.26: 44); the table ends at the first entry that is not a plausible reason. */
const MAX_REASONS = 128;
const MAX_REASON_BYTES = 64;
/** The data searched for the table: Go's .data is a few hundred KiB even for large programs. */
const MAX_DATA_BYTES = 64 << 20;

/** Wait reason strings by index (index 0 is ''), or a one-line reason they cannot be read. */
export function readWaitReasons(elf: ElfFile): string[] | string {
  try {
    const sym = elf.symbol('runtime.waitReasonStrings');
    if (sym && sym.value !== 0) {
      const r = readTable(elf, sym.value, undefined);
      if (r.length > 1) return r;
    }
    return waitReasonsByAnchor(elf);
  } catch (e) {
    return `cannot read runtime.waitReasonStrings: ${(e as Error).message}`;
  }
}

function loads(elf: ElfFile, writable: boolean): Array<{ vaddr: number; offset: number; filesz: number }> {
  return elf.segments.filter((s) => s.type === PT_LOAD && ((s.flags & PF_W) !== 0) === writable && s.filesz > 0);
}

/** The table found through its "GC assist marking" entry (what a stripped binary leaves). */
export function waitReasonsByAnchor(elf: ElfFile): string[] | string {
  const anchors: number[] = [];
  for (const seg of loads(elf, false)) {
    // Read-only data of a Go binary is tens of MiB at most; reading it by segment keeps this one pass.
    const data = elf.readAt(seg.vaddr, seg.filesz);
    for (let i = data.indexOf(ANCHOR); i >= 0; i = data.indexOf(ANCHOR, i + 1)) anchors.push(seg.vaddr + i);
  }
  if (anchors.length === 0) return 'no "GC assist marking" string in the binary (not a Go runtime this reader knows)';
  for (const seg of loads(elf, true)) {
    if (seg.filesz > MAX_DATA_BYTES) continue;
    const data = Buffer.from(elf.readAt(seg.vaddr, seg.filesz));
    applyRelativeRelocs(elf, seg.vaddr, data);
    for (let o = 16; o + 16 <= data.length; o += 8) {
      if (data.readUInt32LE(o + 8) !== ANCHOR.length || data.readUInt32LE(o + 12) !== 0) continue;
      const ptr = Number(data.readBigUInt64LE(o));
      if (!anchors.includes(ptr) || data.readBigUInt64LE(o - 8) !== 0n) continue;
      const table = readTable(elf, seg.vaddr + o - 16, { base: seg.vaddr, data });
      if (table.length > 2) return table;
    }
  }
  return 'runtime.waitReasonStrings not found (no string table points at "GC assist marking")';
}

/** Entries from `addr` while they are plausible wait reasons (printable, short). Entry 0 is always ''. */
function readTable(elf: ElfFile, addr: number, relocated: { base: number; data: Buffer } | undefined): string[] {
  let words: Buffer;
  if (relocated && addr >= relocated.base) {
    words = relocated.data.subarray(addr - relocated.base, addr - relocated.base + MAX_REASONS * 16);
  } else {
    const seg = elf.segmentAt(addr);
    if (!seg) return [];
    words = Buffer.from(elf.readAt(addr, Math.min(MAX_REASONS * 16, seg.vaddr + seg.filesz - addr)));
    applyRelativeRelocs(elf, addr, words);
  }
  const out: string[] = [''];
  for (let i = 1; (i + 1) * 16 <= words.length; i++) {
    const ptr = Number(words.readBigUInt64LE(i * 16));
    const len = Number(words.readBigUInt64LE(i * 16 + 8));
    if (len === 0 || len > MAX_REASON_BYTES || !elf.segmentAt(ptr)) break;
    const s = elf.readAt(ptr, len).toString('latin1');
    if (!/^[\x20-\x7e]+$/.test(s) || !/^[A-Za-z]/.test(s)) break;
    out.push(s);
  }
  return out;
}
