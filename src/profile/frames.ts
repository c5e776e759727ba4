// A profile's stacks as frames a person reads: each location's lines expanded (inlined calls are frames of their
// own), each frame told apart by where it runs: Go or other user code, a call the compiler inlined, the kernel,
// a shared library. The flame graph model and the diagnosis rules both read profiles through this.

import type { Frame, FrameKind } from './flame-model';
import type { Label, Profile } from './pprof';

export type { Frame, FrameKind };

export const KERNEL_MAPPING = '[kernel.kallsyms]';

function mappingKind(file: string): FrameKind {
  if (file === KERNEL_MAPPING) return 'kernel';
  if (file.startsWith('[') || /\.so(\.[\d.]+)?$/.test(file)) return 'native';
  return 'user';
}

/** Each location's frames, innermost first (an address without symbols becomes "0x…" of its mapping's kind). */
export function locationFrames(p: Profile): Map<number, Frame[]> {
  const str = (i: number): string => p.stringTable[i] ?? '';
  const fnName = new Map(p.function.map((f) => [f.id, str(f.name)]));
  const kindOf = new Map(p.mapping.map((m) => [m.id, mappingKind(str(m.filename))]));
  const out = new Map<number, Frame[]>();
  for (const l of p.location) {
    const base = kindOf.get(l.mappingId) ?? 'user';
    if (l.line.length === 0) {
      out.set(l.id, [{ name: '0x' + l.address.toString(16), kind: base }]);
      continue;
    }
    // line[0] is the innermost inlined call, the last line the physical frame.
    out.set(
      l.id,
      l.line.map((x, i) => ({ name: fnName.get(x.functionId) ?? '??', kind: i < l.line.length - 1 && base !== 'kernel' ? 'inlined' : base })),
    );
  }
  return out;
}

/** A sample's frames, innermost first. */
export function sampleFrames(locations: Map<number, Frame[]>, locationIds: readonly number[]): Frame[] {
  const out: Frame[] = [];
  for (const id of locationIds) {
    const fs = locations.get(id);
    if (fs) out.push(...fs);
    else out.push({ name: '??', kind: 'user' });
  }
  return out;
}

/** A label as "key" → "value" (numbers as decimal text), the way filters name them. */
export function labelPairs(p: Profile, labels: readonly Label[]): Array<[string, string]> {
  return labels.map((l) => [p.stringTable[l.key] ?? '', l.str !== 0 ? (p.stringTable[l.str] ?? '') : String(l.num)]);
}

/** Index of the sample type whose type is one of `types` (e.g. cpu, off_cpu), else the last one. */
export function weightIndex(p: Profile, types: readonly string[] = ['cpu', 'off_cpu', 'delay', 'contentions']): number {
  const i = p.sampleType.findIndex((t) => types.includes(p.stringTable[t.type] ?? ''));
  return i >= 0 ? i : p.sampleType.length - 1;
}
