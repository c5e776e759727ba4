// Errors reach JS with errno, code and a message a person can act on.
import assert from 'node:assert/strict';

import { u32, u64 } from '../../src/bpf/codec';
import { BpfObject } from '../../src/bpf/object';
import { KvKey, KvValue, SELFTEST, bpfTest } from './support';

type CodedError = Error & { code?: string; errno?: number; syscall?: string; log?: string };

bpfTest('missing object file: ENOENT naming the path', () => {
  const path = '/nonexistent/dir/missing.bpf.o';
  assert.throws(
    () => BpfObject.open(path),
    (err: CodedError) =>
      err.code === 'ENOENT' && err.errno === 2 && err.message.includes(path) && err.message.includes('npm run build:bpf'),
  );
});

bpfTest('a file that is not a BPF object', () => {
  assert.throws(() => BpfObject.open('/etc/hostname'), (err: CodedError) => {
    assert.match(err.message, /bpf_object__open_file\(\/etc\/hostname\)/);
    assert.equal(typeof err.errno, 'number');
    return true;
  });
});

bpfTest('unknown map, program, global: usage errors listing what exists', () => {
  const obj = BpfObject.open(SELFTEST);
  try {
    assert.throws(() => obj.map('nope'), (err: CodedError) => {
      assert.equal(err.code, 'ERR_QF_BPF_USAGE');
      assert.match(err.message, /no map 'nope' in .*selftest\.bpf\.o \(maps: samples, events, switches, kv/);
      return true;
    });
    assert.throws(() => obj.program('nope'), /no program 'nope'.*on_switch, on_sample/);
    assert.throws(() => obj.setGlobal('nope', 1), /no global variable 'nope'.*target_tgid/);
    assert.throws(() => obj.setGlobal('target_tgid', 1n << 40n), /4 bytes/);
    assert.throws(() => obj.map('kv', u32, KvValue), /key codec is 4 bytes, key_size is 8/);
    assert.throws(() => obj.map('kv', KvKey, u64), /value codec is 8 bytes/);
    assert.throws(() => obj.attach('on_switch'), /call load\(\) first/);
  } finally {
    obj.close();
  }
  assert.throws(() => obj.map('kv'), /closed/);
});

bpfTest('after load: rodata is frozen, lookups of missing keys are undefined', () => {
  const obj = BpfObject.open(SELFTEST, { globals: { target_tgid: 1234 } }).load();
  try {
    assert.equal(obj.getGlobal('target_tgid', u32), 1234);
    assert.throws(() => obj.setGlobal('target_tgid', 1), /frozen at load\(\).*open\(path, \{ globals \}\)/);
    assert.equal(obj.map('kv', KvKey, KvValue).lookup({ pid: 99, tag: Buffer.alloc(4) }), undefined);
    assert.throws(() => obj.load(), /before load\(\)/);
  } finally {
    obj.close();
  }
});

bpfTest('verifier rejection: EACCES with the verifier log', () => {
  const obj = BpfObject.open(SELFTEST, { autoload: { verifier_reject: true } });
  try {
    assert.throws(
      () => obj.load(),
      (err: CodedError) => {
        assert.equal(err.code, 'EACCES');
        assert.equal(err.errno, 13);
        assert.match(err.message, /^bpf_object__load\(selftest\.bpf\.o\): Permission denied — the verifier rejected/);
        assert.match(err.log ?? '', /invalid mem access 'map_value_or_null'/);
        assert.match(err.message, /verifier_reject/);
        return true;
      },
    );
  } finally {
    obj.close();
  }
});

bpfTest('perf events: frequency above the kernel maximum names the sysctl', () => {
  const obj = BpfObject.open(SELFTEST).load();
  try {
    assert.throws(
      () => obj.attachPerfEvent('on_sample', { freq: 100_000_000 }),
      (err: CodedError) => err.code === 'EINVAL' && /perf_event_max_sample_rate/.test(err.message),
    );
    assert.equal(obj.linkCount, 0, 'no half-attached CPUs left behind');
    assert.throws(() => obj.attachPerfEvent('on_sample', { freq: 99, cpus: [4096] }), /CPU 4096 does not exist/);
    assert.throws(() => obj.attachPerfEvent('on_sample', {}), /exactly one of freq/);
    assert.throws(() => obj.attachTracepoint('on_exec', 'sched', 'no_such_tracepoint'), (err: CodedError) => {
      assert.equal(err.code, 'ENOENT');
      assert.match(err.message, /(no tracepoint sched:no_such_tracepoint|tracefs not mounted)/);
      return true;
    });
    assert.throws(() => obj.ringBuffer('kv'), /not ringbuf/);
  } finally {
    obj.close();
  }
});
