// `quietflame addr2line [--inline] BINARY`: addresses on stdin, one per line; answers streamed to stdout.

import { GoBinary } from '../gosym/binary';
import { goAddr2line, inlineAddr2line } from '../gosym/addr2line';

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
    await streamLines(process.stdin, (lines) => {
      let out = '';
      for (const l of lines) out += answer(bin, l);
      return out;
    });
  } finally {
    bin.close();
  }
}

export class UsageError extends Error {}

/** Splits input like bufio.ScanLines (a trailing \r is dropped) and writes each chunk's answers as they come. */
async function streamLines(input: NodeJS.ReadableStream, answer: (lines: string[]) => string): Promise<void> {
  let pending = '';
  const write = (s: string): Promise<void> | undefined => {
    if (s.length === 0 || process.stdout.write(s)) return undefined;
    return new Promise((resolve) => process.stdout.once('drain', () => resolve()));
  };
  const split = (text: string): string[] => text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  input.setEncoding('utf8');
  for await (const chunk of input) {
    pending += chunk as string;
    const cut = pending.lastIndexOf('\n');
    if (cut < 0) continue;
    const lines = split(pending.slice(0, cut));
    pending = pending.slice(cut + 1);
    await write(answer(lines));
  }
  if (pending.length > 0) await write(answer(split(pending)));
}
