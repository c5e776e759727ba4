// Reads the goroutine dumps Go prints: a SIGQUIT or crash (GOTRACEBACK=all, system, crash: signal, register and
// per-thread sections skipped), runtime.Stack(buf, true), /debug/pprof/goroutine?debug=2, in the spellings of
// Go 1.15 … 1.26. What people paste is often cut short or mixed with log lines: this reads what it can, says what
// it could not in `warnings`, and never throws. One pass over the lines, every structure bounded.

import type { Goroutine, GoroutineDump, GoroutineFrame, GoroutineState } from './model';
import { tracebackFuncName } from './func-name';
import { isSystemStart, isUserVisibleFrame } from './traceback-view';

export interface ParseOptions {
  /** Most goroutines kept (default 1,000,000): the rest is not read, and a warning says so. */
  maxGoroutines?: number;
  /** Most frames kept per goroutine (default 10,000). */
  maxFrames?: number;
}

/** Longer lines are not Go's (a traceback line is a function name and its arguments, or a path). */
const MAX_LINE = 64 * 1024;
/** Distinct function names and files kept as one copy each (a hostile dump could name millions). */
const MAX_INTERNED = 100_000;
/** Lines not understood that are quoted in warnings; the rest are counted. */
const QUOTED_JUNK = 10;

