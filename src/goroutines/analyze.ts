// What a goroutine dump says, the way an engineer reads one: goroutines with the same stack and state grouped (as
// panicparse does) with their count and longest wait, and blocking chains: goroutines blocked on the same object
// (the pointer argument of the frame they block in: a channel, a mutex, a WaitGroup…), the goroutine that holds
// it up where the dump shows one (it passes that pointer in a frame without waiting on it), what that goroutine
// waits on in turn, and cycles (a deadlock). Arguments come from Go's own traceback: register-ABI releases
// (Go 1.17+) print some as "0x…?" (maybe stale), and a dump printed at GOTRACEBACK=system shows the runtime frames
// (runtime.chanrecv(c, …)) that name channels; user-level dumps show mutexes and WaitGroups best.

import type { Goroutine, GoroutineDump, GoroutineFrame } from './model';
import { tracebackView } from './traceback-view';

export interface AnalyzeOptions {
  /** Runtime goroutines and frames too (default: the user view, as runtime.Stack(all) shows it). */
  system?: boolean;
  /** Goroutine IDs listed per group or object (default 50); the counts are always whole. */
  maxIds?: number;
}

export interface FrameText {
  function: string;
  file: string;
  line: number;
  inlined?: boolean;
}

export interface GoroutineGroup {
  count: number;
  /** The first maxIds goroutine IDs, ascending. */
  ids: number[];
  state: string;
  /** What Go prints first in the brackets (the wait reason, else the state). */
  status: string;
  /** Longest and shortest wait in whole minutes (Go prints waits of a minute or more). */
  waitMinutes?: { min: number; max: number };
  /** How many are locked to their thread. */
  lockedToThread?: number;
  /** Labels every goroutine of the group carries. */
  labels?: Record<string, string>;
  frames: FrameText[];
  createdBy?: FrameText;
  /** Index in `objects` of what the group waits on (when all its goroutines wait on the same one). */
  blockedOn?: number;
}

export type ObjectKind = 'channel' | 'mutex' | 'rwmutex' | 'waitgroup' | 'cond' | 'semaphore' | 'fd';

/** Something goroutines block on, named by the pointer argument of the frame they block in. */
export interface BlockingObject {
  kind: ObjectKind;
  address: string;
  /** The frame that names it ("sync.(*Mutex).lockSlow"). */
  via: string;
  waiters: number;
  waiterIds: number[];
  /** Goroutines that pass the pointer in a frame without waiting on it: the ones that may hold it. */
  holders: Holder[];
  /** Go printed the address with "?" in every waiter (a register-ABI argument, possibly stale). */
  uncertain?: boolean;
}

export interface Holder {
  id: number;
  status: string;
  waitMinutes?: number;
  /** The frame that passes the pointer. */
  function: string;
  file: string;
  line: number;
  /** Index in `objects` of what this holder itself waits on. */
  blockedOn?: number;
}

/** A path from the object with the most waiters along holders to what holds everything up (or a cycle). */
export interface BlockingChain {
  /** Alternating: objects (by index) and the goroutines holding them. */
  steps: Array<{ object: number; holder?: number }>;
  /** The last holder waits on an object already in the chain: a deadlock. */
  cycle: boolean;
  /** Goroutines waiting anywhere along the chain. */
  waiters: number;
}

export interface DumpAnalysis {
  goroutines: number;
  /** Goroutines left out: runtime ones (unless `system`). */
  runtimeGoroutines: number;
  states: Record<string, number>;
  groups: GoroutineGroup[];
  objects: BlockingObject[];
  chains: BlockingChain[];
  longestWait?: { minutes: number; group: number };
  warnings: string[];
}

/** Frames whose first argument names what a goroutine blocks on; the innermost match wins. */
const BLOCKING: ReadonlyArray<[RegExp, ObjectKind]> = [
  [/^runtime\.chan(?:recv|send)[12]?$/, 'channel'],
  [/^(?:internal\/)?sync\.\(\*Mutex\)\.(?:lockSlow|Lock)$/, 'mutex'],
  [/^sync\.\(\*RWMutex\)\.R?Lock$/, 'rwmutex'],
  [/^sync\.\(\*WaitGroup\)\.Wait$/, 'waitgroup'],
  [/^sync\.\(\*Cond\)\.Wait$/, 'cond'],
  [/^(?:internal\/)?sync\.runtime_(?:Semacquire\w*|notifyListWait)$/, 'semaphore'],
  [/^internal\/poll\.\(\*FD\)\.\w+$/, 'fd'],
];

