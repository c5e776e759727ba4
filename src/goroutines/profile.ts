// A dump as a pprof goroutine profile (what /debug/pprof/goroutine?debug=0 serves, gzipped): sample type
// goroutine/count; per sample the string labels `state` and `wait_reason` (waiting goroutines) and the goroutine's
// own pprof labels; per goroutine (the default) also the numeric `goid` label, as CPU samples carry it, and
// `wait_minutes` when Go records the wait. Like Go's profile it leaves runtime goroutines out unless asked and keeps
// every frame of the others (runtime ones included: they say how a goroutine waits).
//
// Locations are made from the frames, one per physical frame with its inlined calls, at the frame's PC when known,
// in the live reader's mappings when it resolved the stack.

import { pprofMapping, ResolvedLocation, ResolvedMapping } from '../profile/builder';
import { encodePprofSync, Label, Location, Mapping, Profile, ProfileFunction, Sample } from '../profile/pprof';
import type { Goroutine, GoroutineDump, GoroutineFrame } from './model';
import { isElidedWrapper } from './traceback-view';

export interface GoroutineProfileOptions {
  /** One sample per group of goroutines with the same stack, state, wait reason and labels (no goid), as Go's own. */
  grouped?: boolean;
  /** Runtime goroutines too (GOTRACEBACK=system's set). */
  system?: boolean;
  /** String labels added to every sample (container_id, pod, …). */
  labels?: Record<string, string>;
  /** The program, named in the mapping of locations made from frames (default "[goroutine dump]"). */
  binary?: string;
}

export function goroutineProfile(dump: GoroutineDump, opts: GoroutineProfileOptions = {}): Buffer {
  return encodePprofSync(buildGoroutineProfile(dump, opts));
}

/** The profile before encoding (tests and the analysis read it). */
export function buildGoroutineProfile(dump: GoroutineDump, opts: GoroutineProfileOptions = {}): Profile {
  const t = new Tables();
  // Locations made from frames are all symbolized already: one mapping that says so (and names the program).
  const dumpMapping: ResolvedMapping = {
    key: '[goroutine dump]',
    start: 0n,
    limit: 0xffffffffffffffffn,
    offset: 0n,
    file: opts.binary ?? '[goroutine dump]',
    buildId: '',
    hasFunctions: true,
    hasFilenames: true,
    hasLineNumbers: true,
    hasInlineFrames: true,
  };
  const samples = new Map<string, Sample>();
  for (const g of dump.goroutines) {
    if (g.system && !opts.system) continue;
    const locationIds = goroutineLocations(g, dumpMapping).map((l) => t.location(l));
    const labels = sampleLabels(g, opts);
    if (!opts.grouped) labels.push(['goid', g.id], ...(g.waitMinutes !== undefined ? [['wait_minutes', g.waitMinutes] as [string, number]] : []));
    const key = opts.grouped ? `${locationIds.join(',')}|${JSON.stringify(labels)}` : String(samples.size);
    const seen = samples.get(key);
    if (seen) seen.value[0]!++;
    else samples.set(key, { locationId: locationIds, value: [1], label: labels.map(([k, v]) => t.label(k, v)) });
  }
  const valueType = { type: t.str('goroutine'), unit: t.str('count') };
  // What the reader skipped or could not read, where `go tool pprof -comments` shows it.
  const comment = dump.warnings.map((w) => t.str(`quietflame: ${w}`));
  return {
    sampleType: [valueType],
    sample: [...samples.values()],
    mapping: t.mappings,
    location: t.locations,
    function: t.functions,
    stringTable: t.strings,
    dropFrames: 0,
    keepFrames: 0,
    timeNanos: BigInt(dump.takenAtMs ?? Date.now()) * 1_000_000n,
    durationNanos: 0n,
    periodType: valueType,
    period: 1,
    comment,
    defaultSampleType: 0,
    docUrl: 0,
  };
}