// "goroutine 18 [chan receive, 5 minutes, locked to thread]:", with Go 1.22+'s "gp=0x… m=3 mp=0x…" at level 2.
const HEADER = /^goroutine (\d+)(?: gp=0x[0-9a-f]+ m=(?:(\d+) mp=0x[0-9a-f]+|nil))? \[(.*)\]:$/;
// "main.(*T).m(0xc000010000, {0x1?, 0x2})": arguments never hold parentheses, names never spaces.
const FUNC = /^(\S+)\(([^()]*)\)$/;
// "\t/src/main.go:12 +0x1d", at level 2 followed by " fp=0x… sp=0x… pc=0x…".
const FILE = /^\t(.*):(\d+)(?: \+0x([0-9a-f]+))?(?: fp=0x[0-9a-f]+ sp=0x[0-9a-f]+ pc=0x([0-9a-f]+))?$/;
const CREATED = /^created by (\S+?)(?: in goroutine (\d+))?$/;
const ELIDED = /^\.\.\.(?:(\d+)|additional) frames elided\.\.\.$/;
const UNAVAILABLE = '\tgoroutine running on other thread; stack unavailable';
// Sections whose frames are not a goroutine's own: GODEBUG=tracebackancestors, a thread's system stack.
const OTHER_STACK = /^(?:\[originating from goroutine \d+\]:|runtime stack:)$/;
// What Go prints around the goroutines of a crash, and inside a stack when it goes wrong: skipped quietly.
const NOISE = [
  /^SIG[A-Z0-9]+: /, // SIGQUIT: quit
  /^PC=0x[0-9a-f]+ m=\d+ sigcode=/,
  /^-----$/,
  /^[a-z][a-z0-9]{1,6} +0x[0-9a-f]+$/, // registers: "rax    0x0", "rflags 0x246"
  /^signal arrived during /,
  /^\t?(?:panic|fatal error): /,
  /^\[signal /,
  /^exit status \d+$/,
  /^runtime: /,
  /^stack: frame=\{/,
  /^\t0x[0-9a-f]+: /, // stack hex dump
  /^non-Go function at pc=0x/,
  /^\t?\.\.\.$/,
];
const DEBUG1 = /^goroutine profile: total \d+$/;

function isNoise(line: string): boolean {
  return NOISE.some((re) => re.test(line));
}

const STATES: Record<string, GoroutineState> = {
  idle: 'idle',
  runnable: 'runnable',
  running: 'running',
  syscall: 'syscall',
  waiting: 'waiting',
  dead: 'dead',
  copystack: 'copystack',
  preempted: 'preempted',
  leaked: 'leaked',
  'waiting for cgo callback': 'dead',
  '???': 'unknown',
};
/** Wait reasons whose own name says "(durable)" (Go 1.25+): Go adds no second one. */
const DURABLE_REASONS = new Set(['chan receive (durable)', 'chan send (durable)', 'select (durable)', 'sync.WaitGroup.Wait (durable)']);

type Mode =
  /** Between goroutines. */
  | 'outside'
  /** In a goroutine: a frame, "created by", an elision line or the end. */
  | 'frames'
  /** A frame's function line was read: its "\tfile:line" comes next. */
  | 'file'
  /** "created by" was read: its "\tfile:line" comes next. */
  | 'created'
  /** In a section that is not a goroutine's own stack: skipped to its end. */
  | 'skip'
  /** In a debug=1 profile: skipped up to a goroutine header, if any. */
  | 'profile';

export function parseGoroutineDump(text: string, opts: ParseOptions = {}): GoroutineDump {
  return new Parser(opts).parse(String(text));
}

class Parser {
  private readonly goroutines: Goroutine[] = [];
  private readonly byId = new Map<number, number>();
  private readonly warnings: string[] = [];
  private readonly maxGoroutines: number;
  private readonly maxFrames: number;
  private mode: Mode = 'outside';
  private g: Goroutine | undefined;
  private pending: GoroutineFrame | undefined;
  private junk = 0;
  private droppedFrames = 0;
  private lineNo = 0;
  private lastSkipped = 0;
  private readonly strings = new Map<string, string>();

  constructor(opts: ParseOptions) {
    this.maxGoroutines = opts.maxGoroutines ?? 1_000_000;
    this.maxFrames = opts.maxFrames ?? 10_000;
  }

  parse(text: string): GoroutineDump {
    let start = 0;
    let full = true;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      let line = text.slice(start, Math.min(end, start + MAX_LINE + 1));
      if (line.endsWith('\r')) line = line.slice(0, -1);
      this.lineNo++;
      if (!this.line(line)) {
        full = false;
        break;
      }
      start = end + 1;
    }
    // A last line that is not a whole line of Go's: the text was cut in the middle of it.
    const cut = full && !text.endsWith('\n') && this.lastSkipped === this.lineNo;
    if (this.g && (cut || this.mode === 'file' || this.mode === 'created' || (this.g.frames.length === 0 && !this.g.error))) {
      this.warnings.push(`the dump ends inside goroutine ${this.g.id}: it looks cut short, that goroutine's stack may be incomplete`);
    }
    this.finish();
    if (this.junk > QUOTED_JUNK) this.warnings.push(`${this.junk - QUOTED_JUNK} more lines were not part of a goroutine dump and were skipped`);
    if (this.droppedFrames > 0) this.warnings.push(`${this.droppedFrames} frames beyond ${this.maxFrames} per goroutine were not kept`);
    if (this.goroutines.length === 0 && this.warnings.length === 0) this.warnings.push('no goroutines found');
    return { goroutines: this.goroutines, printed: printedLevel(this.goroutines), warnings: this.warnings, takenAtMs: Date.now() };
  }

  /** One line; false when no more goroutines may be read. */
  private line(line: string): boolean {
    if (line.length > MAX_LINE) {
      this.skipped(line);
      return true;
    }
    if (this.mode === 'profile' && !line.startsWith('goroutine ')) return true;
    if (line === '') {
      this.finish();
      return true;
    }
    const h = line.startsWith('goroutine ') ? HEADER.exec(line) : null;
    if (h) return this.header(h);
    if (this.mode === 'skip') return true;
    switch (this.mode) {
      case 'outside':
        if (isNoise(line)) return true;
        if (OTHER_STACK.test(line)) this.mode = 'skip';
        else if (DEBUG1.test(line)) {
          this.warnings.push('this is a debug=1 goroutine profile (stacks with counts), not a goroutine dump: ask for debug=2');
          this.mode = 'profile';
        } else this.skipped(line);
        return true;
      case 'file':
        return this.fileLine(line);
      case 'created':
        return this.createdFile(line);
      case 'frames':
        this.frameLine(line);
        return true;
      default:
        return true;
    }
  }

  private header(h: RegExpExecArray): boolean {
    this.finish();
    const id = Number(h[1]);
    if (id === 0 || !Number.isSafeInteger(id)) {
      this.mode = 'skip'; // a thread's g0 (crash dumps): not a goroutine
      return true;
    }
    if (this.goroutines.length >= this.maxGoroutines && !this.byId.has(id)) {
      this.warnings.push(`only the first ${this.maxGoroutines} goroutines were read`);
      return false;
    }
    const g: Goroutine = { id, state: 'unknown', status: '', frames: [] };
    if (h[2] !== undefined) g.m = Number(h[2]);
    this.status(h[3]!, g);
    this.g = g;
    this.mode = 'frames';
    return true;
  }

  /** The bracket after "goroutine N": status, then Go's extras in the order it prints them. */
  private status(text: string, g: Goroutine): void {
    let rest = text;
    const at = rest.indexOf(' labels:{');
    if (at >= 0) {
      const labels = parseLabels(rest.slice(at + ' labels:{'.length));
      if (labels) g.labels = labels;
      else this.warnings.push(`goroutine ${g.id}: labels not understood: ${quote(rest.slice(at + 1))}`);
      rest = rest.slice(0, at);
    }
    const parts = rest.split(', ');
    let s = parts[0]!;
    if (s.endsWith(' (durable)') && !DURABLE_REASONS.has(s)) {
      g.durable = true;
      s = s.slice(0, -' (durable)'.length);
    }
    if (s.endsWith(' (scan)')) s = s.slice(0, -' (scan)'.length);
    if (DURABLE_REASONS.has(s)) g.durable = true;
    let leaked = false;
    if (s.endsWith(' (leaked)')) {
      leaked = true;
      s = s.slice(0, -' (leaked)'.length);
    }
    g.status = s;
    const known = STATES[s];
    if (leaked) {
      g.state = 'leaked';
      if (s !== 'leaked') g.waitReason = s;
    } else if (known) {
      g.state = known;
    } else {
      g.state = 'waiting';
      g.waitReason = s;
    }
    for (const p of parts.slice(1)) {
      let m: RegExpExecArray | null;
      if ((m = /^(\d+) minutes$/.exec(p))) g.waitMinutes = Number(m[1]);
      else if (p === 'locked to thread') g.lockedToThread = true;
      else if ((m = /^synctest bubble (\d+)$/.exec(p))) g.bubble = Number(m[1]);
      else this.warnings.push(`goroutine ${g.id}: "${quote(p)}" in its header not understood`);
    }
  }

  private frameLine(line: string): void {
    const g = this.g!;
    let m: RegExpExecArray | null;
    if ((m = FUNC.exec(line))) {
      this.pending = { function: this.intern(tracebackFuncName(m[1]!, true)), file: '', line: 0, args: m[2]! };
      this.mode = 'file';
    } else if ((m = CREATED.exec(line))) {
      g.createdBy = { function: this.intern(tracebackFuncName(m[1]!, true)), file: '', line: 0 };
      if (m[2] !== undefined) g.createdBy.goid = Number(m[2]);
      this.mode = 'created';
    } else if ((m = ELIDED.exec(line))) {
      g.framesElided = true;
      g.elided = m[1] !== undefined ? { at: g.frames.length, count: Number(m[1]) } : { at: g.frames.length };
    } else if (line === UNAVAILABLE) {
      g.error = 'running on another thread; stack unavailable';
    } else if (OTHER_STACK.test(line)) {
      this.mode = 'skip';
    } else if (!isNoise(line)) {
      this.skipped(line);
    }
  }

  private fileLine(line: string): boolean {
    const m = FILE.exec(line);
    if (!m) {
      if (FUNC.test(line) || CREATED.test(line) || ELIDED.test(line)) {
        this.warnings.push(`goroutine ${this.g!.id}: no file:line after ${this.pending!.function} (line ${this.lineNo})`);
        this.pending = undefined;
        this.mode = 'frames';
        return this.line(line);
      }
      if (!isNoise(line)) this.skipped(line);
      return true;
    }
    const f = this.pending!;
    this.pending = undefined;
    this.mode = 'frames';
    f.file = this.intern(m[1]!);
    f.line = Number(m[2]);
    if (f.args === '...' && m[3] === undefined) {
      f.inlined = true;
      delete f.args;
    } else if (m[3] !== undefined) {
      f.entryOffset = parseInt(m[3], 16);
    }
    if (m[4] !== undefined) f.pc = parseInt(m[4], 16);
    if (f.function.endsWith('-fm') || /\.gowrap\d+$/.test(f.function) || f.file === '<autogenerated>') f.wrapper = true;
    const g = this.g!;
    if (g.frames.length < this.maxFrames) g.frames.push(f);
    else {
      this.droppedFrames++;
      g.framesElided = true;
    }
    return true;
  }

  private createdFile(line: string): boolean {
    const m = FILE.exec(line);
    if (!m) {
      if (!isNoise(line)) this.skipped(line);
      return true;
    }
    const c = this.g!.createdBy!;
    c.file = this.intern(m[1]!);
    c.line = Number(m[2]);
    if (m[3] !== undefined) c.entryOffset = parseInt(m[3], 16);
    this.mode = 'frames';
    return true;
  }

  /**
   * One copy of each function name and file: a dump names a few thousand, each thousands of times, and a fresh
   * copy does not keep the whole text alive (a substring may point into it).
   */
  private intern(s: string): string {
    let v = this.strings.get(s);
    if (v === undefined) {
      v = (' ' + s).slice(1);
      if (this.strings.size < MAX_INTERNED) this.strings.set(v, v);
    }
    return v;
  }

  private skipped(line: string): void {
    this.junk++;
    this.lastSkipped = this.lineNo;
    if (this.junk <= QUOTED_JUNK) this.warnings.push(`line ${this.lineNo} is not part of a goroutine dump, skipped: ${quote(line)}`);
  }

  /** Ends the goroutine being read (a blank line, the next header, the end of the text). */
  private finish(): void {
    const g = this.g;
    if (g) {
      if (this.mode === 'file') this.warnings.push(`goroutine ${g.id}: no file:line after ${this.pending!.function}`);
      if (this.mode === 'created' && g.createdBy) this.warnings.push(`goroutine ${g.id}: no file:line after "created by ${g.createdBy.function}"`);
      if (isSystemGoroutine(g)) g.system = true;
      const seen = this.byId.get(g.id);
      if (seen === undefined) {
        this.byId.set(g.id, this.goroutines.length);
        this.goroutines.push(g);
      } else if (this.goroutines[seen]!.frames.length === 0 && g.frames.length > 0) {
        // A crash prints each thread's goroutine again, with the stack the first listing could not show.
        this.goroutines[seen] = g;
      }
    }
    this.g = undefined;
    this.pending = undefined;
    this.mode = 'outside';
  }
}

/** The traceback level a dump was printed at: 'system' shows runtime goroutines, runtime frames or frame PCs. */
function printedLevel(goroutines: readonly Goroutine[]): 'user' | 'system' {
  for (const g of goroutines) {
    if (g.system) return 'system';
    let user = false;
    let runtime = false;
    g.frames.forEach((f, i) => {
      // Go 1.15 printed some runtime frames inlined in user code at level 1, and runtime.goexit is printed at
      // level 1 too when nothing else would be (then compiler wrappers look like user frames).
      if (f.inlined || f.function === 'runtime.goexit') return;
      if (f.pc !== undefined) runtime = user = true;
      if (isUserVisibleFrame(f.function, i === 0)) user = true;
      else runtime = true;
    });
    // A goroutine with no user frame at all is printed whole at every level.
    if (user && runtime) return 'system';
  }
  return 'user';
}

/** runtime.isSystemGoroutine from what a dump shows: started by a runtime function other than runtime.main. */
function isSystemGoroutine(g: Goroutine): boolean {
  const start = [...g.frames].reverse().find((f) => f.function !== 'runtime.goexit');
  const outermostShown = !g.elided || g.elided.count !== undefined;
  if (start && outermostShown) return isSystemStart(start.function, g.frames);
  return g.createdBy !== undefined && isSystemStart(g.createdBy.function, []);
}

/**
 * Go 1.26's GODEBUG=tracebacklabels=1 spelling, after ' labels:{': `"k": "v", "k2": "v2"}`, strings quoted as
 * runtime.printquoted does. Undefined when it is not that.
 */
export function parseLabels(text: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  let i = 0;
  if (text === '}') return out;
  for (;;) {
    const k = readQuoted(text, i);
    if (!k || !text.startsWith(': ', k.end)) return undefined;
    const v = readQuoted(text, k.end + 2);
    if (!v) return undefined;
    out[k.value] = v.value;
    if (text.startsWith(', ', v.end)) i = v.end + 2;
    else return text.slice(v.end) === '}' ? out : undefined;
  }
}

function readQuoted(s: string, at: number): { value: string; end: number } | undefined {
  if (s[at] !== '"') return undefined;
  let value = '';
  for (let i = at + 1; i < s.length; i++) {
    const c = s[i]!;
    if (c === '"') return { value, end: i + 1 };
    if (c !== '\\') {
      value += c;
      continue;
    }
    const e = s[++i];
    const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', '"': '"' };
    if (e !== undefined && simple[e] !== undefined) {
      value += simple[e];
      continue;
    }
    const digits = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
    const hex = s.slice(i + 1, i + 1 + digits);
    if (digits === 0 || !/^[0-9a-f]+$/i.test(hex) || hex.length !== digits) return undefined;
    const cp = parseInt(hex, 16);
    if (cp > 0x10ffff) return undefined;
    value += String.fromCodePoint(cp);
    i += digits;
  }
  return undefined;
}

/** A line as quoted in a warning: short, control characters escaped. */
function quote(line: string): string {
  const s = JSON.stringify(line.length > 120 ? `${line.slice(0, 120)}…` : line);
  return s.slice(1, -1);
}
