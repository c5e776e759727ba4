// Runtime functions every unwinder treats specially, named as Go's own traceback names them (runtime/traceback.go).
// By name: the pclntab flags them only from some release on, and their funcIDs differ between releases.

/** Where every stack ends (the TopFrame flag, recorded in the pclntab only from Go 1.16 on). */
export const TOP_FRAME_FUNCS: ReadonlySet<string> = new Set(['runtime.goexit', 'runtime.mstart', 'runtime.rt0_go', 'runtime.sigtramp']);

/**
 * The injected calls (isInjectedCall): a signal handler makes the goroutine call them, pushing the interrupted PC as
 * their return address, so the frame above one was stopped at that exact PC, not at a call. sigpanic0 (amd64, Go 1.17
 * on) is where the handler sends a fault: it loads g and jumps to sigpanic. debugCallV1 before Go 1.17, V2 since.
 */
export const INJECTED_CALL_FUNCS: readonly string[] = ['runtime.asyncPreempt', 'runtime.sigpanic', 'runtime.sigpanic0', 'runtime.debugCallV2', 'runtime.debugCallV1'];
