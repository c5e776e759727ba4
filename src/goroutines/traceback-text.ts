// A dump as the text Go prints: runtime.Stack(buf, true) and /debug/pprof/goroutine?debug=2 (the user view), or
// with `system` what GOTRACEBACK=system shows (runtime goroutines and frames too), in the spelling of the dump's
// Go release (runtime/traceback.go: goroutineheader, traceback1/2, printcreatedby).
//
// What a dump read from outside does not have is written the way Go writes an unknown: arguments as "(...)" (Go's
// spelling for an inlined call's); GOTRACEBACK=system's "gp=… m=…" header fields and "fp=… sp=… pc=…" frame fields
// are left out. With `labels`, a goroutine's pprof labels go in its header as Go 1.26 prints them under
// GODEBUG=tracebacklabels=1 (` labels:{"k": "v"}`, keys sorted): Go's own output leaves them out otherwise, and
// this spelling is one that Go itself prints and that parseGoroutineDump (and bracket-based parsers) read back.

import type { Goroutine, GoroutineDump, GoroutineFrame } from './model';
import { tracebackFuncName } from './func-name';
import { goMinorOf, tracebackView, TracebackLevel } from './traceback-view';

export interface TracebackTextOptions {
  /** GOTRACEBACK=system's view: runtime goroutines and runtime frames too. Default: the user view. */
  system?: boolean;
  /** Each goroutine's pprof labels in its header (Go 1.26's tracebacklabels spelling). Default: as Go, none. */
  labels?: boolean;
}

/** Go ≤ 1.20 walks at most 100 physical frames; 1.21+ prints the innermost 50 and outermost 50 of the rest. */
const MAX_FRAMES = 100;
const INNER_FRAMES = 50;
const OUTER_FRAMES = 50;

export function writeTracebackText(dump: GoroutineDump, opts: TracebackTextOptions = {}): string {
  const level: TracebackLevel = opts.system ? 'system' : 'user';
  // A parsed dump is already a view: as printed, unless it was printed at level 2 and the user view is asked for.
  const asPrinted = dump.printed !== undefined && (dump.printed === level || dump.printed === 'user');
  const goMinor = goMinorOf(dump.goVersion);
  // One array of pieces joined once: a 100 MB dump built by += is mostly garbage for the collector.
  const out: string[] = [];
  for (const g of dump.goroutines) {
    const shown = asPrinted ? (opts.system || !g.system ? shownAsPrinted(g) : undefined) : shownLive(dump, g, level, goMinor);
    if (!shown) continue;
    if (out.length > 0) out.push('\n');
    goroutineText(out, shown.g, shown.elidedAt, shown.elidedCount, opts.labels === true);
  }
  return out.join('');
}

interface Shown {
  g: Goroutine;
  /** Index in g.frames of the elision line; undefined: none. */
  elidedAt?: number;
  /** The count Go 1.21+ prints; undefined: "...additional frames elided...". */
  elidedCount?: number;
}

function shownAsPrinted(g: Goroutine): Shown {
  return g.elided ? { g, elidedAt: g.elided.at, elidedCount: g.elided.count } : { g };
}

/** What Go would print of a goroutine read live: the view's frames, cut the way the release cuts them. */
function shownLive(dump: GoroutineDump, g: Goroutine, level: TracebackLevel, goMinor: number): Shown | undefined {
  const view = (one: Goroutine): Goroutine | undefined => tracebackView({ ...dump, goroutines: [one] }, level).goroutines[0];
  if (goMinor <= 20) {
    // gentraceback stops after 100 physical frames, shown or not, and says so only when it printed 100.
    const cut = view({ ...g, frames: firstPhysicalFrames(g.frames, MAX_FRAMES) });
    if (!cut) return undefined;
    return cut.frames.length === MAX_FRAMES ? { g: cut, elidedAt: MAX_FRAMES } : { g: cut };
  }
  const v = view(g);
  if (!v) return undefined;
  const n = v.frames.length;
  if (n <= MAX_FRAMES) return { g: v };
  const frames = [...v.frames.slice(0, INNER_FRAMES), ...v.frames.slice(n - OUTER_FRAMES)];
  return { g: { ...v, frames }, elidedAt: INNER_FRAMES, elidedCount: n - INNER_FRAMES - OUTER_FRAMES };
}

/** The logical frames of the first `max` physical frames (a physical frame ends at a frame not inlined). */
function firstPhysicalFrames(frames: readonly GoroutineFrame[], max: number): GoroutineFrame[] {
  let physical = 0;
  for (let i = 0; i < frames.length; i++) {
    if (!frames[i]!.inlined && ++physical === max) return frames.slice(0, i + 1);
  }
  return [...frames];
}

function goroutineText(out: string[], g: Goroutine, elidedAt: number | undefined, elidedCount: number | undefined, labels: boolean): void {
  out.push(`goroutine ${g.id} [${headerStatus(g, labels)}]:\n`);
  if (g.frames.length === 0 && (g.state === 'running' || g.error === 'running on another thread; stack unavailable')) {
    out.push('\tgoroutine running on other thread; stack unavailable\n');
  }
  g.frames.forEach((f, i) => {
    if (i === elidedAt) out.push(elisionLine(elidedCount));
    out.push(frameText(f));
  });
  if (elidedAt !== undefined && elidedAt >= g.frames.length) out.push(elisionLine(elidedCount));
  const c = g.createdBy;
  if (c && g.id !== 1) {
    out.push(`created by ${tracebackFuncName(c.function)}${c.goid !== undefined ? ` in goroutine ${c.goid}` : ''}\n`);
    out.push(`\t${c.file}:${c.line}${c.entryOffset ? ` +0x${c.entryOffset.toString(16)}` : ''}\n`);
  }
}

function elisionLine(count: number | undefined): string {
  return count === undefined ? '...additional frames elided...\n' : `...${count} frames elided...\n`;
}

function frameText(f: GoroutineFrame): string {
  const args = f.inlined ? '...' : (f.args ?? '...');
  const offset = !f.inlined && f.entryOffset ? ` +0x${f.entryOffset.toString(16)}` : '';
  return `${tracebackFuncName(f.function)}(${args})\n\t${f.file}:${f.line}${offset}\n`;
}

/** What goes between the brackets (runtime.goroutineheader, in its order). */
function headerStatus(g: Goroutine, labels: boolean): string {
  let s = g.status || g.state;
  if (g.state === 'leaked') s += ' (leaked)';
  if (g.durable && !s.endsWith('(durable)')) s += ' (durable)';
  if (g.waitMinutes !== undefined && g.waitMinutes >= 1) s += `, ${g.waitMinutes} minutes`;
  if (g.lockedToThread) s += ', locked to thread';
  if (g.bubble !== undefined) s += `, synctest bubble ${g.bubble}`;
  if (labels && g.labels) {
    const keys = Object.keys(g.labels).sort();
    if (keys.length > 0) s += ` labels:{${keys.map((k) => `${printQuoted(k)}: ${printQuoted(g.labels![k]!)}`).join(', ')}}`;
  }
  return s;
}

/** runtime.printquoted: printable ASCII as is, the rest escaped. */
export function printQuoted(s: string): string {
  let out = '"';
  for (const ch of s) {
    const r = ch.codePointAt(0)!;
    if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\\' || ch === '"') out += `\\${ch}`;
    else if (r >= 0x20 && r <= 0x7e) out += ch;
    else if (r < 0x7f) out += `\\x${r.toString(16).padStart(2, '0')}`;
    else if (r < 0x10000) out += `\\u${r.toString(16).padStart(4, '0')}`;
    else out += `\\U${r.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}
