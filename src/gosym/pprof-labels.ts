// Where a goroutine's pprof labels live in memory, for every Go release: the one description that the live
// goroutine reader (goroutines/labels.ts) and the BPF sampler (symbols/injector.ts → proc_config.labels) both read.
//
// g.labels (runtime-offsets.ts: gLabels) is what runtime/pprof.SetGoroutineLabels stored, a *labelMap:
//   Go ≤ 1.23  `type labelMap map[string]string`: the pointer is to a map variable holding an *hmap (runtime/map.go;
//              classic buckets: 1.24's swiss maps never hold labels, labels are a slice from 1.24 on);
//   Go ≥ 1.24  `type labelMap struct{ label.Set }`, Set{List []Label}, Label{Key, Value string}: a slice of pairs,
//              sorted by key without duplicates (pprof.Labels and WithLabels keep it so).
// 64-bit targets: a string header is {ptr, len} (16 bytes), a slice header {array, len, cap}.

export type LabelsEra = 'map' | 'slice';

/** The era for a Go minor version: maps up to 1.23. */
export function labelsEra(goMinor: number): LabelsEra {
  return goMinor <= 23 ? 'map' : 'slice';
}

export const STRING_HEADER = 16;

/** runtime.hmap and a bucket of map[string]string (1.15–1.23; unchanged across them). */
export const LABEL_MAP = {
  /** hmap: count int, flags uint8, B uint8, noverflow uint16, hash0 uint32, buckets, oldbuckets, nevacuate, extra. */
  count: 0,
  flags: 8,
  B: 9,
  buckets: 16,
  oldbuckets: 24,
  hmapSize: 48,
  /** hmap.flags bit: the map grows to the same size (old buckets as many as new ones, not half). */
  sameSizeGrow: 8,
  /** Cells per bucket: tophash [8]uint8 at 0, then keys [8]string, elems [8]string, overflow *bucket. */
  entries: 8,
  keys: 8,
  values: 8 + 8 * STRING_HEADER,
  overflow: 8 + 16 * STRING_HEADER,
  bucketSize: 8 + 16 * STRING_HEADER + 8,
  /** tophash values below this mark empty or evacuated cells. */
  minTopHash: 5,
} as const;

/** Go ≥ 1.24: the labelMap starts with Set.List's slice header; each Label is {Key, Value string}. */
export const LABEL_SLICE = {
  array: 0,
  len: 8,
  cap: 16,
  headerSize: 24,
  entrySize: 2 * STRING_HEADER,
  key: 0,
  value: STRING_HEADER,
} as const;
