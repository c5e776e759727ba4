// Where the BPF side finds the current goroutine: offsets into runtime.g and runtime.m (64-bit targets).
//
// DWARF is the truth when the binary has it (read from runtime.g, runtime.m, runtime.gobuf, runtime.stack);
// stripped binaries (-ldflags=-w or -s -w) fall back to a table per Go minor version. The table was read off the
// DWARF of binaries built here by real toolchains (see TABLE_PROVENANCE), and the test suite re-checks it against
// DWARF for every toolchain installed under .toolchains/.

import type { ElfFile } from './elf';
import { FormatError } from './bytes';
import { readStructLayoutsOf, StructLayout } from './dwarf';

export type GoArch = 'amd64' | 'arm64';

export interface GoMinorVersion {
  major: number; // always 1
  minor: number;
}

/** Byte offsets; every g field is relative to the start of the g, every m field to the start of the m. */
export interface RuntimeOffsets {
  /** g.stack.lo and g.stack.hi: the goroutine's stack bounds. */
  gStackLo: number;
  gStackHi: number;
  /** g.m (*m): the M running this g. */
  gM: number;
  /** g.sched (a runtime.gobuf) and its saved sp, pc and bp, as offsets into g. */
  gSched: number;
  gSchedSp: number;
  gSchedPc: number;
  gSchedBp: number;
  /** g.atomicstatus (uint32): _Grunning = 2, _Gsyscall = 3, _Gwaiting = 4, … (| 0x1000 while scanned). */
  gAtomicStatus: number;
  /** g.goid (int64/uint64). */
  gGoid: number;
  /** m.curg (*g): the user goroutine the M runs (g.m.curg gets there from g0/gsignal). */
  mCurg: number;
  /** m.g0 (*g): the M's system-stack goroutine (its first field in every release). */
  mG0: number;
  /** m.procid (uint64): the thread ID on Linux. */
  mProcid: number;
  /** g.labels (unsafe.Pointer): the goroutine's pprof labels (gosym/pprof-labels.ts); -1 when not known. */
  gLabels: number;
  /**
   * 'dwarf': read from the binary. 'table': the verified table entry for its Go version. 'table-guess': the
   * version is unknown, or outside the table (the nearest entry was used): the caller should warn.
   */
  source: 'dwarf' | 'table' | 'table-guess';
  /** Which table entry was used ("go1.26"), or why DWARF could not be used; for logs. */
  detail?: string;
}

type Layout = Omit<RuntimeOffsets, 'source' | 'detail'>;

// The three layouts Go 1.15…1.27 have had for these fields (identical on amd64 and arm64):
//  - 1.23 added g.syscallbp after g.syscallpc: atomicstatus and goid move up by 8.
//  - 1.25 removed gobuf.ret: gobuf is 48 bytes, so everything after g.sched (and after m.morebuf) moves down by 8
//    (net: g.atomicstatus/goid back to 144/152; m.procid 72 → 64; m.curg 192 → 184; gobuf.bp 48 → 40).
type Base = Omit<Layout, 'gLabels'>;
const L115: Base = {
  gStackLo: 0, gStackHi: 8, gM: 48, gSched: 56, gSchedSp: 56, gSchedPc: 64, gSchedBp: 104,
  gAtomicStatus: 144, gGoid: 152, mCurg: 192, mG0: 0, mProcid: 72,
};
const L123: Base = { ...L115, gAtomicStatus: 152, gGoid: 160 };
const L125: Base = { ...L115, gSchedBp: 96, mCurg: 184, mProcid: 64 };

// g.labels moves more often (fields before it come and go: 1.17 tracking/runnableTime, 1.21 parentGoid, …), read
// off the DWARF of Debian's 1.15, 1.19, 1.21–1.26 toolchains; 1.16 and 1.17, 1.18, 1.20 follow from runtime2.go
// (the OpenTelemetry profiler's per-release offsets agree). 1.27's was not read: -1, labels off without DWARF.
const LABELS: ReadonlyMap<number, number> = new Map([
  [15, 344], [16, 344], [17, 360], [18, 360], [19, 360], [20, 360], [21, 344], [22, 344],
  [23, 352], [24, 352], [25, 344], [26, 352],
]);

/** Go minor version → layout. Keep in step with TABLE_PROVENANCE. */
const TABLE: ReadonlyMap<number, Layout> = new Map(
  ([
    [15, L115], [16, L115], [17, L115], [18, L115], [19, L115], [20, L115], [21, L115], [22, L115],
    [23, L123], [24, L123],
    [25, L125], [26, L125], [27, L125],
  ] as const).map(([minor, l]) => [minor, { ...l, gLabels: LABELS.get(minor) ?? -1 }]),
);

