// `quietflame addr2line [--inline] BINARY`: addresses on stdin, one per line; answers streamed to stdout.
// Lines are answered in batches: whatever has arrived when the input pauses for a moment (so a program that
// writes one address and waits still gets its answer), up to MAX_BATCH lines.

import * as fs from 'node:fs';
import * as v8 from 'node:v8';
import { GoBinary } from '../gosym/binary';
import { hugePageBytes } from '../gosym/huge-pages';
import { goAddr2line, inlineAddr2line } from '../gosym/addr2line';
import { parseAddressLine, parseAddressLines, PcBatch } from '../gosym/address-lines';

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
  tuneJitForAShortLife();
  const bin = GoBinary.open(rest[0]!, hugePageBytes);
  const answer = inline ? inlineAddr2line : goAddr2line;
  const answerBatch = (pcs: Float64Array): void => answer(bin, pcs, writeStdout);
  try {
    if (fs.fstatSync(0).isFile()) readFileLines(0, answerBatch);
    else await streamLines(process.stdin, answerBatch);
  } catch (e) {
    if (!(e instanceof OutputClosed)) throw e;
  } finally {
    bin.close();
  }
}

export class UsageError extends Error {}

/**
 * This process lives a fraction of a second and each of its hot loops runs once: let V8 compile a hot loop on
 * the spot (on-stack replacement on the main thread) rather than on a background thread that competes for the
 * same cores while the loop carries on in the interpreter. Worth about 10 ms of 200 on 200,000 addresses on a
 * busy 2-core machine. (Flags that V8 reads only at start-up, such as --no-concurrent-recompilation or heap
 * sizes, cannot be set from here; a re-exec to pass them costs a second Node start-up, 40+ ms.)
 */
function tuneJitForAShortLife(): void {
  v8.setFlagsFromString('--no-concurrent-osr');
}

/** The reader of our output has gone: nothing more to answer. */
class OutputClosed extends Error {}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes to fd 1 synchronously, so the producer can reuse its chunk and never holds the whole answer (13 MB for
 * 200,000 addresses: fresh pages cost more than the copy). process.stdout is never touched: on a pipe it would
 * switch the fd to non-blocking and queue every write. EAGAIN (a non-blocking fd we inherited) waits 1 ms.
 */
function writeStdout(chunk: Buffer): void {
  for (let done = 0; done < chunk.length; ) {
    try {
      done += fs.writeSync(1, chunk, done, chunk.length - done);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') throw new OutputClosed();
      if (code !== 'EAGAIN') throw e;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

const QUIET_MS = 3;
/**
 * A read that filled the stream's 64 KiB buffer means the writer is ahead of us and more is on its way: a
 * 3 ms gap after it is the writer losing its CPU on a busy machine, not a pause, and answering there would cut
 * the batch in two (each half decodes the same tables again).
 */
const FULL_READ = 64 * 1024;
const BULK_QUIET_MS = 50;
const MAX_BATCH = 1 << 20;

const FILE_READ = 1 << 20;

/**
 * A file on stdin (`addr2line BIN <file`) has no pauses to answer at: it is read with big synchronous reads into
 * one buffer, and answered in batches of MAX_BATCH lines. (process.stdin would read it 64 KiB at a time on the
 * thread pool, the main thread idle at each read, and load Node's stream modules to do it.)
 */
function readFileLines(fd: number, answer: (pcs: Float64Array) => void): void {
  const pcs = new PcBatch();
  let buf = hugePageBytes(FILE_READ);
  let held = 0; // an unfinished line, at buf's start
  for (;;) {
    if (held === buf.length) buf = Buffer.concat([buf], buf.length * 2); // a line longer than the buffer
    const n = fs.readSync(fd, buf, held, buf.length - held, null);
    if (n === 0) break;
    const end = held + n;
    const next = parseAddressLines(buf, 0, end, pcs);
    buf.copyWithin(0, next, end);
    held = end - next;
    if (pcs.length >= MAX_BATCH) answer(pcs.take());
  }
  if (held > 0) pcs.push(parseAddressLine(buf, 0, held));
  if (pcs.length > 0) answer(pcs.take());
}

/** Parses input lines as they arrive (bufio.ScanLines semantics) and answers each batch. */
function streamLines(input: NodeJS.ReadStream, answer: (pcs: Float64Array) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let pending: Buffer = Buffer.alloc(0);
    const pcs = new PcBatch();
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (err?: unknown): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err === undefined || err instanceof OutputClosed) resolve();
      else reject(err);
    };
    const flush = (): void => {
      clearTimeout(timer);
      timer = undefined;
      if (pcs.length === 0 || done) return;
      try {
        answer(pcs.take());
      } catch (e) {
        input.destroy();
        finish(e);
      }
    };
    input.on('data', (chunk: Buffer) => {
      let from = 0;
      if (pending.length > 0) {
        // Only the line cut in two is joined: copying every 64 KiB chunk would cost fresh pages.
        const nl = chunk.indexOf(0x0a);
        from = nl < 0 ? chunk.length : nl + 1;
        const joined = Buffer.concat([pending, chunk.subarray(0, from)]);
        pending = joined.subarray(parseAddressLines(joined, 0, joined.length, pcs));
      }
      if (pending.length === 0) pending = chunk.subarray(parseAddressLines(chunk, from, chunk.length, pcs));
      clearTimeout(timer);
      if (pcs.length >= MAX_BATCH) flush();
      else timer = setTimeout(flush, chunk.length >= FULL_READ ? BULK_QUIET_MS : QUIET_MS);
    });
    input.on('end', () => {
      if (pending.length > 0) pcs.push(parseAddressLine(pending, 0, pending.length));
      flush();
      finish();
    });
    input.on('error', finish);
  });
}
