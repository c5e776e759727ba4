// The agent's worker threads carry names of their own, so `top -H` (and the first-profile bench's THREADS=1) tells
// their CPU apart from V8's compiler and GC threads, which are all "node".

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { GoroutineSnapshotter } from '../../src/goroutines/snapshotter';
import { resolveExecutable } from '../../src/proc/exe';
import { ReaderThread } from '../../src/symbols/reader-thread';

function threadNames(): string[] {
  const names: string[] = [];
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      names.push(fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim());
    } catch {
      // the thread ended meanwhile
    }
  }
  return names;
}

test('the binary reader and the goroutine reader run on threads named qf-reader and qf-goroutines', async () => {
  assert.ok(!threadNames().includes('qf-reader') && !threadNames().includes('qf-goroutines'), 'neither runs before its first job');
  const reader = new ReaderThread();
  const snapshots = new GoroutineSnapshotter();
  try {
    const self = resolveExecutable(process.pid);
    assert.ok(self, 'this process has an executable');
    const info = await reader.binaryInfo(self, '/proc');
    assert.equal(info.kind, 'other', 'node is not a Go binary');
    await assert.rejects(snapshots.snapshot(process.pid), /not a Go|Go/, 'nor are its goroutines readable');
    const names = threadNames();
    assert.ok(names.includes('qf-reader'), `threads: ${names.join(', ')}`);
    assert.ok(names.includes('qf-goroutines'), `threads: ${names.join(', ')}`);
  } finally {
    await reader.close();
    await snapshots.close();
  }
  assert.ok(!threadNames().includes('qf-reader'), 'the reader thread ends with close()');
});
