// Folded stacks: exact text.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldedStacks } from '../../src/profile/folded';
import { Profile } from '../../src/profile/pprof';

// Strings: 1 samples 2 count 3 cpu 4 nanoseconds 5 main.leaf 6 main.mid 7 main.outer 8 main.main 9 do_syscall_64
// 10 [kernel.kallsyms] 11 /bin/app 12 comm 13 app 14 pid 15 odd;name
const strings = ['', 'samples', 'count', 'cpu', 'nanoseconds', 'main.leaf', 'main.mid', 'main.outer', 'main.main', 'do_syscall_64', '[kernel.kallsyms]', '/bin/app', 'comm', 'app', 'pid', 'odd;name'];

const fn = (id: number, name: number) => ({ id, name, systemName: name, filename: 0, startLine: 0 });
const mapping = (id: number, filename: number) => ({
  id, memoryStart: 0n, memoryLimit: 0n, fileOffset: 0n, filename, buildId: 0,
  hasFunctions: true, hasFilenames: false, hasLineNumbers: false, hasInlineFrames: false,
});
const loc = (id: number, mappingId: number, address: bigint, fns: number[]) => ({
  id, mappingId, address, isFolded: false, line: fns.map((functionId) => ({ functionId, line: 0, column: 0 })),
});
const labels = [{ key: 14, str: 0, num: 1, numUnit: 0 }, { key: 12, str: 13, num: 0, numUnit: 0 }];

const profile: Profile = {
  sampleType: [{ type: 1, unit: 2 }, { type: 3, unit: 4 }],
  sample: [
    { locationId: [1, 2], value: [3, 30], label: labels }, // leaf ← mid ← outer (inlined at loc 1), ← main
    { locationId: [4, 1, 2], value: [2, 20], label: labels }, // kernel on top
    { locationId: [5, 2], value: [1, 10], label: labels }, // unknown address
    { locationId: [1, 2], value: [4, 40], label: labels }, // same stack again: summed
    { locationId: [6], value: [0, 0], label: labels }, // zero: left out
  ],
  mapping: [mapping(1, 11), mapping(2, 10)],
  location: [loc(1, 1, 0x401000n, [1, 2, 3]), loc(2, 1, 0x401fffn, [4]), loc(4, 2, 0xffffffff81000010n, [5]), loc(5, 1, 0x4abcdefn, []), loc(6, 1, 0x1n, [6])],
  function: [fn(1, 5), fn(2, 6), fn(3, 7), fn(4, 8), fn(5, 9), fn(6, 15)],
  stringTable: strings,
  dropFrames: 0, keepFrames: 0, timeNanos: 0n, durationNanos: 0n,
  periodType: { type: 3, unit: 4 }, period: 10, comment: [], defaultSampleType: 0, docUrl: 0,
};

test('folded stacks: root first, inlined frames expanded, summed, sorted', () => {
  assert.equal(
    foldedStacks(profile),
    'main.main;0x4abcdef 1\n' +
      'main.main;main.outer;main.mid;main.leaf 7\n' +
      'main.main;main.outer;main.mid;main.leaf;do_syscall_64 2\n',
  );
});

test('folded stacks: other value, comm root, kernel suffix, separators in names', () => {
  assert.equal(
    foldedStacks(profile, { valueIndex: 1, commRoot: true, kernelSuffix: true }),
    'app;main.main;0x4abcdef 10\n' +
      'app;main.main;main.outer;main.mid;main.leaf 70\n' +
      'app;main.main;main.outer;main.mid;main.leaf;do_syscall_64_[k] 20\n',
  );
  const withOdd = { ...profile, sample: [{ locationId: [6], value: [5, 50], label: labels }] };
  assert.equal(foldedStacks(withOdd), 'odd:name 5\n');
  assert.equal(foldedStacks({ ...profile, sample: [] }), '');
  assert.throws(() => foldedStacks(profile, { valueIndex: 2 }), RangeError);
});
