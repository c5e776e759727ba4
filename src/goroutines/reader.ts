// Every goroutine of a live Go process, read from outside: runtime.allgs → each g → its saved stack, unwound and
// symbolized. The process is never stopped, signalled or traced; it keeps running while we read, so every pointer
// and struct is validated, every walk bounded, and a goroutine whose saved state changed while its stack was read
// is read again (or reported as such) rather than guessed.

import { readMaps, mappingsOfFile } from '../proc/maps';
import { resolveExecutable } from '../proc/exe';
import { readStat } from '../proc/process';
import { isProcessGone, ProcessMemory } from '../proc/memory';
import { loadBias, loadSegments } from '../symbols/injector';
import type { StackResolver } from '../profile/builder';
import type { Goroutine, GoroutineCreator, GoroutineDump, GoroutineFrame, GoroutineState } from './model';
import { GoroutineReadError } from './errors';
import { DEFAULT_LABEL_LIMITS, LabelLimits, readLabels } from './labels';
import type { GoTarget, TargetCache } from './target';
import { PhysicalFrame, Unwound, unwindGoroutine } from './unwind';
import { funcNameForPrint } from './func-name';
import { isSystemStart } from './traceback-view';

export interface SnapshotOptions {
  /** Most goroutines read (allgs entries beyond are counted in a warning). Default 1,000,000. */
  maxGoroutines?: number;
  /** Most physical frames per goroutine (deeper stacks are cut and marked). Default 512. */
  maxFrames?: number;
  labelLimits?: LabelLimits;
  /** Also resolve each goroutine's locations (addresses + mappings) for a pprof profile. */
  resolver?: StackResolver;
  /** Keep each goroutine's raw stack (Goroutine.stack) to resolve later, e.g. on another thread than the reader's. */
  stacks?: boolean;
  procRoot?: string;
  /** Tests: read the goroutine list at this runtime address instead of runtime.allgs. */
  allgsAddress?: number;
  /** Tests: called once the goroutine list has been read, before any goroutine is. */
  onAllgsRead?: () => void;
}

// runtime2.go's statuses (the scan bit 0x1000 stripped).
const STATES: readonly GoroutineState[] = [
  'idle', 'runnable', 'running', 'syscall', 'waiting', 'dead', 'dead', 'dead', 'copystack', 'preempted', 'leaked', 'dead',
];
const SCAN_BIT = 0x1000;
/** Goroutines whose stacks are read per batch: bounds the memory a snapshot holds at once. */
const BATCH = 2048;
/** First read of a stack, from its saved SP up; more is read only when a walk needs it. */
const FIRST_STACK_READ = 8 << 10;
/** Most of one stack ever read. */
const MAX_STACK_READ = 8 << 20;
/** Go's stacks are at most 1 GB (runtime.maxstacksize). */
const MAX_STACK_SIZE = 1 << 30;
/** Times a goroutine that changed under the reader is read again. */
const RETRIES = 2;
/** Over this share of unusable entries, the list is not a goroutine list at all. */
const CORRUPT_SHARE = 0.5;

/** One g as read: the fields a dump needs, already validated. */
interface GRecord {
  addr: number;
  goid: number;
  status: number;
  stackLo: number;
  stackHi: number;
  pc: number;
  sp: number;
  waitReason: number;
  waitSince: number;
  lockedm: number;
  gopc: number;
  startpc: number;
  labels: number;
  parentGoid: number;
}

/** Whether a goroutine's saved state differs from when its stack was read (it ran meanwhile). */
function moved(before: GRecord, after: GRecord | undefined | 'unusable'): boolean {
  return after === undefined || after === 'unusable' || after.status !== before.status || after.pc !== before.pc || after.sp !== before.sp || after.goid !== before.goid;
}

