// Goroutines read from outside a live Go process against the program's own runtime.Stack(all) taken a moment
// later, through the debug=2 text the agent serves: same goroutine IDs, states, wait reasons, creators and function stacks (names, files, lines) for Go 1.15,
// 1.19, 1.23 and 1.26, plain and stripped PIE, and an externally linked (cgo) build. The process is never stopped:
// it answers its own dump request right after. Then what must fail, fails clearly: a process that is not Go, one
// that does not exist, one that exits while being read, and a goroutine list that is garbage.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import type { Goroutine, GoroutineDump } from '../../src/goroutines/model';
import { parseGoroutineDump } from '../../src/goroutines/parse';
import { snapshotGoroutines } from '../../src/goroutines/reader';
import { GoroutineReadError } from '../../src/goroutines/errors';
import { TargetCache } from '../../src/goroutines/target';
import { writeTracebackText } from '../../src/goroutines/traceback-text';
import type { FixtureMode } from '../support/go-toolchains';
import { startParked } from '../support/parked';

function frameKey(g: Goroutine): string[] {
  return g.frames.map((f) => `${f.function} ${f.file}:${f.line}`);
}

/** Where a goroutine of ours differs from the program's own, or undefined when they agree. */
function difference(ours: Goroutine, own: Goroutine): string | undefined {
  for (const k of ['state', 'status', 'waitReason', 'lockedToThread'] as const) {
    if (ours[k] !== own[k]) return `${k}: ours ${String(ours[k])}, own ${String(own[k])}`;
  }
  if (own.labels && JSON.stringify(ours.labels) !== JSON.stringify(own.labels)) return `labels: ours ${JSON.stringify(ours.labels)}, own ${JSON.stringify(own.labels)}`;
  const a = frameKey(ours);
  const b = frameKey(own);
  if (JSON.stringify(ours.elided) !== JSON.stringify(own.elided)) return `elided: ours ${JSON.stringify(ours.elided)}, own ${JSON.stringify(own.elided)}`;
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return `frame ${i}: ours ${a[i]}, own ${b[i]}`;
  const c = (x: Goroutine): string => (x.createdBy ? `${x.createdBy.function} ${x.createdBy.file}:${x.createdBy.line} goid ${x.createdBy.goid}` : 'none');
  if (c(ours) !== c(own)) return `created by: ours ${c(ours)}, own ${c(own)}`;
  return undefined;
}

function compare(ours: GoroutineDump, own: GoroutineDump): { matched: number; parked: number; problems: string[] } {
  const mine = new Map(ours.goroutines.map((g) => [g.id, g]));
  const problems: string[] = [];
  let matched = 0;
  let parked = 0;
  for (const g of own.goroutines) {
    // Parked: waiting or in a syscall. The goroutine that printed the dump runs; a runnable one moved between the
    // two reads (woken, or on a loaded machine still on its way to its parking place).
    if (g.state !== 'waiting' && g.state !== 'syscall') continue;
    parked++;
    const o = mine.get(g.id);
    const why = o ? difference(o, g) : 'missing from our snapshot';
    if (why) problems.push(`goroutine ${g.id} [${g.status}]: ${why}`);
    else matched++;
  }
  return { matched, parked, problems };
}

const CASES: Array<[go: string, mode: FixtureMode]> = [
  ['1.15', 'plain'], ['1.15', 'stripped-pie'],
  ['1.19', 'plain'], ['1.19', 'stripped-pie'],
  ['1.23', 'plain'], ['1.23', 'stripped-pie'],
  ['1.26', 'plain'], ['1.26', 'stripped-pie'],
  ['1.26', 'external-stripped-pie'],
];

