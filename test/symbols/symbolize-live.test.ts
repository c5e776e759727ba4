// The symbolizer against the Go runtime: the inline fixture runs as a live process (held alive by a full stdout
// pipe, see symbolize-support.ts); its recorded PCs are symbolized through the per-process path — its
// /proc/PID/maps, map_files and load bias, read while it runs — and must give exactly the frames
// runtime.CallersFrames printed for them, inlined chains included. Then the process exits and the same answers
// must still come from the cached tables.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Symbolizer } from '../../src/symbols/symbolizer';
import { buildFixture, FixtureMode, newestToolchain } from '../support/go-toolchains';
import { asUserStack, holdProcess, parseInlineOutput, recordings, sleep, waitBlockedInWrite } from './symbolize-support';

const builds: Array<{ go: string; mode: FixtureMode }> = [];
for (const go of [newestToolchain().version, '1.19']) {
  for (const mode of ['plain', 'stripped-pie'] as const) builds.push({ go, mode });
}

for (const b of builds) {
  test(`live process: frames match runtime.CallersFrames (go${b.go} inline ${b.mode})`, { timeout: 10 * 60_000 }, async () => {
    const binary = buildFixture({ go: b.go, fixture: 'inline', mode: b.mode });
    const held = holdProcess(binary);
    const sym = new Symbolizer();
    try {
      // While it is alive: read its maps (the first resolve does) and symbolize nothing yet — the PCs are only
      // known from its output, which it cannot finish writing until we drain the pipe.
      sym.observeProcess(held.pid);
      assert.ok(held.alive(), 'the fixture exited before its maps were read');
      const maps = fs.readFileSync(`/proc/${held.pid}/maps`, 'utf8');
      assert.match(maps, /inline/);
      const { loadBias, lines } = parseInlineOutput(await held.finish());
      assert.ok(!held.alive());
      if (b.mode === 'stripped-pie') assert.notEqual(loadBias, 0n, 'a PIE should not load at its link address');
      else assert.equal(loadBias, 0n);
      assert.ok(lines.length >= 30, `fixture printed only ${lines.length} frames`);

      const recs = recordings(lines);
      assert.equal(recs.length, 6);
      let inlined = 0;
      let deepest = 0;
      for (const rec of recs) {
        const locs = sym.resolveUser(held.pid, asUserStack(rec));
        assert.equal(locs.length, rec.length);
        rec.forEach((want, i) => {
          const loc = locs[i]!;
          assert.equal(loc.address, BigInt(want.lookupPc), `${want.site} #${want.index}: looked-up address`);
          assert.deepEqual(loc.frames, want.frames, `${want.site} #${want.index} at ${want.lookupPc}`);
          const m = loc.mapping;
          assert.ok(m, 'a Go PC without a mapping');
          assert.equal(fs.realpathSync(m.file), fs.realpathSync(binary));
          assert.ok(m.start <= loc.address && loc.address < m.limit);
          assert.deepEqual([m.hasFunctions, m.hasFilenames, m.hasLineNumbers, m.hasInlineFrames], [true, true, true, true]);
          if (want.frames.length > 1) inlined++;
          deepest = Math.max(deepest, want.frames.length);
        });
      }
      assert.ok(inlined >= 5, `only ${inlined} PCs had inlined frames`);
      assert.ok(deepest >= 5, 'no PC carried the five-deep inline chain');

      // The process is gone now: the same answers, from what was read while it lived.
      assert.ok(!fs.existsSync(`/proc/${held.pid}/maps`) || !held.alive());
      const again = sym.resolveUser(held.pid, asUserStack(recs[0]!));
      assert.deepEqual(again.map((l) => l.frames), recs[0]!.map((l) => l.frames));

      // A symbolizer that never saw the process: address-only locations, no mapping, no exception.
      const late = new Symbolizer();
      const blind = late.resolveUser(held.pid, asUserStack(recs[0]!));
      assert.equal(blind.length, recs[0]!.length);
      for (const l of blind) {
        assert.equal(l.mapping, undefined);
        assert.deepEqual(l.frames, []);
      }
      late.close();
    } finally {
      held.kill();
      sym.close();
    }
  });
}

