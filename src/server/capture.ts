// Profile captures: each request subscribes to the shared sampler for its window and ends early when the client
// goes away or the agent shuts down. A bounded number run at once, and at most a few of them node-wide off-CPU
// (each costs every context switch on the node a stack read); the rest are told to come back (429).
//
// The window is kept by the kernel's clock, not by when timers fire: records are in it when their timestamp
// (CLOCK_MONOTONIC, as bpf_ktime_get_ns) falls in [start, start + seconds]. A busy event loop then delays the
// answer, never the window: after its end the capture waits `settleMs` for records still on their way.

import { RawSample, sampleCount, SampleFilter, SampleKind, SampleSource } from '../sampler/types';
import type { Profile } from '../profile/pprof';

/** Where a capture's samples go as they arrive (symbolizing then, while the processes most likely still run). */
export interface SampleSink {
  add(batch: readonly RawSample[]): void;
}

/**
 * A profile in the making: takes samples as they come, then encodes the finished window (gzipped pprof).
 * `built`, when the maker keeps it, is the Profile its last finish encoded (so nobody has to decode it again).
 */
export interface ProfileInMaking extends SampleSink {
  finish(window: CaptureWindow): Promise<Buffer> | Buffer;
  built?(): Profile | undefined;
}

export type NewProfile = (kind: SampleKind, startUnixNs: bigint) => ProfileInMaking;

export interface CaptureWindow {
  /** Wall-clock start and end (ns since the epoch), for pprof's time_nanos/duration_nanos. */
  startUnixNs: bigint;
  endUnixNs: bigint;
  samples: number;
  /** Why the window ended: its time was up, the client left, or the agent is shutting down. */
  ended: 'elapsed' | 'aborted' | 'shutdown';
}

export class TooManyCaptures extends Error {}

export interface CaptureLimits {
  /** Captures at once, of any kind (`--max-profiles`). */
  total: number;
  /** Off-CPU captures without a pid at once (`--max-node-offcpu-profiles`): pod selections are node-wide in BPF. */
  nodeWideOffCpu: number;
}

const isNodeWideOffCpu = (f: SampleFilter): boolean => f.kind === 'offcpu' && f.pid === undefined;

export interface CaptureOptions {
  /** How long after a window's end records from inside it are still taken (default 300 ms). */
  settleMs?: number;
}

export class CaptureManager {
  private readonly running = new Map<AbortController, SampleFilter>();
  private closing = false;
  private readonly settleMs: number;

  constructor(
    private readonly source: SampleSource,
    readonly limits: CaptureLimits,
    options: CaptureOptions = {},
  ) {
    this.settleMs = options.settleMs ?? 300;
  }

  get inFlight(): number {
    return this.running.size;
  }

  /** Why these captures could not all start now (a message for a 429), or undefined when they can. */
  refusal(filters: readonly SampleFilter[]): string | undefined {
    if (this.closing) return 'the agent is shutting down';
    const { total, nodeWideOffCpu } = this.limits;
    if (this.running.size + filters.length > total) {
      return `${this.running.size} profiles are already being captured (the limit is ${total}${filters.length > 1 ? `; this needs ${filters.length} at once` : ''})`;
    }
    const nodeOff = [...this.running.values(), ...filters].filter(isNodeWideOffCpu).length;
    if (filters.some(isNodeWideOffCpu) && nodeOff > nodeWideOffCpu) {
      return `a node-wide off-CPU profile is already being captured (the limit is ${nodeWideOffCpu}, --max-node-offcpu-profiles): give a pid, or try again when it ends`;
    }
    return undefined;
  }

  /** Collects samples for `seconds` (or until `signal` aborts). Throws TooManyCaptures past the limits. */
  async capture(seconds: number, filter: SampleFilter, signal: AbortSignal, sink: SampleSink, startUnixNs: bigint): Promise<CaptureWindow> {
    const refused = this.refusal([filter]);
    if (refused) throw new TooManyCaptures(refused);
    const own = new AbortController();
    this.running.set(own, filter);
    const start = process.hrtime.bigint();
    let end = start + BigInt(Math.round(seconds * 1e9));
    let samples = 0;
    let unsubscribe: () => void;
    try {
      unsubscribe = this.source.subscribe(filter, (batch) => {
        let inWindow = batch;
        if (batch.some((s) => s.timeNs < start || s.timeNs > end)) inWindow = batch.filter((s) => s.timeNs >= start && s.timeNs <= end);
        if (inWindow.length === 0) return;
        samples += sampleCount(inWindow);
        sink.add(inWindow);
      });
    } catch (e) {
      this.running.delete(own); // e.g. a profile kind the kernel refused
      throw e;
    }
    let ended: CaptureWindow['ended'] = 'elapsed';
    try {
      await new Promise<void>((resolve) => {
        // At the window's end the ring is read at once; records still on their way get settleMs.
        let timer = setTimeout(() => {
          this.source.readNow?.();
          timer = setTimeout(resolve, this.settleMs);
        }, seconds * 1000);
        const stop = (why: CaptureWindow['ended']) => () => {
          ended = why;
          const now = process.hrtime.bigint();
          if (now < end) end = now;
          clearTimeout(timer);
          resolve();
        };
        signal.addEventListener('abort', stop('aborted'), { once: true });
        own.signal.addEventListener('abort', stop('shutdown'), { once: true });
        if (signal.aborted) stop('aborted')();
      });
    } finally {
      unsubscribe();
      this.running.delete(own);
    }
    return { startUnixNs, endUnixNs: startUnixNs + (end - start), samples, ended };
  }

  /** Ends every capture now (their requests get what was collected so far) and refuses new ones. */
  shutdown(): void {
    this.closing = true;
    for (const c of this.running.keys()) c.abort();
  }
}
