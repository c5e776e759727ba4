import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';

import { GoBinary } from '../../src/gosym/binary';
import { openExecutable, resolveExecutable } from '../../src/proc/exe';
import { buildFixture, newestToolchain } from '../support/go-toolchains';
import { firstLine, kill, rootTest, start } from './support';

test('this process: the path it has, opened through the kernel\'s link, keyed by the file', () => {
  const exe = resolveExecutable(process.pid);
  assert.ok(exe);
  const real = fs.realpathSync(process.execPath);
  assert.equal(exe.path, real);
  const elf = openExecutable(exe);
  const fd = (elf.source as unknown as { fd: number }).fd;
  assert.equal(fs.readlinkSync(`/proc/self/fd/${fd}`), real, 'the descriptor is the executable');
  elf.close();
  assert.equal(exe.deleted, false);
  assert.equal(exe.otherMountNamespace, false);
  const st = fs.statSync(real);
  assert.deepEqual([exe.dev, exe.inode, exe.size], [st.dev, st.ino, st.size]);
  assert.equal(resolveExecutable(2), undefined, 'a kernel thread has no executable');
  assert.equal(resolveExecutable(0x7ffffff0), undefined);
});

function tmpCopy(src: string): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-exe-'));
  const file = path.join(dir, 'hot');
  fs.copyFileSync(src, file);
  fs.chmodSync(file, 0o755);
  return { dir, file };
}

rootTest('a deleted binary is read through /proc/PID/exe, and is still the same Go binary', async () => {
  const fixture = buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' });
  const { dir, file } = tmpCopy(fixture);
  const original = GoBinary.open(fixture);
  const child = start(file, ['-framed', '0', '-sleeper', '0']);
  try {
    await firstLine(child);
    const before = resolveExecutable(child.pid!);
    assert.ok(before);
    assert.deepEqual([before.deleted, before.path], [false, file]);
    fs.unlinkSync(file);
    const after = resolveExecutable(child.pid!);
    assert.ok(after);
    assert.equal(after.path, file);
    assert.equal(after.deleted, true);
    assert.equal(after.inode, before.inode, 'the same file');
    const bin = new GoBinary(openExecutable(after));
    try {
      assert.equal(bin.buildId, original.buildId);
      assert.equal(bin.pcln.nfunc, original.pcln.nfunc);
    } finally {
      bin.close();
    }
  } finally {
    original.close();
    await kill(child);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

rootTest('a binary replaced under its path is not confused with the new file', async () => {
  const fixture = buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' });
  const { dir, file } = tmpCopy(fixture);
  const child = start(file, ['-framed', '0', '-sleeper', '0']);
  try {
    await firstLine(child);
    const before = resolveExecutable(child.pid!);
    assert.ok(before);
    fs.writeFileSync(file + '.new', 'not the program');
    fs.renameSync(file + '.new', file); // what a package upgrade does
    const after = resolveExecutable(child.pid!);
    assert.ok(after);
    assert.equal(after.deleted, true);
    assert.equal(after.inode, before.inode);
    assert.equal(after.key, before.key);
    const [a, b] = [new GoBinary(openExecutable(after)), GoBinary.open(fixture)];
    try {
      assert.equal(a.buildId, b.buildId);
    } finally {
      a.close();
      b.close();
    }
  } finally {
    await kill(child);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

rootTest('a process in another mount namespace: its path does not exist here, /proc/PID/root reaches it', async () => {
  const fixture = buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-ns-'));
  const inner = path.join(dir, 'mnt');
  fs.mkdirSync(inner);
  // A private mount namespace with a tmpfs over `inner`: the copy of the binary exists only in there.
  const script = `mount -t tmpfs qf-test "${inner}" && cp "${fixture}" "${inner}/hot" && exec "${inner}/hot" -framed 0 -sleeper 0`;
  const child = start('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script]);
  try {
    const line = JSON.parse(await firstLine(child)) as { pid: number };
    assert.equal(line.pid, child.pid, 'unshare and sh exec into the program');
    assert.equal(fs.existsSync(path.join(inner, 'hot')), false, 'not visible from the agent mount namespace');
    const exe = resolveExecutable(child.pid!);
    assert.ok(exe);
    assert.equal(exe.path, path.join(inner, 'hot'));
    assert.equal(exe.otherMountNamespace, true);
    const [bin, orig] = [new GoBinary(openExecutable(exe)), GoBinary.open(fixture)];
    try {
      assert.equal(bin.buildId, orig.buildId);
    } finally {
      bin.close();
      orig.close();
    }
  } finally {
    await kill(child);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
