// Finding a Go binary's tables: the pclntab, moduledata (text start, findfunctab, gofunc) — with section headers,
// with symbols, or by a validated scan when the binary is stripped or the C linker merged the sections.

import { FormatError } from './bytes';
import { applyRelativeRelocs, ElfFile, ET_DYN, PF_W, PF_X, PT_LOAD, Section, Segment, SHF_COMPRESSED } from './elf';
import { funcLayout, parsePclnHeader, PclnGeneration, PclnHeader } from './pclntab';
import { sharedRead } from './shared-reads';

export interface PclntabLocation {
  vaddr: number;
  data: Buffer;
  header: PclnHeader;
  how: 'section' | 'symbol' | 'moduledata' | 'scan';
}

function segmentRemainder(elf: ElfFile, vaddr: number): Buffer {
  const seg = elf.segmentAt(vaddr);
  if (!seg) throw new FormatError(`pclntab address 0x${vaddr.toString(16)} is not in a loaded segment`);
  const available = seg.vaddr + seg.filesz - vaddr;
  return elf.readAt(vaddr, tablesExtent((off, len) => elf.readAt(vaddr + off, len), available));
}

/**
 * How many of the `available` bytes at a pclntab the tables take: for 1.18+, up to the end of the last _func
 * record. Go 1.26 puts go:func.* (funcdata and inline trees, which are read through the ELF file) after that,
 * inside .gopclntab: half the section, not worth reading or keeping. `available` when it cannot tell.
 */
function tablesExtent(read: (off: number, len: number) => Buffer, available: number): number {
  const HEADER = 8 + 8 * 8;
  if (available < HEADER) return available;
  const head = read(0, HEADER);
  const h = tryHeader(head);
  if (!h || (h.generation !== 'go1.18' && h.generation !== 'go1.20')) return available;
  const functab = Number(head.readBigUInt64LE(8 + 7 * 8));
  const functabSize = h.nfunc * 8 + 4; // {entryOff, funcOff} per function, then the end PC's entryOff
  if (!Number.isSafeInteger(functab) || h.nfunc <= 0 || functab + functabSize > available) return available;
  const entries = read(functab, functabSize);
  // The linker writes records in function order, but a reader must not rely on that. (A DataView: Buffer's
  // readUInt32LE is 2-3x slower in a loop that runs once, before the JIT has compiled anything.)
  const view = new DataView(entries.buffer, entries.byteOffset, entries.length);
  let lastRecord = 0;
  for (let i = 0; i < h.nfunc; i++) lastRecord = Math.max(lastRecord, view.getUint32(i * 8 + 4, true));
  const at = functab + lastRecord;
  const layout = funcLayout(h.generation, h.ptrSize);
  if (at + layout.size > available) return available;
  const rec = read(at, layout.size); // fixed fields, then npcdata u32 offsets, then nfuncdata u32 offsets
  const npcdata = rec.readUInt32LE(layout.entrySize + 4 * 6);
  const nfuncdata = rec[layout.nfuncdataOff]!;
  return Math.min(available, Math.max(functab + functabSize, at + layout.size + 4 * (npcdata + nfuncdata)));
}

function sectionTables(elf: ElfFile, s: Section): Buffer {
  if ((s.flags & BigInt(SHF_COMPRESSED)) !== 0n) return elf.sectionData(s); // Go's linker never compresses it: read whole
  return sharedRead(elf.source, s.offset, tablesExtent((off, len) => elf.source.read(s.offset + off, len), s.size));
}

function tryHeader(data: Buffer): PclnHeader | undefined {
  try {
    return parsePclnHeader(data);
  } catch {
    return undefined;
  }
}

/** Non-executable loaded segments: where the linker puts read-only data (and, for PIEs, relro). */
function dataSegments(elf: ElfFile): Segment[] {
  return elf.segments.filter((p) => p.type === PT_LOAD && (p.flags & PF_X) === 0 && p.filesz > 0);
}

