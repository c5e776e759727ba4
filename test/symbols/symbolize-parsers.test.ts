// /proc/kallsyms tables under the symbolizer (the live tests check them against the real file; these pin down
// the awkward cases). /proc/PID/maps parsing is tested with src/proc in test/proc/maps.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ElfFile } from '../../src/gosym/elf';
import { KernelSymbols, kernelAddress } from '../../src/symbols/kallsyms';
import { NativeSymbols } from '../../src/symbols/native-elf';
import { sortedOrder } from '../../src/symbols/sorted';
import { Symbolizer } from '../../src/symbols/symbolizer';

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

test('kallsyms: a file of many chunks, out of order, with an overlong line and no final newline', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-kallsyms-'));
  try {
    const file = path.join(dir, 'kallsyms');
    const lines: string[] = [];
    const want = new Map<bigint, { name: string; module: string | undefined }>();
    for (let i = 0; i < 6000; i++) {
      const addr = 0xffffffff81000000n + BigInt(((i * 7919) % 6000) * 0x40); // a permutation: out of order
      const name = `fn_${i}_${'x'.repeat(i % 50)}`;
      const module = i % 3 === 0 ? `mod${i % 7}` : undefined;
      lines.push(`${addr.toString(16)} ${i % 2 ? 't' : 'T'} ${name}${module ? `\t[${module}]` : ''}`);
      want.set(addr, { name, module });
      if (i === 3000) lines.push('y'.repeat(100_000)); // longer than a read: skipped, parsing resumes after it
    }
    fs.writeFileSync(file, lines.join('\n')); // no newline after the last line
    const k = new KernelSymbols(file);
    k.load();
    assert.equal(k.size, 6000);
    for (const [addr, w] of want) {
      assert.deepEqual(k.lookup(addr + 0x3fn), { ...w, start: addr }, `0x${addr.toString(16)}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('Symbolizer.refreshKernel: reads kallsyms before any lookup, and again only once half its maximum age has passed', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-kallsyms-'));
  const file = path.join(dir, 'kallsyms');
  const sym = new Symbolizer({ kallsymsPath: file, kallsymsMaxAgeMs: 400 });
  try {
    fs.writeFileSync(file, 'ffffffff81000000 T first\n');
    sym.refreshKernel();
    assert.equal(sym.stats().kernelSymbols, 1, 'read at once, before any stack asked for it');
    const epoch = sym.kernelEpoch();
    fs.writeFileSync(file, 'ffffffff81000000 T first\nffffffff81001000 T second\n');
    sym.refreshKernel();
    assert.deepEqual([sym.stats().kernelSymbols, sym.kernelEpoch()], [1, epoch], 'fresh: not read again');
    const until = Date.now() + 250;
    while (Date.now() < until); // past half the maximum age
    sym.refreshKernel();
    assert.equal(sym.stats().kernelSymbols, 2);
    assert.notEqual(sym.kernelEpoch(), epoch, 'cached kernel locations are dropped with the old table');
    assert.equal(sym.resolveKernel([0xffffffff81001010n])[0]!.frames[0]!.function, 'second');
  } finally {
    sym.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('kernel addresses from the sampler: bigint, signed view, small numbers', () => {
  assert.equal(kernelAddress(0xffffffff81000010n), 0xffffffff81000010n);
  assert.equal(kernelAddress(-0x7efffff0n), 0xffffffff81000010n);
  assert.equal(kernelAddress(Number(BigInt.asIntN(64, 0xffffffff81000010n))), 0xffffffff81000010n, 'negative number: exact');
  assert.equal(kernelAddress(0x1234), 0x1234n);
});

test('sortedOrder: indexes by value, equal values in index order, over small and 2^52 ranges', () => {
  let seed = 7;
  const rand = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (const [n, range] of [[0, 1], [1, 1], [2, 1], [1000, 10], [20_000, 2 ** 20], [5000, 2 ** 40], [3000, 2 ** 52]] as const) {
    const value = new Float64Array(n);
    for (let i = 0; i < n; i++) value[i] = 2 ** 40 + Math.floor(rand() * range);
    const want = Array.from({ length: n }, (_, i) => i).sort((a, b) => value[a]! - value[b]! || a - b);
    assert.deepEqual([...sortedOrder(value, n)], want, `${n} values below ${range}`);
  }
  const sorted = Float64Array.from([1, 2, 2, 3]);
  assert.deepEqual([...sortedOrder(sorted, 4)], [0, 1, 2, 3]);
  assert.deepEqual([...sortedOrder(Float64Array.from([5, 5, 1, 5]), 3)], [2, 0, 1], 'only the first n count');
});

test('native symbols of libc: every function address nm lists names the best of its aliases', () => {
  const libc = ['/lib/x86_64-linux-gnu/libc.so.6', '/lib/aarch64-linux-gnu/libc.so.6'].find((f) => fs.existsSync(f));
  if (!libc) return;
  // nm: address → names of defined functions (T/t/W/w/i) in .symtab and .dynsym.
  const names = new Map<number, Set<string>>();
  for (const flags of [['--defined-only'], ['-D', '--defined-only']]) {
    const out = spawnSync('nm', [...flags, libc], { encoding: 'utf8', maxBuffer: 1 << 28 }).stdout;
    for (const line of out.split('\n')) {
      const m = /^([0-9a-f]+) [TtWwi] (\S+)$/.exec(line);
      if (!m || m[1] === '0'.repeat(m[1]!.length)) continue;
      const addr = parseInt(m[1]!, 16);
      const name = m[2]!.replace(/@.*$/, '');
      if (!names.has(addr)) names.set(addr, new Set());
      names.get(addr)!.add(name);
    }
  }
  const best = (a: string, b: string): string => {
    const ua = /^_*/.exec(a)![0].length;
    const ub = /^_*/.exec(b)![0].length;
    if (ua !== ub) return ua < ub ? a : b;
    if (a.length !== b.length) return a.length < b.length ? a : b;
    return a < b ? a : b;
  };
  const elf = ElfFile.open(libc);
  try {
    const syms = NativeSymbols.fromElf(elf);
    assert.ok(syms.size > 1000, `${syms.size} functions in ${libc}`);
    let compared = 0;
    for (const [addr, set] of names) {
      const got = syms.lookup(addr);
      assert.ok(got, `nothing at 0x${addr.toString(16)} (nm: ${[...set].join(', ')})`);
      assert.equal(got.start, addr);
      assert.equal(got.name, [...set].reduce(best), `at 0x${addr.toString(16)}`);
      compared++;
    }
    assert.ok(compared > 1000);
  } finally {
    elf.close();
  }
});
