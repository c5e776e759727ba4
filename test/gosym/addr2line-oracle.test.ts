// Oracle 1: `quietflame addr2line` prints byte for byte what Go's own `go tool addr2line` (newest toolchain)
// prints, for every function entry and thousands of random .text addresses of every fixture build.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GoBinary } from '../../src/gosym/binary';
import { goToolAddr2line, newestToolchain } from '../support/go-toolchains';
import { build, fixtureMatrix } from '../support/matrix';
import { Rng } from '../support/random';
import { runCli } from '../support/cli';

const RANDOM_ADDRESSES = 4000;

function addressesOf(file: string, seed: number): string[] {
  const bin = GoBinary.open(file);
  try {
    const out: string[] = [];
    for (let i = 0; i < bin.pcln.nfunc; i++) out.push('0x' + bin.pcln.pcAt(i).toString(16));
    const text = bin.elf.section('.text');
    assert.ok(text, `${file}: no .text section`);
    const rng = new Rng(seed);
    for (let i = 0; i < RANDOM_ADDRESSES; i++) out.push('0x' + rng.int(text.addr, text.addr + text.size).toString(16));
    return out;
  } finally {
    bin.close();
  }
}

for (const b of fixtureMatrix(['inline', 'hot'])) {
  test(`addr2line matches go tool addr2line: ${b.label}`, { timeout: 10 * 60_000 }, () => {
    const file = build(b);
    const addrs = addressesOf(file, 1234);
    const input = addrs.join('\n') + '\n';
    const expected = goToolAddr2line(newestToolchain().goBin, file, addrs);
    const ours = runCli(['addr2line', file], input);
    assert.equal(ours.status, 0, ours.stderr);
    assert.ok(expected.split('\n').filter((l) => l === '?').length < addrs.length / 2, 'Go\'s tool could not read the binary; the oracle says nothing');
    if (ours.stdout !== expected) {
      const e = expected.split('\n');
      const o = ours.stdout.split('\n');
      const i = e.findIndex((l, k) => l !== o[k]);
      assert.fail(`first difference at ${addrs[Math.floor(i / 2)]}: go says ${JSON.stringify(e.slice(i - (i % 2), i - (i % 2) + 2))}, we say ${JSON.stringify(o.slice(i - (i % 2), i - (i % 2) + 2))}`);
    }
  });
}

test('addr2line input quirks match cmd/addr2line: 0x prefix, bad hex, reverse syntax, CRLF, no final newline', () => {
  const b = fixtureMatrix(['inline'])[0]!;
  const file = build(b);
  const lines = ['0x401000', '401000', 'zz', '0X401000', '', 'main.go:12', ' 0x401000', '0xffffffffffffffffff', '0x401000\r'];
  const input = lines.join('\n'); // no final newline on purpose
  const expected = goToolAddr2line(newestToolchain().goBin, file, lines);
  assert.equal(runCli(['addr2line', file], input).stdout, expected);
});
