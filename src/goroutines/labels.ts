// A goroutine's pprof labels read from outside. g.labels points at runtime/pprof's labelMap, a map up to Go 1.23
// and a slice of pairs from 1.24 (the layouts: gosym/pprof-labels.ts, shared with the BPF sampler).
// Every pointer and count is bounded; a label that cannot be read is left out and said.

import { LABEL_MAP as HM, LABEL_SLICE as SL, STRING_HEADER, type LabelsEra } from '../gosym/pprof-labels';
import type { ProcessMemory } from '../proc/memory';

export { labelsEra, type LabelsEra } from '../gosym/pprof-labels';

export interface LabelLimits {
  /** Most labels read per goroutine. */
  maxLabels: number;
  /** Longest key or value read (bytes); longer ones are cut. */
  maxBytes: number;
}

export const DEFAULT_LABEL_LIMITS: LabelLimits = { maxLabels: 64, maxBytes: 1024 };

export interface LabelsRead {
  labels: Record<string, string>;
  /** Set when some labels could not be read (the rest are in `labels`). */
  problem?: string;
}

const MAX_B = 8; // 256 buckets: far more than any label set needs
const MAX_OVERFLOW = 64;

type StringHeader = readonly [ptr: number, len: number];

/** Reads the labels at `labelsPtr` (g.labels, non-zero). */
export function readLabels(mem: ProcessMemory, labelsPtr: number, era: LabelsEra, limits: LabelLimits): LabelsRead {
  const pairs: Array<readonly [StringHeader, StringHeader]> = [];
  const problem = era === 'slice' ? slicePairs(mem, labelsPtr, limits, pairs) : mapPairs(mem, labelsPtr, limits, pairs);
  const strings = mem.readMany(pairs.flatMap(([k, v]) => [k, v]).map(([p, n]) => [p, Math.min(n, limits.maxBytes)] as const));
  const labels: Record<string, string> = {};
  let unreadable = 0;
  pairs.forEach(([k, v], i) => {
    const key = k[1] === 0 ? Buffer.alloc(0) : strings[2 * i];
    const value = v[1] === 0 ? Buffer.alloc(0) : strings[2 * i + 1];
    if (key === undefined || value === undefined) unreadable++;
    else labels[key.toString('utf8')] = value.toString('utf8');
  });
  const why = [problem, unreadable ? `${unreadable} label(s) unreadable` : undefined].filter(Boolean).join('; ');
  return why ? { labels, problem: why } : { labels };
}

function str(buf: Buffer, at: number): StringHeader {
  return [Number(buf.readBigUInt64LE(at)), Number(buf.readBigUInt64LE(at + 8))];
}

function slicePairs(mem: ProcessMemory, p: number, limits: LabelLimits, out: Array<readonly [StringHeader, StringHeader]>): string | undefined {
  const header = mem.read(p, SL.headerSize);
  if (!header) return `labels at 0x${p.toString(16)} unreadable`;
  const array = Number(header.readBigUInt64LE(SL.array));
  const len = Number(header.readBigUInt64LE(SL.len));
  const cap = Number(header.readBigUInt64LE(SL.cap));
  if (len > cap || len < 0) return `labels slice has len ${len} > cap ${cap}`;
  if (len === 0) return undefined;
  const n = Math.min(len, limits.maxLabels);
  const entries = mem.read(array, n * SL.entrySize);
  if (!entries) return `labels array at 0x${array.toString(16)} unreadable`;
  for (let i = 0; i < n; i++) out.push([str(entries, i * SL.entrySize + SL.key), str(entries, i * SL.entrySize + SL.value)]);
  return len > n ? `${len - n} label(s) beyond the limit of ${limits.maxLabels}` : undefined;
}

function mapPairs(mem: ProcessMemory, p: number, limits: LabelLimits, out: Array<readonly [StringHeader, StringHeader]>): string | undefined {
  const mapVar = mem.read(p, 8);
  if (!mapVar) return `labels at 0x${p.toString(16)} unreadable`;
  const hmapPtr = Number(mapVar.readBigUInt64LE(0));
  if (hmapPtr === 0) return undefined; // a nil map: no labels
  const h = mem.read(hmapPtr, HM.hmapSize);
  if (!h) return `labels map at 0x${hmapPtr.toString(16)} unreadable`;
  const count = Number(h.readBigInt64LE(HM.count));
  const flags = h[HM.flags]!;
  const B = h[HM.B]!;
  if (count < 0 || B > MAX_B) return `labels map header implausible (count ${count}, B ${B})`;
  if (count === 0) return undefined;
  const seen = new Set<string>();
  const take = (bucket: Buffer): void => {
    for (let i = 0; i < HM.entries && out.length < limits.maxLabels; i++) {
      if (bucket[i]! < HM.minTopHash) continue;
      const key = str(bucket, HM.keys + STRING_HEADER * i);
      const id = `${key[0]}:${key[1]}`;
      if (seen.has(id)) continue;
      seen.add(id);
      out.push([key, str(bucket, HM.values + STRING_HEADER * i)]);
    }
  };
  const walk = (base: number, nbuckets: number): string | undefined => {
    const all = mem.read(base, nbuckets * HM.bucketSize);
    if (!all) return `labels map buckets at 0x${base.toString(16)} unreadable`;
    for (let b = 0; b < nbuckets; b++) {
      let bucket: Buffer | undefined = all.subarray(b * HM.bucketSize, (b + 1) * HM.bucketSize);
      for (let hops = 0; bucket && hops <= MAX_OVERFLOW; hops++) {
        take(bucket);
        const next: number = Number(bucket.readBigUInt64LE(HM.overflow));
        bucket = next === 0 ? undefined : mem.read(next, HM.bucketSize);
      }
    }
    return undefined;
  };
  // A map still growing keeps part of its entries in the old buckets (cells not yet moved have a real tophash).
  const old = Number(h.readBigUInt64LE(HM.oldbuckets));
  const problems = [walk(Number(h.readBigUInt64LE(HM.buckets)), 1 << B)];
  if (old !== 0) problems.push(walk(old, (flags & HM.sameSizeGrow) !== 0 || B === 0 ? 1 << B : 1 << (B - 1)));
  if (out.length < Math.min(count, limits.maxLabels)) problems.push(`read ${out.length} of ${count} labels`);
  return problems.filter(Boolean).join('; ') || undefined;
}
