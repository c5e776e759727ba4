// Real BPF: load selftest.bpf.o and see each attach kind fire.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';

import { u32, u64 } from '../../src/bpf/codec';
import { enableRunTimeStats } from '../../src/bpf/index';
import { ensureTracefs } from '../../src/bpf/mount';
import { native } from '../../src/bpf/native';
import { BpfObject } from '../../src/bpf/object';
import { SampleEvent, SELFTEST, bpfTest, sleep, waitFor } from './support';

/** A single-threaded CPU burner (a shell loop: no runtime helper threads to blur tid == pid). */
function burnCpu() {
  return spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
}

bpfTest('open lists programs, maps and globals before load', () => {
  const obj = BpfObject.open(SELFTEST);
  try {
    assert.deepEqual(
      obj.programs().map((p) => [p.name, p.section, p.type]),
      [
        ['on_switch', 'tp_btf/sched_switch', 'tracing'],
        ['on_sample', 'perf_event', 'perf_event'],
        ['on_exec', 'tracepoint/sched/sched_process_exec', 'tracepoint'],
        ['echo', 'tp_btf/sys_enter', 'tracing'],
        ['verifier_reject', 'tp_btf/sched_switch', 'tracing'],
      ],
    );
    const maps = Object.fromEntries(obj.maps().map((m) => [m.name, m]));
    assert.equal(maps.kv?.type, 'hash');
    assert.equal(maps.kv?.keySize, 8);
    assert.equal(maps.kv?.valueSize, 24);
    assert.equal(maps.kv?.maxEntries, 64);
    assert.equal(maps.events?.type, 'ringbuf');
    assert.equal(maps.samples?.perCpu, true);
    assert.deepEqual(
      obj.globals().map((g) => [g.name, g.section, g.size, g.readOnly]).sort(),
      [
        ['echo_tgid', '.rodata', 4, true],
        ['execs', '.bss', 8, false],
        ['ringbuf_drops', '.bss', 8, false],
        ['target_tgid', '.rodata', 4, true],
      ],
    );
    assert.equal(obj.programs()[4]?.autoload, false, '"?" sections are not loaded by default');
    assert.equal(obj.loaded, false);
  } finally {
    obj.close();
  }
});

bpfTest('tp_btf/sched_switch: the counter in an array map grows', async () => {
  const obj = BpfObject.open(SELFTEST).load();
  try {
    const switches = obj.map('switches', u32, u64);
    assert.equal(switches.lookup(0), 0n);
    const link = obj.attach('on_switch');
    const first = await waitFor(() => (switches.lookup(0) ?? 0n) > 0n && switches.lookup(0), 2000);
    assert.ok(first && first > 0n, 'sched_switch never fired');
    await sleep(100);
    const second = switches.lookup(0) ?? 0n;
    assert.ok(second > first, `counter did not grow: ${first} then ${second}`);
    link.detach();
    assert.equal(obj.linkCount, 0);
    const stopped = switches.lookup(0) ?? 0n;
    await sleep(100);
    assert.equal(switches.lookup(0), stopped, 'counter still grows after detach');
    const info = obj.program('on_switch').info();
    assert.ok(info.id > 0);
    assert.equal(info.type, 'tracing');

    // run-time statistics (what the overhead benchmark reads) only while enabled
    const stats = enableRunTimeStats();
    obj.attach('on_switch');
    const counted = await waitFor(() => obj.program('on_switch').info().runCount > 10n, 2000);
    stats.close();
    const p = obj.program('on_switch').info();
    assert.ok(counted && p.runTimeNs > 0n, `runCount ${p.runCount}, runTimeNs ${p.runTimeNs} with stats enabled`);
  } finally {
    obj.close();
  }
});