/** Takes a snapshot of every goroutine of `pid`. Throws GoroutineReadError with a one-line message. */
export function snapshotGoroutines(pid: number, targets: TargetCache, opts: SnapshotOptions = {}): GoroutineDump {
  const procRoot = opts.procRoot ?? '/proc';
  const stat = readStat(pid, procRoot);
  const exe = stat && resolveExecutable(pid, procRoot);
  if (!stat || !exe) throw new GoroutineReadError('not-found', `pid ${pid}: no such process (or it has no executable)`);
  const target = targets.get(exe);
  const maps = readMaps(pid, procRoot);
  const bias = maps && loadBias({ segments: loadSegments(target.bin.elf), minpc: target.bin.pcln.minPc }, mappingsOfFile(maps, exe));
  if (bias === undefined) throw new GoroutineReadError('not-found', `pid ${pid} (${exe.path}): its Go text is not mapped (exiting, or not started yet)`);
  const mem = new ProcessMemory(pid);
  try {
    const dump = new Snapshot(pid, target, bias, mem, opts).take();
    const again = readStat(pid, procRoot);
    if (!again || again.startTime !== stat.startTime) throw new GoroutineReadError('not-found', `pid ${pid} exited while its goroutines were read`);
    return dump;
  } catch (e) {
    if (isProcessGone(e)) throw new GoroutineReadError('not-found', `pid ${pid} exited while its goroutines were read`);
    if ((e as { code?: string }).code === 'EPERM') throw new GoroutineReadError('forbidden', `pid ${pid}: ${(e as Error).message}`);
    throw e;
  }
}

class Snapshot {
  private readonly warnings: string[] = [];
  private readonly maxFrames: number;
  private readonly frameCache = new Map<number, GoroutineFrame[]>();
  private readonly labelCache = new Map<number, Record<string, string> | undefined>();
  private readonly creatorCache = new Map<number, GoroutineCreator | null>();
  private readonly startCache = new Map<number, string | undefined>();
  private readonly nowNs = process.hrtime.bigint(); // CLOCK_MONOTONIC, the clock of Go's nanotime()

  constructor(
    private readonly pid: number,
    private readonly t: GoTarget,
    private readonly bias: number,
    private readonly mem: ProcessMemory,
    private readonly opts: SnapshotOptions,
  ) {
    this.maxFrames = opts.maxFrames ?? 512;
    this.warnings.push(...t.caveats);
  }

  take(): GoroutineDump {
    const pointers = this.allgPointers();
    this.opts.onAllgsRead?.();
    const goroutines: Goroutine[] = [];
    let unusable = 0;
    for (let i = 0; i < pointers.length; i += BATCH) {
      const records = this.readGs(pointers.slice(i, i + BATCH));
      unusable += records.filter((r) => r === 'unusable').length;
      const live = records.filter((r): r is GRecord => r !== undefined && r !== 'unusable');
      goroutines.push(...this.readBatch(live));
    }
    if (pointers.length > 0 && unusable > pointers.length * CORRUPT_SHARE) {
      throw new GoroutineReadError('corrupt', `pid ${this.pid}: runtime.allgs does not hold goroutines (${unusable} of ${pointers.length} entries are not valid g structs; runtime.g layout ${this.t.layout.source})`);
    }
    if (unusable > 0) this.warnings.push(`${unusable} allgs entries were not valid goroutines (freed or changing) and were skipped`);
    const seen = new Set<number>();
    for (const g of goroutines) {
      if (seen.has(g.id)) this.warnings.push(`goroutine ${g.id} appears twice (reused while read)`);
      seen.add(g.id);
    }
    goroutines.sort((a, b) => a.id - b.id);
    return { pid: this.pid, goVersion: this.t.bin.version.text, takenAtMs: Date.now(), goroutines, warnings: this.warnings };
  }

