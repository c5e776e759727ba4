// `quietflame diagnose FILE…`: the diagnosis rules over a CPU profile, an off-CPU profile and goroutine dumps
// (any may be missing; two dumps or more, oldest first, let goroutine-leak compare them). Prints the findings as
// JSON on stdout. A file that cannot be read or is none of these ends the command with one line and status 1.

import * as fs from 'node:fs';
import { diagnose } from '../diagnose/diagnose';
import { classify, combine, InputError } from '../diagnose/inputs';
import { UsageError } from './addr2line';

export { InputError };

export const DIAGNOSE_USAGE = `usage: quietflame diagnose FILE…
  FILE  a CPU or off-CPU pprof profile (the agent's, or the program's own runtime/pprof), or a goroutine dump
        (SIGQUIT/GOTRACEBACK output, runtime.Stack(all), /debug/pprof/goroutine?debug=2); dumps oldest first`;

/** Larger files are not profiles or dumps anyone diagnoses by hand. */
const MAX_FILE_BYTES = 1 << 30;

export function runDiagnose(args: readonly string[]): string {
  if (args.length === 0 || args.some((a) => a.startsWith('-'))) throw new UsageError(DIAGNOSE_USAGE);
  const files = args.map((name) => {
    const size = fs.statSync(name).size;
    if (size > MAX_FILE_BYTES) throw new InputError(`${name}: ${size} bytes is more than ${MAX_FILE_BYTES}`);
    return { name, file: classify(name, fs.readFileSync(name)) };
  });
  const { input, notes } = combine(files);
  const d = diagnose(input);
  const inputs = {
    cpu: files.find((f) => f.file.kind === 'cpu')?.name,
    offcpu: files.find((f) => f.file.kind === 'offcpu')?.name,
    dumps: files.filter((f) => f.file.kind === 'dump').map((f) => f.name),
  };
  return JSON.stringify({ inputs, findings: d.findings, notes: [...notes, ...d.notes] }, null, 2) + '\n';
}
