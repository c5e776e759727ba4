// Capture windows are kept by the records' kernel timestamps: a record from before the window or after its end
// is not in the profile, one from inside it that arrives late (a busy event loop) still is.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { RawSample, SampleFilter, SampleSource } from '../../src/sampler/types';
import { CaptureManager } from '../../src/server/capture';

/** A source whose batches the test hands over by hand. */
class ManualSource implements SampleSource {
  readonly hz = 99;
  readonly offCpuPeriodNs = 10_000_000;
  readonly attached = true;
  private deliver: ((batch: RawSample[]) => void) | undefined;
  /** Times readNow() was asked, and what it then hands over (the records the timed read would bring later). */
  readNowCalls = 0;
  onReadNow: (() => void) | undefined;
  readNow(): void {
    this.readNowCalls++;
    this.onReadNow?.();
  }
  subscribe(_filter: SampleFilter, onBatch: (batch: RawSample[]) => void): () => void {
    this.deliver = onBatch;
    return () => (this.deliver = undefined);
  }
  emit(...times: bigint[]): void {
    this.deliver?.(times.map((timeNs, i) => ({ pid: 1, tid: i, cpu: 0, comm: 'x', goid: undefined, timeNs, userStack: [1], kernelStack: [] })));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a window holds the records stamped inside it, also those delivered after its end; its duration is exact', async () => {
  const source = new ManualSource();
  const captures = new CaptureManager(source, { total: 4, nodeWideOffCpu: 1 }, { settleMs: 200 });
  const got: bigint[] = [];
  const t0 = process.hrtime.bigint();
  const done = captures.capture(0.3, {}, new AbortController().signal, { add: (b) => got.push(...b.map((s) => s.timeNs)) }, 1_000n);
  source.emit(t0 - 1_000_000n, process.hrtime.bigint()); // one from before the window, one inside
  await sleep(400); // past the end (300 ms), within the settle time
  const late = t0 + 250_000_000n; // stamped inside the window, delivered after its end
  const after = process.hrtime.bigint() + 1_000_000n; // stamped after the end
  source.emit(late, after);
  const w = await done;
  assert.equal(w.ended, 'elapsed');
  assert.equal(w.endUnixNs - w.startUnixNs, 300_000_000n, 'duration = the seconds asked for, whatever the timers did');
  assert.equal(got.length, 2, `records kept: ${got}`);
  assert.ok(got.includes(late));
  assert.equal(w.samples, 2);
});

test('at the end of the window the source is asked to read at once; what that brings is in the profile', async () => {
  const source = new ManualSource();
  const captures = new CaptureManager(source, { total: 4, nodeWideOffCpu: 1 }, { settleMs: 200 });
  const got: bigint[] = [];
  const t0 = process.hrtime.bigint();
  let askedAt: bigint | undefined;
  source.onReadNow = () => {
    askedAt = process.hrtime.bigint();
    setImmediate(() => source.emit(t0 + 290_000_000n)); // the last records of the window, read now
  };
  const w = await captures.capture(0.3, {}, new AbortController().signal, { add: (b) => got.push(...b.map((s) => s.timeNs)) }, 0n);
  assert.equal(source.readNowCalls, 1);
  // Node's timers count from the event loop's cached time, which may lag hrtime by a millisecond or so: a 300 ms
  // timer can fire at 299.x ms by hrtime. Asked at the start or half-way would be far below this.
  assert.ok(askedAt !== undefined && askedAt - t0 >= 290_000_000n, `asked at the end of the window, not before (${askedAt === undefined ? 'never' : `${(askedAt - t0) / 1_000_000n} ms`})`);
  assert.deepEqual(got, [t0 + 290_000_000n]);
  assert.equal(w.samples, 1);
});

test('a client that leaves ends the window then, without waiting to settle', async () => {
  const source = new ManualSource();
  const captures = new CaptureManager(source, { total: 4, nodeWideOffCpu: 1 }, { settleMs: 5_000 });
  const abort = new AbortController();
  const t0 = Date.now();
  const done = captures.capture(30, {}, abort.signal, { add: () => undefined }, 0n);
  await sleep(100);
  abort.abort();
  const w = await done;
  assert.equal(w.ended, 'aborted');
  assert.ok(Date.now() - t0 < 2_000, 'answered at once');
  assert.ok(w.endUnixNs < 1_000_000_000n, `window ended at the abort: ${w.endUnixNs} ns`);
});

test('limits: captures of any kind up to the total, node-wide off-CPU ones up to their own limit; the refusal says which', async () => {
  const captures = new CaptureManager(new ManualSource(), { total: 3, nodeWideOffCpu: 1 }, { settleMs: 0 });
  const abort = new AbortController();
  const sink = { add: () => undefined };
  const first = captures.capture(30, { kind: 'offcpu' }, abort.signal, sink, 0n);
  assert.match(captures.refusal([{ kind: 'offcpu' }]) ?? '', /node-wide off-CPU profile is already being captured \(the limit is 1, --max-node-offcpu-profiles\)/);
  await assert.rejects(captures.capture(30, { kind: 'offcpu' }, abort.signal, sink, 0n), /node-wide off-CPU/);
  assert.equal(captures.refusal([{ kind: 'offcpu', pid: 42 }]), undefined, 'one process off-CPU is not node-wide');
  assert.equal(captures.refusal([{ kind: 'cpu' }]), undefined, 'a node-wide CPU profile is not limited by the off-CPU limit');
  const second = captures.capture(30, { kind: 'offcpu', pid: 42 }, abort.signal, sink, 0n);
  assert.match(captures.refusal([{ kind: 'cpu' }, { kind: 'cpu', pid: 1 }]) ?? '', /2 profiles are already being captured \(the limit is 3; this needs 2 at once\)/);
  const third = captures.capture(30, {}, abort.signal, sink, 0n);
  await assert.rejects(captures.capture(30, { pid: 7 }, abort.signal, sink, 0n), /3 profiles are already being captured \(the limit is 3\)/);
  abort.abort();
  await Promise.all([first, second, third]);
  assert.equal(captures.inFlight, 0);
  assert.equal(captures.refusal([{ kind: 'offcpu' }, { kind: 'cpu' }]), undefined, 'every slot free again');
});
