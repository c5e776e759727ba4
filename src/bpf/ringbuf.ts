// Records of a BPF ring buffer, read by a native thread (ring_buffer__consume off the JS thread)
// and delivered in batches: to a callback, or through async iteration.
//
//   const reader = obj.ringBuffer('events', { onBatch: (records) => … });
//   …
//   const stats = await reader.stop();   // resolves after the last batch was delivered
//
//   for await (const batch of obj.ringBuffer('events')) { … }   // ends at stop()/close()
import type { NativeBpfObject, NativeRingStats } from './native';

export interface RingBufferOptions {
  /**
   * Receives each batch (views into one Buffer: copy a record to keep it past the callback cheaply). With
   * coalesceSamples, record i stands for counts[i] records read (counts undefined: one each).
   */
  onBatch?: (records: Buffer[], counts?: Uint32Array) => void;
  /** Records per batch at most (default 4096). */
  maxBatchRecords?: number;
  /** Bytes read but not yet delivered to JS above which records are dropped (default 64 MiB). */
  maxQueuedBytes?: number;
  /**
   * How often the ring is read (default 100 ms; less when, at the rate last seen, the ring would be half full
   * sooner). A record its producer sent with a wakeup (not BPF_RB_NO_WAKEUP) is read at once, and readNow()
   * has what gathered so far read at once.
   */
  minIntervalMs?: number;
  /**
   * After a read a producer's wakeup caused, the next read comes at most this much later (default: the interval as
   * usual), so that records sent right after it without a wakeup of their own do not wait the whole interval.
   */
  followUpMs?: number;
  /**
   * CPU sample records (bpf/profile.h's struct sample_record) that differ only in cpu and time_ns are delivered
   * once per batch, with a count (native/sample_coalescer.h); the first one's cpu and time_ns are kept. Exec and
   * exit records end a run of merges. Needs onBatch.
   */
  coalesceSamples?: boolean;
  /** Keep the event loop alive while reading (default true). */
  ref?: boolean;
  /** Without onBatch: batches buffered for the iterator before further ones are dropped (default 1024). */
  maxPendingBatches?: number;
}

export interface RingBufferStats {
  /** Records read from the kernel. */
  records: number;
  /** Records handed to JS (callback or iterator). */
  delivered: number;
  /** JS deliveries. */
  batches: number;
  bytes: number;
  /** Records dropped because JS fell behind (native queue or iterator buffer full). */
  dropped: number;
  /** Records folded into an earlier one of their batch (coalesceSamples): records = delivered + coalesced + dropped. */
  coalesced: number;
  running: boolean;
  /** errno code if the polling thread stopped on an error. */
  error?: string;
}

export class RingBufferReader implements AsyncIterable<Buffer[]> {
  /** Resolves once the end of the stream (after stop() or close()) has been delivered. */
  readonly done: Promise<void>;
  private readonly id: number;
  private final: NativeRingStats | undefined;
  private delivered = 0;
  private batches = 0;
  private jsDropped = 0;
  private ended = false;
  private resolveDone!: () => void;
  private readonly pending: Buffer[][] = [];
  private readonly waiters: Array<(r: IteratorResult<Buffer[]>) => void> = [];
  private iterating = false;