/** Below this an "address" is a small integer, not a pointer. */
const MIN_POINTER = 0x10000;

interface Arg {
  value: bigint;
  uncertain: boolean;
}

/** The words of an argument list as Go prints it ("0xc000010000, {0x1?, 0x2}, ..."), flattened. */
function argWords(args: string | undefined): Arg[] {
  if (!args) return [];
  const out: Arg[] = [];
  for (const m of args.matchAll(/0x([0-9a-f]{1,16})(\?)?/g)) out.push({ value: BigInt(`0x${m[1]}`), uncertain: m[2] === '?' });
  return out;
}

function pointerArg(args: string | undefined): Arg | undefined {
  const a = argWords(args)[0];
  return a && a.value >= MIN_POINTER ? a : undefined;
}

interface Blocked {
  key: string;
  kind: ObjectKind;
  address: bigint;
  via: string;
  uncertain: boolean;
}

/** What a goroutine blocks on: the innermost blocking frame with a pointer argument (all frames, runtime ones too). */
function blockedOn(g: Goroutine): Blocked | undefined {
  if (g.state !== 'waiting' && g.state !== 'leaked') return undefined;
  let fallback: Blocked | undefined;
  for (const f of g.frames) {
    const hit = BLOCKING.find(([re]) => re.test(f.function));
    if (!hit) continue;
    const a = pointerArg(f.args);
    if (!a) continue;
    const b = { key: `${hit[1]}@${a.value}`, kind: hit[1], address: a.value, via: f.function, uncertain: a.uncertain };
    // A semaphore is the field of a mutex or WaitGroup: the frame naming the whole object is better, if any.
    if (hit[1] !== 'semaphore') return b;
    fallback ??= b;
  }
  return fallback;
}

function frameText(f: GoroutineFrame): FrameText {
  return f.inlined ? { function: f.function, file: f.file, line: f.line, inlined: true } : { function: f.function, file: f.file, line: f.line };
}

export function analyzeDump(dump: GoroutineDump, opts: AnalyzeOptions = {}): DumpAnalysis {
  const maxIds = opts.maxIds ?? 50;
  const all = dump.goroutines;
  const shown = tracebackView(dump, opts.system ? 'system' : 'user').goroutines;
  const byId = new Map(all.map((g) => [g.id, g]));
  const states: Record<string, number> = {};
  for (const g of shown) states[g.status || g.state] = (states[g.status || g.state] ?? 0) + 1;

  // Objects and their waiters (from every frame: the runtime ones name channels).
  const objects: BlockingObject[] = [];
  const objectIndex = new Map<string, number>();
  const waitsOn = new Map<number, number>();
  const blockedBy = new Map<number, Blocked>();
  for (const g of shown) {
    const b = blockedOn(byId.get(g.id) ?? g);
    if (!b) continue;
    let i = objectIndex.get(b.key);
    if (i === undefined) {
      i = objects.length;
      objectIndex.set(b.key, i);
      objects.push({ kind: b.kind, address: `0x${b.address.toString(16)}`, via: b.via, waiters: 0, waiterIds: [], holders: [], uncertain: true });
    }
    const o = objects[i]!;
    o.waiters++;
    if (o.waiterIds.length < maxIds) o.waiterIds.push(g.id);
    if (!b.uncertain) delete o.uncertain;
    waitsOn.set(g.id, i);
    blockedBy.set(g.id, b);
  }
  // Holders: a goroutine passing an object's address in a frame, not waiting on that object itself.
  const byAddress = new Map<bigint, number[]>();
  for (const [key, i] of objectIndex) {
    const address = BigInt(key.slice(key.indexOf('@') + 1));
    byAddress.set(address, [...(byAddress.get(address) ?? []), i]);
  }
  for (const g of all) {
    const seen = new Set<number>();
    for (const f of g.frames) {
      if (f.function.startsWith('runtime.')) continue; // gopark's words are the scheduler's, not the program's
      for (const a of argWords(f.args)) {
        for (const i of byAddress.get(a.value) ?? []) {
          if (seen.has(i) || waitsOn.get(g.id) === i || blockedBy.get(g.id)?.address === a.value) continue;
          // A goroutine in select passes the channels it selects on: it waits on them, it does not hold them up.
          if (objects[i]!.kind === 'channel' && /^select\b/.test(g.status)) continue;
          seen.add(i);
          const o = objects[i]!;
          if (o.holders.length >= maxIds) continue;
          const h: Holder = { id: g.id, status: g.status || g.state, function: f.function, file: f.file, line: f.line };
          if (g.waitMinutes !== undefined) h.waitMinutes = g.waitMinutes;
          const w = waitsOn.get(g.id);
          if (w !== undefined) h.blockedOn = w;
          o.holders.push(h);
        }
      }
    }
  }
  for (const o of objects) o.waiterIds.sort((a, b) => a - b);

  const groups = groupGoroutines(shown, waitsOn, maxIds);
  let longestWait: DumpAnalysis['longestWait'];
  groups.forEach((g, i) => {
    if (g.waitMinutes && (!longestWait || g.waitMinutes.max > longestWait.minutes)) longestWait = { minutes: g.waitMinutes.max, group: i };
  });
  const out: DumpAnalysis = {
    goroutines: shown.length,
    runtimeGoroutines: all.length - shown.length,
    states,
    groups,
    objects,
    chains: blockingChains(objects),
    warnings: [...dump.warnings],
  };
  if (longestWait) out.longestWait = longestWait;
  return out;
}

