// Aggregates sampler records (RawSample) into a pprof profile. CPU: sample types samples/count and cpu/nanoseconds,
// period 1e9/hz ns of cpu. Off-CPU: samples/count and off_cpu/nanoseconds (each record's weight), period the
// off-CPU sampling period, and a string label state (blocked/runnable). Labels pid/tid/goid (numbers), comm (string),
// the goroutine's own pprof labels (strings, as its runtime/pprof writes them); one Location per (mapping, address)
// with inlined calls as several Lines (innermost first); one Function per (name, file); kernel frames leaf-most.
//
// Symbolization is the resolver's job (src/symbols/Symbolizer fits StackResolver); the builder only arranges its
// answers. Samples are resolved as they are added, while their processes most likely still run; a location whose
// symbol table is still being read elsewhere gets its frames in settle(), before build().

import type { RawSample, SampleKind } from '../sampler/types';
import { Label, Location, Mapping, Profile, ProfileFunction, Sample } from './pprof';
import { WRAPPER_SHOWN_CALLING } from '../gosym/wrappers';

/** One frame at an address; native and kernel frames have file '' and line 0. */
export interface ResolvedFrame {
  function: string;
  file: string;
  line: number;
  /** A compiler-generated Go wrapper: left out of stacks as Go's own profiles do (src/gosym/wrappers.ts). */
  wrapper?: true;
}

/** A mapping as a profile shows it. */
export interface ResolvedMapping {
  /** Identity: equal keys are one Mapping in the profile (same file at the same range). */
  key: string;
  start: bigint;
  limit: bigint;
  offset: bigint;
  /** The path as the process sees it ('[kernel.kallsyms]', '[vdso]' for those). */
  file: string;
  /** GNU build ID (hex) when the file has one, as runtime/pprof reports it; '' otherwise. */
  buildId: string;
  hasFunctions: boolean;
  hasFilenames: boolean;
  hasLineNumbers: boolean;
  hasInlineFrames: boolean;
}

/** A resolved mapping as the profile's Mapping `id`, its strings entered through `str`. */
export function pprofMapping(m: ResolvedMapping, id: number, str: (s: string) => number): Mapping {
  return {
    id,
    memoryStart: m.start,
    memoryLimit: m.limit,
    fileOffset: m.offset,
    filename: str(m.file),
    buildId: str(m.buildId),
    hasFunctions: m.hasFunctions,
    hasFilenames: m.hasFilenames,
    hasLineNumbers: m.hasLineNumbers,
    hasInlineFrames: m.hasInlineFrames,
  };
}

export interface ResolvedLocation {
  mapping: ResolvedMapping | undefined;
  /** The address to record (the PC looked up: return addresses already minus 1). */
  address: bigint;
  /** Innermost first; empty when unknown. */
  frames: readonly ResolvedFrame[];
  /** Set when the frames are not known yet (a symbol table still being read): they are, once settled() resolves. */
  later?: () => readonly ResolvedFrame[];
}

/** What turns raw stacks into locations: src/symbols/Symbolizer. */
export interface StackResolver {
  /**
   * stack[0] is the sampled PC, later entries return addresses. timeNs (CLOCK_MONOTONIC), when given, is when the
   * stack was taken: a process that started later under the same PID must not answer for it. spCaller: stack[1]
   * is a guess at the leaf's caller (RawSample.spCaller), to be kept only where the leaf had not set up its frame;
   * the answer then has no location for it where it is dropped.
   */
  resolveUser(pid: number, stack: readonly number[], timeNs?: bigint, spCaller?: boolean): ResolvedLocation[];
  resolveKernel(stack: ReadonlyArray<number | bigint>): ResolvedLocation[];
  /**
   * Optional: a number that changes whenever resolveUser(pid, …) may answer differently. While it stays the same,
   * a stack seen before is not resolved again (most samples repeat a stack).
   */
  userEpoch?(pid: number, timeNs?: bigint): number;
  /** Optional: the same for resolveKernel. */
  kernelEpoch?(): number;
  /** Optional: resolves when every location answered with `later` so far can give its frames. */
  settled?(): Promise<void>;
}

