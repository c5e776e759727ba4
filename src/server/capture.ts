// Profile captures: each request subscribes to the shared sampler for its window and ends early when the client
// goes away or the agent shuts down. A bounded number run at once; the rest are told to come back (429).

import { RawSample, SampleSource } from '../sampler/types';

export interface CaptureWindow {
  /** Wall-clock start (ns since the epoch) and actual duration, for pprof's time_nanos/duration_nanos. */
  startUnixNs: bigint;
  durationNs: number;
  samples: RawSample[];
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
  async capture(seconds: number, pid: number | undefined, signal: AbortSignal): Promise<CaptureWindow> {
    if (this.closing) throw new TooManyCaptures('the agent is shutting down');
    if (this.running.size >= this.maxConcurrent) throw new TooManyCaptures(`${this.running.size} profiles are already being captured (the limit is ${this.maxConcurrent})`);
    const own = new AbortController();
    this.running.add(own);
    const samples: RawSample[] = [];
    const startUnixNs = BigInt(Date.now()) * 1_000_000n;
    const t0 = process.hrtime.bigint();
    const unsubscribe = this.source.subscribe(pid === undefined ? {} : { pid }, (batch) => {
      for (const s of batch) samples.push(s);
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
    return { startUnixNs, durationNs: Number(process.hrtime.bigint() - t0), samples, ended };
  }

  /** Ends every capture now (their requests get what was collected so far) and refuses new ones. */
  shutdown(): void {
    this.closing = true;
    for (const c of this.running) c.abort();
  }
}
