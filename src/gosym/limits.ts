// How much one binary may make the agent hold: any single table read from it or inflated from a compressed
// section. Binaries come from other tenants' containers, so every size they declare is checked against this before
// anything is allocated. Set from --max-binary-table-bytes; the default stays far below the DaemonSet's 256 MiB.

import { FormatError } from './bytes';

export const DEFAULT_MAX_TABLE_BYTES = 64 << 20;

let maxTableBytes = DEFAULT_MAX_TABLE_BYTES;

export function setMaxTableBytes(bytes: number): void {
  if (!Number.isSafeInteger(bytes) || bytes < 1 << 20) throw new RangeError(`max table bytes must be an integer ≥ 1 MiB, got ${bytes}`);
  maxTableBytes = bytes;
}

export function maxTableSize(): number {
  return maxTableBytes;
}

/** Throws a FormatError when a table of `bytes` would pass the cap. */
export function checkTableSize(bytes: number, what: string): void {
  if (bytes > maxTableBytes) {
    throw new FormatError(`${what}: ${bytes} bytes is more than the ${maxTableBytes}-byte cap on one table (--max-binary-table-bytes)`);
  }
}
