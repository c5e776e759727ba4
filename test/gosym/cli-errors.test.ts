// Bad input to `quietflame addr2line`: exit 1 and one line naming the file and the problem; never a stack trace.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { CLI, runCli } from '../support/cli';
import { build } from '../support/matrix';
import { newestToolchain } from '../support/go-toolchains';
import { ElfFile } from '../../src/gosym/elf';

function expectOneLineError(args: string[], pattern: RegExp): void {
  const r = runCli(args, '0x401000\n', 60_000);
  assert.equal(r.status, 1, `exit ${r.status}; stderr: ${r.stderr}`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at |internal error/);
}

test('addr2line: missing file, directory, not ELF, not Go, truncated, corrupt table', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-cli-errors-'));
  try {
    const missing = path.join(dir, 'missing');
    expectOneLineError(['addr2line', missing], new RegExp(`${missing}: no such file`));
    expectOneLineError(['addr2line', dir], new RegExp(`${dir}: .*director`));
    const text = path.join(dir, 'text');
    fs.writeFileSync(text, 'hello, this is not an executable\n'.repeat(10));
    expectOneLineError(['addr2line', text], new RegExp(`${text}: not an ELF file`));
    expectOneLineError(['addr2line', '/bin/true'], /\/bin\/true: no Go symbol table/);
    const goodPath = build({ go: newestToolchain().version, fixture: 'inline', mode: 'plain', goarch: 'amd64', label: '' });
    const good = fs.readFileSync(goodPath);
    const truncated = path.join(dir, 'truncated');
    fs.writeFileSync(truncated, good.subarray(0, 1000));
    expectOneLineError(['addr2line', truncated], new RegExp(`${truncated}: .*(truncated|outside the file)`));
    const corrupt = path.join(dir, 'corrupt');
    const bytes = Buffer.from(good);
    const elf = ElfFile.open(goodPath);
    const at = elf.section('.gopclntab')!.offset;
    elf.close();
    assert.equal(bytes.readUInt32LE(at), 0xfffffff1, 'fixture has no go1.20+ pclntab header');
    bytes.writeBigUInt64LE(BigInt(bytes.length) * 4n, at + 8 + 3 * 8); // funcnametab offset far outside the table
    fs.writeFileSync(corrupt, bytes);
    expectOneLineError(['addr2line', corrupt], new RegExp(`${corrupt}: .*(pclntab|Go symbol table)`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('addr2line: usage errors exit 2, --help exits 0', () => {
  assert.equal(runCli(['addr2line']).status, 2);
  assert.equal(runCli(['addr2line', 'a', 'b']).status, 2);
  const help = runCli(['addr2line', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /usage: quietflame addr2line/);
  assert.equal(runCli(['frobnicate']).status, 2);
});

for (const stdin of ['a pipe', 'a file'] as const) {
  test(`addr2line: a reader that goes away early (| head) ends it quietly, exit 0, nothing on stderr (stdin ${stdin})`, async () => {
    const file = build({ go: newestToolchain().version, fixture: 'inline', mode: 'plain', goarch: 'amd64', label: '' });
    const input = '0x401000\n'.repeat(100_000); // ~8 MB of answers: far more than a pipe holds
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-head-'));
    const inputFile = path.join(dir, 'input');
    fs.writeFileSync(inputFile, input);
    const fd = fs.openSync(inputFile, 'r');
    try {
      const child = spawn(process.execPath, [CLI, 'addr2line', file], { stdio: [stdin === 'a file' ? fd : 'pipe', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
      child.stdout!.once('data', () => child.stdout!.destroy()); // read one chunk, then close our end of the pipe
      if (child.stdin) {
        child.stdin.on('error', () => {}); // it may stop reading before we stop writing
        child.stdin.end(input);
      }
      const status = await new Promise((r) => child.on('exit', r));
      assert.equal(stderr, '');
      assert.equal(status, 0);
    } finally {
      fs.closeSync(fd);
      fs.rmSync(dir, { recursive: true });
    }
  });
}
