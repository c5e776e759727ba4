// Big reads of a file that whoever asks next gets again instead of a copy, while the first Buffer is alive: the
// agent's unwind-table builder and its symbolizer each open the same Go binary, and its pclntab (9 MiB for a
// 56 MiB binary) is then held once. Held weakly, so the bytes go once no one uses them. Callers must not write
// into what they get.

import type { ByteSource } from './bytes';

const reads = new Map<string, WeakRef<Buffer>>();
const forget = new FinalizationRegistry<string>((key) => {
  if (reads.get(key)?.deref() === undefined) reads.delete(key);
});

/** source.read(offset, length), shared with every other holder of the same range of the same file. */
export function sharedRead(source: ByteSource, offset: number, length: number): Buffer {
  if (source.identity === undefined) return source.read(offset, length);
  const key = `${source.identity}@${offset}+${length}`;
  const held = reads.get(key)?.deref();
  if (held !== undefined && held.length === length) return held; // (a Buffer handed to another thread is empty)
  const buf = source.read(offset, length);
  hold(key, buf);
  return buf;
}

function hold(key: string, buf: Buffer): void {
  reads.set(key, new WeakRef(buf));
  forget.register(buf, key);
}

/** A read made on another thread (see sharedReadsOf), to be shared here as if made here. */
export interface HandedRead {
  key: string;
  bytes: Uint8Array;
}

/**
 * The shared reads of a file still held on this thread, to hand to another (transferred: they are empty here
 * afterwards, and read again if asked for). Only whole ArrayBuffers, which can be transferred.
 */
export function sharedReadsOf(source: ByteSource): HandedRead[] {
  if (source.identity === undefined) return [];
  const out: HandedRead[] = [];
  for (const [key, ref] of reads) {
    const buf = ref.deref();
    if (!key.startsWith(`${source.identity}@`) || buf === undefined || buf.length === 0) continue;
    if (buf.byteOffset !== 0 || buf.byteLength !== buf.buffer.byteLength) continue;
    out.push({ key, bytes: new Uint8Array(buf.buffer, 0, buf.length) });
  }
  return out;
}

/** Shares reads handed over from another thread (sharedReadsOf there). */
export function adoptSharedReads(handed: readonly HandedRead[]): void {
  for (const h of handed) hold(h.key, Buffer.from(h.bytes.buffer, h.bytes.byteOffset, h.bytes.length));
}
