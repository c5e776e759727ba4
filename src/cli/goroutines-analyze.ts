// `quietflame goroutines analyze [--json] [--system] [--pprof OUT] FILE`: reads a goroutine dump (SIGQUIT text,
// runtime.Stack(all), debug=2; gzipped or not; "-" for stdin) and prints its analysis: groups of goroutines
// with the same stack and state, blocking chains, the longest wait. --pprof also writes a goroutine profile.

import * as fs from 'node:fs';
import { analysisText, analyzeDump } from '../goroutines/analyze';
import { DumpInputError, parseDumpInput } from '../goroutines/dump-input';
import { goroutineProfile } from '../goroutines/profile';
import { UsageError } from './addr2line';

const USAGE = 'usage: quietflame goroutines analyze [--json] [--system] [--pprof OUT] FILE  (FILE "-": stdin)';
/** A dump larger than this is not read (100,000 goroutines print about 100 MB). */
const MAX_DUMP_BYTES = 1 << 30;

export function runGoroutinesAnalyze(args: string[]): number {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  let json = false;
  let system = false;
  let pprofOut: string | undefined;
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--json') json = true;
    else if (a === '--system') system = true;
    else if (a === '--pprof') {
      pprofOut = args[++i];
      if (!pprofOut) throw new UsageError(`--pprof needs a file name\n${USAGE}`);
    } else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option ${a}\n${USAGE}`);
    else files.push(a);
  }
  if (files.length !== 1) throw new UsageError(USAGE);
  const file = files[0]!;
  let dump;
  try {
    dump = parseDumpInput(file === '-' ? fs.readFileSync(0) : readBounded(file), MAX_DUMP_BYTES);
  } catch (e) {
    if (e instanceof DumpInputError) {
      process.stderr.write(`quietflame goroutines analyze: ${file}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  const analysis = analyzeDump(dump, { system });
  process.stdout.write(json ? `${JSON.stringify(analysis, null, 2)}\n` : analysisText(analysis));
  if (pprofOut) fs.writeFileSync(pprofOut, goroutineProfile(dump, { system }));
  return 0;
}

function readBounded(file: string): Buffer {
  const size = fs.statSync(file).size;
  if (size > MAX_DUMP_BYTES) throw new DumpInputError(413, `larger than ${MAX_DUMP_BYTES >> 20} MiB: not read`);
  return fs.readFileSync(file);
}