/** Goroutines with the same status, stack (functions, files, lines) and creator, largest group first. */
function groupGoroutines(gs: readonly Goroutine[], waitsOn: ReadonlyMap<number, number>, maxIds: number): GoroutineGroup[] {
  const groups = new Map<string, GoroutineGroup & { members: Goroutine[] }>();
  for (const g of gs) {
    const c = g.createdBy;
    const key = [g.status || g.state, ...g.frames.map((f) => `${f.function} ${f.file}:${f.line}`), c ? `created by ${c.function} ${c.file}:${c.line}` : ''].join('\n');
    let group = groups.get(key);
    if (!group) {
      group = { count: 0, ids: [], state: g.state, status: g.status || g.state, frames: g.frames.map(frameText), members: [] };
      if (c) group.createdBy = { function: c.function, file: c.file, line: c.line };
      groups.set(key, group);
    }
    group.count++;
    group.members.push(g);
  }
  const out: GoroutineGroup[] = [];
  for (const { members, ...group } of groups.values()) {
    group.ids = members.map((g) => g.id).sort((a, b) => a - b).slice(0, maxIds);
    const waits = members.map((g) => g.waitMinutes).filter((m): m is number => m !== undefined);
    if (waits.length > 0) group.waitMinutes = { min: Math.min(...waits), max: Math.max(...waits) };
    const locked = members.filter((g) => g.lockedToThread).length;
    if (locked > 0) group.lockedToThread = locked;
    const labels = commonLabels(members);
    if (labels) group.labels = labels;
    const objs = new Set(members.map((g) => waitsOn.get(g.id)));
    if (objs.size === 1 && !objs.has(undefined)) group.blockedOn = [...objs][0]!;
    out.push(group);
  }
  return out.sort((a, b) => b.count - a.count || a.ids[0]! - b.ids[0]!);
}

function commonLabels(gs: readonly Goroutine[]): Record<string, string> | undefined {
  const first = gs[0]?.labels;
  if (!first) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(first)) if (gs.every((g) => g.labels?.[k] === v)) out[k] = v;
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * From each object nobody in another chain leads to, the most-waited first: its first holder, what that holder
 * waits on, and so on until a goroutine waits on nothing the dump names, or on an object already in the chain.
 */
function blockingChains(objects: readonly BlockingObject[]): BlockingChain[] {
  const order = objects.map((_, i) => i).filter((i) => objects[i]!.holders.length > 0);
  order.sort((a, b) => objects[b]!.waiters - objects[a]!.waiters);
  const covered = new Set<number>();
  const chains: BlockingChain[] = [];
  for (const start of order) {
    if (covered.has(start)) continue;
    const steps: BlockingChain['steps'] = [];
    const inChain = new Set<number>();
    let cycle = false;
    let at: number | undefined = start;
    while (at !== undefined) {
      if (inChain.has(at)) {
        cycle = true;
        break;
      }
      inChain.add(at);
      covered.add(at);
      const o: BlockingObject = objects[at]!;
      const holder: Holder | undefined = o.holders.find((h) => h.blockedOn !== undefined) ?? o.holders[0];
      steps.push(holder ? { object: at, holder: holder.id } : { object: at });
      at = holder?.blockedOn;
    }
    chains.push({ steps, cycle, waiters: [...inChain].reduce((n, i) => n + objects[i]!.waiters, 0) });
  }
  return chains.sort((a, b) => Number(b.cycle) - Number(a.cycle) || b.waiters - a.waiters);
}

