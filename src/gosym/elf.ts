// A lazy ELF64 reader: headers up front, section contents, notes and symbols only when asked for.

import { ByteSource, FileSource, FormatError, readCString, type ReadAllocator } from './bytes';
import { checkTableSize } from './limits';

export const ET_EXEC = 2;
export const ET_DYN = 3;
export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;
export const PT_LOAD = 1;
export const PT_NOTE = 4;
export const PF_X = 1;
export const PF_W = 2;
export const SHT_NOBITS = 8;
export const SHT_NOTE = 7;
export const SHT_SYMTAB = 2;
export const SHT_DYNSYM = 11;
export const SHF_COMPRESSED = 0x800;
const ELFCOMPRESS_ZLIB = 1;

export interface Section {
  readonly index: number;
  readonly name: string;
  readonly type: number;
  readonly flags: bigint;
  readonly addr: number;
  readonly offset: number;
  readonly size: number;
  readonly link: number;
  readonly entsize: number;
}

export interface Segment {
  readonly type: number;
  readonly flags: number;
  readonly offset: number;
  readonly vaddr: number;
  readonly filesz: number;
  readonly memsz: number;
}

export interface ElfSymbol {
  readonly name: string;
  readonly value: number;
  readonly size: number;
  readonly type: number; // STT_*
  readonly shndx: number;
}

export interface ElfNote {
  readonly name: string;
  readonly type: number;
  readonly desc: Buffer;
}

/** Addresses are numbers: user-space addresses of 64-bit ELF files fit in 2^53. */
function toNumber(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(`${what} 0x${v.toString(16)} is too large`);
  return Number(v);
}

export class ElfFile {
  readonly type: number;
  readonly machine: number;
  readonly entry: number;
  readonly sections: readonly Section[];
  readonly segments: readonly Segment[];
  private readonly byName = new Map<string, Section>();
  private symbolCache = new Map<string, ElfSymbol[]>();
  private rawSymtab: { data: Buffer; strtab: Buffer } | undefined;

  static open(path: string, allocate?: ReadAllocator): ElfFile {
    const src = new FileSource(path, undefined, undefined, allocate);
    try {
      return new ElfFile(src, path);
    } catch (e) {
      src.close();
      throw e;
    }
  }

  constructor(readonly source: ByteSource, readonly path: string) {
    if (source.size < 64) throw new FormatError(`not an ELF file (${source.size} bytes)`);
    const ident = source.read(0, 64);
    if (ident.readUInt32BE(0) !== 0x7f454c46) throw new FormatError('not an ELF file (bad magic)');
    if (ident[4] !== 2) throw new FormatError('32-bit ELF is not supported (only ELF64: amd64, arm64)');
    if (ident[5] !== 1) throw new FormatError('big-endian ELF is not supported');
    const h = ident;
    this.type = h.readUInt16LE(16);
    this.machine = h.readUInt16LE(18);
    this.entry = toNumber(h.readBigUInt64LE(24), 'entry point');
    const phoff = toNumber(h.readBigUInt64LE(32), 'e_phoff');
    const shoff = toNumber(h.readBigUInt64LE(40), 'e_shoff');
    const phentsize = h.readUInt16LE(54);
    const phnum = h.readUInt16LE(56);
    const shentsize = h.readUInt16LE(58);
    let shnum = h.readUInt16LE(60);
    let shstrndx = h.readUInt16LE(62);

    const segments: Segment[] = [];
    if (phnum > 0) {
      if (phentsize < 56) throw new FormatError(`bad program header size ${phentsize}`);
      const ph = source.read(phoff, phnum * phentsize);
      for (let i = 0; i < phnum; i++) {
        const o = i * phentsize;
        segments.push({
          type: ph.readUInt32LE(o),
          flags: ph.readUInt32LE(o + 4),
          offset: toNumber(ph.readBigUInt64LE(o + 8), 'p_offset'),
          vaddr: toNumber(ph.readBigUInt64LE(o + 16), 'p_vaddr'),
          filesz: toNumber(ph.readBigUInt64LE(o + 32), 'p_filesz'),
          memsz: toNumber(ph.readBigUInt64LE(o + 40), 'p_memsz'),
        });
      }
    }
    this.segments = segments;

    const sections: Section[] = [];
    if (shoff !== 0) {
      if (shentsize < 64) throw new FormatError(`bad section header size ${shentsize}`);
      if (shnum === 0) shnum = toNumber(source.read(shoff + 32, 8).readBigUInt64LE(0), 'section count'); // extended numbering
      if (shnum > 65535 * 4) throw new FormatError(`implausible section count ${shnum}`);
      const sh = source.read(shoff, shnum * shentsize);
      if (shstrndx === 0xffff) shstrndx = sh.readUInt32LE(40);
      const raw = [];
      for (let i = 0; i < shnum; i++) {
        const o = i * shentsize;
        raw.push({
          nameOff: sh.readUInt32LE(o),
          type: sh.readUInt32LE(o + 4),
          flags: sh.readBigUInt64LE(o + 8),
          addr: toNumber(sh.readBigUInt64LE(o + 16), 'sh_addr'),
          offset: toNumber(sh.readBigUInt64LE(o + 24), 'sh_offset'),
          size: toNumber(sh.readBigUInt64LE(o + 32), 'sh_size'),
          link: sh.readUInt32LE(o + 40),
          entsize: toNumber(sh.readBigUInt64LE(o + 56), 'sh_entsize'),
        });
      }
      const strtabHdr = raw[shstrndx];
      const strtab = strtabHdr && strtabHdr.type !== SHT_NOBITS ? source.read(strtabHdr.offset, strtabHdr.size) : undefined;
      raw.forEach((r, index) => {
        const name = strtab && r.nameOff < strtab.length ? readCString(strtab, r.nameOff) : '';
        const s: Section = { index, name, type: r.type, flags: r.flags, addr: r.addr, offset: r.offset, size: r.size, link: r.link, entsize: r.entsize };
        sections.push(s);
        if (name && !this.byName.has(name)) this.byName.set(name, s);
      });
    }
    this.sections = sections;
  }

