// ProfileBuilder's arrangement of resolved stacks (the resolver here is a table; the real Symbolizer is exercised
// by profile/pprof-go-tool.test.ts with real processes and the real go tool pprof).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RawSample } from '../../src/sampler/types';
import { ProfileBuilder, ResolvedLocation, ResolvedMapping, StackResolver } from '../../src/profile/builder';
import { decodePprof, encodePprof, profileProblems, Profile } from '../../src/profile/pprof';

const exe: ResolvedMapping = {
  key: 'exe', start: 0x400000n, limit: 0x500000n, offset: 0n, file: '/bin/app', buildId: 'abc',
  hasFunctions: true, hasFilenames: true, hasLineNumbers: true, hasInlineFrames: true,
};
const kernel: ResolvedMapping = {
  key: 'kernel', start: 0xffffffff81000000n, limit: 0xffffffffffffffffn, offset: 0n, file: '[kernel.kallsyms]', buildId: '',
  hasFunctions: true, hasFilenames: false, hasLineNumbers: false, hasInlineFrames: false,
};

/** addr → frames (innermost first), looked up like the Symbolizer: return addresses at addr − 1. */
const USER: Record<number, Array<[string, string, number]>> = {
  0x401000: [['main.leaf', '/src/a.go', 10], ['main.mid', '/src/a.go', 20], ['main.outer', '/src/a.go', 30]], // inlined
  0x401fff: [['main.main', '/src/main.go', 5]],
  0x402000: [['main.other', '/src/b.go', 7]],
};

const resolver: StackResolver = {
  resolveUser(_pid, stack): ResolvedLocation[] {
    return stack.map((pc, i) => {
      const a = i === 0 ? pc : pc - 1;
      const frames = USER[a] ?? [];
      return { mapping: a >= 0x400000 && a < 0x500000 ? exe : undefined, address: BigInt(a), frames: frames.map(([f, file, line]) => ({ function: f, file, line })) };
    });
  },
  resolveKernel(stack): ResolvedLocation[] {
    return stack.map((a, i) => {
      const addr = BigInt.asUintN(64, BigInt(a)) - (i === 0 ? 0n : 1n);
      return { mapping: kernel, address: addr, frames: [{ function: addr < 0xffffffff81001000n ? 'do_syscall_64' : 'entry_SYSCALL_64', file: '', line: 0 }] };
    });
  },
};

function sample(over: Partial<RawSample>): RawSample {
  return { pid: 100, tid: 101, cpu: 0, comm: 'app', goid: 7, timeNs: 0n, userStack: [0x401000, 0x402000], kernelStack: [], ...over };
}

function names(p: Profile, locId: number): string[] {
  const loc = p.location.find((l) => l.id === locId)!;
  return loc.line.map((l) => p.stringTable[p.function.find((f) => f.id === l.functionId)!.name]!);
}

