// `quietflame addr2line [--inline] BINARY`: addresses on stdin, one per line; answers streamed to stdout.
// Lines are answered in batches: whatever has arrived when the input pauses for a moment (so a program that
// writes one address and waits still gets its answer), up to MAX_BATCH lines.

import { GoBinary } from '../gosym/binary';
import { goAddr2line, inlineAddr2line, parseAddressLine, parseAddressLines } from '../gosym/addr2line';

const USAGE = 'usage: quietflame addr2line [--inline] BINARY  (link-time addresses in hex on stdin, one per line)';

export async function runAddr2line(args: string[]): Promise<void> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  const inline = args.includes('--inline');
  const rest = args.filter((a) => a !== '--inline');
  if (rest.length !== 1 || rest[0]!.startsWith('-')) {
    throw new UsageError(USAGE);
  }
  const bin = GoBinary.open(rest[0]!);
  const answer = inline ? inlineAddr2line : goAddr2line;
  try {
    await streamLines(process.stdin, (pcs) => answer(bin, pcs));
  } finally {
    bin.close();
  }
}

export class UsageError extends Error {}

const QUIET_MS = 3;
const MAX_BATCH = 1 << 20;

/** Parses input lines as they arrive (bufio.ScanLines semantics) and writes each batch's answers. */
function streamLines(input: NodeJS.ReadStream, answer: (pcs: Float64Array) => Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let pending: Buffer = Buffer.alloc(0);
    let pcs: number[] = [];
    let timer: NodeJS.Timeout | undefined;
    const flush = (): void => {
      clearTimeout(timer);
      timer = undefined;
      if (pcs.length === 0) return;
      const batch = Float64Array.from(pcs);
      pcs = [];
      try {
        if (!process.stdout.write(answer(batch))) {
          input.pause();
          process.stdout.once('drain', () => input.resume());
        }
      } catch (e) {
        input.destroy();
        reject(e);
      }
    };
    input.on('data', (chunk: Buffer) => {
      const buf = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
      pending = buf.subarray(parseAddressLines(buf, 0, buf.length, pcs));
      clearTimeout(timer);
      if (pcs.length >= MAX_BATCH) flush();
      else timer = setTimeout(flush, QUIET_MS);
    });
    input.on('end', () => {
      if (pending.length > 0) pcs.push(parseAddressLine(pending, 0, pending.length));
      flush();
      resolve();
    });
    input.on('error', reject);
  });
}