export function locatePclntab(elf: ElfFile): PclntabLocation {
  for (const name of ['.gopclntab', '.data.rel.ro.gopclntab']) {
    const s = elf.section(name);
    if (s && s.size > 0 && s.type !== 8) {
      const data = sectionTables(elf, s);
      return { vaddr: s.addr, data, header: parsePclnHeader(data), how: 'section' };
    }
  }
  const start = elf.symbol('runtime.pclntab');
  const end = elf.symbol('runtime.epclntab');
  if (start && end && end.value > start.value) {
    const data = elf.readAt(start.value, tablesExtent((off, len) => elf.readAt(start.value + off, len), end.value - start.value));
    const header = tryHeader(data);
    if (header) return { vaddr: start.value, data, header, how: 'symbol' };
  }
  const mod = elf.section('.go.module'); // Go 1.26 gives moduledata its own section; word 0 is the pcHeader
  if (mod && mod.size >= 8) {
    const vaddr = Number(elf.sectionData(mod).readBigUInt64LE(0));
    if (vaddr !== 0 && elf.segmentAt(vaddr)) {
      const data = segmentRemainder(elf, vaddr);
      const header = tryHeader(data);
      if (header) return { vaddr, data, header, how: 'moduledata' };
    }
  }
  return scanForPclntab(elf);
}

/** Searches read-only data for a header whose tables check out (the C linker folds .gopclntab into .data.rel.ro). */
function scanForPclntab(elf: ElfFile): PclntabLocation {
  for (const seg of dataSegments(elf)) {
    const bytes = elf.source.read(seg.offset, seg.filesz);
    for (const magic of [0xfffffff1, 0xfffffff0, 0xfffffffa, 0xfffffffb]) {
      const needle = Buffer.alloc(6);
      needle.writeUInt32LE(magic, 0);
      for (let i = bytes.indexOf(needle); i >= 0; i = bytes.indexOf(needle, i + 1)) {
        if (i % 8 !== 0) continue;
        const data = bytes.subarray(i);
        const header = tryHeader(data);
        if (header && plausibleTables(data, header)) {
          return { vaddr: seg.vaddr + i, data: Buffer.from(data), header, how: 'scan' };
        }
      }
    }
  }
  throw new FormatError('no Go symbol table (.gopclntab) found: not a Go binary, or its tables were removed');
}

/** Offsets in the header must point inside the data and in the order the linker writes them. */
function plausibleTables(data: Buffer, h: PclnHeader): boolean {
  if (h.nfunc <= 0 || h.nfunc > 1e7) return false;
  if (h.generation === 'go1.2') return 8 + 8 + h.nfunc * 16 + 8 <= data.length;
  const first = h.generation === 'go1.16' ? 2 : 3;
  let prev = 0;
  for (let i = first; i < first + 5; i++) {
    const off = Number(data.readBigUInt64LE(8 + i * 8));
    if (off <= prev || off >= data.length) return false;
    prev = off;
  }
  return true;
}

/** The words of runtime.moduledata that the agent uses. Addresses are link-time. */
export interface ModuleData {
  vaddr: number;
  findfunctab: number;
  minpc: number;
  maxpc: number;
  text: number;
  etext: number;
  /** go:func.* (1.18+), the base of funcdata offsets; 0 when unknown. */
  gofunc: number;
}

const WORDS_NEEDED = 41;

function wordIndices(gen: PclnGeneration): { findfunctab: number; minpc: number; maxpc: number; text: number; etext: number; gofunc: number | undefined } {
  switch (gen) {
    case 'go1.2':
      return { findfunctab: 9, minpc: 10, maxpc: 11, text: 12, etext: 13, gofunc: undefined };
    case 'go1.16':
      return { findfunctab: 19, minpc: 20, maxpc: 21, text: 22, etext: 23, gofunc: undefined };
    case 'go1.18':
      return { findfunctab: 19, minpc: 20, maxpc: 21, text: 22, etext: 23, gofunc: 38 };
    case 'go1.20': // covctrs/ecovctrs moved gofunc two words down
      return { findfunctab: 19, minpc: 20, maxpc: 21, text: 22, etext: 23, gofunc: 40 };
  }
}

