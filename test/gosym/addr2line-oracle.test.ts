// Oracle 1: `quietflame addr2line` prints byte for byte what Go's own `go tool addr2line` (newest toolchain)
// prints, for every function entry and thousands of random .text addresses of every fixture build.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { GoBinary } from '../../src/gosym/binary';
import { goToolAddr2line, newestToolchain } from '../support/go-toolchains';
import { build, fixtureMatrix } from '../support/matrix';
import { Rng } from '../support/random';
import { CLI, runCli, runCliWithInputFile } from '../support/cli';

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

test('addr2line with a file on stdin (read in big reads, not streamed) answers as Go does and as through a pipe', () => {
  const file = build(fixtureMatrix(['inline'])[0]!);
  const quirks = ['0x401000', '401000', 'zz', '', 'main.go:12', '0xffffffffffffffffff', '0x401000\r'];
  const addrs = [...addressesOf(file, 7), ...quirks];
  const input = addrs.join('\n'); // no final newline
  const expected = goToolAddr2line(newestToolchain().goBin, file, addrs);
  const fromFile = runCliWithInputFile(['addr2line', file], input);
  assert.equal(fromFile.status, 0, fromFile.stderr);
  assert.equal(fromFile.stdout, expected);
  // A line longer than one read (1 MiB), where Go's bufio.Scanner gives up (64 KiB): the same answer either way.
  const long = ['0x401000', '0'.repeat(1.5 * 2 ** 20) + '401000', 'main.go:1', '0x401000'].join('\n') + '\n';
  const piped = runCli(['addr2line', file], long);
  assert.equal(piped.status, 0, piped.stderr);
  assert.equal(piped.stdout.split('\n').length, 2 * 3 + 1 + 1); // the reverse syntax is answered in one line
  assert.equal(runCliWithInputFile(['addr2line', file], long).stdout, piped.stdout);
  assert.deepEqual(runCliWithInputFile(['addr2line', file], ''), { status: 0, stdout: '', stderr: '' });
});

test('addr2line streams: a line split across writes, and a reader that waits for each answer before the next', async () => {
  const file = build(fixtureMatrix(['inline'])[0]!);
  const addrs = addressesOf(file, 99).slice(0, 5);
  const expected = goToolAddr2line(newestToolchain().goBin, file, addrs).split('\n');
  const child = spawn(process.execPath, [CLI, 'addr2line', file], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const waiters: Array<() => void> = [];
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
    waiters.splice(0).forEach((w) => w());
  });
  const answered = (lines: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer after 10 s; got ${JSON.stringify(out)}`)), 10_000);
      const check = (): void => {
        if (out.split('\n').length > lines) {
          clearTimeout(timer);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  for (let i = 0; i < addrs.length; i++) {
    const line = addrs[i]! + '\n';
    child.stdin.write(line.slice(0, 4)); // half a line, then the rest a moment later
    await new Promise((r) => setTimeout(r, 20));
    child.stdin.write(line.slice(4));
    await answered(2 * (i + 1));
    assert.equal(out, expected.slice(0, 2 * (i + 1)).join('\n') + '\n', `after ${addrs[i]}`);
  }
  child.stdin.end();
  const status = await new Promise((r) => child.on('exit', r));
  assert.equal(status, 0);
});