test('aggregates samples by stack and labels; CPU sample types, period and times', async () => {
  const b = new ProfileBuilder({ resolver, hz: 99, startTimeNs: 1_000_000_000_000n });
  b.add([sample({}), sample({}), sample({ tid: 102 }), sample({ goid: undefined, comm: 'other' })]);
  b.add([sample({ kernelStack: [Number(BigInt.asIntN(64, 0xffffffff81000010n)), Number(BigInt.asIntN(64, 0xffffffff81002001n))] })]);
  const p = b.build(1_000_000_000_000n + 3_000_000_000n);
  assert.deepEqual(profileProblems(p), []);
  const s = (i: number): string => p.stringTable[i]!;
  assert.equal(p.stringTable[0], '');
  assert.deepEqual(p.sampleType.map((t) => `${s(t.type)}/${s(t.unit)}`), ['samples/count', 'cpu/nanoseconds']);
  assert.equal(`${s(p.periodType!.type)}/${s(p.periodType!.unit)}`, 'cpu/nanoseconds');
  assert.equal(p.period, 10101010);
  assert.equal(p.timeNanos, 1_000_000_000_000n);
  assert.equal(p.durationNanos, 3_000_000_000n);
  assert.equal(b.sampleCount, 5);
  assert.equal(p.sample.length, 4, 'the two identical samples are one');
  const first = p.sample[0]!;
  assert.deepEqual(first.value, [2, 2 * 10101010]);
  const labels = (x: typeof first): Record<string, string | number> =>
    Object.fromEntries(x.label.map((l) => [s(l.key), l.str ? s(l.str) : l.num]));
  assert.deepEqual(labels(first), { pid: 100, tid: 101, goid: 7, comm: 'app' });
  assert.deepEqual(labels(p.sample[2]!), { pid: 100, tid: 101, comm: 'other' }, 'no goid label when goid is undefined');
  // Leaf first: the inlined chain at one location (innermost first), then its caller.
  assert.deepEqual(first.locationId.map((id) => names(p, id)), [['main.leaf', 'main.mid', 'main.outer'], ['main.main']]);
  // Kernel frames come before (leaf-ward of) the user frames, and sit in the kernel mapping.
  const withKernel = p.sample[3]!;
  assert.deepEqual(withKernel.locationId.map((id) => names(p, id)[0]), ['do_syscall_64', 'entry_SYSCALL_64', 'main.leaf', 'main.main']);
  const kloc = p.location.find((l) => l.id === withKernel.locationId[0])!;
  assert.equal(s(p.mapping.find((m) => m.id === kloc.mappingId)!.filename), '[kernel.kallsyms]');
  assert.equal(kloc.address, 0xffffffff81000010n);
  assert.equal(p.location.find((l) => l.id === withKernel.locationId[1])!.address, 0xffffffff81002000n);
  // Locations deduplicated by (mapping, address); functions by (name, file); mappings by key.
  assert.equal(p.location.length, 4);
  assert.equal(p.function.length, 6);
  assert.equal(p.mapping.length, 2);
  const m = p.mapping.find((x) => s(x.filename) === '/bin/app')!;
  assert.deepEqual([m.hasFunctions, m.hasFilenames, m.hasLineNumbers, m.hasInlineFrames, s(m.buildId)], [true, true, true, true, 'abc']);
  // Lines carry the line numbers, functions their files; system_name = name.
  const leafLoc = p.location.find((l) => l.id === first.locationId[0])!;
  assert.deepEqual(leafLoc.line.map((l) => l.line), [10, 20, 30]);
  const fn = p.function.find((f) => s(f.name) === 'main.mid')!;
  assert.equal(s(fn.filename), '/src/a.go');
  assert.equal(fn.systemName, fn.name);

  // Survives gzip + protobuf.
  const back = decodePprof(await encodePprof(p));
  assert.deepEqual(back, p);
});

test('unknown addresses stay address-only; samples without a mapping too', () => {
  const b = new ProfileBuilder({ resolver, hz: 100, processLabels: (pid) => (pid === 100 ? { container_id: 'c0ffee' } : undefined) });
  b.add([sample({ userStack: [0x1234, 0x403001] })]);
  const p = b.build();
  assert.deepEqual(profileProblems(p), []);
  const [a, c] = p.sample[0]!.locationId.map((id) => p.location.find((l) => l.id === id)!);
  assert.deepEqual([a!.mappingId, a!.address, a!.line], [0, 0x1234n, []]);
  assert.equal(c!.address, 0x403000n);
  assert.notEqual(c!.mappingId, 0);
  assert.deepEqual(c!.line, []);
  assert.equal(p.period, 10_000_000);
  const lab = p.sample[0]!.label.find((l) => p.stringTable[l.key] === 'container_id')!;
  assert.equal(p.stringTable[lab.str], 'c0ffee');
});

test('hz must be positive', () => {
  assert.throws(() => new ProfileBuilder({ resolver, hz: 0 }), RangeError);
});