test('one binary table per file, shared by processes, closed when unused', { timeout: 10 * 60_000 }, async () => {
  const binary = buildFixture({ go: newestToolchain().version, fixture: 'inline', mode: 'stripped-pie' });
  const a = holdProcess(binary);
  const b = holdProcess(binary);
  const sym = new Symbolizer({ binaryIdleMs: 0, goneRetentionMs: 0 });
  try {
    sym.observeProcess(a.pid);
    const afterOne = sym.stats().binaries;
    sym.observeProcess(b.pid);
    assert.equal(sym.stats().processes, 2);
    assert.equal(sym.stats().binaries, afterOne, 'the second process of the same binary opened new tables');
    const outA = parseInlineOutput(await a.finish());
    const outB = parseInlineOutput(await b.finish());
    // Two PIEs, two load biases (ASLR), one table: each process's PCs still resolve through its own bias.
    for (const [held, out] of [[a, outA], [b, outB]] as const) {
      const rec = recordings(out.lines)[0]!;
      assert.deepEqual(sym.resolveUser(held.pid, asUserStack(rec)).map((l) => l.frames), rec.map((l) => l.frames));
    }
    // Both exited: pruning drops them and closes every binary.
    await sleep(5);
    sym.prune(Date.now() + 1);
    assert.equal(sym.stats().processes, 0);
    assert.equal(sym.stats().binaries, 0);
  } finally {
    a.kill();
    b.kill();
    sym.close();
  }
});

test('exec in the same PID is noticed: the new image is symbolized', { timeout: 10 * 60_000 }, async () => {
  const binary = buildFixture({ go: newestToolchain().version, fixture: 'inline', mode: 'stripped-pie' });
  // A shell that waits for a line on stdin, then execs the fixture (same PID, new image).
  const held = holdProcess('/bin/sh', { args: ['-c', 'read x; exec "$0"', binary], stdin: 'pipe' });
  const sym = new Symbolizer({ revalidateMs: 0 });
  try {
    sym.observeProcess(held.pid);
    const before = sym.resolveUserAddress(held.pid, 0x1000);
    assert.equal(before.mapping, undefined);
    const epoch = sym.userEpoch(held.pid);
    assert.equal(sym.userEpoch(held.pid), epoch, 'nothing changed: the same epoch');
    held.child.stdin!.end('go\n');
    // Wait for the exec (the fixture's maps show up), then symbolize one of its PCs through the same symbolizer.
    const deadline = Date.now() + 20_000;
    while (!/inline/.test(fs.readFileSync(`/proc/${held.pid}/maps`, 'utf8'))) {
      if (Date.now() > deadline) throw new Error('the shell never exec\'d the fixture');
      await sleep(10);
    }
    sym.observeProcess(held.pid);
    assert.notEqual(sym.userEpoch(held.pid), epoch, 'a new image: answers saved under the old epoch must not be reused');
    const { lines } = parseInlineOutput(await held.finish());
    const rec = recordings(lines)[0]!;
    assert.deepEqual(sym.resolveUser(held.pid, asUserStack(rec)).map((l) => l.frames), rec.map((l) => l.frames));
  } finally {
    held.kill();
    sym.close();
  }
});

