// What Go's own traceback would print of a dump at a GOTRACEBACK level. The reader keeps everything; this decides
// what is shown, by the runtime's rules (traceback.go: showfuncinfo, isSystemGoroutine, printcreatedby):
//   'user'   — runtime.Stack(buf, true), /debug/pprof/goroutine?debug=2, GOTRACEBACK=all: no runtime goroutines,
//              no unexported runtime.* frames (runtime.gopanic is kept when it is not the innermost frame);
//   'system' — GOTRACEBACK=system and what a SIGQUIT prints (a runtime "throw"): everything.

import type { Goroutine, GoroutineDump, GoroutineFrame } from './model';
import { WRAPPER_SHOWN_CALLING } from '../gosym/wrappers';

export type TracebackLevel = 'user' | 'system';

const USER_START_FUNCS = new Set(['runtime.main', 'runtime.corostart', 'runtime.handleAsyncEvent']);
const FINALIZER_FUNCS = new Set(['runtime.runfinq', 'runtime.runFinalizers', 'runtime.runCleanups']);

/**
 * runtime.isSystemGoroutine from the function a goroutine started in: a runtime function other than runtime.main
 * (the finalizer and cleanup goroutines only while they run no user code).
 */
export function isSystemStart(start: string, frames: readonly GoroutineFrame[]): boolean {
  if (USER_START_FUNCS.has(start)) return false;
  if (FINALIZER_FUNCS.has(start)) return frames.every((f) => f.function.startsWith('runtime.'));
  return start.startsWith('runtime.');
}

/** runtime.showfuncinfo at level 1: a frame worth showing to a user. */
export function isUserVisibleFrame(name: string, innermost: boolean): boolean {
  if (name === 'runtime.gopanic' && !innermost) return true;
  if (!name.includes('.')) return false;
  if (!name.startsWith('runtime.')) return true;
  const c = name.charCodeAt('runtime.'.length);
  return c >= 65 && c <= 90; // exported runtime function (runtime.Goexit, runtime.Gosched)
}

/** frames[i] is a compiler wrapper Go leaves out of tracebacks and runtime.Callers: it called no panic. */
export function isElidedWrapper(frames: readonly GoroutineFrame[], i: number): boolean {
  return frames[i]!.wrapper === true && !(i > 0 && WRAPPER_SHOWN_CALLING.has(frames[i - 1]!.function));
}

/**
 * The frames level 1 shows. Go ≤ 1.15 decided an inlined frame's visibility by the function it was inlined into
 * (runtime.goparkunlock inlined into sync.runtime_notifyListWait was printed); later releases by its own name.
 */
function userFrames(frames: readonly GoroutineFrame[], goMinor: number): GoroutineFrame[] {
  return frames.filter((f, i) => {
    if (isElidedWrapper(frames, i)) return false;
    let name = f.function;
    if (f.inlined && goMinor <= 15) name = frames.slice(i).find((x) => !x.inlined)?.function ?? name;
    return isUserVisibleFrame(name, i === 0);
  });
}

/** The minor release of a dump's Go version ("go1.21.3" → 21); unknown: the newest. */
export function goMinorOf(version: string | undefined): number {
  const m = /^go1\.(\d+)/.exec(version ?? '');
  return m ? Number(m[1]) : Number.MAX_SAFE_INTEGER;
}

export function tracebackView(dump: GoroutineDump, level: TracebackLevel): GoroutineDump {
  if (level === 'system') return dump;
  const goMinor = goMinorOf(dump.goVersion);
  const goroutines: Goroutine[] = [];
  for (const g of dump.goroutines) {
    if (g.system) continue;
    const frames = userFrames(g.frames, goMinor);
    // Go shows every frame of a goroutine that would otherwise show none.
    const shown: Goroutine = { ...g, frames: frames.length > 0 ? frames : g.frames };
    if (g.createdBy && !isUserVisibleFrame(g.createdBy.function, false)) delete shown.createdBy;
    goroutines.push(shown);
  }
  return { ...dump, goroutines };
}
