// A new Go binary read on the reader thread hands its pclntab over with the answer: the symbolizer, which opens the
// same binary right after (its processes' samples), shares those bytes instead of reading a second copy. Checked by
// counting the big reads of the main thread, against the same open of a copy of the file that nobody read.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileSource } from '../../src/gosym/bytes';
import { GoBinary } from '../../src/gosym/binary';
import { resolveExecutable } from '../../src/proc/exe';
import { ReaderThread } from '../../src/symbols/reader-thread';
import { buildFixture, newestToolchain } from '../support/go-toolchains';

/** Reads of at least 64 KiB made on this thread while fn runs. */
function bigReads(fn: () => void): number {
  const read = FileSource.prototype.read;
  let n = 0;
  FileSource.prototype.read = function (this: FileSource, offset: number, length: number): Buffer {
    if (length >= 64 << 10) n++;
    return read.call(this, offset, length);
  };
  try {
    fn();
  } finally {
    FileSource.prototype.read = read;
  }
  return n;
}

test("the reader thread's pclntab read is shared with the symbolizer's open of the same binary", async () => {
  const binary = buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-handover-'));
  const copy = path.join(dir, 'hot-copy');
  fs.copyFileSync(binary, copy);
  const proc = spawn(binary, ['-leaf', '0', '-framed', '0', '-sleeper', '1'], { stdio: 'ignore' });
  const reader = new ReaderThread({ idleMs: 1000 });
  try {
    let exe = resolveExecutable(proc.pid!);
    for (let i = 0; i < 100 && (exe === undefined || exe.path !== binary); i++) {
      await new Promise((r) => setTimeout(r, 20));
      exe = resolveExecutable(proc.pid!);
    }
    assert.ok(exe, 'the fixture runs');
    const r = await reader.binaryInfo(exe, '/proc');
    if (r.kind !== 'go') assert.fail(`not read as Go: ${r.why}`);
    let bin: GoBinary | undefined;
    let control: GoBinary | undefined;
    try {
      const copyReads = bigReads(() => (control = GoBinary.open(copy)));
      assert.ok(copyReads >= 1, `the copy's pclntab is read here (${copyReads} big reads): the control works`);
      const reads = bigReads(() => (bin = GoBinary.open(binary)));
      assert.equal(reads, 0, 'the pclntab handed over by the reader thread is used, not read again');
      const names = (b: GoBinary): string[] => [0, 0x100, 0x1000].map((d) => b.frames(r.info.minpc + d).map((f) => f.function).join('|'));
      assert.deepEqual(names(bin!), names(control!), 'and it is the same table');
      assert.ok(names(bin!)[0] !== '', 'named');
    } finally {
      bin?.close();
      control?.close();
    }
  } finally {
    proc.kill('SIGKILL');
    await reader.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