export interface ProfileBuilderOptions {
  resolver: StackResolver;
  /** Sampling frequency: period = round(1e9 / hz) ns (CPU profiles). */
  hz: number;
  /** 'cpu' (default) or 'offcpu': which records are added, and the sample types written. */
  kind?: SampleKind;
  /** Off-CPU profiles: the sampling period in ns (pprof's period; default 10 ms). */
  offCpuPeriodNs?: number;
  /** Wall-clock start of the collection, ns since the Unix epoch (default: now). */
  startTimeNs?: bigint;
  /** Extra string labels for a sample's process (e.g. container_id), or undefined. */
  processLabels?: (pid: number) => Record<string, string> | undefined;
}

interface SampleAcc {
  locationId: number[];
  count: number;
  /** Off-CPU nanoseconds (off-CPU profiles). */
  ns: number;
  labels: Label[];
}

/** A raw sample seen before (same stacks and labels), the sample it went to, and the epochs that answer held for. */
interface Seen {
  pid: number;
  tid: number;
  goid: number | undefined;
  comm: string;
  state: string | undefined;
  labels: RawSample['labels'];
  user: readonly number[];
  spCaller: boolean;
  kernel: readonly number[];
  userEpoch: number;
  kernelEpoch: number;
  acc: SampleAcc;
  /** Next entry with the same hash. */
  next: Seen | undefined;
}