  /** The g pointers in allgs (array and length read together, once). */
  private allgPointers(): number[] {
    const at = this.opts.allgsAddress ?? this.t.allgs.address + this.bias;
    const header = this.mem.read(at, 24);
    if (!header) throw new GoroutineReadError('corrupt', `pid ${this.pid}: runtime.allgs at 0x${at.toString(16)} is unreadable`);
    const array = Number(header.readBigUInt64LE(0));
    const len = Number(header.readBigUInt64LE(8));
    const cap = Number(header.readBigUInt64LE(16));
    if (len < 0 || len > cap || (len > 0 && array % 8 !== 0)) {
      throw new GoroutineReadError('corrupt', `pid ${this.pid}: runtime.allgs at 0x${at.toString(16)} is not a slice (array 0x${array.toString(16)}, len ${len}, cap ${cap})`);
    }
    const max = this.opts.maxGoroutines ?? 1_000_000;
    const n = Math.min(len, max);
    if (len > max) this.warnings.push(`${len - max} goroutines beyond the limit of ${max} were not read`);
    if (n === 0) return [];
    const words = this.mem.read(array, n * 8);
    if (!words) throw new GoroutineReadError('corrupt', `pid ${this.pid}: the allgs array at 0x${array.toString(16)} (${n} entries) is unreadable`);
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = Number(words.readBigUInt64LE(i * 8));
    return out;
  }

  /** Reads and validates a batch of g structs: a record, undefined (dead or idle: not a goroutine now), or 'unusable'. */
  private readGs(pointers: readonly number[]): Array<GRecord | undefined | 'unusable'> {
    const size = this.t.layout.gReadSize;
    const bufs = this.mem.readMany(pointers.map((p) => [p, size] as const));
    return bufs.map((buf, i) => (buf ? this.parseG(pointers[i]!, buf) : 'unusable'));
  }

  private parseG(addr: number, b: Buffer): GRecord | undefined | 'unusable' {
    const L = this.t.layout;
    const u64 = (o: number): number => (o < 0 ? 0 : Number(b.readBigUInt64LE(o)));
    const status = b.readUInt32LE(L.gAtomicStatus) & ~SCAN_BIT;
    if (status >= STATES.length) return 'unusable';
    if (STATES[status] === 'dead' || STATES[status] === 'idle') return undefined;
    const goid = u64(L.gGoid);
    const stackLo = u64(L.gStackLo);
    const stackHi = u64(L.gStackHi);
    if (goid <= 0 || goid >= 2 ** 53 || stackLo <= 0 || stackHi <= stackLo || stackHi - stackLo > MAX_STACK_SIZE) return 'unusable';
    const inSyscall = STATES[status] === 'syscall';
    return {
      addr,
      goid,
      status,
      stackLo,
      stackHi,
      pc: u64(inSyscall ? L.gSyscallPc : L.gSchedPc),
      sp: u64(inSyscall ? L.gSyscallSp : L.gSchedSp),
      waitReason: b[L.gWaitReason]!,
      waitSince: Number(b.readBigInt64LE(L.gWaitSince)),
      lockedm: u64(L.gLockedm),
      gopc: u64(L.gGopc),
      startpc: u64(L.gStartpc),
      labels: u64(L.gLabels),
      parentGoid: u64(L.gParentGoid),
    };
  }

  /**
   * A batch of goroutines: their stacks read in one go, walked, then their g structs read again — a goroutine whose
   * saved state moved meanwhile ran while we read, and is read again on its own (a few times at most).
   */
  private readBatch(records: GRecord[]): Goroutine[] {
    const walkable = records.map((r) => this.walkable(r));
    const stacks = this.mem.readMany(records.map((r, i) => (walkable[i] === undefined ? [r.sp, Math.min(FIRST_STACK_READ, r.stackHi - r.sp)] : [0, 0])));
    const walks = records.map((r, i) => (walkable[i] !== undefined ? walkable[i]! : this.walk(r, stacks[i])));
    const after = this.readGs(records.map((r) => r.addr));
    return records.map((r, i) => {
      let rec = r;
      let walk = walks[i]!;
      for (let attempt = 0; attempt <= RETRIES && moved(rec, after[i]); attempt++) {
        const again = this.readGs([rec.addr])[0];
        if (again === undefined || again === 'unusable' || attempt === RETRIES) {
          walk = { ...walk, error: walk.error ? `${walk.error} (the goroutine ran while read)` : 'the goroutine ran while read; its stack may be mixed' };
          break;
        }
        rec = again;
        walk = this.walkable(rec) ?? this.walk(rec, undefined);
        after[i] = this.readGs([rec.addr])[0];
      }
      return this.goroutine(rec, walk);
    });
  }

