// Real BPF: records of chosen bytes go through a real ring buffer (selftest.bpf.o's echo program, in the order this
// test sends them), and the reader with coalesceSamples merges exactly the CPU samples that differ only in cpu and
// time_ns within a batch, never across an exec or exit record (native/sample_coalescer.h).
import assert from 'node:assert/strict';

import { raw, u32 } from '../../src/bpf/codec';
import { BpfObject } from '../../src/bpf/object';
import { ExecRecord, ExitRecord, MAX_KERNEL_STACK, MAX_USER_STACK, OffCpuRecord, RecordKind, SampleFlag, SampleRecord } from '../../src/sampler/records';
import { bpfTest, SELFTEST, sleep, waitFor } from './support';

const ECHO_MAX = 8192; // bpf/selftest.h

type Sample = Parameters<typeof SampleRecord.encode>[0];

/** A sample record: 2 user frames, 1 kernel frame, goroutine 7; the unused stack slots hold `stale`. */
function sample(change: Partial<Sample> = {}, labels: Buffer = Buffer.alloc(0), stale = 0n): Buffer {
  const user = new Array<bigint>(MAX_USER_STACK).fill(stale);
  user[0] = 0x401000n;
  user[1] = 0x402000n;
  const kernel = new Array<bigint>(MAX_KERNEL_STACK).fill(stale);
  kernel[0] = 0xffffffff81000000n;
  const rec = SampleRecord.encode({
    kind: RecordKind.SAMPLE,
    tgid: 100,
    tid: 101,
    cpu: 0,
    time_ns: 1_000n,
    goid: 7n,
    flags: SampleFlag.GOID | SampleFlag.TABLE,
    labels_len: labels.length,
    user_len: 2,
    kernel_len: 1,
    comm: 'worker',
    user_stack: user,
    kernel_stack: kernel,
    ...change,
  });
  return Buffer.concat([rec, labels]);
}

function offCpu(): Buffer {
  const s = SampleRecord.decode(sample());
  return OffCpuRecord.encode({ sample: { ...s, kind: RecordKind.OFFCPU }, start_ns: 500n, weight_ns: 500n, state: 1, pad: 0 });
}

function label(key: string, value: string): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt16LE(key.length, 0);
  h.writeUInt16LE(value.length, 2);
  return Buffer.concat([h, Buffer.from(key), Buffer.from(value)]);
}

function withStack(which: 'user_stack' | 'kernel_stack', i: number, v: bigint): Partial<Sample> {
  const base = SampleRecord.decode(sample())[which];
  base[i] = v;
  return { [which]: base };
}

bpfTest('coalesceSamples: a batch merges exactly the samples that differ only in cpu and time_ns, not across exec or exit', async () => {
  const obj = BpfObject.open(SELFTEST, { globals: { echo_tgid: process.pid } }).load();
  try {
    // [record, index of the delivered record it must end up in]
    const sent: Array<[Buffer, number]> = [
      [sample(), 0],
      [sample({ cpu: 1, time_ns: 2_000n }, undefined, 0xdeadn), 0], // other cpu and time, other bytes past the stacks
      [sample({ goid: 8n }), 1],
      [sample({ flags: SampleFlag.TABLE }), 2], // no goroutine ID: the goid field is not compared
      [sample({ flags: SampleFlag.TABLE, goid: 99n }), 2],
      [sample(withStack('user_stack', 1, 0x403000n)), 3],
      [sample(withStack('kernel_stack', 0, 0xffffffff82000000n)), 4],
      [sample({ kernel_len: 0 }), 5],
      [sample({}, label('k', 'v')), 6],
      [sample({ time_ns: 3_000n }, label('k', 'v')), 6],
      [sample({}, label('k', 'w')), 7],
      [sample({ tid: 102 }), 8],
      [sample({ tgid: 200 }), 9],
      [sample({ comm: 'other' }), 10],
      [sample({ flags: SampleFlag.GOID }), 11],
      [sample({ cpu: 1 }), 0],
      [ExecRecord.encode({ kind: RecordKind.EXEC, tgid: 100, time_ns: 4_000n }), 12],
      [sample(), 13], // after the exec: a new run
      [sample({ cpu: 1 }), 13],
      [ExitRecord.encode({ kind: RecordKind.EXIT, tgid: 100, start_ticks: 5n }), 14],
      [sample(), 15],
      [offCpu(), 16], // off-CPU records: never merged (each has its own interval and weight)
      [offCpu(), 17],
      [sample({ labels_len: 4 }), 18], // malformed (its labels are missing): delivered as it came
      [sample({ labels_len: 4 }), 19],
    ];
    const batches: Array<{ records: Buffer[]; counts: Uint32Array | undefined }> = [];
    const reader = obj.ringBuffer('echoes', { minIntervalMs: 60_000, coalesceSamples: true, onBatch: (records, counts) => batches.push({ records: records.map((r) => Buffer.from(r)), counts }) });
    obj.attach('echo');
    const input = obj.map('echo_input', u32, raw(8 + ECHO_MAX));
    for (const [rec] of sent) {
      const value = Buffer.alloc(8 + ECHO_MAX);
      value.writeUInt32LE(rec.length, 0);
      rec.copy(value, 8);
      input.update(0, value);
      void process.ppid; // getppid(2): the echo program sends the record
    }
    await sleep(20);
    assert.equal(batches.length, 0, 'nothing read before readNow (60 s interval)');
    reader.readNow();
    assert.ok(await waitFor(() => batches.length > 0, 5000), 'the batch arrived');
    const [batch] = batches;
    const delivered = Math.max(...sent.map(([, i]) => i)) + 1;
    assert.equal(batches.length, 1);
    assert.equal(batch!.records.length, delivered);
    assert.ok(batch!.counts, 'counts come with a batch where records were merged');
    const expected = new Array<number>(delivered).fill(0);
    for (const [, i] of sent) expected[i]!++;
    assert.deepEqual([...batch!.counts!], expected);
    // Each delivered record is the first one sent for its index, byte for byte.
    for (let i = 0; i < delivered; i++) assert.ok(batch!.records[i]!.equals(sent.find(([, j]) => j === i)![0]), `record ${i}`);
    const stats = await reader.stop();
    assert.equal(stats.records, sent.length);
    assert.equal(stats.coalesced, sent.length - delivered);
    assert.equal(stats.delivered, delivered);

    // Without merges a batch has no counts.
    const plain: Array<Uint32Array | undefined> = [];
    const again = obj.ringBuffer('echoes', { minIntervalMs: 60_000, coalesceSamples: true, onBatch: (_r, counts) => plain.push(counts) });
    for (const change of [{}, { tid: 102 }]) {
      const rec = sample(change);
      const value = Buffer.alloc(8 + ECHO_MAX);
      value.writeUInt32LE(rec.length, 0);
      rec.copy(value, 8);
      input.update(0, value);
      void process.ppid;
    }
    again.readNow();
    assert.ok(await waitFor(() => plain.length > 0, 5000));
    assert.deepEqual(plain, [undefined]);
    await again.stop();
  } finally {
    obj.close();
  }
});

bpfTest('coalesceSamples needs onBatch: an iterating reader could not see the counts', () => {
  const obj = BpfObject.open(SELFTEST).load();
  try {
    assert.throws(() => obj.ringBuffer('echoes', { coalesceSamples: true }), /coalesceSamples needs onBatch/);
  } finally {
    obj.close();
  }
});
