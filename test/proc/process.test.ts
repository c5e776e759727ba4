import assert from 'node:assert/strict';
import { test } from 'node:test';

import { isAlive, listPids, parseStat, PF_KTHREAD, processIdentity, readStat, sameProcess } from '../../src/proc/process';
import { kill, rootTest, sleep, spawnWithPid, start } from './support';

test('parseStat: comm with spaces and parentheses, start time as a bigint', () => {
  const text = '4242 (we (ird) comm) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 3 0 987654321012 12345678 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n';
  const st = parseStat(text);
  assert.ok(st);
  assert.equal(st.pid, 4242);
  assert.equal(st.comm, 'we (ird) comm');
  assert.equal(st.state, 'S');
  assert.equal(st.ppid, 1);
  assert.equal(st.flags, 4194560);
  assert.equal(st.startTime, 987654321012n);
  assert.equal(parseStat('garbage'), undefined);
  assert.equal(parseStat('12 (x) S 1'), undefined, 'too few fields');
});

test('readStat and processIdentity of this process; kernel threads are flagged', () => {
  const a = readStat(process.pid);
  assert.ok(a);
  assert.equal(a.pid, process.pid);
  assert.ok(a.startTime > 0n);
  const id = processIdentity(process.pid);
  assert.ok(id && sameProcess(id, { pid: process.pid, startTime: a.startTime }));
  assert.ok(isAlive(id));
  assert.equal((a.flags & PF_KTHREAD) === 0, true);
  const kthreadd = readStat(2);
  assert.ok(kthreadd && (kthreadd.flags & PF_KTHREAD) !== 0, 'pid 2 (kthreadd) is a kernel thread');
  assert.ok(listPids().includes(process.pid));
  assert.equal(readStat(0x7ffffff0), undefined);
});

rootTest('PID reuse: a new process with the same PID has another start time, and the old identity is gone', async () => {
  const first = start('sleep', ['30']);
  try {
    assert.ok(first.pid);
    await sleep(50);
    const old = processIdentity(first.pid);
    assert.ok(old && isAlive(old));
    await kill(first);
    assert.equal(isAlive(old), false, 'killed and reaped');
    await sleep(30); // start times are in clock ticks (10 ms): reuse within one tick cannot be told apart
    const second = await spawnWithPid(old.pid, () => start('sleep', ['30']));
    assert.ok(second, `could not get PID ${old.pid} again (other processes took it 20 times)`);
    try {
      const now = processIdentity(old.pid);
      assert.ok(now, 'the PID is in use again');
      assert.ok(now.startTime > old.startTime, `start time ${now.startTime} after ${old.startTime}`);
      assert.equal(sameProcess(now, old), false);
      assert.equal(isAlive(old), false, 'the old identity is not alive although its PID is');
      assert.ok(isAlive(now));
    } finally {
      await kill(second);
    }
  } finally {
    await kill(first);
  }
});