  /** A walk that needs no stack read (a running goroutine, one whose stack is moving, bad saved registers), else undefined. */
  private walkable(r: GRecord): Unwound | undefined {
    const state = STATES[r.status]!;
    if (state === 'running') return { frames: [], elided: false, error: 'running on another thread; stack unavailable' };
    if (state === 'copystack') return { frames: [], elided: false, error: 'stack being moved; not read' };
    if (r.pc === 0 || r.sp < r.stackLo || r.sp >= r.stackHi) {
      return { frames: [], elided: false, error: `saved pc/sp (0x${r.pc.toString(16)}/0x${r.sp.toString(16)}) outside its stack [0x${r.stackLo.toString(16)}, 0x${r.stackHi.toString(16)})` };
    }
    return undefined;
  }

  /** Walks a goroutine's stack from its saved PC/SP; `first` is the stack read from sp up, when the batch got it. */
  private walk(r: GRecord, first: Buffer | undefined): Unwound {
    const base = r.sp;
    let buf = first ?? this.mem.readUpTo(r.sp, Math.min(FIRST_STACK_READ, r.stackHi - r.sp));
    const words = (addr: number): number | undefined => {
      if (addr < base || addr + 8 > r.stackHi) return undefined;
      if (addr + 8 > base + buf.length) {
        if (buf.length >= MAX_STACK_READ) return undefined;
        const more = this.mem.readUpTo(base + buf.length, Math.min(r.stackHi - base, MAX_STACK_READ) - buf.length);
        if (more.length === 0) return undefined;
        buf = Buffer.concat([buf, more]);
        if (addr + 8 > base + buf.length) return undefined;
      }
      return Number(buf.readBigUInt64LE(addr - base));
    };
    return unwindGoroutine(this.t.frameInfo, this.bias, r.pc, r.sp, r.stackHi, words, this.maxFrames);
  }

  private goroutine(r: GRecord, unwound: Unwound): Goroutine {
    const state = STATES[r.status]!;
    const reason = state === 'waiting' || state === 'leaked' ? this.waitReason(r.waitReason) : undefined;
    const g: Goroutine = { id: r.goid, state, status: reason || state, frames: [] };
    if (reason) g.waitReason = reason;
    if ((state === 'waiting' || state === 'syscall') && r.waitSince > 0) {
      const minutes = Number((this.nowNs - BigInt(r.waitSince)) / 60_000_000_000n);
      if (minutes >= 1) g.waitMinutes = minutes;
    }
    if (r.lockedm !== 0) g.lockedToThread = true;
    for (const pf of unwound.frames) g.frames.push(...this.framesAt(pf));
    if (unwound.elided) g.framesElided = true;
    const creator = this.creator(r);
    if (creator) g.createdBy = creator;
    if (r.labels !== 0) {
      const labels = this.labels(r.labels);
      if (labels && Object.keys(labels).length > 0) g.labels = labels;
    }
    if (this.isSystem(r, g.frames)) g.system = true;
    if (unwound.error) g.error = unwound.error;
    if (unwound.frames.length > 0 && (this.opts.resolver || this.opts.stacks)) {
      const stack = resolverStack(unwound.frames);
      if (this.opts.stacks) g.stack = stack;
      if (this.opts.resolver) g.locations = this.opts.resolver.resolveUser(this.pid, stack);
    }
    return g;
  }

  private waitReason(i: number): string {
    const w = this.t.waitReasons[i];
    return w !== undefined ? w : `wait reason ${i}`;
  }

