// /proc files read into one reused buffer. readFileSync allocates 64 KiB for every file that reports size 0 (all
// of /proc) and grows from there; the agent reads stat and maps files of many processes every second.

import * as fs from 'node:fs';

const INITIAL = 16 << 10;
/** Kept between calls up to this size; a bigger file's buffer is let go after the read. */
const KEEP = 1 << 20;
let scratch = Buffer.allocUnsafe(INITIAL);

/** The whole text of a /proc file (latin1), or undefined when it cannot be opened or read. Never throws. */
export function readProcText(path: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch {
    return undefined;
  }
  let buf = scratch;
  try {
    let n = 0;
    for (;;) {
      if (n === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, n);
        buf = bigger;
      }
      const r = fs.readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
    }
    return buf.toString('latin1', 0, n);
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
    if (buf.length <= KEEP) scratch = buf;
  }
}
