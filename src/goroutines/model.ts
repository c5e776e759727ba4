// The goroutine dump model: one shape for a dump read from a live process's memory (src/goroutines/reader) and
// for one parsed from the text Go prints (SIGQUIT, runtime.Stack(all), /debug/pprof/goroutine?debug=2). Writers
// (the text formats, the pprof goroutine profile) and the analysis (grouping, blocking chains, diagnosis) take
// this and nothing else.

import type { ResolvedLocation } from '../profile/builder';

/** runtime.g's atomicstatus without the scan bit, by name (runtime2.go's gStatusStrings). */
export type GoroutineState =
  | 'idle'
  | 'runnable'
  | 'running'
  | 'syscall'
  | 'waiting'
  | 'dead'
  | 'copystack'
  | 'preempted'
  | 'leaked'
  | 'unknown';

/** One frame as Go's traceback prints it: `function(args)` then `\tfile:line +0xoff`. */
export interface GoroutineFrame {
  /** The name Go prints (runtime.funcNameForPrint: a generic function's shape arguments as "[...]"). */
  function: string;
  /** The linker's full name when it differs ("main.F[go.shape.int]"): what Go's own pprof profiles name it. */
  symbol?: string;
  file: string;
  line: number;
  /** PC − function entry, the `+0x…` Go prints after file:line; undefined for inlined frames and when unknown. */
  entryOffset?: number;
  /** True for a call inlined into the frame that follows it (Go prints its arguments as `(...)`). */
  inlined?: boolean;
  /** Compiler-generated (a method wrapper, a `go` statement's wrapper): Go's traceback leaves these out. */
  wrapper?: boolean;
  /** The argument text between the parentheses as Go printed it ("0xc000012000, 0x1"), when known. */
  args?: string;
  /**
   * The PC runtime.Callers would record for this frame (what a debug=1 profile prints and groups by): the frame's
   * return address; for an inlined call the virtual PC Go makes for it (its inline mark + 1). From a live read
   * (absolute, load bias included), or from a GOTRACEBACK=system text (`pc=` of physical frames only).
   */
  pc?: number;
  /** The entry address of the function whose code the frame is in (for an inlined call, the one it is inlined in), with `pc`. */
  entry?: number;
}

/** The `created by` lines: the go statement that started the goroutine. */
export interface GoroutineCreator {
  function: string;
  file: string;
  line: number;
  entryOffset?: number;
  /** The creating goroutine (Go 1.21+ prints "created by F in goroutine N"). */
  goid?: number;
}

export interface Goroutine {
  id: number;
  state: GoroutineState;
  /**
   * What Go prints first in the brackets: the wait reason of a waiting goroutine ("chan receive", "select",
   * "IO wait", "sync.Mutex.Lock"), otherwise the state ("running", "runnable", "syscall").
   */
  status: string;
  /** The wait reason alone (waiting goroutines), as runtime2.go's waitReasonStrings spell it. */
  waitReason?: string;
  /** Whole minutes waited (Go prints ", N minutes" when ≥ 1); undefined when unknown or under a minute. */
  waitMinutes?: number;
  lockedToThread?: boolean;
  /** In a testing/synctest bubble (Go 1.25+ prints ", synctest bubble N"): the bubble's id. */
  bubble?: number;
  /** Durably blocked inside its bubble (Go prints " (durable)" after the status). */
  durable?: boolean;
  /** The M (thread) running it, as GOTRACEBACK=system headers print it from Go 1.22 ("m=3"; absent for "m=nil"). */
  m?: number;
  /** Innermost first, inlined calls expanded (each inlined call one frame, before the frame it is inlined in). */
  frames: GoroutineFrame[];
  /** Go stops at 100 frames and prints "...additional frames elided..."; so do we. */
  framesElided?: boolean;
  /**
   * Where a parsed dump left frames out: before frames[at] (Go 1.21+ prints the innermost 50 and the outermost 50
   * around "...N frames elided...", N the count), or at the end (older releases: "...additional frames elided...").
   */
  elided?: { at: number; count?: number };
  createdBy?: GoroutineCreator;
  /**
   * A runtime goroutine (GC workers, the finalizer goroutine while idle, …): started by a runtime function other
   * than runtime.main. runtime.Stack(all) and debug=2 leave these out; GOTRACEBACK=system and SIGQUIT show them.
   */
  system?: boolean;
  /** The goroutine's pprof labels (pprof.Do / SetGoroutineLabels), in the order the program holds them. */
  labels?: Record<string, string>;
  /**
   * The physical frames with their addresses, innermost first, when the dump was read from a live process (a
   * parsed text dump has none). The pprof goroutine profile uses these as its locations.
   */
  locations?: ResolvedLocation[];
  /**
   * The raw physical stack of a live goroutine, innermost first, as StackResolver.resolveUser takes it (the parked
   * PC, then return addresses): kept when the reader runs apart from the resolver (see locations.ts).
   */
  stack?: number[];
  /** What could not be read for this goroutine (its stack may be partial); the reader's word, never a guess. */
  error?: string;
}

export interface GoroutineDump {
  /** The process, when the dump was read from one. */
  pid?: number;
  /** The program's Go version ("go1.26.1"), when known: what Go itself would print differs by release. */
  goVersion?: string;
  /** When the snapshot was taken or the dump parsed (ms since the epoch). */
  takenAtMs?: number;
  goroutines: Goroutine[];
  /**
   * A dump parsed from text: the traceback level Go printed it at. Its goroutines and frames are already the ones
   * Go chose to show (and its elisions are Go's), so writing it at that level changes nothing.
   */
  printed?: 'user' | 'system';
  /** Problems that concern the whole dump: unreadable goroutines skipped, a truncated text, lines not understood. */
  warnings: string[];
}