  close(): void {
    this.source.close();
  }

  section(name: string): Section | undefined {
    return this.byName.get(name);
  }

  /** A section's bytes, decompressed when SHF_COMPRESSED (zlib; Go compresses DWARF this way). */
  sectionData(s: Section): Buffer {
    if (s.type === SHT_NOBITS) return Buffer.alloc(0);
    const z = this.compression(s);
    const raw = this.source.read(s.offset, s.size);
    return z ? this.inflate(raw.subarray(z.dataOffset), z.size, s.name) : raw;
  }

  /**
   * Where a compressed section's zlib stream starts (in the section) and its size once inflated; undefined for a
   * section stored as it is. Both ELF's SHF_COMPRESSED and the older GNU .zdebug_ ("ZLIB" + big-endian size).
   */
  compression(s: Section): { dataOffset: number; size: number } | undefined {
    if (s.type === SHT_NOBITS) return undefined;
    if ((s.flags & BigInt(SHF_COMPRESSED)) === 0n) {
      if (!s.name.startsWith('.zdebug_') || s.size < 12) return undefined;
      const head = this.source.read(s.offset, 12);
      return head.toString('latin1', 0, 4) === 'ZLIB' ? { dataOffset: 12, size: Number(head.readBigUInt64BE(4)) } : undefined;
    }
    if (s.size < 24) throw new FormatError(`${s.name}: truncated compression header`);
    const head = this.source.read(s.offset, 24);
    const ctype = head.readUInt32LE(0);
    if (ctype !== ELFCOMPRESS_ZLIB) throw new FormatError(`${s.name}: unsupported compression type ${ctype}`);
    return { dataOffset: 24, size: toNumber(head.readBigUInt64LE(8), 'ch_size') };
  }

  private inflate(data: Buffer, size: number, name: string): Buffer {
    checkTableSize(size, `${name} (uncompressed)`);
    try {
      // Loaded on first use: few binaries have a compressed section we read, and loading zlib costs a
      // short-lived `quietflame addr2line` 1.5 ms.
      const { inflateSync } = require('node:zlib') as typeof import('node:zlib');
      // One output chunk of the declared size (+1, so a full one is not followed by another): in 16 KiB chunks
      // zlib would hold the output twice at the end (the chunks and their concatenation).
      const out = inflateSync(data, { maxOutputLength: Math.max(size, 1), chunkSize: Math.max(size + 1, 64) });
      if (out.length !== size) throw new FormatError(`${name}: decompressed to ${out.length} bytes, header says ${size}`);
      return out;
    } catch (e) {
      if (e instanceof FormatError) throw e;
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new FormatError(`${name}: inflates to more than the ${size} bytes its header says (a zip bomb?)`);
      throw new FormatError(`${name}: corrupt compressed data (${(e as Error).message})`);
    }
  }

  /** The PT_LOAD segment whose file-backed part holds `vaddr`. */
  segmentAt(vaddr: number): Segment | undefined {
    return this.segments.find((p) => p.type === PT_LOAD && vaddr >= p.vaddr && vaddr < p.vaddr + p.filesz);
  }

  /** Reads `length` bytes at a link-time virtual address (file-backed data only). */
  readAt(vaddr: number, length: number): Buffer {
    const seg = this.segmentAt(vaddr);
    if (!seg || vaddr + length > seg.vaddr + seg.filesz) {
      throw new FormatError(`address 0x${vaddr.toString(16)} (+${length}) is not in the file's loaded data`);
    }
    return this.source.read(seg.offset + (vaddr - seg.vaddr), length);
  }

  /** The link-time address the first byte of the file maps to: the PT_LOAD at file offset 0 (0x400000 for Go PIEs too). */
  baseVaddr(): number {
    const first = this.segments.find((p) => p.type === PT_LOAD && p.offset === 0);
    return first ? first.vaddr : 0;
  }