  constructor(
    private readonly nat: NativeBpfObject,
    mapIndex: number,
    readonly mapName: string,
    private readonly options: RingBufferOptions,
    private readonly onEnd: () => void,
  ) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    if (options.coalesceSamples && options.onBatch === undefined) {
      throw new Error(`ring buffer ${mapName}: coalesceSamples needs onBatch (the counts come with each batch)`);
    }
    const native: { maxBatchRecords?: number; maxQueuedBytes?: number; minIntervalMs?: number; followUpMs?: number; coalesceSamples?: boolean } = {};
    if (options.coalesceSamples) native.coalesceSamples = true;
    if (options.minIntervalMs !== undefined) native.minIntervalMs = options.minIntervalMs;
    if (options.followUpMs !== undefined) native.followUpMs = options.followUpMs;
    if (options.maxBatchRecords !== undefined) native.maxBatchRecords = options.maxBatchRecords;
    if (options.maxQueuedBytes !== undefined) native.maxQueuedBytes = options.maxQueuedBytes;
    this.id = nat.ringBufferStart(mapIndex, (data, offsets, counts) => this.deliver(data, offsets, counts), native);
    if (options.ref === false) nat.ringBufferRef(this.id, false);
  }

  /** Stops the thread; the promise resolves with final stats after the last batch arrived. */
  async stop(): Promise<RingBufferStats> {
    this.stopNow();
    await this.done;
    return this.stats();
  }

  /** Stops the thread synchronously (batches already read still arrive; see `done`). */
  stopNow(): void {
    if (this.final !== undefined || this.ended) return;
    this.final = this.nat.state().closed ? undefined : this.nat.ringBufferStop(this.id);
    this.final ??= { records: 0, delivered: 0, batches: 0, bytes: 0, dropped: 0, coalesced: 0, queuedBytes: 0, running: false };
  }

  stats(): RingBufferStats {
    const n = this.final ?? this.nat.ringBufferStats(this.id);
    const s: RingBufferStats = {
      records: n?.records ?? 0,
      delivered: this.delivered,
      batches: this.batches,
      bytes: n?.bytes ?? 0,
      dropped: (n?.dropped ?? 0) + this.jsDropped,
      coalesced: n?.coalesced ?? 0,
      running: n?.running ?? false,
    };
    if (n?.error !== undefined) s.error = n.error;
    return s;
  }

  /** Has the thread read the ring at once: the records gathered so far arrive without waiting for the timed read. */
  readNow(): void {
    if (!this.isStopped()) this.nat.ringBufferReadNow(this.id);
  }

  /** Let the process exit while the reader runs (or not: ref()). */
  unref(): this {
    if (!this.isStopped()) this.nat.ringBufferRef(this.id, false);
    return this;
  }

  ref(): this {
    if (!this.isStopped()) this.nat.ringBufferRef(this.id, true);
    return this;
  }

  /** Called by BpfObject.close() before it closes the native object. */
  markClosed(): void {
    this.stopNow();
  }

  async *records(): AsyncIterableIterator<Buffer> {
    for await (const batch of this) yield* batch;
  }

  [Symbol.asyncIterator](): AsyncIterator<Buffer[]> {
    if (this.options.onBatch !== undefined) {
      throw new Error(`ring buffer ${this.mapName}: batches go to onBatch; iterate a reader opened without it`);
    }
    if (this.iterating) throw new Error(`ring buffer ${this.mapName}: already being iterated`);
    this.iterating = true;
    return {
      next: (): Promise<IteratorResult<Buffer[]>> => {
        const batch = this.pending.shift();
        if (batch !== undefined) return Promise.resolve({ value: batch, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.waiters.push(resolve));
      },
      return: async (): Promise<IteratorResult<Buffer[]>> => {
        await this.stop();
        this.pending.length = 0;
        return { value: undefined, done: true };
      },
    };
  }

  private isStopped(): boolean {
    return this.final !== undefined || this.ended;
  }

  private deliver(data: Buffer | null, offsets: Uint32Array | null, counts?: Uint32Array): void {
    if (data === null || offsets === null) {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
      this.onEnd();
      this.resolveDone();
      return;
    }
    const n = offsets.length - 1;
    const records: Buffer[] = new Array<Buffer>(n);
    for (let i = 0; i < n; i++) records[i] = data.subarray(offsets[i] as number, offsets[i + 1] as number);
    this.delivered += n;
    this.batches++;
    if (this.options.onBatch !== undefined) {
      this.options.onBatch(records, counts);
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      waiter({ value: records, done: false });
    } else if (this.pending.length < (this.options.maxPendingBatches ?? 1024)) {
      this.pending.push(records);
    } else {
      this.jsDropped += n;
      this.delivered -= n;
    }
  }
}
