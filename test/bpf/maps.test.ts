// Map operations with Buffers through codecs: update/lookup/delete/iterate/batch, flags, per-CPU.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

import { u32, u64 } from '../../src/bpf/codec';
import { BpfObject, UpdateFlags } from '../../src/bpf/object';
import { KvKey, KvValue, SELFTEST, bpfTest } from './support';

function key(pid: number, tag = 'abcd') {
  return { pid, tag: Buffer.from(tag) };
}

function value(n: number) {
  return { count: BigInt(n) * 1_000_000_007n, cpu: n % 65536, comm: `w${n}`, ids: [n, n * 2] };
}

bpfTest('codecs match the C layout in the object BTF', () => {
  const btf = execFileSync('bpftool', ['btf', 'dump', 'file', SELFTEST], { encoding: 'utf8' });
  const kv = /STRUCT 'kv_value' size=(\d+) vlen=4\n((?:\s+'.*\n){4})/.exec(btf);
  assert.ok(kv, 'struct kv_value not in BTF');
  assert.equal(Number(kv[1]), KvValue.size);
  const offsets = [...(kv[2] ?? '').matchAll(/'(\w+)' type_id=\d+ bits_offset=(\d+)/g)].map((m) => [m[1], Number(m[2]) / 8]);
  assert.deepEqual(offsets, Object.entries(KvValue.offsets));
});

bpfTest('hash map: update, lookup, delete, iterate, dump, drain', () => {
  const obj = BpfObject.open(SELFTEST).load();
  try {
    const kv = obj.map('kv', KvKey, KvValue);
    assert.equal(kv.lookup(key(1)), undefined, 'missing key -> undefined');
    for (let i = 1; i <= 10; i++) kv.update(key(i), value(i));
    assert.deepEqual(kv.lookup(key(7)), value(7));
    assert.equal(kv.delete(key(7)), true);
    assert.equal(kv.delete(key(7)), false, 'deleting a missing key -> false');
    assert.equal(kv.lookup(key(7)), undefined);

    const keys = [...kv.keys()].map((k) => k.pid).sort((a, b) => a - b);
    assert.deepEqual(keys, [1, 2, 3, 4, 5, 6, 8, 9, 10]);
    assert.deepEqual(kv.nextKey(), kv.nextKey(undefined));

    const entries = kv.entries();
    assert.equal(entries.length, 9);
    for (const [k, v] of entries) assert.deepEqual(v, value(k.pid));
    assert.equal([...kv].length, 9);

    const drained = kv.drain();
    assert.equal(drained.length, 9);
    assert.equal(kv.entries().length, 0, 'drain() deletes');
    assert.equal(kv.nextKey(), undefined);

    const info = kv.info();
    assert.ok(info.id > 0);
    assert.deepEqual([info.type, info.keySize, info.valueSize, info.maxEntries], ['hash', 8, 24, 64]);
  } finally {
    obj.close();
  }
});

bpfTest('update flags: NOEXIST, EXIST and a full map raise errno errors', () => {
  const obj = BpfObject.open(SELFTEST).load();
  try {
    const kv = obj.map('kv', KvKey, KvValue);
    kv.update(key(1), value(1), UpdateFlags.NOEXIST);
    assert.throws(() => kv.update(key(1), value(2), UpdateFlags.NOEXIST), { code: 'EEXIST', errno: 17 });
    assert.throws(() => kv.update(key(2), value(2), UpdateFlags.EXIST), { code: 'ENOENT', errno: 2 });
    kv.update(key(1), value(3), UpdateFlags.EXIST);
    assert.deepEqual(kv.lookup(key(1)), value(3));
    for (let i = 2; i <= 64; i++) kv.update(key(i), value(i));
    assert.throws(
      () => kv.update(key(65), value(65)),
      (err: Error & { code?: string }) => err.code === 'E2BIG' && /map is full \(max_entries 64\)/.test(err.message),
    );
    assert.equal(kv.entries().length, 64);
  } finally {
    obj.close();
  }
});

bpfTest('array and per-CPU array maps; raw Buffer maps', () => {
  const obj = BpfObject.open(SELFTEST).load();
  try {
    const sw = obj.map('switches', u32, u64);
    sw.update(0, 42n);
    assert.equal(sw.lookup(0), 42n);
    assert.throws(() => sw.update(1, 1n), { code: 'E2BIG' });
    assert.throws(() => sw.delete(0), { code: 'EINVAL' });
    assert.deepEqual(sw.entries(), [[0, 42n]]);

    const raw = obj.map('switches');
    assert.deepEqual(raw.lookup(Buffer.alloc(4)), Buffer.from([42, 0, 0, 0, 0, 0, 0, 0]));

    const samples = obj.perCpuMap('samples', u32, u64);
    const cpus = samples.valueCodec.size / 8;
    const values = Array.from({ length: cpus }, (_, i) => BigInt(i + 10));
    samples.update(0, values);
    assert.deepEqual(samples.lookup(0), values);
    assert.deepEqual(samples.entries(), [[0, values]]);
    assert.throws(() => obj.map('samples'), /perCpuMap/);
  } finally {
    obj.close();
  }
});
