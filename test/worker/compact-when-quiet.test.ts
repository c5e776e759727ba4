// compactWhenQuiet (src/worker/compact-when-quiet.ts): the reader thread's and the main thread's memory is handed
// back once jobs stop coming, not while they come nor while other work is in flight; fullCollection really collects.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { compactWhenQuiet, fullCollection } from '../../src/worker/compact-when-quiet';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('fullCollection frees what nothing refers to', async () => {
  let big: Uint8Array | undefined = new Uint8Array(1 << 20);
  const ref = new WeakRef(big);
  big = undefined;
  await sleep(0); // a WeakRef's target is kept until the task that made it has ended
  fullCollection();
  assert.equal(ref.deref(), undefined);
});

test('release runs once, quietMs after the last job of a burst', async () => {
  let released = 0;
  const jobDone = compactWhenQuiet(150, () => released++);
  for (let i = 0; i < 5; i++) {
    jobDone();
    await sleep(50); // each job within quietMs of the one before: no compaction yet
  }
  assert.equal(released, 0, 'compacted in the middle of a burst');
  await sleep(250);
  assert.equal(released, 1);
  await sleep(250);
  assert.equal(released, 1, 'compacted again without a job');
  jobDone();
  await sleep(300);
  assert.equal(released, 2, 'the next burst is compacted too');
});

test('nothing is compacted while busy() holds: the end of that work calls again', async () => {
  let released = 0;
  let busy = true;
  const jobDone = compactWhenQuiet(100, () => released++, () => busy);
  jobDone();
  await sleep(250);
  assert.equal(released, 0, 'compacted with work in flight');
  busy = false;
  jobDone(); // the work in flight ended
  await sleep(250);
  assert.equal(released, 1);
});
