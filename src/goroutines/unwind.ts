// A parked goroutine's stack, unwound the way Go's own traceback does it: from the saved PC and SP, each frame's
// size comes from the function's pcsp table (frame pointers are not needed, so this works for every release and
// for frames that keep none), the return address sits just above the frame (amd64), and the walk ends at a
// TopFrame function (runtime.goexit). Every read is bounded by the goroutine's own stack.

import type { GoBinary } from '../gosym/binary';
import { FUNC_FLAG_SPWRITE, FUNC_FLAG_TOPFRAME } from '../gosym/pclntab';
import { INJECTED_CALL_FUNCS, TOP_FRAME_FUNCS } from '../gosym/runtime-frames';

/** One physical frame: its PC and whether the PC is exact (else a return address: look up pc − 1). */
export interface PhysicalFrame {
  pc: number;
  exact: boolean;
}

export interface Unwound {
  frames: PhysicalFrame[];
  /** The walk stopped early: too many frames (the rest elided). */
  elided: boolean;
  /** Why the walk stopped before a TopFrame function, when it did (the frames so far are right). */
  error?: string;
}

/** Reads 8-byte words of the goroutine's stack; undefined outside it or when unreadable. */
export type StackWords = (address: number) => number | undefined;

/** What the walk needs to know at one link-time PC. */
export interface FrameInfo {
  name: string;
  entry: number;
  /** Bytes below the function's entry SP at this PC (pcsp); -1 when unknown. */
  spDelta: number;
  /** The stack ends here (runtime.goexit, mstart, rt0_go). */
  top: boolean;
  /** The function rewrites SP (stack switches): nothing above it can be trusted. */
  spWrite: boolean;
  /** Entered by a trap, not a call: the frame above it was interrupted at an exact PC. */
  trap: boolean;
}

const TRAP_FUNCS: ReadonlySet<string> = new Set(INJECTED_CALL_FUNCS);
/** Goroutines of one program share most of their PCs: a bounded cache of what the tables say about each. */
const FRAME_INFO_CACHE = 1 << 16;

/** FrameInfo by link-time PC, cached (decoding pcsp per frame of 100,000 goroutines would dominate a snapshot). */
export function frameInfoLookup(bin: GoBinary): (lpc: number) => FrameInfo | undefined {
  const cache = new Map<number, FrameInfo | undefined>();
  return (lpc) => {
    if (cache.has(lpc)) return cache.get(lpc);
    const f = bin.funcAt(lpc);
    let info: FrameInfo | undefined;
    if (f) {
      const name = bin.funcName(f);
      const flag = bin.pcln.funcFlag(f);
      info = {
        name,
        entry: f.entry,
        spDelta: bin.pcln.spDelta(f, lpc),
        top: (flag & FUNC_FLAG_TOPFRAME) !== 0 || TOP_FRAME_FUNCS.has(name),
        spWrite: (flag & FUNC_FLAG_SPWRITE) !== 0,
        trap: TRAP_FUNCS.has(name),
      };
    }
    if (cache.size >= FRAME_INFO_CACHE) cache.clear();
    cache.set(lpc, info);
    return info;
  };
}

/**
 * Unwinds from (pc, sp) — a goroutine's g.sched or syscall PC/SP, both runtime addresses. `bias` maps runtime to
 * link-time addresses. The first PC is exact when it is a function's entry (a goroutine that never ran), otherwise
 * a return address like the rest.
 */
export function unwindGoroutine(
  info: (lpc: number) => FrameInfo | undefined,
  bias: number,
  pc: number,
  sp: number,
  stackHi: number,
  words: StackWords,
  maxFrames: number,
): Unwound {
  const frames: PhysicalFrame[] = [];
  let exact = false;
  for (;;) {
    if (frames.length >= maxFrames) return { frames, elided: true };
    const lpc = pc - bias;
    const f = info(lpc);
    if (!f) return { frames, elided: false, error: `pc 0x${pc.toString(16)} is not in the Go function table` };
    frames.push({ pc, exact: exact || lpc === f.entry });
    if (f.top) return { frames, elided: false };
    if (f.spWrite && frames.length > 1) return { frames, elided: false, error: `${f.name} switches stacks; the walk stops there` };
    if (f.spDelta < 0) return { frames, elided: false, error: `no frame size for ${f.name} at 0x${pc.toString(16)}` };
    const retAt = sp + f.spDelta;
    if (retAt + 8 > stackHi) return { frames, elided: false, error: `frame of ${f.name} runs past the stack's top` };
    const ret = words(retAt);
    if (ret === undefined) return { frames, elided: false, error: `stack word at 0x${retAt.toString(16)} unreadable` };
    if (ret === 0) return { frames, elided: false };
    exact = f.trap;
    sp = retAt + 8;
    pc = ret;
  }
}