/** The table resolver with epochs: counts its calls, and answers differently once told to (a new epoch). */
function epochResolver(): StackResolver & { calls: number; renamed: boolean; epoch: number } {
  const r = {
    calls: 0,
    renamed: false,
    epoch: 1,
    resolveUser(pid: number, stack: readonly number[]): ResolvedLocation[] {
      r.calls++;
      const locs = resolver.resolveUser(pid, stack);
      return r.renamed ? locs.map((l) => ({ ...l, address: l.address + 0x100000n, frames: l.frames.map((f) => ({ ...f, function: `${f.function}.v2` })) })) : locs;
    },
    resolveKernel(stack: ReadonlyArray<number | bigint>): ResolvedLocation[] {
      r.calls++;
      return resolver.resolveKernel(stack);
    },
    userEpoch: (): number => r.epoch,
    kernelEpoch: (): number => 1,
  };
  return r;
}

test('with resolver epochs, a repeated stack is resolved once per epoch and the profile is the same', () => {
  const kernelStack = [Number(BigInt.asIntN(64, 0xffffffff81000010n))];
  const batch = [
    sample({}),
    sample({}),
    sample({ tid: 102 }),
    sample({ kernelStack }),
    sample({ kernelStack }),
    sample({ goid: undefined, comm: 'other' }),
    sample({ userStack: [0x401000, 0x402000, 0x1234] }),
    sample({}),
  ];
  const plain = new ProfileBuilder({ resolver, hz: 99, startTimeNs: 1n });
  const r = epochResolver();
  const cached = new ProfileBuilder({ resolver: r, hz: 99, startTimeNs: 1n });
  plain.add(batch);
  plain.add(batch);
  cached.add(batch);
  cached.add(batch);
  assert.deepEqual(cached.build(2n), plain.build(2n));
  // Five distinct raw samples (one with a kernel stack: two calls), each resolved once.
  assert.equal(r.calls, 6);

  // A new epoch: the same stacks are resolved again and the new answers count from then on.
  r.renamed = true;
  r.epoch = 2;
  cached.add([sample({})]);
  assert.equal(r.calls, 7);
  const p = cached.build(3n);
  const fnNames = (s: Profile['sample'][number]): string[] => s.locationId.map((id) => names(p, id).join('+'));
  const v2 = p.sample.filter((s) => fnNames(s)[0]!.endsWith('.v2'));
  assert.equal(v2.length, 1);
  assert.deepEqual(v2[0]!.value, [1, 10101010]);
  assert.equal(p.sample.find((s) => fnNames(s)[0] === 'main.leaf+main.mid+main.outer')!.value[0], 6, 'the earlier samples keep their answer');
});

test('a record with a count adds that many samples, the same as the samples one by one', () => {
  for (const r of [resolver, epochResolver()]) {
    const one = new ProfileBuilder({ resolver: r, hz: 99, startTimeNs: 1n });
    one.add([sample({}), sample({}), sample({}), sample({ tid: 102 })]);
    const counted = new ProfileBuilder({ resolver: r, hz: 99, startTimeNs: 1n });
    counted.add([sample({ count: 3, timeNs: 5n }), sample({ tid: 102 })]);
    assert.equal(counted.sampleCount, 4);
    const p = counted.build(2n);
    assert.deepEqual(p, one.build(2n));
    assert.deepEqual(p.sample.map((s) => s.value).sort(), [[1, 10101010], [3, 30303030]]);
  }
});

test('with resolver epochs, off-CPU weights and states add up as without', () => {
  const off = (state: 'blocked' | 'runnable', weightNs: number): RawSample =>
    sample({ offCpu: { weightNs, startNs: 0n, state } });
  const batch = [off('blocked', 5), off('blocked', 7), off('runnable', 11), off('blocked', 13)];
  const plain = new ProfileBuilder({ resolver, hz: 99, kind: 'offcpu', startTimeNs: 1n });
  const cached = new ProfileBuilder({ resolver: epochResolver(), hz: 99, kind: 'offcpu', startTimeNs: 1n });
  plain.add(batch);
  cached.add(batch);
  const p = cached.build(2n);
  assert.deepEqual(p, plain.build(2n));
  assert.deepEqual(p.sample.map((s) => s.value), [[3, 25], [1, 11]]);
});