function sampleLabels(g: Goroutine, opts: GoroutineProfileOptions): Array<[string, string | number]> {
  const out: Array<[string, string | number]> = [['state', g.state]];
  if (g.waitReason) out.push(['wait_reason', g.waitReason]);
  for (const [k, v] of Object.entries(g.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) out.push([k, v]);
  for (const [k, v] of Object.entries(opts.labels ?? {})) out.push([k, v]);
  return out;
}

/**
 * A goroutine's locations: one per physical frame, with the calls inlined into it, innermost first; wrappers Go
 * leaves out of its stacks left out, and runtime.goexit, where Go's own profiles end. The mappings are the live
 * reader's when it resolved the stack, else `fallback`.
 */
function goroutineLocations(g: Goroutine, fallback: ResolvedMapping): ResolvedLocation[] {
  const groups: GoroutineFrame[][] = [];
  let group: GoroutineFrame[] = [];
  g.frames.forEach((f, i) => {
    group.push(f);
    if (f.inlined && i < g.frames.length - 1) return;
    groups.push(group);
    group = [];
  });
  const resolved = g.locations && g.locations.length === groups.length ? g.locations : undefined;
  const out: ResolvedLocation[] = [];
  let at = 0;
  groups.forEach((frames, k) => {
    const start = at;
    at += frames.length;
    const kept = frames
      .filter((f, i) => !isElidedWrapper(g.frames, start + i) && f.function !== 'runtime.goexit')
      .map((f) => ({ function: f.symbol ?? f.function, file: f.file, line: f.line }));
    if (kept.length === 0) return;
    // runtime.Callers' PCs are return addresses: pprof records the call's (PC − 1), as Go's profiles do.
    const pc = frames[0]!.pc;
    out.push({ mapping: resolved?.[k]!.mapping ?? fallback, address: pc !== undefined ? BigInt(pc - 1) : 0n, frames: kept });
  });
  return out;
}

/** The profile's tables: strings, mappings, functions and locations, each entered once. */
class Tables {
  readonly strings: string[] = [''];
  readonly mappings: Mapping[] = [];
  readonly functions: ProfileFunction[] = [];
  readonly locations: Location[] = [];
  private readonly stringIds = new Map<string, number>([['', 0]]);
  private readonly ids = new Map<string, number>();

  str(s: string): number {
    let i = this.stringIds.get(s);
    if (i === undefined) {
      i = this.strings.push(s) - 1;
      this.stringIds.set(s, i);
    }
    return i;
  }

  label(key: string, v: string | number): Label {
    return typeof v === 'number' ? { key: this.str(key), str: 0, num: v, numUnit: key === 'wait_minutes' ? this.str('minutes') : 0 } : { key: this.str(key), str: this.str(v), num: 0, numUnit: 0 };
  }

  /** The id of an entry made by `make` under `key`, made once. */
  private once(key: string, make: () => number): number {
    let id = this.ids.get(key);
    if (id === undefined) {
      id = make();
      this.ids.set(key, id);
    }
    return id;
  }

  location(l: ResolvedLocation): number {
    const m = l.mapping;
    const mappingId = m
      ? this.once(`m\0${m.key}`, () => this.mappings.push(pprofMapping(m, this.mappings.length + 1, (x) => this.str(x))))
      : 0;
    const lines = l.frames.map((f) => ({
      functionId: this.once(`f\0${f.function}\0${f.file}`, () => {
        const id = this.functions.length + 1;
        const name = this.str(f.function);
        this.functions.push({ id, name, systemName: name, filename: this.str(f.file), startLine: 0 });
        return id;
      }),
      line: f.line,
      column: 0,
    }));
    // Without an address (a parsed dump), a location is its lines.
    const key = `l\0${mappingId}\0${l.address}${l.address === 0n ? `\0${lines.map((x) => `${x.functionId}:${x.line}`).join(',')}` : ''}`;
    return this.once(key, () => {
      const id = this.locations.length + 1;
      this.locations.push({ id, mappingId, address: l.address, line: lines, isFolded: false });
      return id;
    });
  }
}