/** Reads moduledata at `vaddr`, filling pointer words that an old PIE left zero from its relocations. */
function readModuleWords(elf: ElfFile, vaddr: number): BigUint64Array | undefined {
  const seg = elf.segmentAt(vaddr);
  if (!seg) return undefined;
  const len = Math.min(WORDS_NEEDED * 8, seg.vaddr + seg.filesz - vaddr);
  const buf = Buffer.from(elf.readAt(vaddr, len));
  if (elf.type === ET_DYN && buf.readBigUInt64LE(0) === 0n) applyRelativeRelocs(elf, vaddr, buf);
  const words = new BigUint64Array(WORDS_NEEDED);
  for (let i = 0; i * 8 + 8 <= buf.length; i++) words[i] = buf.readBigUInt64LE(i * 8);
  return words;
}

/** moduledata's first words point back at the pclntab: that is how a candidate is recognised. */
function looksLikeModuledata(words: BigUint64Array, pcln: PclntabLocation): boolean {
  const base = BigInt(pcln.vaddr);
  if (words[0] !== base) return false;
  if (pcln.header.generation === 'go1.2') {
    return words[3] === base + 16n; // ftab slice starts right after the header words
  }
  const funcnameOffset = pcln.data.readBigUInt64LE(8 + (pcln.header.generation === 'go1.16' ? 2 : 3) * 8);
  return words[1] === base + funcnameOffset;
}

export function findModuledata(elf: ElfFile, pcln: PclntabLocation): ModuleData | undefined {
  const mod = elf.section('.go.module');
  if (mod) {
    const words = readModuleWords(elf, mod.addr);
    if (words && looksLikeModuledata(words, pcln)) return decode(words, mod.addr, pcln.header.generation);
  }
  // Look for the pointer to the pclntab in writable data (moduledata lives in .noptrdata): works stripped too.
  const needle = Buffer.alloc(8);
  needle.writeBigUInt64LE(BigInt(pcln.vaddr));
  const noptr = elf.section('.noptrdata');
  const ranges: Array<[number, number]> = noptr
    ? [[noptr.addr, noptr.size]]
    : elf.segments.filter((p) => p.type === PT_LOAD && (p.flags & PF_W) !== 0).map((p) => [p.vaddr, p.filesz]);
  for (const [start, size] of ranges) {
    if (size <= 0 || !elf.segmentAt(start)) continue;
    const bytes = elf.readAt(start, Math.min(size, elf.segmentAt(start)!.vaddr + elf.segmentAt(start)!.filesz - start));
    for (let i = bytes.indexOf(needle); i >= 0; i = bytes.indexOf(needle, i + 1)) {
      if ((start + i) % 8 !== 0) continue;
      const words = readModuleWords(elf, start + i);
      if (words && looksLikeModuledata(words, pcln)) return decode(words, start + i, pcln.header.generation);
    }
  }
  const sym = elf.symbol('runtime.firstmoduledata'); // e.g. an old PIE whose pointer words are left to relocations
  const words = sym && readModuleWords(elf, sym.value);
  return words && looksLikeModuledata(words, pcln) ? decode(words, sym.value, pcln.header.generation) : undefined;
}

function decode(words: BigUint64Array, vaddr: number, gen: PclnGeneration): ModuleData {
  const ix = wordIndices(gen);
  const w = (i: number | undefined): number => (i === undefined ? 0 : Number(words[i] ?? 0n));
  return { vaddr, findfunctab: w(ix.findfunctab), minpc: w(ix.minpc), maxpc: w(ix.maxpc), text: w(ix.text), etext: w(ix.etext), gofunc: w(ix.gofunc) };
}

/**
 * The address functab entry offsets are relative to (1.18+). The header's value when written; Go 1.26 writes 0,
 * so then moduledata.text, then the runtime.text symbol, then the .text section.
 */
export function findTextStart(elf: ElfFile, pcln: PclntabLocation, md: ModuleData | undefined): number {
  if (pcln.header.textStart !== 0) return pcln.header.textStart;
  if (md && md.text !== 0) return md.text;
  const sym = elf.symbol('runtime.text');
  if (sym) return sym.value;
  const text = elf.section('.text');
  if (text) return text.addr;
  throw new FormatError('cannot determine the text start (no header value, moduledata, runtime.text or .text)');
}