function sameStack(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A 32-bit hash of what makes a raw sample distinct (its comm and state are compared, not hashed). */
function rawHash(s: RawSample): number {
  let h = Math.imul(s.pid ^ 0x2c1b3c6d, 0x9e3779b1);
  h = Math.imul(h ^ s.tid, 0x85ebca6b);
  h = Math.imul(h ^ (s.goid === undefined ? -1 : s.goid | 0), 0xc2b2ae35);
  for (const a of s.userStack) h = Math.imul(h ^ (a | 0), 0x01000193);
  h = Math.imul(h ^ 0x7f4a7c15, 0x01000193);
  for (const a of s.kernelStack) h = Math.imul(h ^ (a | 0), 0x01000193);
  return h ^ (h >>> 15);
}

export function nowNs(): bigint {
  // Date.now() has ms resolution; performance.timeOrigin + now() gives µs.
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

export class ProfileBuilder {
  readonly period: number;
  readonly startTimeNs: bigint;
  private readonly strings = new Map<string, number>([['', 0]]);
  private readonly stringTable: string[] = [''];
  private readonly mappings = new Map<string, Mapping>();
  private readonly locations = new Map<string, Location>();
  private readonly functions = new Map<string, ProfileFunction>();
  private readonly samples = new Map<string, SampleAcc>();
  /** Location id per resolved object (the resolver caches them, so this skips the key building). */
  private readonly locationByObject = new WeakMap<ResolvedLocation, number>();
  /** Raw samples seen, by rawHash(), when the resolver has epochs. */
  private readonly seen = new Map<number, Seen>();
  /** Locations whose frames the resolver gives later (settle()). */
  private readonly unnamed: Array<{ location: Location; later: () => readonly ResolvedFrame[] }> = [];
  private total = 0;

  constructor(private readonly opts: ProfileBuilderOptions) {
    if (!(opts.hz > 0) || !Number.isFinite(opts.hz)) throw new RangeError(`hz must be positive, got ${opts.hz}`);
    this.period = opts.kind === 'offcpu' ? Math.round(opts.offCpuPeriodNs ?? 1e7) : Math.round(1e9 / opts.hz);
    this.startTimeNs = opts.startTimeNs ?? nowNs();
  }

  /** Number of samples added so far. */
  get sampleCount(): number {
    return this.total;
  }

  private str(s: string): number {
    let i = this.strings.get(s);
    if (i === undefined) {
      i = this.stringTable.length;
      this.stringTable.push(s);
      this.strings.set(s, i);
    }
    return i;
  }

  private mappingId(m: ResolvedMapping): number {
    let pm = this.mappings.get(m.key);
    if (!pm) {
      pm = pprofMapping(m, this.mappings.size + 1, (x) => this.str(x));
      this.mappings.set(m.key, pm);
    }
    return pm.id;
  }

  private functionId(name: string, file: string): number {
    const key = `${name}\0${file}`;
    let f = this.functions.get(key);
    if (!f) {
      const n = this.str(name);
      f = { id: this.functions.size + 1, name: n, systemName: n, filename: this.str(file), startLine: 0 };
      this.functions.set(key, f);
    }
    return f.id;
  }

  /** The location's id; `withoutOuter`: the location less its outermost frame (an elided wrapper). */
  private locationId(loc: ResolvedLocation, withoutOuter = false): number {
    const known = withoutOuter ? undefined : this.locationByObject.get(loc);
    if (known !== undefined) return known;
    const key = `${loc.mapping ? loc.mapping.key : ''}\0${loc.address}${withoutOuter ? '\0-' : ''}`;
    let l = this.locations.get(key);
    if (!l) {
      const frames = withoutOuter ? loc.frames.slice(0, -1) : loc.frames;
      l = {
        id: this.locations.size + 1,
        mappingId: loc.mapping ? this.mappingId(loc.mapping) : 0,
        address: loc.address,
        line: this.lines(frames),
        isFolded: false,
      };
      this.locations.set(key, l);
      if (loc.later) this.unnamed.push({ location: l, later: loc.later });
    }
    if (!withoutOuter) this.locationByObject.set(loc, l.id);
    return l.id;
  }

  private lines(frames: readonly ResolvedFrame[]): Location['line'] {
    return frames.map((f) => ({ functionId: this.functionId(f.function, f.file), line: f.line, column: 0 }));
  }

  /**
   * Waits for the symbol tables still being read for this profile's locations (the resolver's settled()) and
   * names those locations. Call before build(): locations still waiting then have no frames.
   */
  async settle(): Promise<void> {
    if (this.unnamed.length === 0) return;
    await this.opts.resolver.settled?.();
    for (const { location, later } of this.unnamed.splice(0)) location.line = this.lines(later());
  }

  /**
   * A user stack's location ids, compiler wrappers left out as Go's traceback does (runtime/pprof's own profiles
   * never show them): a wrapper frame goes unless it called a panic; the calls inlined into it stay.
   */
  private userLocationIds(pid: number, stack: readonly number[], ids: number[], timeNs: bigint, spCaller: boolean): void {
    let callee: string | undefined;
    for (const l of this.opts.resolver.resolveUser(pid, stack, timeNs, spCaller)) {
      const outer = l.frames[l.frames.length - 1];
      if (outer?.wrapper && !(callee !== undefined && WRAPPER_SHOWN_CALLING.has(callee))) {
        if (l.frames.length > 1) ids.push(this.locationId(l, true));
      } else {
        ids.push(this.locationId(l));
      }
      callee = outer?.function;
    }
  }

  /** Resolves and aggregates a batch of samples. */
  add(samples: readonly RawSample[]): void {
    const { resolver } = this.opts;
    const cached = resolver.userEpoch !== undefined && resolver.kernelEpoch !== undefined;
    for (const s of samples) {
      const acc = cached ? this.accOfSeen(s) : this.accOf(s);
      const n = s.count ?? 1;
      acc.count += n;
      acc.ns += s.offCpu?.weightNs ?? 0;
      this.total += n;
    }
  }

  /**
   * The sample a raw sample adds to, through the stacks seen before: a repeat in the same epochs (the resolver
   * would answer the same) skips resolving and the key building.
   */
  private accOfSeen(s: RawSample): SampleAcc {
    const { resolver } = this.opts;
    const userEpoch = s.userStack.length > 0 ? resolver.userEpoch!(s.pid, s.timeNs) : 0;
    const kernelEpoch = s.kernelStack.length > 0 ? resolver.kernelEpoch!() : 0;
    const state = s.offCpu?.state;
    const spCaller = s.spCaller === true;
    const h = rawHash(s);
    const head = this.seen.get(h);
    for (let e = head; e !== undefined; e = e.next) {
      if (e.pid !== s.pid || e.tid !== s.tid || e.goid !== s.goid || e.comm !== s.comm || e.state !== state) continue;
      if (e.labels !== s.labels && e.labels?.id !== s.labels?.id) continue;
      if (e.spCaller !== spCaller || !sameStack(e.user, s.userStack) || !sameStack(e.kernel, s.kernelStack)) continue;
      if (e.userEpoch !== userEpoch || e.kernelEpoch !== kernelEpoch) {
        e.acc = this.accOf(s); // its processes' mappings (or the kernel's symbols) were read again
        e.userEpoch = userEpoch;
        e.kernelEpoch = kernelEpoch;
      }
      return e.acc;
    }
    const acc = this.accOf(s);
    const e: Seen = { pid: s.pid, tid: s.tid, goid: s.goid, comm: s.comm, state, labels: s.labels, user: s.userStack, spCaller, kernel: s.kernelStack, userEpoch, kernelEpoch, acc, next: head };
    this.seen.set(h, e);
    return acc;
  }

  /** Resolves a sample's stacks and finds (or makes) the sample it adds to. */
  private accOf(s: RawSample): SampleAcc {
    const { resolver } = this.opts;
    const ids: number[] = [];
    if (s.kernelStack.length > 0) for (const l of resolver.resolveKernel(s.kernelStack)) ids.push(this.locationId(l));
    if (s.userStack.length > 0) this.userLocationIds(s.pid, s.userStack, ids, s.timeNs, s.spCaller === true);
    const goid = s.goid === undefined ? '' : String(s.goid);
    const key = `${ids.join(',')}|${s.pid}|${s.tid}|${goid}|${s.comm}|${s.offCpu?.state ?? ''}|${s.labels?.id ?? ''}`;
    let acc = this.samples.get(key);
    if (!acc) {
      acc = { locationId: ids, count: 0, ns: 0, labels: this.labels(s) };
      this.samples.set(key, acc);
    }
    return acc;
  }

  private labels(s: RawSample): Label[] {
    const num = (key: string, n: number): Label => ({ key: this.str(key), str: 0, num: n, numUnit: 0 });
    const out: Label[] = [num('pid', s.pid), num('tid', s.tid)];
    if (s.goid !== undefined) out.push(num('goid', s.goid));
    out.push({ key: this.str('comm'), str: this.str(s.comm), num: 0, numUnit: 0 });
    if (s.offCpu !== undefined) out.push({ key: this.str('state'), str: this.str(s.offCpu.state), num: 0, numUnit: 0 });
    if (s.labels) for (const [k, v] of s.labels.pairs) out.push({ key: this.str(k), str: this.str(v), num: 0, numUnit: 0 });
    const extra = this.opts.processLabels?.(s.pid);
    if (extra) {
      for (const [k, v] of Object.entries(extra)) out.push({ key: this.str(k), str: this.str(v), num: 0, numUnit: 0 });
    }
    return out;
  }

  /**
   * Mappings in the order pprof expects: the main binary first (pprof reports mapping[0] as the profile's "File"),
   * then libraries, then special mappings such as [vdso], the kernel last. Returns old id → new id.
   */
  private orderMappings(): { mappings: Mapping[]; newId: Map<number, number> } {
    const rank = (m: Mapping): number => {
      const file = this.stringTable[m.filename] ?? '';
      if (file === '[kernel.kallsyms]') return 3;
      if (file === '' || file.startsWith('[')) return 2;
      if (/\.so(\.|$)/.test(file)) return 1;
      return 0;
    };
    const sorted = [...this.mappings.values()].sort((a, b) => rank(a) - rank(b) || a.id - b.id);
    const newId = new Map(sorted.map((m, i) => [m.id, i + 1]));
    return { mappings: sorted.map((m) => ({ ...m, id: newId.get(m.id)! })), newId };
  }

  /** The profile so far. endTimeNs (wall clock, default now) sets duration_nanos. */
  build(endTimeNs: bigint = nowNs()): Profile {
    const { mappings, newId } = this.orderMappings();
    const offCpu = this.opts.kind === 'offcpu';
    const samples: Sample[] = [];
    for (const acc of this.samples.values()) {
      samples.push({ locationId: acc.locationId, value: [acc.count, offCpu ? acc.ns : acc.count * this.period], label: acc.labels });
    }
    const timeType = offCpu ? 'off_cpu' : 'cpu';
    const sampleType = [
      { type: this.str('samples'), unit: this.str('count') },
      { type: this.str(timeType), unit: this.str('nanoseconds') },
    ];
    const periodType = { type: this.str(timeType), unit: this.str('nanoseconds') };
    const duration = endTimeNs > this.startTimeNs ? endTimeNs - this.startTimeNs : 0n;
    return {
      sampleType,
      sample: samples,
      mapping: mappings,
      location: [...this.locations.values()].map((l) => (l.mappingId === 0 ? l : { ...l, mappingId: newId.get(l.mappingId)! })),
      function: [...this.functions.values()],
      stringTable: [...this.stringTable],
      dropFrames: 0,
      keepFrames: 0,
      timeNanos: this.startTimeNs,
      durationNanos: duration,
      periodType,
      period: this.period,
      comment: [],
      defaultSampleType: 0,
      docUrl: 0,
    };
  }
}
