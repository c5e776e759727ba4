// A profile in the shape the page's flame graph draws from: distinct frames (name and kind), distinct stacks
// (root first), distinct label pairs, and samples pointing at them. The page builds the tree in the browser from
// the samples that pass its label filters (goroutine, pid, pprof labels), so no filter needs a server round trip.
// Compact on purpose: a node-wide capture has tens of thousands of distinct samples.

import type { FlameModel } from './flame-model';
import { type Frame, labelPairs, locationFrames, sampleFrames, weightIndex } from './frames';
import type { Profile } from './pprof';

export type { FlameModel };

export function flameModel(p: Profile): FlameModel {
  const valueIndex = weightIndex(p);
  const countIndex = p.sampleType.findIndex((t) => p.stringTable[t.unit] === 'count');
  const locations = locationFrames(p);
  const frames: Frame[] = [];
  const frameIds = new Map<string, number>();
  const stacks: number[][] = [];
  const stackIds = new Map<string, number>();
  const labels: Array<[string, string]> = [];
  const labelIds = new Map<string, number>();
  const intern = <T>(table: T[], ids: Map<string, number>, key: string, value: T): number => {
    let i = ids.get(key);
    if (i === undefined) {
      i = table.length;
      table.push(value);
      ids.set(key, i);
    }
    return i;
  };
  const samples: number[][] = [];
  for (const s of p.sample) {
    const value = s.value[valueIndex] ?? 0;
    if (value === 0) continue;
    const stack = sampleFrames(locations, s.locationId)
      .reverse()
      .map((f) => intern(frames, frameIds, `${f.kind}\0${f.name}`, f));
    const stackId = intern(stacks, stackIds, stack.join(','), stack);
    const labelIdx = labelPairs(p, s.label).map((pair) => intern(labels, labelIds, `${pair[0]}\0${pair[1]}`, pair));
    samples.push([stackId, countIndex >= 0 ? (s.value[countIndex] ?? 0) : 1, value, ...labelIdx]);
  }
  const t = p.sampleType[valueIndex];
  return {
    valueType: { type: t ? (p.stringTable[t.type] ?? '') : '', unit: t ? (p.stringTable[t.unit] ?? '') : '' },
    startMs: Number(p.timeNanos / 1_000_000n),
    durationMs: Number(p.durationNanos / 1_000_000n),
    frames,
    stacks,
    labels,
    samples,
  };
}
