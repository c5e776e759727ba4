// Memory for a short-lived process that fills big buffers once (`quietflame addr2line`). Each fresh 4 KiB page costs
// a page fault, ~12 µs on this project's Firecracker guests: 18 MiB read into malloc'd memory took 65 ms, 3 of them
// the copy. Transparent huge pages (the addon's hugePageBuffer) fault once per 2 MiB. The agent does not use this:
// a table it keeps would be rounded up to whole huge pages of RSS.

import { native } from '../bpf/native';

/** Below this, a block is not worth a huge page (nor rounding up to one). */
const WORTH_A_HUGE_PAGE = 1 << 20;

let hugePagesUsable: boolean | undefined;

/** `length` zero-filled bytes: in transparent huge pages when that many are worth it and the addon is there. */
export function hugePageBytes(length: number): Buffer {
  if (length >= WORTH_A_HUGE_PAGE && hugePagesUsable !== false) {
    try {
      const buf = native().hugePageBuffer(length);
      hugePagesUsable = true;
      return buf;
    } catch (e) {
      if ((e as { code?: string }).code !== 'ERR_QF_NATIVE_ADDON') throw e;
      hugePagesUsable = false; // not built: ordinary pages, only slower
    }
  }
  return Buffer.alloc(length);
}

/** Typed arrays carved one after another from one block (zero-filled, as `new Int32Array(n)` is). */
export class ScratchArrays {
  private readonly block: Buffer;
  private used = 0;

  /** `bytes`: the sum of what will be carved, each array's bytes rounded up to a multiple of 8. */
  constructor(bytes: number) {
    this.block = hugePageBytes(Math.max(8, bytes));
  }

  int32(n: number): Int32Array {
    return new Int32Array(this.block.buffer, this.take(n * 4), n);
  }

  uint32(n: number): Uint32Array {
    return new Uint32Array(this.block.buffer, this.take(n * 4), n);
  }

  float64(n: number): Float64Array {
    return new Float64Array(this.block.buffer, this.take(n * 8), n);
  }

  private take(bytes: number): number {
    const at = this.block.byteOffset + this.used;
    const used = this.used + Math.ceil(bytes / 8) * 8;
    if (used > this.block.length) throw new RangeError(`scratch block of ${this.block.length} bytes exhausted`);
    this.used = used;
    return at;
  }
}
