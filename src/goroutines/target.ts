// What the goroutine reader needs to know about one Go binary, read once and shared by every process that runs it:
// its tables, runtime.g's layout, where allgs is, its wait-reason words and which label format it uses.

import { GoBinary } from '../gosym/binary';
import { mayBeGo } from '../gosym/buildinfo';
import { ElfFile } from '../gosym/elf';
import { locateAllgs, type AllgsLocation } from '../gosym/allgs';
import { goroutineLayout, type GoroutineLayout } from '../gosym/goroutine-layout';
import { readWaitReasons } from '../gosym/wait-reasons';
import { wrapperFuncId } from '../gosym/wrappers';
import { openExecutable, type Executable } from '../proc/exe';
import { labelsEra, type LabelsEra } from './labels';
import { GoroutineReadError } from './errors';
import { FrameInfo, frameInfoLookup } from './unwind';

export interface GoTarget {
  key: string;
  bin: GoBinary;
  layout: GoroutineLayout;
  allgs: AllgsLocation;
  /** Index → word; [] when the binary's table could not be found (reasons print as "wait reason N"). */
  waitReasons: readonly string[];
  labelsEra: LabelsEra;
  /** The funcID this binary gives compiler-generated wrappers (it differs by release), when known. */
  wrapperFuncId: number | undefined;
  /** What the unwinder needs at a link-time PC (cached: shared by every snapshot of processes of this binary). */
  frameInfo: (lpc: number) => FrameInfo | undefined;
  /** What is uncertain about this binary (a guessed layout, no wait-reason table), for the dump's warnings. */
  caveats: string[];
}

/** Reads a binary's facts. Throws GoroutineReadError('not-go' | 'unsupported') with a one-line reason. */
export function openTarget(exe: Executable): GoTarget {
  let elf: ElfFile;
  try {
    elf = openExecutable(exe);
  } catch (e) {
    throw new GoroutineReadError('not-go', `pid ${exe.pid} (${exe.path}) is not a Go program: ${(e as Error).message}`);
  }
  if (!mayBeGo(elf)) {
    elf.close();
    throw new GoroutineReadError('not-go', `pid ${exe.pid} (${exe.path}) is not a Go program (no Go sections)`);
  }
  let bin: GoBinary;
  try {
    bin = new GoBinary(elf);
  } catch (e) {
    elf.close();
    throw new GoroutineReadError('unsupported', `pid ${exe.pid} (${exe.path}): unreadable Go tables: ${(e as Error).message}`);
  }
  try {
    if (bin.arch !== 'amd64') throw new GoroutineReadError('unsupported', `pid ${exe.pid} (${exe.path}): reading goroutines of ${bin.arch} programs is not supported yet (amd64 only)`);
    const version = bin.version.major > 0 ? bin.version : undefined;
    const layout = goroutineLayout(bin.elf, version, bin.arch);
    const allgs = locateAllgs(bin);
    if (typeof allgs === 'string') throw new GoroutineReadError('unsupported', `pid ${exe.pid} (${exe.path}): cannot find runtime.allgs: ${allgs}`);
    const reasons = readWaitReasons(bin.elf);
    const caveats: string[] = [];
    if (layout.source === 'table-guess') caveats.push(`runtime.g layout guessed (${layout.detail ?? bin.version.text})`);
    if (typeof reasons === 'string') caveats.push(reasons);
    return {
      key: exe.key,
      bin,
      layout,
      allgs,
      waitReasons: typeof reasons === 'string' ? [] : reasons,
      labelsEra: labelsEra(bin.version.major === 1 ? bin.version.minor : 99),
      wrapperFuncId: wrapperFuncId(bin.pcln),
      frameInfo: frameInfoLookup(bin),
      caveats,
    };
  } catch (e) {
    bin.close();
    throw e;
  }
}

/** A few binaries' facts, least recently used dropped first (each holds its pclntab: MiBs). */
export class TargetCache {
  private readonly targets = new Map<string, GoTarget>();

  constructor(private readonly capacity = 8) {}

  get(exe: Executable): GoTarget {
    const hit = this.targets.get(exe.key);
    if (hit) {
      this.targets.delete(exe.key);
      this.targets.set(exe.key, hit);
      return hit;
    }
    const t = openTarget(exe);
    this.targets.set(exe.key, t);
    while (this.targets.size > this.capacity) {
      const [oldest, target] = this.targets.entries().next().value as [string, GoTarget];
      this.targets.delete(oldest);
      target.bin.close();
    }
    return t;
  }

  close(): void {
    for (const t of this.targets.values()) t.bin.close();
    this.targets.clear();
  }
}