  /** The frames at one physical PC, inlined calls expanded (cached: goroutines share stacks). */
  private framesAt(pf: PhysicalFrame): GoroutineFrame[] {
    const key = pf.exact ? -pf.pc : pf.pc;
    let frames = this.frameCache.get(key);
    if (!frames) {
      const lpc = pf.pc - this.bias;
      const f = this.t.bin.funcAt(lpc);
      const lookup = pf.exact ? lpc : lpc - 1;
      const pcs: number[] = [];
      const fr = this.t.bin.frames(lookup, pcs);
      frames = fr.map((x, i) => {
        // runtime.Callers records the PC a frame was looked up at, plus 1 (a "return address").
        const out: GoroutineFrame = { function: funcNameForPrint(x.function), file: x.file, line: x.line, pc: pcs[i]! + 1 + this.bias };
        if (f) out.entry = f.entry + this.bias;
        if (out.function !== x.function) out.symbol = x.function;
        if (i < fr.length - 1) {
          out.inlined = true;
          if (x.file === '<autogenerated>') out.wrapper = true;
        } else if (f) {
          out.entryOffset = lpc - f.entry;
          if (this.t.wrapperFuncId !== undefined && this.t.bin.pcln.funcId(f) === this.t.wrapperFuncId) out.wrapper = true;
        }
        return out;
      });
      if (frames.length === 0) frames = [{ function: '?', file: '?', line: 0 }];
      this.frameCache.set(key, frames);
    }
    return frames;
  }

  private creator(r: GRecord): GoroutineCreator | undefined {
    if (r.gopc === 0 || r.goid === 1) return undefined;
    let c = this.creatorCache.get(r.gopc);
    if (c === undefined) {
      c = this.creatorAt(r.gopc);
      this.creatorCache.set(r.gopc, c);
    }
    if (!c) return undefined;
    return r.parentGoid > 0 ? { ...c, goid: r.parentGoid } : c;
  }

  private creatorAt(gopc: number): GoroutineCreator | null {
    const lpc = gopc - this.bias;
    const f = this.t.bin.funcAt(lpc);
    if (!f) return null;
    const line = this.t.bin.lineInfo(lpc > f.entry ? lpc - 1 : lpc);
    const c: GoroutineCreator = { function: funcNameForPrint(this.t.bin.funcName(f)), file: line?.file ?? '?', line: line?.line ?? 0 };
    if (lpc > f.entry) c.entryOffset = lpc - f.entry;
    return c;
  }

  private labels(ptr: number): Record<string, string> | undefined {
    if (this.labelCache.has(ptr)) return this.labelCache.get(ptr);
    const read = readLabels(this.mem, ptr, this.t.labelsEra, this.opts.labelLimits ?? DEFAULT_LABEL_LIMITS);
    if (read.problem && this.warnings.length < 1000) this.warnings.push(`labels at 0x${ptr.toString(16)}: ${read.problem}`);
    this.labelCache.set(ptr, read.labels);
    return read.labels;
  }

  /** runtime.isSystemGoroutine: started by a runtime function other than runtime.main (finalizers: while idle). */
  private isSystem(r: GRecord, frames: readonly GoroutineFrame[]): boolean {
    let name = this.startCache.get(r.startpc);
    if (name === undefined && !this.startCache.has(r.startpc)) {
      name = this.t.frameInfo(r.startpc - this.bias)?.name;
      this.startCache.set(r.startpc, name);
    }
    return name !== undefined && isSystemStart(name, frames);
  }

}

/** The stack as StackResolver.resolveUser takes it: stack[0] looked up as is, every later entry minus 1. */
function resolverStack(frames: readonly PhysicalFrame[]): number[] {
  return frames.map((pf, i) => (i === 0 ? (pf.exact ? pf.pc : pf.pc - 1) : pf.exact ? pf.pc + 1 : pf.pc));
}