  /** Symbols of `.symtab` (or `.dynsym`), decoded once. Empty for stripped files. */
  symbols(table: '.symtab' | '.dynsym' = '.symtab'): ElfSymbol[] {
    const cached = this.symbolCache.get(table);
    if (cached) return cached;
    const out: ElfSymbol[] = [];
    const sec = this.section(table);
    if (sec && (sec.type === SHT_SYMTAB || sec.type === SHT_DYNSYM)) {
      const strSec = this.sections[sec.link];
      const strtab = strSec ? this.sectionData(strSec) : Buffer.alloc(0);
      const data = this.sectionData(sec);
      for (let o = 24; o + 24 <= data.length; o += 24) { // entry 0 is the null symbol
        const nameOff = data.readUInt32LE(o);
        out.push({
          name: nameOff < strtab.length ? readCString(strtab, nameOff) : '',
          type: data[o + 4]! & 0xf,
          shndx: data.readUInt16LE(o + 6),
          value: toNumber(data.readBigUInt64LE(o + 8), 'st_value'),
          size: toNumber(data.readBigUInt64LE(o + 16), 'st_size'),
        });
      }
    }
    this.symbolCache.set(table, out);
    return out;
  }

  /** One `.symtab` symbol by name, found by comparing bytes in place: big binaries have 100k+ symbols. */
  symbol(name: string): ElfSymbol | undefined {
    const cached = this.symbolCache.get('.symtab');
    if (cached) return cached.find((s) => s.name === name);
    const sec = this.section('.symtab');
    const strSec = sec && this.sections[sec.link];
    if (!sec || sec.type !== SHT_SYMTAB || !strSec) return undefined;
    this.rawSymtab ??= { data: this.sectionData(sec), strtab: this.sectionData(strSec) };
    const { data, strtab } = this.rawSymtab;
    const want = Buffer.from(name + '\0', 'utf8');
    for (let o = 24; o + 24 <= data.length; o += 24) {
      const nameOff = data.readUInt32LE(o);
      if (strtab[nameOff] !== want[0] || nameOff + want.length > strtab.length) continue;
      if (strtab.compare(want, 0, want.length, nameOff, nameOff + want.length) !== 0) continue;
      return {
        name,
        type: data[o + 4]! & 0xf,
        shndx: data.readUInt16LE(o + 6),
        value: toNumber(data.readBigUInt64LE(o + 8), 'st_value'),
        size: toNumber(data.readBigUInt64LE(o + 16), 'st_size'),
      };
    }
    return undefined;
  }

  /** Notes from SHT_NOTE sections, or from PT_NOTE segments when section headers are gone. */
  notes(): ElfNote[] {
    const ranges: Array<[number, number]> = this.sections.length
      ? this.sections.filter((s) => s.type === SHT_NOTE).map((s) => [s.offset, s.size])
      : this.segments.filter((p) => p.type === PT_NOTE).map((p) => [p.offset, p.filesz]);
    const out: ElfNote[] = [];
    for (const [off, size] of ranges) {
      const buf = this.source.read(off, size);
      let p = 0;
      while (p + 12 <= buf.length) {
        const namesz = buf.readUInt32LE(p);
        const descsz = buf.readUInt32LE(p + 4);
        const type = buf.readUInt32LE(p + 8);
        const nameStart = p + 12;
        const descStart = nameStart + align4(namesz);
        const end = descStart + align4(descsz);
        if (descStart > buf.length || descStart + descsz > buf.length) break; // sizes are u32s a file can set to anything
        const name = buf.toString('latin1', nameStart, nameStart + namesz).replace(/\0+$/, '');
        out.push({ name, type, desc: buf.subarray(descStart, descStart + descsz) });
        p = end;
      }
    }
    return out;
  }

  /** The GNU build ID (hex), if the file has one. */
  gnuBuildId(): string | undefined {
    const n = this.notes().find((x) => x.name === 'GNU' && x.type === 3);
    return n?.desc.toString('hex');
  }
}

/** Up to a multiple of 4, without 32-bit bit operations (namesz/descsz may be near 2^32). */
function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

const R_X86_64_RELATIVE = 8;
const R_AARCH64_RELATIVE = 1027;

/**
 * Writes the addends of R_*_RELATIVE relocations that fall inside [vaddr, vaddr+buf.length) into `buf`.
 * Older internally linked PIEs leave such pointer words zero on disk (golang/go#37173).
 */
export function applyRelativeRelocs(elf: ElfFile, vaddr: number, buf: Buffer): number {
  const relative = elf.machine === EM_AARCH64 ? R_AARCH64_RELATIVE : R_X86_64_RELATIVE;
  let applied = 0;
  for (const s of elf.sections) {
    if (s.type !== 4 /* SHT_RELA */ || s.entsize !== 24) continue;
    const rela = elf.sectionData(s);
    for (let o = 0; o + 24 <= rela.length; o += 24) {
      if (rela.readUInt32LE(o + 8) !== relative) continue;
      const at = Number(rela.readBigUInt64LE(o)) - vaddr;
      if (at < 0 || at + 8 > buf.length) continue;
      buf.writeBigInt64LE(rela.readBigInt64LE(o + 16), at);
      applied++;
    }
  }
  return applied;
}
