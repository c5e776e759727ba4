// What `quietflame diagnose FILE…` is given, told apart by content: a pprof CPU or off-CPU profile (gzipped or raw
// protobuf, the agent's or the program's own runtime/pprof), or the text of a goroutine dump (SIGQUIT,
// runtime.Stack(all), /debug/pprof/goroutine?debug=2). Pure: bytes in, a diagnosis input or a one-line reason out.

import { parseGoroutineDump } from '../goroutines/parse';
import type { GoroutineDump } from '../goroutines/model';
import { decodePprof, type Profile } from '../profile/pprof';
import type { DiagnoseInput } from './diagnose';
import { profileKind } from './profile-view';

export class InputError extends Error {}

export type DiagnoseFile = { kind: 'cpu' | 'offcpu'; profile: Profile } | { kind: 'dump'; dump: GoroutineDump };

/** Text that is mostly printable: a dump (possibly with log lines), not protobuf. */
function looksLikeText(b: Buffer): boolean {
  const head = b.subarray(0, 4096);
  let odd = 0;
  for (const c of head) if (c < 9 || (c > 13 && c < 32)) odd++;
  return odd <= head.length / 100;
}

export function classify(name: string, bytes: Buffer): DiagnoseFile {
  const gzipped = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
  if (!gzipped && looksLikeText(bytes)) {
    const dump = parseGoroutineDump(bytes.toString('utf8'));
    if (dump.goroutines.length === 0) throw new InputError(`${name}: neither a pprof profile nor a goroutine dump (no "goroutine N [...]:" in it)`);
    return { kind: 'dump', dump };
  }
  let profile: Profile;
  try {
    profile = decodePprof(bytes);
  } catch (e) {
    throw new InputError(`${name}: not a pprof profile (${(e as Error).message.split('\n')[0]})`);
  }
  const kind = profileKind(profile);
  if (!kind) {
    const types = profile.sampleType.map((t) => `${profile.stringTable[t.type]}/${profile.stringTable[t.unit]}`).join(', ');
    throw new InputError(`${name}: a pprof profile of ${types || 'nothing'}, not CPU (cpu/nanoseconds) or off-CPU (off_cpu/nanoseconds)`);
  }
  return { kind, profile };
}

/** The diagnosis input of several files: at most one CPU and one off-CPU profile, dumps in the order given. */
export function combine(files: ReadonlyArray<{ name: string; file: DiagnoseFile }>): { input: DiagnoseInput; notes: string[] } {
  const input: { cpu?: Profile; offcpu?: Profile; dumps: GoroutineDump[] } = { dumps: [] };
  const from: Record<string, string> = {};
  const notes: string[] = [];
  for (const { name, file } of files) {
    if (file.kind === 'dump') {
      input.dumps.push(file.dump);
      for (const w of file.dump.warnings.slice(0, 5)) notes.push(`${name}: ${w}`);
      continue;
    }
    if (input[file.kind]) throw new InputError(`${name}: a second ${file.kind === 'cpu' ? 'CPU' : 'off-CPU'} profile (${from[file.kind]} is one): give one of each`);
    input[file.kind] = file.profile;
    from[file.kind] = name;
  }
  return { input, notes };
}
