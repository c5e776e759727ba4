// A goroutine's pprof labels read from outside. g.labels points at runtime/pprof's labelMap:
//   Go ≤ 1.23: `type labelMap map[string]string` — the pointer is to a map variable, which holds an *hmap;
//   Go ≥ 1.24: `type labelMap struct{ LabelSet }`, LabelSet{list []label} — a slice of {key, value string}.
// Every pointer and count is bounded; a label that cannot be read is left out and said.

import type { ProcessMemory } from '../proc/memory';

export type LabelsEra = 'map' | 'slice';

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

/** The era for a Go minor version: maps up to 1.23. */
export function labelsEra(goMinor: number): LabelsEra {
  return goMinor <= 23 ? 'map' : 'slice';
}

// hmap (64-bit): count int @0, flags uint8 @8, B uint8 @9, buckets @16, oldbuckets @24.
const HMAP_SIZE = 48;
const HMAP_SAME_SIZE_GROW = 8;
// A bucket of map[string]string: tophash [8]uint8, keys [8]string, elems [8]string, overflow *bucket.
const BUCKET_ENTRIES = 8;
const BUCKET_SIZE = 8 + 16 * BUCKET_ENTRIES * 2 + 8;
const MIN_TOP_HASH = 5; // below: empty or evacuated cells
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
  const header = mem.read(p, 24);
  if (!header) return `labels at 0x${p.toString(16)} unreadable`;
  const [array, len] = str(header, 0);
  const cap = Number(header.readBigUInt64LE(16));
  if (len > cap || len < 0) return `labels slice has len ${len} > cap ${cap}`;
  if (len === 0) return undefined;
  const n = Math.min(len, limits.maxLabels);
  const entries = mem.read(array, n * 32);
  if (!entries) return `labels array at 0x${array.toString(16)} unreadable`;
  for (let i = 0; i < n; i++) out.push([str(entries, i * 32), str(entries, i * 32 + 16)]);
  return len > n ? `${len - n} label(s) beyond the limit of ${limits.maxLabels}` : undefined;
}

function mapPairs(mem: ProcessMemory, p: number, limits: LabelLimits, out: Array<readonly [StringHeader, StringHeader]>): string | undefined {
  const mapVar = mem.read(p, 8);
  if (!mapVar) return `labels at 0x${p.toString(16)} unreadable`;
  const hmapPtr = Number(mapVar.readBigUInt64LE(0));
  if (hmapPtr === 0) return undefined; // a nil map: no labels
  const h = mem.read(hmapPtr, HMAP_SIZE);
  if (!h) return `labels map at 0x${hmapPtr.toString(16)} unreadable`;
  const count = Number(h.readBigInt64LE(0));
  const flags = h[8]!;
  const B = h[9]!;
  if (count < 0 || B > MAX_B) return `labels map header implausible (count ${count}, B ${B})`;
  if (count === 0) return undefined;
  const seen = new Set<string>();
  const take = (bucket: Buffer): void => {
    for (let i = 0; i < BUCKET_ENTRIES && out.length < limits.maxLabels; i++) {
      if (bucket[i]! < MIN_TOP_HASH) continue;
      const key = str(bucket, 8 + 16 * i);
      const id = `${key[0]}:${key[1]}`;
      if (seen.has(id)) continue;
      seen.add(id);
      out.push([key, str(bucket, 8 + 16 * BUCKET_ENTRIES + 16 * i)]);
    }
  };
  const walk = (base: number, nbuckets: number): string | undefined => {
    const all = mem.read(base, nbuckets * BUCKET_SIZE);
    if (!all) return `labels map buckets at 0x${base.toString(16)} unreadable`;
    for (let b = 0; b < nbuckets; b++) {
      let bucket: Buffer | undefined = all.subarray(b * BUCKET_SIZE, (b + 1) * BUCKET_SIZE);
      for (let hops = 0; bucket && hops <= MAX_OVERFLOW; hops++) {
        take(bucket);
        const next: number = Number(bucket.readBigUInt64LE(BUCKET_SIZE - 8));
        bucket = next === 0 ? undefined : mem.read(next, BUCKET_SIZE);
      }
    }
    return undefined;
  };
  // A map still growing keeps part of its entries in the old buckets (cells not yet moved have a real tophash).
  const old = Number(h.readBigUInt64LE(24));
  const problems = [walk(Number(h.readBigUInt64LE(16)), 1 << B)];
  if (old !== 0) problems.push(walk(old, (flags & HMAP_SAME_SIZE_GROW) !== 0 || B === 0 ? 1 << B : 1 << (B - 1)));
  if (out.length < Math.min(count, limits.maxLabels)) problems.push(`read ${out.length} of ${count} labels`);
  return problems.filter(Boolean).join('; ') || undefined;
}
