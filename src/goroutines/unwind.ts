// A parked goroutine's stack, unwound the way Go's own traceback does it: from the saved PC and SP, each frame's
// size comes from the function's pcsp table (frame pointers are not needed, so this works for every release and
// for frames that keep none), the return address sits just above the frame (amd64), and the walk ends at a
// TopFrame function (runtime.goexit). Every read is bounded by the goroutine's own stack.

import type { GoBinary } from '../gosym/binary';
import { FUNC_FLAG_SPWRITE, FUNC_FLAG_TOPFRAME } from '../gosym/pclntab';

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

// Where every stack ends (their TopFrame flag is only recorded from Go 1.16 on).
const TOP_FRAME_FUNCS = new Set(['runtime.goexit', 'runtime.mstart', 'runtime.rt0_go']);

// Functions entered by a trap rather than a call: the frame above them was interrupted at an exact PC.
const TRAP_FUNCS = new Set(['runtime.sigpanic', 'runtime.asyncPreempt']);

/**
 * Unwinds from (pc, sp) — a goroutine's g.sched or syscall PC/SP, both runtime addresses. `bias` maps runtime to
 * link-time addresses. `firstExact` says whether pc itself is exact (a goroutine that never ran sits at its
 * function's entry) — otherwise it is a return address like the rest.
 */
export function unwindGoroutine(bin: GoBinary, bias: number, pc: number, sp: number, stackHi: number, words: StackWords, maxFrames: number): Unwound {
  const frames: PhysicalFrame[] = [];
  let exact = false;
  for (;;) {
    if (frames.length >= maxFrames) return { frames, elided: true };
    const lpc = pc - bias;
    const f = bin.funcAt(lpc);
    if (!f) return { frames, elided: false, error: `pc 0x${pc.toString(16)} is not in the Go function table` };
    frames.push({ pc, exact: exact || lpc === f.entry });
    const flag = bin.pcln.funcFlag(f);
    if (flag & FUNC_FLAG_TOPFRAME || TOP_FRAME_FUNCS.has(bin.funcName(f))) return { frames, elided: false };
    if (flag & FUNC_FLAG_SPWRITE && frames.length > 1) {
      return { frames, elided: false, error: `${bin.funcName(f)} switches stacks; the walk stops there` };
    }
    const delta = bin.pcln.spDelta(f, lpc);
    if (delta < 0) return { frames, elided: false, error: `no frame size for ${bin.funcName(f)} at 0x${pc.toString(16)}` };
    const retAt = sp + delta;
    if (retAt + 8 > stackHi) return { frames, elided: false, error: `frame of ${bin.funcName(f)} runs past the stack's top` };
    const ret = words(retAt);
    if (ret === undefined) return { frames, elided: false, error: `stack word at 0x${retAt.toString(16)} unreadable` };
    if (ret === 0) return { frames, elided: false };
    exact = TRAP_FUNCS.has(bin.funcName(f));
    sp = retAt + 8;
    pc = ret;
  }
}
