// A worker thread that runs jobs one at a time, for work the agent's event loop must not wait on (reading a
// process's goroutines, parsing a 100 MB binary): a bounded queue, a bounded heap and a time limit per job. A job
// that runs over its time or heap ends the thread (it is started again for the next job) and fails with a
// JobThreadError; the thread is started on the first job and does not keep the agent alive when idle.
//
//   const jobs = new JobThread<Req, Res>({ script: path.join(__dirname, 'my-worker.js'), ... });
//   const res = await jobs.run(req);          // my-worker.ts: serveJobs((req) => ({ result: work(req) }))
//
// The worker side is serveJobs() (job-worker.ts).

import { Worker } from 'node:worker_threads';
import type { JobEnvelope, JobReply } from './job-worker';

export type JobFailure = 'timeout' | 'memory' | 'crashed' | 'closed' | 'busy';

/** Why a job did not run to its end, apart from errors the job itself reported. */
export class JobThreadError extends Error {
  override name = 'JobThreadError';
  constructor(readonly kind: JobFailure, message: string) {
    super(message);
  }
}

export interface JobThreadOptions {
  /** The worker's compiled script (it calls serveJobs). */
  script: string;
  /** What the thread does, for messages ("the goroutine reader"). */
  name: string;
  /** Heap of the thread (V8 old generation); a job that needs more fails with kind 'memory'. */
  maxHeapMiB: number;
  /** A job that takes longer fails with kind 'timeout' and the thread is ended. */
  timeoutMs: number;
  /** Jobs waiting behind the one running; more fail at once with kind 'busy'. Default unbounded. */
  maxQueued?: number;
  /** The worker's error payload (whatever the worker's serveJobs sends) as the Error a job is rejected with. */
  reviveError?: (payload: unknown) => Error;
  /** An idle thread is ended after this long (its heap goes with it); default: kept until close(). */
  idleMs?: number;
  /** Called once a thread has ended (idle, failed or closed), e.g. to hand freed memory back to the kernel. */
  onThreadEnd?: () => void;
}

interface Pending<Req, Res> {
  envelope: JobEnvelope<Req>;
  resolve(result: Res): void;
  reject(e: Error): void;
}

export class JobThread<Req, Res> {
  private worker: Worker | undefined;
  private readonly queue: Array<Pending<Req, Res>> = [];
  private current: Pending<Req, Res> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private closed = false;

  constructor(private readonly opts: JobThreadOptions) {}

  /** Jobs waiting, not counting the one running. */
  get queued(): number {
    return this.queue.length;
  }

  /** Queues a job; `first`: ahead of the jobs waiting (not of the one running), e.g. one a process waits for. */
  run(request: Req, opts: { first?: boolean } = {}): Promise<Res> {
    if (this.closed) return Promise.reject(new JobThreadError('closed', `${this.opts.name} is shut down`));
    const max = this.opts.maxQueued;
    if (max !== undefined && this.queue.length >= max) {
      return Promise.reject(new JobThreadError('busy', `${this.queue.length} jobs already wait for ${this.opts.name}`));
    }
    return new Promise<Res>((resolve, reject) => {
      const job = { envelope: { id: this.nextId++, request }, resolve, reject };
      if (opts.first) this.queue.unshift(job);
      else this.queue.push(job);
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    const why = new JobThreadError('closed', `${this.opts.name} is shut down`);
    for (const p of this.queue.splice(0)) p.reject(why);
    await this.stopWorker(why);
  }

  private pump(): void {
    if (this.current) return;
    if (this.queue.length === 0) return this.idle();
    clearTimeout(this.idleTimer);
    const p = (this.current = this.queue.shift()!);
    const worker = this.ensureWorker();
    this.timer = setTimeout(() => {
      void this.stopWorker(new JobThreadError('timeout', `took over ${this.opts.timeoutMs / 1000} s and was abandoned`));
    }, this.opts.timeoutMs);
    try {
      worker.postMessage(p.envelope);
    } catch (e) {
      this.fail(e as Error);
    }
  }

  /** Nothing to do: end the thread after idleMs, if asked to. */
  private idle(): void {
    const ms = this.opts.idleMs;
    if (ms === undefined || this.worker === undefined || this.closed) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.current === undefined && this.queue.length === 0) void this.stopWorker(new JobThreadError('closed', 'idle'));
    }, ms);
    this.idleTimer.unref();
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(this.opts.script, { resourceLimits: { maxOldGenerationSizeMb: this.opts.maxHeapMiB } });
    worker.unref(); // an idle thread does not keep the agent alive
    worker.on('message', (reply: JobReply<Res>) => this.settle(reply));
    // Events of a thread already replaced (timed out) concern no job any more.
    worker.on('error', (e: Error & { code?: string }) => {
      if (this.worker !== worker) return;
      this.worker = undefined; // it is ending: the next job gets a new one
      this.fail(e.code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? new JobThreadError('memory', `needed more than ${this.opts.maxHeapMiB} MiB and was abandoned`)
        : new JobThreadError('crashed', `${this.opts.name} failed: ${e.message}`));
    });
    worker.on('exit', () => {
      this.opts.onThreadEnd?.();
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.fail(new JobThreadError('crashed', `${this.opts.name} ended unexpectedly`));
    });
    this.worker = worker;
    return worker;
  }

  private settle(reply: JobReply<Res>): void {
    const p = this.current;
    if (!p || p.envelope.id !== reply.id) return;
    this.finishCurrent();
    if ('result' in reply) p.resolve(reply.result);
    else p.reject(this.opts.reviveError?.(reply.error) ?? new Error(String((reply.error as { message?: unknown })?.message ?? reply.error)));
    this.pump();
  }

  /** Fails the job running (if any) and goes on with the next one on a new thread. */
  private fail(e: Error): void {
    const p = this.current;
    if (!p) return;
    this.finishCurrent();
    p.reject(e);
    if (!this.closed) this.pump();
  }

  private finishCurrent(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.current = undefined;
  }

  private async stopWorker(why: Error): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.fail(why);
    if (worker) await worker.terminate();
  }
}
