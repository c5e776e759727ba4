// JobThread (src/worker/job-thread.ts) with a real worker thread: answers in order, errors the job threw, and the
// thread's own failures (over time, over heap, ended) each fail only their job; the next job gets a new thread.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { threadId } from 'node:worker_threads';

import { JobThread, JobThreadError } from '../../src/worker/job-thread';
import type { FixtureAnswer, FixtureJob } from './fixture-worker';

const script = path.join(__dirname, 'fixture-worker.js');

function jobs(extra: { timeoutMs?: number; maxQueued?: number; idleMs?: number; maxHeapMiB?: number; onThreadEnd?: () => void } = {}): JobThread<FixtureJob, FixtureAnswer> {
  return new JobThread<FixtureJob, FixtureAnswer>({
    script,
    name: 'the fixture thread',
    maxHeapMiB: extra.maxHeapMiB ?? 64,
    timeoutMs: extra.timeoutMs ?? 30_000,
    ...(extra.maxQueued === undefined ? {} : { maxQueued: extra.maxQueued }),
    ...(extra.idleMs === undefined ? {} : { idleMs: extra.idleMs }),
    ...(extra.onThreadEnd === undefined ? {} : { onThreadEnd: extra.onThreadEnd }),
    reviveError: (p) => Object.assign(new Error((p as { message: string }).message), { code: (p as { code?: string }).code }),
  });
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  assert.fail('the job did not fail');
}

test('jobs run one at a time on one thread other than the caller, answers in order, arrays handed over', async () => {
  const j = jobs();
  try {
    const answers = await Promise.all(['a', 'b', 'c'].map((value) => j.run({ op: 'echo', value })));
    assert.deepEqual(answers.map((a) => a.value), ['a', 'b', 'c']);
    assert.equal(new Set(answers.map((a) => a.threadId)).size, 1);
    assert.notEqual(answers[0]!.threadId, threadId);
    const { bytes } = await j.run({ op: 'bytes', n: 1 << 20 });
    assert.ok(bytes instanceof Uint8Array && bytes.length === 1 << 20 && bytes[12345] === 7);
  } finally {
    await j.close();
  }
});

test('a job queued first runs ahead of those waiting, not of the one running', async () => {
  const j = jobs();
  try {
    const done: string[] = [];
    const note = (p: Promise<FixtureAnswer>, name: string): Promise<void> => p.then(() => void done.push(name));
    const running = note(j.run({ op: 'spin', ms: 200 }), 'running');
    const later = ['a', 'b'].map((value) => note(j.run({ op: 'echo', value }), value));
    const urgent = note(j.run({ op: 'echo', value: 'urgent' }, { first: true }), 'urgent');
    await Promise.all([running, urgent, ...later]);
    assert.deepEqual(done, ['running', 'urgent', 'a', 'b']);
  } finally {
    await j.close();
  }
});

test('an error the job throws fails that job with the revived error; the thread goes on', async () => {
  const j = jobs();
  try {
    const first = await j.run({ op: 'echo', value: 'x' });
    const e = await failure(j.run({ op: 'throw', message: 'no such thing' }));
    assert.equal(e.message, 'no such thing');
    assert.equal((e as Error & { code?: string }).code, 'E_FIXTURE');
    assert.equal((await j.run({ op: 'echo', value: 'y' })).threadId, first.threadId, 'the same thread');
  } finally {
    await j.close();
  }
});

test('over its time, over its heap, or ending the thread: that job fails with its kind, the next runs on a new thread', async () => {
  // The time limit must be well above what filling a 32 MiB heap takes (330-650 ms where a page fault costs ~11 µs;
  // with 300 ms the 'grow' job was cut short as a timeout in 2 runs of 5 there).
  const j = jobs({ timeoutMs: 3000, maxHeapMiB: 32 });
  try {
    const t0 = (await j.run({ op: 'echo', value: '' })).threadId;
    const cases: Array<[FixtureJob, JobThreadError['kind']]> = [[{ op: 'spin', ms: 60_000 }, 'timeout'], [{ op: 'grow' }, 'memory'], [{ op: 'exit' }, 'crashed']];
    const seen = new Set([t0]);
    for (const [job, kind] of cases) {
      const failing = failure(j.run(job));
      const behind = j.run({ op: 'echo', value: `after ${job.op}` });
      const e = await failing;
      assert.ok(e instanceof JobThreadError, `${job.op}: ${e.message}`);
      assert.equal(e.kind, kind, `${job.op}: ${e.message}`);
      const next = await behind;
      assert.equal(next.value, `after ${job.op}`, 'the job queued behind the failure runs');
      assert.ok(!seen.has(next.threadId), `${job.op}: a new thread after the failure`);
      seen.add(next.threadId);
    }
  } finally {
    await j.close();
  }
});

test('a full queue refuses at once (busy); close fails what waits (closed) and refuses later jobs', async () => {
  const j = jobs({ maxQueued: 1 });
  const running = j.run({ op: 'spin', ms: 200 });
  const waiting = j.run({ op: 'echo', value: 'w' });
  const refused = await failure(j.run({ op: 'echo', value: 'r' }));
  assert.ok(refused instanceof JobThreadError && refused.kind === 'busy', refused.message);
  await running;
  assert.equal((await waiting).value, 'w');
  const blocked = failure(j.run({ op: 'spin', ms: 60_000 }));
  const behind = failure(j.run({ op: 'echo', value: 'b' }));
  await j.close();
  for (const p of [blocked, behind, failure(j.run({ op: 'echo', value: 'late' }))]) {
    const e = await p;
    assert.ok(e instanceof JobThreadError && e.kind === 'closed', e.message);
  }
});

test('an idle thread is ended after idleMs (onThreadEnd told); the next job starts another', async () => {
  let ended = 0;
  const j = jobs({ idleMs: 100, onThreadEnd: () => ended++ });
  try {
    const a = await j.run({ op: 'echo', value: '1' });
    const b = await j.run({ op: 'echo', value: '2' });
    assert.equal(a.threadId, b.threadId, 'busy: the same thread');
    assert.equal(ended, 0, 'no thread ended while busy');
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(ended, 1, 'the idle thread ended, and onThreadEnd was told');
    const c = await j.run({ op: 'echo', value: '3' });
    assert.notEqual(c.threadId, a.threadId, 'after idleMs: a new thread');
  } finally {
    await j.close();
  }
  assert.equal(ended, 2, 'close() ended the second');
});