/**
 * How each table entry was established. 'dwarf': read from the DWARF of amd64 and arm64 binaries built by that
 * toolchain (Debian's packages: 1.15.15, 1.19.8, 1.21–1.23 from bookworm-backports, 1.24.4 trixie, 1.25.12 and
 * 1.27.4 trixie-backports, 1.26 unstable). 'source': no toolchain package exists any more for that release; its
 * runtime2.go declares the same fields, in the same order and with the same sizes, up to g.goid and m.curg as
 * the neighbouring releases whose DWARF was read (and gobuf is unchanged), so the offsets are the same.
 */
export const TABLE_PROVENANCE: ReadonlyMap<number, 'dwarf' | 'source'> = new Map([
  [15, 'dwarf'], [16, 'source'], [17, 'source'], [18, 'source'], [19, 'dwarf'], [20, 'source'], [21, 'dwarf'],
  [22, 'dwarf'], [23, 'dwarf'], [24, 'dwarf'], [25, 'dwarf'], [26, 'dwarf'], [27, 'dwarf'],
] as const);

const MIN_MINOR = Math.min(...TABLE.keys());
const MAX_MINOR = Math.max(...TABLE.keys());

/** The table's answer for a Go version and architecture (both architectures have the same layout). */
export function tableOffsets(goVersion: GoMinorVersion | undefined, arch: GoArch): RuntimeOffsets {
  void arch; // amd64 and arm64 agree for every version measured; the parameter keeps the door open.
  if (goVersion && goVersion.major === 1) {
    const exact = TABLE.get(goVersion.minor);
    if (exact) return { ...exact, source: 'table', detail: `go1.${goVersion.minor}` };
    const nearest = goVersion.minor < MIN_MINOR ? MIN_MINOR : MAX_MINOR;
    return {
      ...TABLE.get(nearest)!,
      source: 'table-guess',
      detail: `go1.${goVersion.minor} is outside the offset table (go1.${MIN_MINOR}…go1.${MAX_MINOR}); using go1.${nearest}`,
    };
  }
  const what = goVersion ? `go${goVersion.major}.${goVersion.minor}` : 'unknown Go version';
  return { ...TABLE.get(MAX_MINOR)!, source: 'table-guess', detail: `${what}; using go1.${MAX_MINOR}` };
}

const STRUCTS = ['runtime.g', 'runtime.m', 'runtime.gobuf', 'runtime.stack'];

/** Offsets from DWARF layouts, or a reason they are not usable. */
export function offsetsFromLayouts(layouts: Map<string, StructLayout>): RuntimeOffsets | string {
  const g = layouts.get('runtime.g');
  const m = layouts.get('runtime.m');
  const gobuf = layouts.get('runtime.gobuf');
  const stack = layouts.get('runtime.stack');
  if (!g || !m || !gobuf || !stack) {
    return `DWARF lacks ${STRUCTS.filter((n) => !layouts.has(n)).join(', ')}`;
  }
  const missing: string[] = [];
  const get = (l: StructLayout, s: string, f: string): number => {
    const v = l.members.get(f);
    if (v === undefined) {
      missing.push(`${s}.${f}`);
      return -1;
    }
    return v;
  };
  const gStack = get(g, 'g', 'stack');
  const gSched = get(g, 'g', 'sched');
  const r: RuntimeOffsets = {
    gStackLo: gStack + get(stack, 'stack', 'lo'),
    gStackHi: gStack + get(stack, 'stack', 'hi'),
    gM: get(g, 'g', 'm'),
    gSched,
    gSchedSp: gSched + get(gobuf, 'gobuf', 'sp'),
    gSchedPc: gSched + get(gobuf, 'gobuf', 'pc'),
    gSchedBp: gSched + get(gobuf, 'gobuf', 'bp'),
    gAtomicStatus: get(g, 'g', 'atomicstatus'),
    gGoid: get(g, 'g', 'goid'),
    mCurg: get(m, 'm', 'curg'),
    mG0: get(m, 'm', 'g0'),
    mProcid: get(m, 'm', 'procid'),
    gLabels: g.members.get('labels') ?? -1,
    source: 'dwarf',
  };
  if (missing.length) return `DWARF lacks runtime.${missing.join(', runtime.')}`;
  return r;
}

/**
 * The runtime.g / runtime.m offsets for a Go binary: from its DWARF when it has any, else from the table for
 * `goVersion` (see RuntimeOffsets.source). Corrupt DWARF does not throw: it falls back to the table and says so
 * in `detail`. I/O errors reading the file still throw.
 */
export function runtimeOffsets(elf: ElfFile, goVersion: GoMinorVersion | undefined, arch: GoArch): RuntimeOffsets {
  let why: string;
  try {
    const layouts = readStructLayoutsOf(elf, STRUCTS);
    if (layouts) {
      const r = offsetsFromLayouts(layouts);
      if (typeof r !== 'string') return r;
      why = r;
    } else {
      why = 'no DWARF';
    }
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    why = `unreadable DWARF (${e.message})`;
  }
  const t = tableOffsets(goVersion, arch);
  return { ...t, detail: `${why}; ${t.detail}` };
}
