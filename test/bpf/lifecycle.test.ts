// close() releases every fd, link, ring buffer and thread; the kernel forgets the programs.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';

import { BpfObject } from '../../src/bpf/object';
import { SELFTEST, bpfTest, bpftoolIds, fdCount, waitFor } from './support';

async function cycle(): Promise<{ progs: number[]; maps: number[] }> {
  const obj = BpfObject.open(SELFTEST, { globals: { target_tgid: 1 } }).load();
  obj.attach('on_switch');
  obj.attachPerfEvent('on_sample', { freq: 99 });
  const reader = obj.ringBuffer('events', { onBatch: () => {} });
  const progs = ['on_switch', 'on_sample', 'on_exec'].map((p) => obj.program(p).info().id);
  const maps = [obj.map('kv').info().id, obj.map('events').info().id, obj.perCpuMap('samples').info().id];
  obj.close();
  await reader.done;
  return { progs, maps };
}

bpfTest('50 open/load/attach/close cycles leak no fds and no threads', async () => {
  await cycle(); // warm-up: addon, libbpf's one-time probes
  const before = fdCount();
  const threads = readdirSync('/proc/self/task').length;
  for (let i = 0; i < 50; i++) await cycle();
  const after = fdCount();
  assert.equal(after, before, `fds went from ${before} to ${after} over 50 cycles`);
  assert.equal(readdirSync('/proc/self/task').length, threads, 'ring-buffer threads left running');
});

bpfTest('after close, bpftool no longer lists the programs or maps', async () => {
  const { progs, maps } = await cycle();
  const gone = await waitFor(() => {
    const live = bpftoolIds('prog');
    return progs.every((id) => !live.has(id));
  }, 2000);
  assert.ok(gone, `programs ${progs.join(', ')} still listed by bpftool prog show`);
  const liveMaps = await waitFor(() => {
    const live = bpftoolIds('map');
    return maps.every((id) => !live.has(id)) ? live : undefined;
  }, 2000);
  assert.ok(liveMaps, `maps ${maps.join(', ')} still listed by bpftool map show`);
});

bpfTest('while open, bpftool lists the programs; close() is idempotent', () => {
  const obj = BpfObject.open(SELFTEST).load();
  const id = obj.program('on_switch').info().id;
  assert.ok(bpftoolIds('prog').has(id));
  const link = obj.attach('on_switch');
  obj.close();
  obj.close();
  link.detach(); // after close: a no-op, not a crash
  assert.equal(obj.closed, true);
  assert.equal(link.isAttached, false);
});