for (const [go, mode] of CASES) {
  test(`go${go} ${mode}: a snapshot from outside matches the program's own runtime.Stack(all)`, async () => {
    // Go 1.26 prints labels in its own dump when asked: then they are compared too.
    const p = await startParked(go, mode, 7, go === '1.26' ? { GODEBUG: 'tracebacklabels=1' } : {});
    try {
      const targets = new TargetCache();
      const snap = snapshotGoroutines(p.pid, targets);
      targets.close();
      const own = parseGoroutineDump(await p.ownDump());
      assert.deepEqual(own.warnings, [], 'the program\'s own dump parses cleanly');
      // What the agent serves as debug=2, read back: the frames Go shows, elided as Go elides them.
      const ours = parseGoroutineDump(writeTracebackText(snap, { labels: go === '1.26' }));
      assert.deepEqual(ours.warnings, [], 'our debug=2 text parses cleanly');
      const { matched, parked, problems } = compare(ours, own);
      assert.ok(parked >= 100, `the fixture parked ${parked} goroutines`);
      assert.ok(matched >= 0.99 * parked, `${matched} of ${parked} goroutines match:\n${problems.join('\n')}`);

      // What the program's dump leaves out is there too: runtime goroutines, labels before 1.26, runtime frames.
      assert.ok(snap.goroutines.some((g) => g.system && g.frames.some((f) => f.function === 'runtime.gopark')), 'system goroutines parked in runtime.gopark');
      const labelled = snap.goroutines.filter((g) => g.frames.some((f) => f.function === 'main.labelledWait'));
      assert.equal(labelled.length, 7);
      assert.deepEqual(labelled.map((g) => g.labels).sort((a, b) => (a!['worker']! < b!['worker']! ? -1 : 1)), [0, 1, 2, 3, 4, 5, 6].map((i) => ({ tier: 'parked', worker: `w${i}` })));
      const inSyscall = snap.goroutines.filter((g) => g.frames.some((f) => f.function === 'main.readPipe'));
      assert.ok(inSyscall.length === 7 && inSyscall.every((g) => g.state === 'syscall'), 'read(2) on a pipe: in a syscall');
    } finally {
      p.stop();
    }
  });
}

test('a process that is not Go, and one that does not exist: clear errors', () => {
  const targets = new TargetCache();
  const sleeper = spawn('sleep', ['30']);
  try {
    assert.throws(() => snapshotGoroutines(sleeper.pid!, targets), (e: unknown) => e instanceof GoroutineReadError && e.kind === 'not-go' && /is not a Go program/.test(e.message) && e.httpStatus === 422);
  } finally {
    sleeper.kill('SIGKILL');
  }
  assert.throws(() => snapshotGoroutines(0x3ffffff0, targets), (e: unknown) => e instanceof GoroutineReadError && e.kind === 'not-found' && e.httpStatus === 404);
  targets.close();
});

test('a goroutine list that is garbage is refused, and the process is read fine after', async () => {
  const p = await startParked('1.26', 'plain', 1);
  try {
    const targets = new TargetCache();
    assert.throws(
      () => snapshotGoroutines(p.pid, targets, { allgsAddress: p.fakeAllgs }),
      (e: unknown) => e instanceof GoroutineReadError && e.kind === 'corrupt' && /does not hold goroutines \(64 of 64 entries/.test(e.message),
    );
    assert.throws(() => snapshotGoroutines(p.pid, targets, { allgsAddress: 8 }), (e: unknown) => e instanceof GoroutineReadError && e.kind === 'corrupt' && /unreadable/.test(e.message));
    assert.ok(snapshotGoroutines(p.pid, targets).goroutines.length > 20);
    targets.close();
  } finally {
    p.stop();
  }
});

test('a process that exits while its goroutines are read: not-found, nothing half-read returned', async () => {
  const p = await startParked('1.26', 'plain', 1);
  const targets = new TargetCache();
  try {
    assert.throws(
      () =>
        snapshotGoroutines(p.pid, targets, {
          onAllgsRead: () => {
            p.child.kill('SIGKILL');
            // Until the kernel has torn its memory down (a zombie has none).
            for (let i = 0; i < 1e6; i++) {
              const st = fs.readFileSync(`/proc/${p.pid}/stat`, 'utf8');
              if (/\) [ZX] /.test(st)) break;
            }
          },
        }),
      (e: unknown) => e instanceof GoroutineReadError && e.kind === 'not-found' && /exited while its goroutines were read/.test(e.message),
    );
  } finally {
    targets.close();
    p.stop();
  }
});
