// Where a pclntab's pc-value tables (its pctab: the line, file, SP-delta and pcdata tables of every function) come
// from when they are not held in memory. addr2line and the binary reader decode most of them and hold the whole
// pclntab; the agent's symbolizer keeps a binary's table for as long as a process runs it and looks up few of its
// pc-value tables, which are three quarters of the pclntab (7.3 of 9.8 MiB for a 56 MiB binary). So it reads them
// from the file a chunk at a time and keeps the chunks it used last.

/**
 * Bytes that hold the table asked for from pos on. When `whole` is false they may end inside it (a decoder that
 * runs off them asks again with whole); when true they run to the end of what will ever be read for it.
 */
export interface PcWindow {
  bytes: Buffer;
  pos: number;
  whole: boolean;
}

/**
 * How the pctab is read: chunks of chunkBytes (each with overlapBytes of the next, so that a table starting near
 * its end is usually whole in it), the maxChunks used last kept. Tests make them small to cross chunks often.
 */
export interface PcChunking {
  chunkBytes: number;
  overlapBytes: number;
  maxChunks: number;
}

/** 640 KiB per binary at most; Go's tables are a few KiB at the longest, most far shorter. */
const CHUNKING: PcChunking = { chunkBytes: 16 << 10, overlapBytes: 4 << 10, maxChunks: 32 };
/** The most read for one table: a function's tables are far shorter (Go's longest are a few KiB). */
const MAX_TABLE = 1 << 20;
const NOTHING: PcWindow = { bytes: Buffer.alloc(0), pos: 0, whole: true };

export class PcTablesOnDemand {
  private readonly chunks = new Map<number, Buffer>(); // in order of use, least recent first

  /**
   * @param read bytes [offset, offset + length) of the pctab; may throw (the file went away or shrank: the tables
   *   are then unknown, as in a table that ends early).
   * @param size the pctab's length.
   */
  constructor(
    private readonly read: (offset: number, length: number) => Buffer,
    readonly size: number,
    private readonly chunking: PcChunking = CHUNKING,
  ) {}

  window(tableOff: number, whole: boolean): PcWindow {
    if (tableOff >= this.size) return NOTHING;
    if (whole) {
      const bytes = this.tryRead(tableOff, Math.min(MAX_TABLE, this.size - tableOff));
      return bytes ? { bytes, pos: 0, whole: true } : NOTHING;
    }
    const { chunkBytes, overlapBytes, maxChunks } = this.chunking;
    const c = Math.floor(tableOff / chunkBytes);
    let chunk = this.chunks.get(c);
    if (chunk !== undefined) {
      this.chunks.delete(c); // most recently used: last
    } else {
      chunk = this.tryRead(c * chunkBytes, Math.min(chunkBytes + overlapBytes, this.size - c * chunkBytes));
      if (chunk === undefined) return NOTHING;
      if (this.chunks.size >= maxChunks) this.chunks.delete(this.chunks.keys().next().value!);
    }
    this.chunks.set(c, chunk);
    return { bytes: chunk, pos: tableOff - c * chunkBytes, whole: c * chunkBytes + chunk.length >= this.size };
  }

  /** Chunks held now (for tests). */
  get held(): number {
    return this.chunks.size;
  }

  private tryRead(offset: number, length: number): Buffer | undefined {
    try {
      const b = this.read(offset, length);
      return b.length === length ? b : undefined;
    } catch {
      return undefined;
    }
  }
}
