// Brendan Gregg's folded stacks (flamegraph.pl, speedscope, d3-flame-graph's burn): one line per distinct stack,
// frames root first separated by ';', a space, and the summed value. Inlined calls become frames of their own
// (the physical caller before the functions inlined into it).

import { Profile } from './pprof';

export interface FoldedOptions {
  /** Which sample value to sum (index into sampleType). Default 0 (samples/count for CPU profiles). */
  valueIndex?: number;
  /** Start every stack with the process's comm label (as stackcollapse-perf.pl does). Default false. */
  commRoot?: boolean;
  /** Append '_[k]' to kernel frames (frames of the '[kernel.kallsyms]' mapping), flamegraph.pl's colour hint. */
  kernelSuffix?: boolean;
}

/** Frame names cannot hold the separators: ';' becomes ':', line breaks become spaces. */
function clean(name: string): string {
  return name.replace(/;/g, ':').replace(/[\r\n]+/g, ' ');
}

export function foldedStacks(p: Profile, opts: FoldedOptions = {}): string {
  const valueIndex = opts.valueIndex ?? 0;
  if (valueIndex < 0 || valueIndex >= p.sampleType.length) throw new RangeError(`valueIndex ${valueIndex}: the profile has ${p.sampleType.length} sample types`);
  const s = (i: number): string => p.stringTable[i] ?? '';
  const fnName = new Map(p.function.map((f) => [f.id, s(f.name)]));
  const kernelMappings = new Set(p.mapping.filter((m) => s(m.filename) === '[kernel.kallsyms]').map((m) => m.id));
  // Frames of each location, root-most first.
  const locFrames = new Map<number, string[]>();
  for (const l of p.location) {
    const suffix = opts.kernelSuffix && kernelMappings.has(l.mappingId) ? '_[k]' : '';
    const names = l.line.length > 0 ? l.line.map((x) => clean(fnName.get(x.functionId) ?? '??') + suffix) : ['0x' + l.address.toString(16) + suffix];
    locFrames.set(l.id, names.reverse());
  }
  const commKey = p.stringTable.indexOf('comm');
  const sums = new Map<string, number>();
  for (const sample of p.sample) {
    const v = sample.value[valueIndex] ?? 0;
    if (v === 0) continue;
    const frames: string[] = [];
    if (opts.commRoot) {
      const comm = sample.label.find((l) => l.key === commKey && commKey > 0);
      frames.push(clean(comm ? s(comm.str) : '?'));
    }
    for (let i = sample.locationId.length - 1; i >= 0; i--) frames.push(...(locFrames.get(sample.locationId[i]!) ?? ['??']));
    if (frames.length === 0) continue;
    const key = frames.join(';');
    sums.set(key, (sums.get(key) ?? 0) + v);
  }
  const lines = [...sums].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k} ${v}`);
  return lines.length ? lines.join('\n') + '\n' : '';
}
