// Opening files of a process in a container (a tmpfs root in its own mount namespace, made here): paths resolve
// inside its root only, FIFOs and other non-regular files are refused at once, and a descriptor must be the file
// the process has mapped (device and inode from /proc/PID/maps).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { readMaps } from '../../src/proc/maps';
import { openInProcessRoot, openMappedFile, RefusedFileError } from '../../src/proc/open-mapped';
import { runContained } from '../support/contained';
import { buildFixture, newestToolchain } from '../support/go-toolchains';
import { rootTest } from './support';

function fdTarget(fd: number): string {
  return fs.readlinkSync(`/proc/self/fd/${fd}`);
}

rootTest('paths resolve inside the process root: symlinks to host files lead nowhere, FIFOs are refused at once', async () => {
  const binary = buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-root-'));
  const secret = path.join(dir, 'host-secret');
  fs.writeFileSync(secret, 'a host file');
  const c = await runContained(binary);
  try {
    assert.equal(fs.existsSync(`${c.root}${secret}`), false, 'the host file is not in the container');
    fs.symlinkSync(secret, `${c.root}/abs`);
    fs.symlinkSync(`../../../../../../..${secret}`, `${c.root}/rel`);
    // The attack is real: a plain open through /proc/PID/root follows the absolute link to the host's file.
    const naive = fs.openSync(`${c.root}/abs`, 'r');
    assert.equal(fdTarget(naive), secret);
    fs.closeSync(naive);
    for (const p of ['/abs', '/rel', secret, '/proc/self/root/etc/passwd']) {
      const src = openInProcessRoot(c.pid, p);
      assert.equal(src, undefined, `${p} opens nothing inside the container`);
    }
    fs.writeFileSync(`${c.root}/real`, 'in the container');
    fs.symlinkSync('/real', `${c.root}/to-real`);
    const ok = openInProcessRoot(c.pid, '/to-real');
    assert.ok(ok, 'a symlink inside the container resolves inside it');
    assert.equal(ok.read(0, 16).toString(), 'in the container');
    ok.close();
    assert.equal(spawnSync('mkfifo', [`${c.root}/fifo`]).status, 0);
    assert.equal(openInProcessRoot(c.pid, '/fifo'), undefined, 'a FIFO (nobody writing) is not waited on');
  } finally {
    await c.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

rootTest('a mapped file is opened only as the very inode mapped; a swapped path is refused naming the pid', async () => {
  const binary = buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' });
  const c = await runContained(binary);
  try {
    const maps = readMaps(c.pid);
    assert.ok(maps);
    const text = maps.find((m) => m.path.endsWith('/app') && m.perms[2] === 'x');
    assert.ok(text, JSON.stringify(maps.slice(0, 4)));
    for (const opts of [{ mapFiles: true }, { mapFiles: false, isExe: true }]) {
      const got = openMappedFile(c.pid, text, opts);
      assert.ok(got, JSON.stringify(opts));
      const st = fs.fstatSync((got.source as unknown as { fd: number }).fd);
      assert.equal(st.ino, text.inode);
      got.source.close();
    }
    // By path inside the root (what is left without CAP_SYS_ADMIN for a library): first the right file…
    const byPath = { ...text, path: '/app' };
    const same = openMappedFile(c.pid, byPath, { mapFiles: false });
    assert.equal(same?.how, 'root');
    same?.source.close();
    // …then another file at that path, then a FIFO: refused, and the message names the pid and the problem.
    fs.writeFileSync(`${c.root}/app.new`, 'something else');
    fs.renameSync(`${c.root}/app.new`, `${c.root}/app`);
    assert.throws(() => openMappedFile(c.pid, byPath, { mapFiles: false }), (e: Error) => e instanceof RefusedFileError && new RegExp(`^pid ${c.pid}: /app \\(via root\\) is not the file it has mapped`).test(e.message));
    fs.rmSync(`${c.root}/app`);
    assert.equal(spawnSync('mkfifo', [`${c.root}/app`]).status, 0);
    assert.throws(() => openMappedFile(c.pid, byPath, { mapFiles: false }), (e: Error) => e instanceof RefusedFileError && e.message.startsWith(`pid ${c.pid}: /app is a FIFO`));
    // The kernel's own links still give the mapped file.
    const still = openMappedFile(c.pid, text, { mapFiles: false, isExe: true });
    assert.equal(still?.how, 'exe');
    still?.source.close();
  } finally {
    await c.kill();
  }
});

rootTest('in a worker thread, descriptors opened inside a process root close quietly (the reader thread opens them there)', async () => {
  // Node's fs.closeSync in a worker warns of any descriptor the thread did not open through fs: openInRoot's are
  // closed natively. What the worker does: open its own executable by path inside its root (kept, then closed),
  // and a file that is not the mapped one (refused and closed at once).
  const script = `
    const { parentPort } = require('node:worker_threads');
    const { readMaps } = require(${JSON.stringify(path.resolve(__dirname, '../../src/proc/maps'))});
    const { openInProcessRoot, openMappedFile } = require(${JSON.stringify(path.resolve(__dirname, '../../src/proc/open-mapped'))});
    const warnings = [];
    process.on('warning', (w) => warnings.push(w.message));
    const exe = readMaps(process.pid).find((m) => m.perms[2] === 'x' && m.path === process.execPath);
    const kept = openMappedFile(process.pid, exe, { mapFiles: false });
    const how = kept && kept.how;
    kept.source.close();
    let refused = '';
    try { openMappedFile(process.pid, { ...exe, path: '/etc/hostname' }, { mapFiles: false }); } catch (e) { refused = e.message; }
    openInProcessRoot(process.pid, '/etc/hostname').close();
    openInProcessRoot(process.pid, '/dev/null');
    setTimeout(() => parentPort.postMessage({ how, refused, warnings }), 50);
  `;
  const { Worker } = await import('node:worker_threads');
  const w = new Worker(script, { eval: true });
  const got = await new Promise<{ how: string; refused: string; warnings: string[] }>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  await w.terminate();
  assert.equal(got.how, 'root');
  assert.match(got.refused, /is not the file it has mapped/);
  assert.deepEqual(got.warnings, []);
});

rootTest('a mapping the process no longer has (it exec\'d or exited since) is not read, and not reported as refused', () => {
  const exe = readMaps(process.pid)?.find((m) => m.perms[2] === 'x' && m.path === process.execPath);
  assert.ok(exe, 'this process maps its executable');
  // The same file, at an address this process does not map: what a process that exec'd again leaves behind.
  const stale = { ...exe, start: exe.start + 2 ** 40, end: exe.end + 2 ** 40 };
  for (const opts of [{ mapFiles: true }, { mapFiles: false }]) {
    assert.equal(openMappedFile(process.pid, stale, opts), undefined, JSON.stringify(opts));
  }
  // Still there: read.
  const got = openMappedFile(process.pid, exe, { mapFiles: false });
  assert.equal(got?.how, 'root');
  got?.source.close();
});
