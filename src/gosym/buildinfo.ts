// Which Go built a binary, and its build ID: .go.buildinfo, the Go build-ID note, or bounds from the pclntab.

import { FormatError, readUvarint } from './bytes';
import { ElfFile, PF_W, PF_X, PT_LOAD } from './elf';
import { PclnGeneration } from './pclntab';

/** Sections only Go binaries have (one of them at least, whatever the release and however it was linked). */
const GO_SECTIONS = ['.gopclntab', '.data.rel.ro.gopclntab', '.go.buildinfo', '.note.go.buildid', '.go.module'];

/**
 * Whether an ELF file may be a Go binary, from its section headers alone: false only when it has section headers
 * and none of Go's (a file without section headers may still be one; the pclntab search decides).
 */
export function mayBeGo(elf: ElfFile): boolean {
  return elf.sections.length === 0 || GO_SECTIONS.some((s) => elf.section(s) !== undefined);
}

const BUILDINFO_MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');

export interface GoVersion {
  /** e.g. "go1.23.5", or a range such as "go1.20+" when only the table layout tells. */
  text: string;
  major: number;
  minor: number;
  /** true when read from build info; false when bounded from the pclntab layout. */
  exact: boolean;
}

export function parseGoVersion(text: string): GoVersion | undefined {
  const m = /^go(\d+)\.(\d+)/.exec(text);
  return m ? { text, major: Number(m[1]), minor: Number(m[2]), exact: true } : undefined;
}

/** The lowest release a pclntab generation (and the presence of Go 1.26's .go.module) allows. */
export function versionFromLayout(gen: PclnGeneration, hasGoModuleSection: boolean): GoVersion {
  if (hasGoModuleSection) return { text: 'go1.26+', major: 1, minor: 26, exact: false };
  switch (gen) {
    case 'go1.2':
      return { text: 'go1.2-go1.15', major: 1, minor: 2, exact: false };
    case 'go1.16':
      return { text: 'go1.16-go1.17', major: 1, minor: 16, exact: false };
    case 'go1.18':
      return { text: 'go1.18-go1.19', major: 1, minor: 18, exact: false };
    case 'go1.20':
      return { text: 'go1.20+', major: 1, minor: 20, exact: false };
  }
}

/** The buildinfo blob: `.go.buildinfo`, else a 16-aligned magic in the first writable data segment. */
function findBuildInfoBlob(elf: ElfFile): { vaddr: number; data: Buffer } | undefined {
  const s = elf.section('.go.buildinfo');
  if (s && s.size >= 32) return { vaddr: s.addr, data: elf.sectionData(s) };
  const seg = elf.segments.find((p) => p.type === PT_LOAD && (p.flags & PF_W) !== 0 && (p.flags & PF_X) === 0 && p.filesz > 0);
  if (!seg) return undefined;
  const limit = Math.min(seg.filesz, 64 << 20);
  const data = elf.source.read(seg.offset, limit);
  for (let i = data.indexOf(BUILDINFO_MAGIC); i >= 0; i = data.indexOf(BUILDINFO_MAGIC, i + 1)) {
    if (i % 16 === 0) return { vaddr: seg.vaddr + i, data: data.subarray(i) };
  }
  return undefined;
}

/** The Go version string from build info (Go 1.13+), or undefined when there is none or it is unreadable. */
export function readGoVersionString(elf: ElfFile): string | undefined {
  const blob = findBuildInfoBlob(elf);
  if (!blob || blob.data.length < 32 || !blob.data.subarray(0, 14).equals(BUILDINFO_MAGIC)) return undefined;
  const d = blob.data;
  const ptrSize = d[14]!;
  const flags = d[15]!;
  try {
    if (flags & 2) {
      const [len, at] = readUvarint(d, 32);
      if (len > 1024 || at + len > d.length) return undefined;
      return d.toString('utf8', at, at + len) || undefined;
    }
    if (ptrSize !== 8) return undefined;
    // Older form: a pointer to a Go string header {ptr, len} for runtime.buildVersion.
    const hdrAddr = Number(d.readBigUInt64LE(16));
    const hdr = elf.readAt(hdrAddr, 16);
    const strAddr = Number(hdr.readBigUInt64LE(0));
    const len = Number(hdr.readBigUInt64LE(8));
    if (len === 0 || len > 1024) return undefined;
    return elf.readAt(strAddr, len).toString('utf8');
  } catch (e) {
    if (e instanceof FormatError) return undefined;
    throw e;
  }
}

const BUILDID_PREFIX = Buffer.from('\xff Go build ID: "', 'latin1');

/** The Go build ID: the `Go` note (type 4), else the string the linker puts at the start of the text. */
export function readGoBuildId(elf: ElfFile): string | undefined {
  const note = elf.notes().find((n) => n.name === 'Go' && n.type === 4);
  if (note) return note.desc.toString('utf8');
  const text = elf.section('.text');
  const seg = text ? undefined : elf.segments.find((p) => p.type === PT_LOAD && (p.flags & PF_X) !== 0);
  const offset = text ? text.offset : seg?.offset;
  if (offset === undefined) return undefined;
  const size = Math.min(text ? text.size : seg!.filesz, 32 << 10);
  const head = elf.source.read(offset, size);
  const i = head.indexOf(BUILDID_PREFIX);
  if (i < 0) return undefined;
  const start = i + BUILDID_PREFIX.length;
  const end = head.indexOf(0x22, start);
  return end > start ? head.toString('latin1', start, end) : undefined;
}
