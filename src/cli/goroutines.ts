// `quietflame goroutines PID`: every goroutine of a running Go process, read from outside (never stopped,
// signalled or traced) and printed as Go prints them: debug=2 (SIGQUIT's text, the default here), debug=1 (counts
// per stack) or debug=0 (a pprof goroutine profile, written to a file).

import * as fs from 'node:fs';
import { UsageError } from './addr2line';
import { GoroutineReadError } from '../goroutines/errors';
import { writeCountText } from '../goroutines/count-text';
import { goroutineProfile } from '../goroutines/profile';
import { snapshotGoroutines } from '../goroutines/reader';
import { TargetCache } from '../goroutines/target';
import { writeTracebackText } from '../goroutines/traceback-text';
import { Symbolizer } from '../symbols/symbolizer';

export const GOROUTINES_USAGE = `usage: quietflame goroutines PID [--debug 0|1|2] [--traceback system] [-o FILE]
  --debug 2            every goroutine, as Go prints them on SIGQUIT, with their pprof labels (default)
  --debug 1            goroutines counted per stack, as /debug/pprof/goroutine?debug=1
  --debug 0            a pprof goroutine profile (go tool pprof reads it); needs -o FILE unless stdout is a file
  --traceback system   also the runtime's own goroutines and frames (GOTRACEBACK=system)
  -o FILE              write to FILE instead of stdout`;

/** Thrown for a dump that cannot be taken: the CLI prints the message alone and exits 1. */
export class GoroutinesError extends Error {}

interface Args {
  pid: number;
  debug: 0 | 1 | 2;
  system: boolean;
  out?: string;
}

function parseArgs(args: readonly string[]): Args {
  let pid: number | undefined;
  let debug: 0 | 1 | 2 = 2;
  let system = false;
  let out: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = args[i + 1];
    if (a === '--debug') {
      if (value !== '0' && value !== '1' && value !== '2') throw new UsageError(`--debug ${value ?? '(missing)'}: expected 0, 1 or 2\n${GOROUTINES_USAGE}`);
      debug = Number(value) as 0 | 1 | 2;
      i++;
    } else if (a === '--traceback') {
      if (value !== 'system' && value !== 'all') throw new UsageError(`--traceback ${value ?? '(missing)'}: expected all or system\n${GOROUTINES_USAGE}`);
      system = value === 'system';
      i++;
    } else if (a === '-o') {
      if (!value) throw new UsageError(`-o: expected a file name\n${GOROUTINES_USAGE}`);
      out = value;
      i++;
    } else if (/^\d{1,10}$/.test(a) && pid === undefined && Number(a) > 0) {
      pid = Number(a);
    } else {
      throw new UsageError(`${a}: unexpected argument\n${GOROUTINES_USAGE}`);
    }
  }
  if (pid === undefined) throw new UsageError(`a process ID is required\n${GOROUTINES_USAGE}`);
  return { pid, debug, system, out };
}

export function runGoroutines(argv: readonly string[]): number {
  const args = parseArgs(argv);
  if (args.debug === 0 && !args.out && process.stdout.isTTY) throw new UsageError(`--debug 0 writes a binary profile: give -o FILE or redirect stdout\n${GOROUTINES_USAGE}`);
  const targets = new TargetCache(1);
  const symbolizer = args.debug === 2 ? undefined : new Symbolizer();
  let output: string | Buffer;
  try {
    const dump = snapshotGoroutines(args.pid, targets, { resolver: symbolizer });
    for (const w of dump.warnings) process.stderr.write(`quietflame goroutines: pid ${args.pid}: ${w}\n`);
    if (args.debug === 0) output = goroutineProfile(dump);
    else if (args.debug === 1) output = writeCountText(dump);
    else output = writeTracebackText(dump, { system: args.system, labels: true });
  } catch (e) {
    if (e instanceof GoroutineReadError) throw new GoroutinesError(e.message);
    throw e;
  } finally {
    targets.close();
    symbolizer?.close();
  }
  if (args.out) fs.writeFileSync(args.out, output);
  else process.stdout.write(output);
  return 0;
}
