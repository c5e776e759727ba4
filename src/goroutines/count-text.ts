// A dump as /debug/pprof/goroutine?debug=1 prints it (runtime/pprof printCountProfile + printStackRecord):
//   goroutine profile: total N
//   C @ 0xPC 0xPC …            (one PC per logical frame, as runtime.Callers records them)
//   # labels: {"k":"v", …}     (when the goroutine has pprof labels)
//   #	0xPC	func+0xoff	file:line
// Goroutines with the same PCs and labels are counted together, the biggest count first. The PCs come from a live
// read (frames' `pc`); a parsed text dump has them only for GOTRACEBACK=system frames, and a frame without one
// is printed with address 0.

import type { Goroutine, GoroutineDump, GoroutineFrame } from './model';
import { funcNameForPrint } from './func-name';
import { goMinorOf, isElidedWrapper } from './traceback-view';
import { tabwrite } from './tabwriter';

export interface CountTextOptions {
  /**
   * Most PCs per stack: what the program's runtime records (32 up to Go 1.22; from 1.23 GODEBUG=profstackdepth,
   * default 128). Default: by the dump's Go version.
   */
  maxDepth?: number;
}

export function writeCountText(dump: GoroutineDump, opts: CountTextOptions = {}): string {
  const depth = opts.maxDepth ?? (goMinorOf(dump.goVersion) <= 22 ? 32 : 128);
  const counts = new Map<string, { count: number; g: Goroutine }>();
  let total = 0;
  for (const g of dump.goroutines) {
    if (g.system) continue; // runtime.GoroutineProfile leaves runtime goroutines out
    total++;
    const frames = recordedFrames(g.frames, depth);
    const pcs = frames.map((f) => f.pc ?? 0);
    let key = '@';
    for (const pc of pcs) key += ` 0x${pc.toString(16)}`;
    if (g.labels) key += `\n# labels: ${labelsText(g.labels)}`;
    const seen = counts.get(key);
    if (seen) seen.count++;
    else counts.set(key, { count: 1, g });
  }
  // Biggest count first, then the key's bytes (Go's keysByCount).
  const keys = [...counts.keys()].map((k) => ({ k, bytes: Buffer.from(k, 'utf8') }));
  keys.sort((a, b) => counts.get(b.k)!.count - counts.get(a.k)!.count || Buffer.compare(a.bytes, b.bytes));
  let text = `goroutine profile: total ${total}\n`;
  for (const { k } of keys) {
    const rec = counts.get(k)!;
    text += `${rec.count} ${k}\n${stackRecord(recordedFrames(rec.g.frames, depth))}`;
  }
  return tabwrite(text, 1, 8, 1);
}

/** The frames runtime.Callers records: every logical frame but wrappers that did not call a panic, at most `depth`. */
function recordedFrames(frames: readonly GoroutineFrame[], depth: number): GoroutineFrame[] {
  return frames.filter((_, i) => !isElidedWrapper(frames, i)).slice(0, depth);
}

/** runtime/pprof.printStackRecord: leading runtime frames and runtime.goexit hidden, unless that hides all. */
function stackRecord(frames: readonly GoroutineFrame[], allFrames = false): string {
  let show = allFrames;
  let out = '';
  frames.forEach((f) => {
    const pc = f.pc ?? 0;
    const printed = pc > 0 ? pc - 1 : 0;
    if (f.function === '?' || f.function === '') {
      show = true;
      out += `#\t0x${printed.toString(16)}\n`;
      return;
    }
    const name = funcNameForPrint(f.function);
    if (name === 'runtime.goexit') return;
    if (!show && (name.startsWith('runtime.') || name.startsWith('internal/runtime/'))) return;
    show = true;
    const offset = f.entry === undefined ? 0 : printed - f.entry;
    out += `#\t0x${printed.toString(16)}\t${name}+0x${offset.toString(16)}\t${f.file}:${f.line}\n`;
  });
  if (!show) return stackRecord(frames, true);
  return `${out}\n`;
}

/** runtime/pprof's labelMap.String(): `{"k":"v", …}`, each pair %q-quoted, the pairs sorted. */
export function labelsText(labels: Record<string, string>): string {
  const pairs = Object.entries(labels).map(([k, v]) => Buffer.from(`${goQuote(k)}:${goQuote(v)}`, 'utf8'));
  pairs.sort(Buffer.compare);
  return `{${pairs.map((b) => b.toString('utf8')).join(', ')}}`;
}

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

/** Go's strconv.Quote (fmt's %q of a string). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const r = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (r === 0x20 || PRINTABLE.test(ch)) out += ch;
    else if (ch === '\x07') out += '\\a';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\v') out += '\\v';
    else if (r < 0x20 || r === 0x7f) out += `\\x${r.toString(16).padStart(2, '0')}`;
    else if (r >= 0xd800 && r <= 0xdfff) out += '\\ufffd'; // a lone surrogate: not a rune Go could hold
    else if (r < 0x10000) out += `\\u${r.toString(16).padStart(4, '0')}`;
    else out += `\\U${r.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}
