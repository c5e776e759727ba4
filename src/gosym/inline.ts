// Expanding one physical PC into its inlined frames, innermost first, the way runtime.CallersFrames does
// (runtime/symtabinl.go): follow the inline tree index at pc, then the record's parentPc, until no index is left.

import { ElfFile } from './elf';
import { FormatError } from './bytes';
import { FuncInfo, Pclntab } from './pclntab';

export interface Frame {
  function: string;
  file: string;
  line: number;
}

/** Per-release indices and record layout of the inline tree (see reference §4). */
export interface InlineLayout {
  pcdataIndex: number;
  funcdataIndex: number;
  recordSize: number;
  nameOffAt: number;
  parentPcAt: number;
}

export function inlineLayout(pcln: Pclntab, goMinor: number | undefined): InlineLayout {
  switch (pcln.generation) {
    case 'go1.20':
      return { pcdataIndex: 2, funcdataIndex: 3, recordSize: 16, nameOffAt: 4, parentPcAt: 8 };
    case 'go1.18':
    case 'go1.16':
      return { pcdataIndex: 2, funcdataIndex: 3, recordSize: 20, nameOffAt: 12, parentPcAt: 16 };
    case 'go1.2':
      // 1.13–1.15 (the default when build info does not say): FUNCDATA_InlTree 4; 1.12: 2 with PCDATA 1.
      return goMinor !== undefined && goMinor <= 12
        ? { pcdataIndex: 1, funcdataIndex: 2, recordSize: 20, nameOffAt: 12, parentPcAt: 16 }
        : { pcdataIndex: 2, funcdataIndex: 4, recordSize: 20, nameOffAt: 12, parentPcAt: 16 };
  }
}

/**
 * How inline-tree bytes are cached: chunks of chunkBytes, at most maxChunks of them (the least recently used go).
 * addr2line looks up every function and keeps all (64 KiB chunks); the agent's symbolizer keeps a binary for as long
 * as its processes run and looks up few, so it keeps 512 KiB at most: unbounded, three profiles of a 56 MiB binary
 * left 8 MiB of chunks behind, and each new function's tree added to them.
 */
export interface InlineCaching {
  chunkBytes: number;
  maxChunks: number;
}

export const KEEP_ALL_CHUNKS: InlineCaching = { chunkBytes: 64 << 10, maxChunks: Infinity };
export const FEW_CHUNKS: InlineCaching = { chunkBytes: 4 << 10, maxChunks: 128 };

/** Reads small ranges at link-time addresses through a cache of chunks (inline trees are read record by record). */
class ChunkCache {
  private chunks = new Map<number, Buffer>(); // in order of use, least recent first
  constructor(
    private readonly elf: ElfFile,
    private readonly caching: InlineCaching,
  ) {}

  read(vaddr: number, length: number): Buffer {
    const size = this.caching.chunkBytes;
    const c = Math.floor(vaddr / size);
    const at = vaddr - c * size;
    if (at + length > size) return this.elf.readAt(vaddr, length);
    let chunk = this.chunks.get(c);
    if (chunk) {
      this.chunks.delete(c); // most recently used: last
    } else {
      const seg = this.elf.segmentAt(vaddr);
      if (!seg) throw new FormatError(`inline tree address 0x${vaddr.toString(16)} is not in the file`);
      const start = Math.max(c * size, seg.vaddr);
      const end = Math.min((c + 1) * size, seg.vaddr + seg.filesz);
      chunk = Buffer.alloc(size);
      this.elf.readAt(start, end - start).copy(chunk, start - c * size);
      if (this.chunks.size >= this.caching.maxChunks) this.chunks.delete(this.chunks.keys().next().value!);
    }
    this.chunks.set(c, chunk);
    return chunk.subarray(at, at + length);
  }

  /** Chunks held now (for tests). */
  get held(): number {
    return this.chunks.size;
  }
}

export class InlineExpander {
  private readonly cache: ChunkCache;

  constructor(
    private readonly pcln: Pclntab,
    elf: ElfFile,
    private readonly layout: InlineLayout,
    /** moduledata.gofunc (1.18+); 0 when unknown, and then inlined frames cannot be expanded. */
    private readonly gofunc: number,
    caching: InlineCaching = KEEP_ALL_CHUNKS,
  ) {
    this.cache = new ChunkCache(elf, caching);
  }

  /** Inline-tree chunks held now (for tests). */
  get chunksHeld(): number {
    return this.cache.held;
  }

  /** Address of f's inline tree, or undefined when it has none. */
  private treeAddress(f: FuncInfo): number | undefined {
    const fd = this.pcln.funcdata(f, this.layout.funcdataIndex);
    if (!fd) return undefined;
    if (fd.kind === 'address') return fd.value;
    return this.gofunc === 0 ? undefined : this.gofunc + fd.value;
  }

  /**
   * Frames at exactly `pc` (no return-address adjustment), innermost first; the physical function last. With
   * `pcs`, also the PC each frame's line was looked up at: `pc`, then each inlined call's parentPc (where Go's
   * runtime.Callers takes the virtual PCs of inlined frames from).
   */
  frames(f: FuncInfo, pc: number, pcs?: number[]): Frame[] {
    const out: Frame[] = [];
    const pcln = this.pcln;
    let ix = pcln.pcdata(f, this.layout.pcdataIndex, pc);
    const tree = ix >= 0 ? this.treeAddress(f) : undefined;
    if (tree !== undefined) {
      for (let depth = 0; ix >= 0; depth++) {
        if (depth > 1000) throw new FormatError(`inline tree of ${pcln.funcName(f)} loops`);
        const rec = this.cache.read(tree + ix * this.layout.recordSize, this.layout.recordSize);
        out.push({ function: pcln.nameAt(rec.readUInt32LE(this.layout.nameOffAt)), file: pcln.file(f, pc), line: pcln.line(f, pc) });
        pcs?.push(pc);
        pc = f.entry + rec.readInt32LE(this.layout.parentPcAt);
        ix = pcln.pcdata(f, this.layout.pcdataIndex, pc);
      }
    }
    out.push({ function: pcln.funcName(f), file: pcln.file(f, pc), line: pcln.line(f, pc) });
    pcs?.push(pc);
    return out;
  }
}
