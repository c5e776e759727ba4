// Random access to a binary's bytes. Big executables (100+ MB) are never read whole: the ELF headers, the
// pclntab and the few other ranges symbolization needs are read on demand.

import * as fs from 'node:fs';

import { checkTableSize } from './limits';

/** Something that goes wrong with the input, not with the code: callers turn it into a one-line message. */
export class FormatError extends Error {
  override name = 'FormatError';
}

export interface ByteSource {
  readonly size: number;
  /** The file's identity (device, inode, size, mtime) when it is one: sources of equal identity hold equal bytes. */
  readonly identity?: string;
  /** Exactly `length` bytes at `offset`, or a FormatError when the range is not inside the source. */
  read(offset: number, length: number): Buffer;
  /** read() into a buffer of the caller's (reused across reads, so that streaming allocates nothing per read). */
  readInto(out: Buffer, offset: number): void;
  close(): void;
}

function checkRange(size: number, offset: number, length: number, what: string): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new FormatError(`${what}: range [${offset}, +${length}) is outside the file (${size} bytes); the file is truncated or corrupt`);
  }
}

export class BufferSource implements ByteSource {
  constructor(private readonly buf: Buffer) {}
  get size(): number {
    return this.buf.length;
  }
  read(offset: number, length: number): Buffer {
    checkRange(this.buf.length, offset, length, 'read');
    return this.buf.subarray(offset, offset + length);
  }
  readInto(out: Buffer, offset: number): void {
    checkRange(this.buf.length, offset, out.length, 'read');
    this.buf.copy(out, 0, offset, offset + out.length);
  }
  close(): void {}
}

/** Where a read's bytes go: exactly `length` of them (uninitialised is fine). */
export type ReadAllocator = (length: number) => Buffer;

/** Reads a file with pread; each read allocates exactly what was asked for. */
export class FileSource implements ByteSource {
  private fd: number | undefined;
  readonly size: number;
  readonly identity: string;

  private readonly closeFd: ((fd: number) => void) | undefined;

  /**
   * Opens `path`, or takes over `fd` (closed by close(), or at once when it is not a regular file). `ownership`:
   * 'borrowed' — never closed here (another thread's source, whose owner keeps it open while this one reads); or
   * how to close a descriptor that fs did not open (default fs.closeSync). `allocate`: where read() puts its bytes.
   */
  constructor(
    readonly path: string,
    fd?: number,
    ownership: 'borrowed' | ((fd: number) => void) = fs.closeSync,
    private readonly allocate: ReadAllocator = Buffer.allocUnsafe,
  ) {
    this.closeFd = ownership === 'borrowed' ? undefined : ownership;
    this.fd = fd ?? fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
    try {
      const st = fs.fstatSync(this.fd);
      if (st.isDirectory()) throw new FormatError('is a directory, not a binary');
      if (!st.isFile()) throw new FormatError('not a regular file');
      this.size = st.size;
      this.identity = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch (e) {
      this.closeFd?.(this.fd);
      throw e;
    }
  }

  /** The open descriptor (for a worker thread to read through while this source stays open), or undefined once closed. */
  get descriptor(): number | undefined {
    return this.fd;
  }

  read(offset: number, length: number): Buffer {
    if (this.fd === undefined) throw new Error(`${this.path}: read after close`);
    checkRange(this.size, offset, length, 'read');
    checkTableSize(length, 'read');
    const out = this.allocate(length);
    this.readInto(out, offset);
    return out;
  }

  readInto(out: Buffer, offset: number): void {
    if (this.fd === undefined) throw new Error(`${this.path}: read after close`);
    checkRange(this.size, offset, out.length, 'read');
    for (let done = 0; done < out.length;) {
      const n = fs.readSync(this.fd, out, done, out.length - done, offset + done);
      if (n === 0) throw new FormatError(`unexpected end of file at ${offset + done}: the file is truncated`);
      done += n;
    }
  }

  close(): void {
    if (this.fd !== undefined) this.closeFd?.(this.fd);
    this.fd = undefined;
  }
}

/** Reads unsigned LEB128 at `pos`; returns the value and the position after it. Values above 2^53 are corrupt input. */
export function readUvarint(buf: Buffer, pos: number): [value: number, next: number] {
  let value = 0;
  let mul = 1;
  for (;;) {
    if (pos >= buf.length) throw new FormatError('varint runs past the end of its table');
    const b = buf[pos++]!;
    value += (b & 0x7f) * mul;
    if (b < 0x80) return [value, pos];
    mul *= 128;
    if (mul > 2 ** 49) throw new FormatError('varint too long');
  }
}

/** A NUL-terminated string at `pos` (latin1 is wrong for non-ASCII names, so decode as UTF-8). */
export function readCString(buf: Buffer, pos: number): string {
  if (pos < 0 || pos >= buf.length) throw new FormatError(`string offset ${pos} outside its table (${buf.length} bytes)`);
  const end = buf.indexOf(0, pos);
  if (end < 0) throw new FormatError(`unterminated string at offset ${pos}`);
  return buf.toString('utf8', pos, end);
}
