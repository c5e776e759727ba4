// Codecs alone (no kernel needed): C layout rules, ranges, per-CPU slots.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { array, bytes, cstring, i32, perCpu, raw, struct, u16, u32, u64, u64n, u8 } from '../../src/bpf/codec';

test('struct: natural alignment and trailing padding like C', () => {
  const s = struct({ a: u8, b: u64, c: u16, d: array(u8, 3), e: u32 });
  assert.deepEqual(s.offsets, { a: 0, b: 8, c: 16, d: 18, e: 24 });
  assert.equal(s.size, 32);
  assert.equal(s.align, 8);
  const p = struct({ a: u8, b: u64, c: u16 }, { packed: true });
  assert.deepEqual([p.offsets.a, p.offsets.b, p.offsets.c, p.size], [0, 1, 9, 11]);
  const nested = struct({ x: u8, inner: s });
  assert.equal(nested.offsets.inner, 8);
  assert.equal(nested.size, 40);
});

test('struct round trip, little-endian bytes', () => {
  const s = struct({ pid: u32, ts: u64, name: cstring(6), ids: array(i32, 2), tag: bytes(2) });
  const v = { pid: 0x01020304, ts: 0x0102030405060708n, name: 'go', ids: [-1, 7], tag: Buffer.from([9, 8]) };
  const buf = s.encode(v);
  assert.equal(buf.length, 40); // 4 + pad 4 + 8 + 6 + pad 2 + 8 + 2 + tail pad 6
  assert.deepEqual([...buf.subarray(0, 4)], [4, 3, 2, 1]);
  assert.deepEqual([...buf.subarray(8, 16)], [8, 7, 6, 5, 4, 3, 2, 1]);
  assert.deepEqual(s.decode(buf), v);
  assert.throws(() => s.encode({ ...v, ids: [1] }), /array\(2\)/);
  assert.throws(() => s.decode(Buffer.alloc(3)), /need 40 bytes/);
});

test('cstring truncates and stops at NUL; u64n refuses to lose bits', () => {
  const c = cstring(4);
  assert.deepEqual([...c.encode('abcdef')], [97, 98, 99, 100]);
  assert.equal(c.decode(Buffer.from([104, 105, 0, 120])), 'hi');
  assert.equal(u64n.decode(u64.encode(2n ** 53n - 1n)), 2 ** 53 - 1);
  assert.throws(() => u64n.decode(u64.encode(2n ** 53n)), /use u64/);
  assert.throws(() => u64n.encode(-1), /safe non-negative/);
});

test('perCpu: one value per CPU in 8-byte slots; raw checks sizes', () => {
  const pc = perCpu(u32, 3);
  assert.equal(pc.size, 24);
  const buf = pc.encode([1, 2, 3]);
  assert.deepEqual([buf.readUInt32LE(0), buf.readUInt32LE(8), buf.readUInt32LE(16)], [1, 2, 3]);
  assert.deepEqual(pc.decode(buf), [1, 2, 3]);
  assert.throws(() => pc.encode([1]), /need 3 values/);
  assert.throws(() => raw(4, "map 'x' key").encode(Buffer.alloc(2)), /map 'x' key: expected 4 bytes, got 2/);
});
