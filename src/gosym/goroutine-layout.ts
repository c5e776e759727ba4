// The runtime.g fields a goroutine dump needs beyond what the BPF side reads (runtime-offsets.ts): where a goroutine
// in a syscall left its stack, why and since when it waits, who created it, whether it is locked to its thread
// (its pprof labels, g.labels, are among the fields the BPF side reads). From DWARF when the binary has it, else from
// a table per Go minor version.
//
// The table was read off the DWARF of binaries built by Debian's toolchains 1.15, 1.19, 1.21, 1.22, 1.23, 1.24,
// 1.25 and 1.26 (test/gosym/goroutine-layout.test.ts re-checks every installed one). 1.16 has 1.15's layout and
// 1.17, 1.18, 1.20 have 1.19's: runtime2.go's g gained tracking/trackingSeq/runnableStamp/runnableTime in 1.17
// (+16 bytes before lockedm) and next changed in 1.21 (parentGoid), which the labels offsets the OpenTelemetry
// profiler lists per release (344 for 1.15–1.16, 360 for 1.17–1.20) confirm.

import type { ElfFile } from './elf';
import { FormatError } from './bytes';
import { readStructLayoutsOf } from './dwarf';
import { GoArch, GoMinorVersion, offsetsFromLayouts, RuntimeOffsets, tableOffsets } from './runtime-offsets';

export interface GoroutineFields {
  /** g.syscallsp / g.syscallpc: the stack and PC a goroutine in a syscall left (entersyscall). */
  gSyscallSp: number;
  gSyscallPc: number;
  /** g.syscallbp (1.23+), -1 before. */
  gSyscallBp: number;
  /** g.waitsince (int64 nanotime): set by the GC for goroutines it finds blocked; 0 when unknown. */
  gWaitSince: number;
  /** g.waitreason (uint8): an index into runtime.waitReasonStrings. */
  gWaitReason: number;
  /** g.lockedm (muintptr): non-zero while LockOSThread holds the goroutine to its M. */
  gLockedm: number;
  /** g.gopc: the PC of the go statement that created the goroutine. */
  gGopc: number;
  /** g.startpc: the goroutine's function (which tells system goroutines from user ones). */
  gStartpc: number;
  /** g.parentGoid (1.21+), -1 before. */
  gParentGoid: number;
  /** Bytes of runtime.g to read so every field above is covered. */
  gReadSize: number;
}

export type GoroutineLayout = RuntimeOffsets & GoroutineFields;

type Fields = Omit<GoroutineFields, 'gReadSize'>;

const F115: Fields = {
  gSyscallSp: 112, gSyscallPc: 120, gSyscallBp: -1, gWaitSince: 168, gWaitReason: 176, gLockedm: 216, gGopc: 280,
  gStartpc: 296, gParentGoid: -1,
};
const F117: Fields = { ...F115, gLockedm: 232, gGopc: 296, gStartpc: 312 };
const F121: Fields = { ...F115, gLockedm: 208, gGopc: 280, gStartpc: 296, gParentGoid: 272 };
const F123: Fields = {
  gSyscallSp: 112, gSyscallPc: 120, gSyscallBp: 128, gWaitSince: 176, gWaitReason: 184, gLockedm: 216, gGopc: 288,
  gStartpc: 304, gParentGoid: 280,
};
const F125: Fields = {
  gSyscallSp: 104, gSyscallPc: 112, gSyscallBp: 120, gWaitSince: 168, gWaitReason: 176, gLockedm: 208, gGopc: 280,
  gStartpc: 296, gParentGoid: 272,
};
const F126: Fields = { ...F125, gGopc: 288, gStartpc: 304, gParentGoid: 280 };

const FIELD_TABLE: ReadonlyMap<number, Fields> = new Map([
  [15, F115], [16, F115], [17, F117], [18, F117], [19, F117], [20, F117], [21, F121], [22, F121],
  [23, F123], [24, F123], [25, F125], [26, F126],
]);
const MIN_MINOR = Math.min(...FIELD_TABLE.keys());
const MAX_MINOR = Math.max(...FIELD_TABLE.keys());

function withReadSize(base: RuntimeOffsets, f: Fields): GoroutineLayout {
  const ends = [
    base.gStackHi, base.gM, base.gSchedSp, base.gSchedPc, base.gSchedBp, base.gGoid, f.gSyscallSp, f.gSyscallPc,
    f.gSyscallBp, f.gWaitSince, f.gLockedm, f.gGopc, f.gStartpc, base.gLabels, f.gParentGoid,
  ].map((o) => o + 8);
  ends.push(base.gAtomicStatus + 4, f.gWaitReason + 1);
  return { ...base, ...f, gReadSize: Math.max(...ends) };
}

/** The table's layout for a Go version (source 'table', or 'table-guess' outside 1.15…1.26 or when unknown). */
export function tableGoroutineLayout(goVersion: GoMinorVersion | undefined, arch: GoArch): GoroutineLayout {
  const base = tableOffsets(goVersion, arch);
  const minor = goVersion?.major === 1 ? goVersion.minor : MAX_MINOR;
  const exact = FIELD_TABLE.get(minor);
  const fields = exact ?? FIELD_TABLE.get(minor < MIN_MINOR ? MIN_MINOR : MAX_MINOR)!;
  const r = withReadSize(base, fields);
  if (!exact && r.source === 'table') {
    r.source = 'table-guess';
    r.detail = `go1.${minor} is outside the goroutine field table (go1.${MIN_MINOR}…go1.${MAX_MINOR})`;
  }
  return r;
}

const DWARF_NAMES: ReadonlyArray<readonly [keyof Fields, string, boolean]> = [
  ['gSyscallSp', 'syscallsp', true], ['gSyscallPc', 'syscallpc', true], ['gSyscallBp', 'syscallbp', false],
  ['gWaitSince', 'waitsince', true], ['gWaitReason', 'waitreason', true], ['gLockedm', 'lockedm', true],
  ['gGopc', 'gopc', true], ['gStartpc', 'startpc', true], ['gParentGoid', 'parentGoid', false],
];

/**
 * runtime.g's layout for a Go binary: from its DWARF when it has any, else the table for `goVersion`. Corrupt or
 * incomplete DWARF falls back to the table and says why in `detail`; I/O errors still throw.
 */
export function goroutineLayout(elf: ElfFile, goVersion: GoMinorVersion | undefined, arch: GoArch): GoroutineLayout {
  let why: string;
  try {
    const layouts = readStructLayoutsOf(elf, ['runtime.g', 'runtime.m', 'runtime.gobuf', 'runtime.stack']);
    if (layouts) {
      const base = offsetsFromLayouts(layouts);
      const g = layouts.get('runtime.g');
      if (typeof base === 'string' || !g) {
        why = typeof base === 'string' ? base : 'DWARF lacks runtime.g';
      } else {
        const missing = DWARF_NAMES.filter(([, name, required]) => required && !g.members.has(name)).map(([, n]) => `runtime.g.${n}`);
        if (missing.length === 0) {
          const f = Object.fromEntries(DWARF_NAMES.map(([key, name]) => [key, g.members.get(name) ?? -1])) as unknown as Fields;
          return withReadSize(base, f);
        }
        why = `DWARF lacks ${missing.join(', ')}`;
      }
    } else {
      why = 'no DWARF';
    }
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    why = `unreadable DWARF (${e.message})`;
  }
  const t = tableGoroutineLayout(goVersion, arch);
  return { ...t, detail: `${why}; ${t.detail ?? ''}` };
}