bpfTest('perf_event at 99 Hz on every CPU: ring-buffer records carry the CPU burner pid', async () => {
  const child = burnCpu();
  const pid = child.pid;
  assert.ok(pid !== undefined);
  const obj = BpfObject.open(SELFTEST, { globals: { target_tgid: pid } }).load();
  try {
    const events: Array<ReturnType<typeof SampleEvent.decode>> = [];
    let batches = 0;
    const reader = obj.ringBuffer('events', {
      onBatch: (records) => {
        batches++;
        for (const r of records) events.push(SampleEvent.decode(r));
      },
    });
    const cpus = native().onlineCpus();
    const links = obj.attachPerfEvent('on_sample', { freq: 99 });
    assert.equal(links.length, cpus.length, 'one link per online CPU');
    await waitFor(() => events.length >= 50, 5000);
    for (const l of links) l.detach();
    const stats = await reader.stop();

    assert.ok(events.length >= 50, `only ${events.length} samples of a CPU-bound child in 5 s at 99 Hz`);
    for (const e of events) {
      assert.equal(e.pid, pid, 'target_tgid filter (rodata) let another process through');
      assert.equal(e.tid, pid, 'the busy thread is the main thread');
      assert.ok(cpus.includes(e.cpu), `cpu ${e.cpu} not online`);
      assert.ok(e.time_ns > 0n);
    }
    assert.equal(stats.delivered, events.length);
    assert.equal(stats.records, events.length);
    assert.equal(stats.dropped, 0);
    assert.equal(stats.batches, batches);
    assert.ok(batches < events.length || events.length === 1, 'records arrive in batches');
    const perCpu = obj.perCpuMap('samples', u32, u64).lookup(0) ?? [];
    assert.equal(perCpu.length, native().possibleCpus());
    assert.equal(perCpu.reduce((a, b) => a + b, 0n), BigInt(events.length), 'per-CPU sample counts add up');
    assert.equal(obj.getGlobal('ringbuf_drops', u64), 0n);
  } finally {
    obj.close();
    child.kill('SIGKILL');
  }
});

bpfTest('readNow(): records sent without a wakeup are read at once, not at the next timed read', async () => {
  const child = burnCpu();
  const obj = BpfObject.open(SELFTEST, { globals: { target_tgid: child.pid ?? 0 } }).load();
  try {
    let records = 0;
    const reader = obj.ringBuffer('events', { minIntervalMs: 60_000, onBatch: (batch) => (records += batch.length) });
    obj.attachPerfEvent('on_sample', { freq: 99 });
    await waitFor(() => (obj.perCpuMap('samples', u32, u64).lookup(0) ?? []).reduce((a, b) => a + b, 0n) >= 20n, 5000);
    await sleep(50);
    assert.equal(records, 0, 'read before the timed read (60 s) was due');
    reader.readNow();
    assert.ok(await waitFor(() => records >= 20, 5000), `${records} records after readNow()`);
    await reader.stop();
    reader.readNow(); // stopped: nothing to do, no throw
  } finally {
    obj.close();
    child.kill('SIGKILL');
  }
});

bpfTest('ring buffer as an async iterator ends at stop()', async () => {
  const child = burnCpu();
  const obj = BpfObject.open(SELFTEST, { globals: { target_tgid: child.pid ?? 0 } }).load();
  try {
    const reader = obj.ringBuffer('events', { maxBatchRecords: 4 });
    obj.attachPerfEvent('on_sample', { freq: 99 });
    let n = 0;
    for await (const batch of reader) {
      assert.ok(batch.length >= 1 && batch.length <= 4, `batch of ${batch.length} with maxBatchRecords 4`);
      n += batch.length;
      if (n >= 10) reader.stopNow();
    }
    assert.ok(n >= 10);
    assert.equal(reader.stats().running, false);
  } finally {
    obj.close();
    child.kill('SIGKILL');
  }
});

bpfTest('classic tracepoint (tracefs) and .bss globals: sched_process_exec counts execs', async () => {
  ensureTracefs();
  const obj = BpfObject.open(SELFTEST).load();
  try {
    const link = obj.attachTracepoint('on_exec', 'sched', 'sched_process_exec');
    const before = obj.getGlobal('execs', u64);
    for (let i = 0; i < 3; i++) assert.equal(spawnSync('/bin/true').status, 0);
    const after = await waitFor(() => obj.getGlobal('execs', u64) >= before + 3n && obj.getGlobal('execs', u64), 2000);
    assert.ok(after !== false && after >= before + 3n, `execs went ${before} -> ${after}`);
    link.detach();
    // auto-attach by section name goes the same way
    const auto = obj.attach('on_exec');
    obj.setGlobal('execs', 0n); // .bss is writable after load, through the mmaped map
    assert.equal(spawnSync('/bin/true').status, 0);
    assert.ok((await waitFor(() => obj.getGlobal('execs', u64), 2000)) >= 1n);
    auto.detach();
  } finally {
    obj.close();
  }
});
