// What the CPU sampler hands to the rest of the agent: one record per perf-event sample, already unwound in BPF.
// The symbolizer and the profile builder consume this and nothing else from the sampler.

export interface RawSample {
  /** Thread group (process) ID and thread ID, in the agent's (root) PID namespace. */
  pid: number;
  tid: number;
  cpu: number;
  /** The thread's comm (task name, at most 15 bytes). */
  comm: string;
  /** Goroutine ID running on the thread when sampled; undefined for non-Go threads or when unknown. */
  goid: number | undefined;
  /** Kernel timestamp (CLOCK_MONOTONIC ns) of the sample. */
  timeNs: bigint;
  /**
   * User stack as runtime addresses, innermost first. userStack[0] is the sampled PC itself; every later entry is
   * a return address (symbolize it at address - 1, as runtime.CallersFrames does).
   */
  userStack: number[];
  /** Kernel stack, innermost first, same convention as userStack (empty when the sample hit user mode). */
  kernelStack: number[];
}

export interface SampleFilter {
  /** Only this process (tgid); undefined = every process on the node. */
  pid?: number;
}

/** A running sampler that several profile requests share. */
export interface SampleSource {
  /** Starts delivering batches of samples matching the filter until the returned function is called. */
  subscribe(filter: SampleFilter, onBatch: (batch: RawSample[]) => void): () => void;
  /** Sampling frequency in Hz (the pprof period is 1e9 / hz nanoseconds). */
  readonly hz: number;
  /** True while the BPF programs are loaded and attached. */
  readonly attached: boolean;
}
