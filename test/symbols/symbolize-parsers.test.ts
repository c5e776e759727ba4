// /proc/kallsyms tables under the symbolizer (the live tests check them against the real file; these pin down
// the awkward cases). /proc/PID/maps parsing is tested with src/proc in test/proc/maps.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KernelSymbols, kernelAddress } from '../../src/symbols/kallsyms';

test('kallsyms: text symbols only, modules, sorted lookups; zeroed addresses give an empty table', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-kallsyms-'));
  try {
    const file = path.join(dir, 'kallsyms');
    fs.writeFileSync(file, [
      'ffffffff81000000 T _stext',
      'ffffffff81000000 T _text',
      'ffffffff81001000 t helper',
      'ffffffff81002000 D some_data',
      'ffffffff81003000 W weak_fn',
      'ffffffffc0a00000 t mod_fn\t[nf_tables]',
      'ffffffffc0b00000 t bpf_prog_6deef7357e7b4530_sd_fw_ingress\t[bpf]',
      'ffffffff81000500 T late_in_file',
      '',
    ].join('\n'));
    const k = new KernelSymbols(file);
    k.load();
    assert.equal(k.size, 7);
    assert.equal(k.lookup(0xffffffff81000010n)?.name.startsWith('_'), true);
    assert.equal(k.lookup(0xffffffff81000600n)?.name, 'late_in_file');
    assert.equal(k.lookup(0xffffffff81002100n)?.name, 'helper', 'data symbols do not end functions');
    assert.deepEqual(k.lookup(0xffffffffc0a00010n), { name: 'mod_fn', module: 'nf_tables', start: 0xffffffffc0a00000n });
    assert.equal(k.lookup(0xffffffffc0b00001n)?.module, 'bpf');
    assert.equal(k.lookup(0xffffffff80000000n), undefined, 'below the first symbol');
    assert.equal(k.lookup(0x401000n), undefined, 'not a kernel address');
    assert.deepEqual(k.range(), { start: 0xffffffff81000000n, end: 0xffffffffc0b00000n });

    fs.writeFileSync(file, '0000000000000000 T _stext\n0000000000000000 t helper\n');
    const zeroed = new KernelSymbols(file);
    assert.equal(zeroed.lookup(0xffffffff81000010n), undefined);
    assert.equal(zeroed.size, 0);
    assert.equal(new KernelSymbols(path.join(dir, 'missing')).lookup(0xffffffff81000010n), undefined);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('kernel addresses from the sampler: bigint, signed view, small numbers', () => {
  assert.equal(kernelAddress(0xffffffff81000010n), 0xffffffff81000010n);
  assert.equal(kernelAddress(-0x7efffff0n), 0xffffffff81000010n);
  assert.equal(kernelAddress(Number(BigInt.asIntN(64, 0xffffffff81000010n))), 0xffffffff81000010n, 'negative number: exact');
  assert.equal(kernelAddress(0x1234), 0x1234n);
});
