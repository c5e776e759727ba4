// What the sampler hands to the rest of the agent: one record per perf-event sample (CPU) or per sent off-CPU
// interval, already unwound in BPF. The symbolizer and the profile builder consume this and nothing else from it.

export interface RawSample {
  /** Thread group (process) ID and thread ID, in the agent's (root) PID namespace. */
  pid: number;
  tid: number;
  cpu: number;
  /** The thread's comm (task name, at most 15 bytes). */
  comm: string;
  /** Goroutine ID running on the thread when sampled; undefined for non-Go threads or when unknown. */
  goid: number | undefined;
  /** Kernel timestamp (CLOCK_MONOTONIC ns) of the sample (of the first of them, with count). */
  timeNs: bigint;
  /**
   * CPU samples this record stands for (undefined = 1): the same thread, comm, goroutine, stacks and labels sampled
   * again before the agent read the ring (at most a read interval apart); cpu and timeNs are the first one's.
   */
  count?: number;
  /**
   * User stack as runtime addresses, innermost first. userStack[0] is the sampled PC itself; every later entry is
   * a return address (symbolize it at address - 1, as runtime.CallersFrames does).
   */
  userStack: number[];
  /**
   * userStack[1] is the word at the leaf's SP, not a frame the walk confirmed: the BPF side had no unwind table to
   * tell whether the leaf had set up its frame. It is the leaf's caller exactly where the leaf's SP delta is 0; the
   * resolver keeps it there and drops it elsewhere (StackResolver.resolveUser's spCaller).
   */
  spCaller?: boolean;
  /** Kernel stack, innermost first, same convention as userStack (empty when the sample hit user mode). */
  kernelStack: number[];
  /** The goroutine's pprof labels (pprof.Do, SetGoroutineLabels), read with goid; undefined = none. */
  labels?: PprofLabels;
  /** Off-CPU records only: the time off the CPU this record stands for, and why the thread left it. */
  offCpu?: OffCpuInterval;
}

/** The samples a batch stands for (records with a count stand for that many). */
export function sampleCount(batch: readonly RawSample[]): number {
  let n = 0;
  for (const s of batch) n += s.count ?? 1;
  return n;
}

/** A goroutine's pprof labels. Records with the same labels share one object. */
export interface PprofLabels {
  /** Sorted by key, each key once. */
  readonly pairs: ReadonlyArray<readonly [key: string, value: string]>;
  /** Equal for equal label sets (for keys and comparisons). */
  readonly id: string;
}

/** blocked: the thread gave up the CPU (sleep, I/O, a lock); runnable: it was preempted and waited to run again. */
export type OffCpuState = 'blocked' | 'runnable';

export interface OffCpuInterval {
  /** Off-CPU nanoseconds this record stands for (its weight; short intervals are sampled, see bpf/profile.h). */
  weightNs: number;
  /** When the thread left the CPU (CLOCK_MONOTONIC ns); timeNs is when it ran again. */
  startNs: bigint;
  state: OffCpuState;
}

/** cpu: perf-event samples of running threads; offcpu: intervals threads spent off the CPU. */
export type SampleKind = 'cpu' | 'offcpu';

export interface SampleFilter {
  /** Only this process (tgid); undefined = every process on the node. */
  pid?: number;
  /** Which records (default 'cpu'). */
  kind?: SampleKind;
}

/** A running sampler that several profile requests share. */
export interface SampleSource {
  /**
   * Starts delivering batches of samples matching the filter until the returned function is called. Off-CPU
   * intervals that began before the call are cut to start at it.
   */
  subscribe(filter: SampleFilter, onBatch: (batch: RawSample[]) => void): () => void;
  /** Sampling frequency in Hz (the pprof period is 1e9 / hz nanoseconds). */
  readonly hz: number;
  /** Off-CPU sampling period in ns: shorter intervals are sampled, longer ones all sent (bpf/profile.h). */
  readonly offCpuPeriodNs: number;
  /** True while the BPF programs are loaded and attached. */
  readonly attached: boolean;
  /** Has the samples gathered so far delivered now rather than at the next timed read (a window has ended). */
  readNow?(): void;
}
