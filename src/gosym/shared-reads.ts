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
  if (held !== undefined) return held;
  const buf = source.read(offset, length);
  reads.set(key, new WeakRef(buf));
  forget.register(buf, key);
  return buf;
}