for (const mapFiles of [true, false]) {
  test(`a deleted binary is still read (${mapFiles ? 'through map_files' : 'without map_files: /proc/PID/exe'})`, { timeout: 10 * 60_000 }, async () => {
    const built = buildFixture({ go: newestToolchain().version, fixture: 'inline', mode: 'stripped-pie' });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-deleted-'));
    const copy = `${dir}/inline`;
    fs.copyFileSync(built, copy);
    fs.chmodSync(copy, 0o755);
    const held = holdProcess(copy);
    const sym = new Symbolizer({ mapFiles });
    try {
      await waitBlockedInWrite(held.pid); // the fixture reads its own file to print its load bias: let it finish
      fs.rmSync(dir, { recursive: true });
      assert.match(fs.readFileSync(`/proc/${held.pid}/maps`, 'utf8'), /inline \(deleted\)/);
      sym.observeProcess(held.pid);
      const { lines } = parseInlineOutput(await held.finish());
      for (const rec of recordings(lines)) {
        const locs = sym.resolveUser(held.pid, asUserStack(rec));
        assert.deepEqual(locs.map((l) => l.frames), rec.map((l) => l.frames));
        assert.equal(locs[0]!.mapping!.file, copy, 'the mapping keeps the path the process saw, without " (deleted)"');
      }
    } finally {
      held.kill();
      sym.close();
    }
  });
}

test('a running process left idle is dropped, and read again when asked about', { timeout: 10 * 60_000 }, async () => {
  const binary = buildFixture({ go: newestToolchain().version, fixture: 'inline', mode: 'stripped-pie' });
  const held = holdProcess(binary);
  const sym = new Symbolizer({ goneRetentionMs: 0, idleProcessMs: 0, binaryIdleMs: 0 });
  try {
    sym.observeProcess(held.pid);
    await waitBlockedInWrite(held.pid);
    sym.prune(Date.now() + 1);
    assert.deepEqual([sym.stats().processes, sym.stats().binaries], [0, 0]);
    sym.observeProcess(held.pid); // still alive: read again
    assert.equal(sym.stats().processes, 1);
    const { lines } = parseInlineOutput(await held.finish());
    const rec = recordings(lines)[1]!;
    assert.deepEqual(sym.resolveUser(held.pid, asUserStack(rec)).map((l) => l.frames), rec.map((l) => l.frames));
  } finally {
    held.kill();
    sym.close();
  }
});

test('a kept process keeps its tables however long it goes unused, and is dropped once it exits', { timeout: 60_000 }, async () => {
  const kept = spawn('sleep', ['600'], { stdio: 'ignore' });
  const other = spawn('sleep', ['600'], { stdio: 'ignore' });
  const sym = new Symbolizer({ goneRetentionMs: 0, idleProcessMs: 0, binaryIdleMs: 0 });
  try {
    await sleep(200); // both have exec'd sleep
    sym.keepProcess(kept.pid!);
    sym.observeProcess(other.pid!);
    const binaries = sym.stats().binaries;
    assert.ok(binaries >= 2, `sleep and libc read: ${binaries} binaries`);
    sym.prune(Date.now() + 3_600_000);
    assert.equal(sym.stats().processes, 1, 'the kept process stays, the other one idled out');
    assert.equal(sym.stats().binaries, binaries, 'the kept process\'s files stay open (the other shared them)');
    const sleepMain = sym.resolveUser(kept.pid!, [nativeAddressIn(kept.pid!, 'libc.so')]);
    assert.notEqual(sleepMain[0]!.frames.length, 0, 'a libc address of the kept process is named');
    kept.kill('SIGKILL');
    await new Promise((r) => kept.once('exit', r));
    sym.prune(Date.now() + 3_600_000);
    assert.deepEqual([sym.stats().processes, sym.stats().binaries], [0, 0], 'gone: dropped like any other');
  } finally {
    kept.kill('SIGKILL');
    other.kill('SIGKILL');
    sym.close();
  }
});

/** An address inside the first executable mapping of pid whose path contains `file`. */
function nativeAddressIn(pid: number, file: string): number {
  for (const line of fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const [range, perms, , , , p] = line.split(/\s+/);
    if (perms?.includes('x') && p?.includes(file)) {
      const [lo, hi] = range!.split('-').map((h) => parseInt(h, 16)) as [number, number];
      return lo + Math.floor((hi - lo) / 2);
    }
  }
  throw new Error(`no executable mapping of ${file} in ${pid}`);
}