/** Objects a goroutine holds (a lock, a WaitGroup count); the others it only passes around. */
const HELD = new Set<ObjectKind>(['mutex', 'rwmutex', 'waitgroup']);

/** The analysis as a person reads it. */
export function analysisText(a: DumpAnalysis): string {
  const lines: string[] = [];
  const plural = (n: number, s: string): string => `${n} ${s}${n === 1 ? '' : 's'}`;
  let head = `${plural(a.goroutines, 'goroutine')} in ${plural(a.groups.length, 'group')}`;
  if (a.runtimeGoroutines > 0) head += ` (${plural(a.runtimeGoroutines, 'runtime goroutine')} left out)`;
  lines.push(head);
  const states = Object.entries(a.states).sort((x, y) => y[1] - x[1]);
  if (states.length > 0) lines.push(states.map(([s, n]) => `${n} ${s}`).join(', '));
  if (a.longestWait) lines.push(`longest wait: ${a.longestWait.minutes} minutes (group ${a.longestWait.group + 1})`);
  for (const w of a.warnings) lines.push(`warning: ${w}`);

  const objectText = (i: number): string => {
    const o = a.objects[i]!;
    return `${o.kind} ${o.address}${o.uncertain ? '?' : ''} (${plural(o.waiters, 'waiter')})`;
  };
  const holderText = (h: Holder): string => `goroutine ${h.id} [${h.status}${h.waitMinutes ? `, ${h.waitMinutes} minutes` : ''}] in ${h.function} (${h.file}:${h.line})`;
  if (a.chains.length > 0) {
    lines.push('', 'blocking chains:');
    for (const c of a.chains) {
      const parts: string[] = [];
      for (const s of c.steps) {
        parts.push(objectText(s.object));
        const o = a.objects[s.object]!;
        const h = o.holders.find((x) => x.id === s.holder);
        if (h) parts.push(`${HELD.has(o.kind) ? 'held by' : 'passed by'} ${holderText(h)}`);
      }
      lines.push(`  ${c.cycle ? 'DEADLOCK: ' : ''}${parts.join('\n    → ')}${c.cycle ? '\n    → back to the start' : ''}`);
    }
  }
  const waited = a.objects.map((o, i) => ({ o, i })).filter(({ o }) => o.waiters > 1 || o.holders.length > 0);
  if (waited.length > 0) {
    lines.push('', 'waited on:');
    for (const { o, i } of waited.sort((x, y) => y.o.waiters - x.o.waiters)) {
      lines.push(`  ${objectText(i)} via ${o.via}: goroutines ${idList(o.waiterIds, o.waiters)}`);
      for (const h of o.holders) lines.push(`    passed by ${holderText(h)}`);
    }
  }
  lines.push('', 'groups:');
  a.groups.forEach((g, i) => {
    let extra = '';
    if (g.waitMinutes) extra += g.waitMinutes.min === g.waitMinutes.max ? `, ${g.waitMinutes.max} minutes` : `, ${g.waitMinutes.min}~${g.waitMinutes.max} minutes`;
    if (g.lockedToThread) extra += `, locked to thread${g.count > 1 ? ` (${g.lockedToThread})` : ''}`;
    lines.push(`${i + 1}. ${g.count} [${g.status}${extra}]${g.blockedOn !== undefined ? ` on ${objectText(g.blockedOn)}` : ''}: goroutines ${idList(g.ids, g.count)}`);
    if (g.labels) lines.push(`    labels: ${Object.entries(g.labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')}`);
    for (const f of g.frames) lines.push(`    ${f.function}${f.inlined ? ' (inlined)' : ''}  ${f.file}:${f.line}`);
    if (g.createdBy) lines.push(`    created by ${g.createdBy.function}  ${g.createdBy.file}:${g.createdBy.line}`);
  });
  return `${lines.join('\n')}\n`;
}

function idList(ids: readonly number[], total: number): string {
  return ids.join(' ') + (total > ids.length ? ` … (${total - ids.length} more)` : '');
}
