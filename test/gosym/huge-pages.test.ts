// Memory in transparent huge pages for the short-lived addr2line: the addon's hugePageBuffer and the arrays carved
// from it. What must hold: the bytes are there, zero-filled, exactly as many as asked, and (where the kernel offers
// THP) they are really huge pages, which is the point of them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { native } from '../../src/bpf/native';
import { hugePageBytes, ScratchArrays } from '../../src/gosym/huge-pages';

const MiB = 1 << 20;

function anonHugePagesKiB(): number {
  const m = /^AnonHugePages:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/self/smaps_rollup', 'utf8'));
  assert.ok(m, 'no AnonHugePages line in /proc/self/smaps_rollup');
  return Number(m[1]);
}

function thpMode(): string {
  const s = fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
  return /\[(\w+)\]/.exec(s)![1]!;
}

test('hugePageBuffer: exactly the bytes asked, zero-filled and writable', () => {
  for (const n of [1, 4095, 2 * MiB, 3 * MiB + 17]) {
    const b = native().hugePageBuffer(n);
    assert.equal(b.length, n);
    assert.ok(b.every((x) => x === 0), `${n} bytes: not zero-filled`);
    b.fill(0xab);
    assert.equal(b[n - 1], 0xab);
  }
});

test('hugePageBuffer: transparent huge pages where the kernel offers them', { skip: thpMode() === 'never' ? 'THP is off on this kernel' : false }, () => {
  const before = anonHugePagesKiB();
  const b = native().hugePageBuffer(8 * MiB);
  b.fill(1);
  const grew = anonHugePagesKiB() - before;
  // All four 2 MiB pages, unless the kernel fell back to small pages for some (memory too fragmented to compact).
  assert.ok(grew >= 2048, `AnonHugePages grew by ${grew} kB for 8 MiB touched (THP mode ${thpMode()})`);
  assert.equal(b[8 * MiB - 1], 1);
});

test('hugePageBuffer: sizes that are not a whole number of bytes from 1 to 4 GiB are usage errors', () => {
  for (const bad of [0, -1, 1.5, NaN, Infinity, 2 ** 33]) {
    assert.throws(() => native().hugePageBuffer(bad), (e: Error & { code?: string }) => e instanceof TypeError && e.code === 'ERR_QF_BPF_USAGE', String(bad));
  }
  assert.throws(() => (native().hugePageBuffer as (x: unknown) => Buffer)('1'), TypeError);
});

test('hugePageBytes: zero-filled, small blocks from ordinary memory, big ones from huge pages', () => {
  for (const n of [0, 100, MiB, 5 * MiB]) {
    const b = hugePageBytes(n);
    assert.equal(b.length, n);
    assert.ok(b.every((x) => x === 0));
  }
});

test('ScratchArrays: disjoint zero-filled arrays, 8-byte aligned, and a clear error past the block', () => {
  const s = new ScratchArrays(16 + 24 + 16); // 12 and 20 bytes rounded up to 8
  const a = s.int32(3);
  const b = s.uint32(5);
  const c = s.float64(2);
  for (const arr of [a, b, c]) {
    assert.ok(arr.every((x) => x === 0));
    assert.equal(arr.byteOffset % 8, 0);
  }
  a.fill(-1);
  b.fill(7);
  c.fill(0.5);
  assert.deepEqual([...a], [-1, -1, -1]);
  assert.deepEqual([...b], [7, 7, 7, 7, 7]);
  assert.deepEqual([...c], [0.5, 0.5]);
  assert.throws(() => s.int32(2), /scratch block of \d+ bytes exhausted/);
});
