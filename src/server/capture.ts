// Profile captures: each request subscribes to the shared sampler for its window and ends early when the client
// goes away or the agent shuts down. A bounded number run at once; the rest are told to come back (429).

import { RawSample, SampleFilter, SampleSource } from '../sampler/types';

/** Where a capture's samples go as they arrive (symbolizing then, while the processes most likely still run). */
export interface SampleSink {
  add(batch: readonly RawSample[]): void;
}

export interface CaptureWindow {
  /** Wall-clock start and end (ns since the epoch), for pprof's time_nanos/duration_nanos. */
  startUnixNs: bigint;
  endUnixNs: bigint;
  samples: number;
  /** Why the window ended: its time was up, the client left, or the agent is shutting down. */
  ended: 'elapsed' | 'aborted' | 'shutdown';
}

export class TooManyCaptures extends Error {}

export class CaptureManager {
  private readonly running = new Set<AbortController>();
  private closing = false;

  constructor(
    private readonly source: SampleSource,
    readonly maxConcurrent: number,
  ) {}

  get inFlight(): number {
    return this.running.size;
  }

  /** Collects samples for `seconds` (or until `signal` aborts). Throws TooManyCaptures past the limit. */
  async capture(seconds: number, filter: SampleFilter, signal: AbortSignal, sink: SampleSink, startUnixNs: bigint): Promise<CaptureWindow> {
    if (this.closing) throw new TooManyCaptures('the agent is shutting down');
    if (this.running.size >= this.maxConcurrent) throw new TooManyCaptures(`${this.running.size} profiles are already being captured (the limit is ${this.maxConcurrent})`);
    const own = new AbortController();
    this.running.add(own);
    const t0 = process.hrtime.bigint();
    let samples = 0;
    const unsubscribe = this.source.subscribe(filter, (batch) => {
      samples += batch.length;
      sink.add(batch);
    });
    let ended: CaptureWindow['ended'] = 'elapsed';
    try {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, seconds * 1000);
        const stop = (why: CaptureWindow['ended']) => () => {
          ended = why;
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
    return { startUnixNs, endUnixNs: startUnixNs + BigInt(Math.round(Number(process.hrtime.bigint() - t0))), samples, ended };
  }

  /** Ends every capture now (their requests get what was collected so far) and refuses new ones. */
  shutdown(): void {
    this.closing = true;
    for (const c of this.running) c.abort();
  }
}
