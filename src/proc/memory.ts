// Reading another process's memory without stopping it: process_vm_readv through the addon, many ranges per
// system call. Everything read is the other process's, changing under us: callers validate what they get.
//
// Needs CAP_SYS_PTRACE (ptrace access mode "attach" on the target); nothing is attached, signalled or stopped.

import { native } from '../bpf/native';

export type ReadRequest = readonly [address: number, length: number];

/** Most a single batch asks for; larger batches are split (the result is the same). */
const MAX_BATCH_BYTES = 16 << 20;

export class ProcessMemory {
  /** Bytes read so far (all batches), for the reader's own accounting. */
  bytesRead = 0;
  /** process_vm_readv calls made (batches). */
  calls = 0;

  constructor(readonly pid: number) {}

  /** Each request's bytes when it could be read whole, else undefined. Throws when the process is gone. */
  readMany(requests: readonly ReadRequest[]): Array<Buffer | undefined> {
    // Dense (filled): callers map over the results, and map skips the holes of a sparse array.
    const out: Array<Buffer | undefined> = new Array<Buffer | undefined>(requests.length).fill(undefined);
    let i = 0;
    while (i < requests.length) {
      let bytes = 0;
      let j = i;
      while (j < requests.length && (j === i || bytes + requests[j]![1] <= MAX_BATCH_BYTES)) bytes += requests[j++]![1];
      this.batch(requests, i, j, bytes, out);
      i = j;
    }
    return out;
  }

  /** One range whole, or undefined (unmapped, or the address is not a plausible user address). */
  read(address: number, length: number): Buffer | undefined {
    return this.readMany([[address, length]])[0];
  }

  /** Up to `length` bytes from `address`: what is mapped of it, from the start (possibly empty). */
  readUpTo(address: number, length: number): Buffer {
    if (!plausible(address, length)) return Buffer.alloc(0);
    const buf = Buffer.allocUnsafe(length);
    const got = native().readProcessMemory(this.pid, Float64Array.of(address, length), buf)[0]!;
    this.calls++;
    this.bytesRead += got;
    return buf.subarray(0, got);
  }

  private batch(requests: readonly ReadRequest[], from: number, to: number, bytes: number, out: Array<Buffer | undefined>): void {
    const pairs = new Float64Array(2 * (to - from));
    for (let k = from; k < to; k++) {
      const [addr, len] = requests[k]!;
      // An implausible request reads nothing (length 0 keeps the layout); its result stays undefined.
      const ok = plausible(addr, len);
      pairs[2 * (k - from)] = ok ? addr : 0;
      pairs[2 * (k - from) + 1] = ok ? len : 0;
    }
    const buf = Buffer.allocUnsafe(bytes);
    const got = native().readProcessMemory(this.pid, pairs, buf);
    this.calls++;
    let off = 0;
    for (let k = from; k < to; k++) {
      const len = pairs[2 * (k - from) + 1]!;
      const want = requests[k]![1];
      if (len === want && got[k - from] === want) {
        out[k] = buf.subarray(off, off + want);
        this.bytesRead += want;
      }
      off += len;
    }
  }
}

/** A user-space range on a 64-bit machine: non-null, below 2^47, length within reason. */
function plausible(address: number, length: number): boolean {
  return Number.isSafeInteger(address) && address >= 4096 && address + length <= 2 ** 47 && length > 0 && length <= 1 << 30;
}

/** The error readProcessMemory throws when the process has exited. */
export function isProcessGone(e: unknown): boolean {
  return (e as { code?: string } | null)?.code === 'ESRCH';
}
