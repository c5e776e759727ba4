// parseGoroutineDump against the text real Go programs print: the dumps fixture's own runtime.Stack(all), its
// net/http/pprof /debug/pprof/goroutine?debug=2 and what it prints on SIGQUIT (GOTRACEBACK=all, system, crash),
// for Go 1.15 … 1.26. The oracle is the fixture's source (which goroutine waits where, how many, created where)
// and Go's own views agreeing with each other. Then what people paste: cut short, mixed with log lines, garbage.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseGoroutineDump } from '../../src/goroutines/parse';
import type { Goroutine, GoroutineDump } from '../../src/goroutines/model';
import { tracebackView } from '../../src/goroutines/traceback-view';
import { fixtureDir } from '../support/go-toolchains';
import { Rng } from '../support/random';
import { sigquitDump, startDumps, startFunction } from './dumps-fixture';

const COPIES = 3;
const MAIN_GO = path.join(fixtureDir('dumps'), 'main.go');
const SOURCE = fs.readFileSync(MAIN_GO, 'utf8').split('\n');

/** The line of main.go holding `text` (the fixture's own source decides what Go must print). */
function lineOf(text: string): number {
  const i = SOURCE.findIndex((l) => l.includes(text));
  assert.ok(i >= 0, `main.go has no line with ${text}`);
  return i + 1;
}

function minor(go: string): number {
  return Number(go.split('.')[1]);
}


interface Kind {
  start: string;
  copies: number;
  status: RegExp;
  check?: (g: Goroutine) => void;
}

function kinds(go: string, level: 'user' | 'system', labels = false): Kind[] {
  const m = minor(go);
  const deepCheck = (g: Goroutine): void => {
    if (m <= 20 && level === 'user') {
      // Go ≤ 1.20 walks 100 frames, its 3 hidden runtime frames included, and then says nothing at level 1.
      assert.equal(g.framesElided, undefined);
      assert.equal(g.frames.length, 97);
      return;
    }
    assert.equal(g.framesElided, true, `goroutine ${g.id} in deep(150) has elided frames`);
    if (m >= 21) {
      // 50 innermost, "...N frames elided...", 50 outermost; N from the 150 calls of deep and what ends the stack.
      assert.equal(g.elided?.at, 50);
      assert.ok(g.elided!.count! > 40, `elided ${g.elided?.count}`);
      assert.equal(g.frames.length, 100);
    } else if (level === 'system') {
      assert.deepEqual(g.elided, { at: 100 }); // "...additional frames elided..." after 100 frames
      assert.equal(g.frames.length, 100);
    }
  };
  const sync = (name: string): RegExp => new RegExp(`^(semacquire|${name.replace(/\./g, '\\.')})$`);
  return [
    {
      start: 'main.chanSend',
      copies: COPIES,
      status: /^chan send$/,
      check: (g) => {
        const f = g.frames.find((x) => x.function === 'main.chanSend')!;
        assert.ok(f.file === MAIN_GO && f.line === lineOf('func chanSend('), `chanSend at ${f.file}:${f.line}`);
        assert.ok(f.entryOffset! > 0 && !f.inlined);
      },
    },
    { start: 'main.chanRecv', copies: COPIES, status: /^chan receive$/ },
    {
      start: 'main.callsInlined',
      copies: COPIES,
      status: /^chan receive$/,
      check: (g) => {
        const f = g.frames.find((x) => x.function === 'main.recvInlined');
        assert.ok(f && f.inlined && f.entryOffset === undefined && f.args === undefined && f.line === lineOf('func recvInlined('), `recvInlined(...) in ${g.id}`);
      },
    },
    { start: 'main.selectTwo', copies: COPIES, status: /^select$/ },
    { start: 'main.holdThenWait', copies: 1, status: /^chan receive$/ },
    { start: 'main.lockShared', copies: COPIES, status: sync('sync.Mutex.Lock') },
    { start: 'main.readLock', copies: COPIES, status: sync('sync.RWMutex.RLock') },
    { start: 'main.worker', copies: COPIES, status: /^chan receive$/ },
    { start: 'main.waitAll', copies: COPIES, status: sync('sync.WaitGroup.Wait') },
    { start: 'main.condWait', copies: COPIES, status: sync('sync.Cond.Wait') },
    { start: 'main.sleepLong', copies: COPIES, status: /^sleep$/ },
    { start: 'main.acceptConn', copies: 1, status: /^IO wait$/ },
    {
      start: 'main.readConn',
      copies: COPIES,
      status: /^IO wait$/,
      check: (g) => assert.ok(g.frames.some((f) => f.function === 'main.readConn' && f.line === lineOf('c.Read(buf)'))),
    },
    { start: 'main.readPipe', copies: COPIES, status: /^syscall$/, check: (g) => assert.equal(g.state, 'syscall') },
    { start: 'main.lockedWait', copies: COPIES, status: /^chan receive$/, check: (g) => assert.equal(g.lockedToThread, true) },
    {
      start: 'main.labelledWait',
      copies: COPIES,
      status: /^chan receive$/,
      check: (g) => {
        if (!labels) return assert.equal(g.labels, undefined);
        assert.deepEqual(Object.keys(g.labels ?? {}), ['tier', 'worker']);
        assert.ok(g.labels!['tier'] === 'parked' && /^w\d$/.test(g.labels!['worker']!));
      },
    },
    {
      start: 'main.oddLabels',
      copies: 1,
      status: /^chan receive$/,
      check: (g) => assert.deepEqual(g.labels, labels ? { 'odd key': 'tab\t"q" \u00e9\u{1F600}\x01\u00a0end' } : undefined),
    },
    { start: 'main.deep', copies: COPIES, status: /^chan receive$/, check: deepCheck },
    { start: 'main.(*server).serve', copies: COPIES, status: /^chan receive$/ },
    ...(m >= 18 ? [{ start: 'main.recvGeneric[...]', copies: COPIES, status: /^chan receive$/ }] : []),
  ];
}

/** Every goroutine the fixture parks is in the dump, where the source says, with Go's status for it. */
/** `mixed`: Go 1.15's GOTRACEBACK=all prints the signalled goroutine at level 2, the others at level 1. */
function checkFixture(d: GoroutineDump, go: string, level: 'user' | 'system', labels = false, mixed = false): void {
  const m = minor(go);
  for (const k of kinds(go, level, labels)) {
    const gs = d.goroutines.filter((g) => startFunction(g) === k.start);
    assert.equal(gs.length, k.copies, `go${go} ${level}: ${gs.length} goroutines started in ${k.start}`);
    for (const g of gs) {
      assert.match(g.status, k.status, `goroutine ${g.id} in ${k.start}`);
      assert.equal(g.system, undefined);
      const creator = k.start.startsWith('main.recvGeneric') ? 'main.startGeneric' : 'main.main';
      assert.equal(g.createdBy?.function, creator);
      assert.equal(g.createdBy?.goid, m >= 21 ? 1 : undefined, 'Go 1.21+ says "in goroutine 1"');
      assert.ok(g.createdBy!.entryOffset! > 0 && g.createdBy!.line > 0);
      k.check?.(g);
    }
  }
  if (level === 'system') {
    for (const f of ['runtime.forcegchelper', 'runtime.bgsweep']) {
      const g = d.goroutines.find((x) => x.frames.some((y) => y.function === f));
      assert.ok(g && g.system === true, `the runtime goroutine in ${f} is shown, as a system goroutine`);
    }
    assert.ok(d.goroutines.every((g) => g.frames.every((f) => f.inlined || f.pc !== undefined)), 'every physical frame has its pc=');
  } else if (!mixed) {
    assert.ok(d.goroutines.every((g) => !g.system && g.frames.every((f) => f.pc === undefined)));
  }
}

/** The goroutines the fixture parked, by id: the same in every view Go gives of one process. */
function parked(d: GoroutineDump): Map<number, Goroutine> {
  const starts = new Set(kinds('1.26', 'user').map((k) => k.start));
  return new Map(d.goroutines.filter((g) => starts.has(startFunction(g) ?? '')).map((g) => [g.id, g]));
}

/** `inner` appears in `outer` in order (the user view's frames within the system view's). */
function isSubsequence(inner: readonly string[], outer: readonly string[]): boolean {
  let j = 0;
  for (const x of outer) if (j < inner.length && x === inner[j]) j++;
  return j === inner.length;
}

const VERSIONS = ['1.15', '1.19', '1.21', '1.22', '1.23', '1.26'];

for (const go of VERSIONS) {
  test(`go${go}: runtime.Stack(all), debug=2 and a SIGQUIT dump (GOTRACEBACK=system) parse to the goroutines the fixture parked`, async () => {
    const env: Record<string, string> = { GOTRACEBACK: 'system' };
    if (minor(go) >= 26) env['GODEBUG'] = 'tracebacklabels=1';
    const p = await startDumps(go, { copies: COPIES, env });
    let stackText: string;
    let debug2Text: string;
    let quitText: string;
    try {
      stackText = await p.ownStack();
      debug2Text = (await p.ownGoroutineProfile(2)).toString('utf8');
      quitText = await p.quit();
    } finally {
      p.stop();
    }
    const stack = parseGoroutineDump(stackText);
    const debug2 = parseGoroutineDump(debug2Text);
    const quit = parseGoroutineDump(quitText);
    for (const [name, d] of [['runtime.Stack', stack], ['debug=2', debug2], ['SIGQUIT', quit]] as const) {
      assert.deepEqual(d.warnings, [], `${name} parses without a warning`);
    }
    assert.equal(stack.printed, 'user');
    assert.equal(debug2.printed, 'user');
    assert.equal(quit.printed, 'system');
    // Go prints each goroutine once, and so many headers.
    assert.equal(stack.goroutines.length, stackText.split('\n').filter((l) => /^goroutine \d+ \[/.test(l)).length);
    const labels = minor(go) >= 26; // GODEBUG=tracebacklabels=1
    checkFixture(stack, go, 'user', labels);
    checkFixture(debug2, go, 'user', labels);
    checkFixture(quit, go, 'system', labels);

    // One process, three views: the same parked goroutines, states and frames.
    const a = parked(stack);
    const b = parked(debug2);
    const c = parked({ ...quit, goVersion: `go${go}` });
    const userOfQuit = new Map(tracebackView({ ...quit, goVersion: `go${go}` }, 'user').goroutines.map((g) => [g.id, g]));
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
    assert.deepEqual([...a.keys()].sort(), [...c.keys()].sort());
    for (const [id, g] of a) {
      assert.deepEqual(b.get(id), g, `goroutine ${id}: debug=2 and runtime.Stack agree`);
      const q = c.get(id)!;
      for (const k of ['state', 'status', 'waitReason', 'lockedToThread', 'labels', 'createdBy'] as const) assert.deepEqual(q[k], g[k], `goroutine ${id}: ${k}`);
      const names = (x: Goroutine): string[] => x.frames.map((f) => `${f.function} ${f.file}:${f.line}`);
      if (!g.framesElided) assert.ok(isSubsequence(names(g), names(userOfQuit.get(id)!)), `goroutine ${id}: its user frames are within the SIGQUIT view`);
    }
  });
}

test('GOTRACEBACK=all and crash: SIGQUIT dumps with per-thread sections and registers parse cleanly', async () => {
  for (const [go, tb] of [['1.26', 'crash'], ['1.21', 'all'], ['1.15', 'crash'], ['1.15', 'all']] as const) {
    const text = await sigquitDump(go, tb, COPIES);
    const d = parseGoroutineDump(text);
    assert.deepEqual(d.warnings, [], `go${go} GOTRACEBACK=${tb}`);
    assert.ok(/^SIGQUIT: quit$/m.test(text));
    if (tb === 'crash') assert.ok(/^-----$/m.test(text) && /^rip +0x/m.test(text), 'a crash prints every thread and its registers');
    const ids = d.goroutines.map((g) => g.id);
    assert.equal(new Set(ids).size, ids.length, 'each goroutine once, though a crash prints running ones twice');
    assert.ok(!ids.includes(0), "threads' g0 stacks are not goroutines");
    const mixed = minor(go) <= 15 && tb === 'all';
    checkFixture(d, go, mixed ? 'user' : 'system', false, mixed);
  }
});

/** A real dump of each level, for the robustness tests below. */
async function realDumps(): Promise<string[]> {
  const out: string[] = [];
  for (const [go, env] of [['1.26', { GOTRACEBACK: 'system', GODEBUG: 'tracebacklabels=1' }], ['1.15', {}]] as const) {
    const p = await startDumps(go, { copies: 2, env });
    try {
      out.push(await p.ownStack());
      out.push(await p.quit());
    } finally {
      p.stop();
    }
  }
  return out;
}

function sameGoroutines(a: readonly Goroutine[], b: readonly Goroutine[], why: string): void {
  assert.equal(a.length, b.length, why);
  for (let i = 0; i < a.length; i++) assert.deepEqual(a[i], b[i], `${why}: goroutine ${b[i]?.id}`);
}

test('cut short anywhere: what was read, a warning when a goroutine was cut, never a throw', async () => {
  const rng = new Rng(0xc0ffee);
  for (const text of await realDumps()) {
    const full = parseGoroutineDump(text);
    for (let i = 0; i < 300; i++) {
      const cut = rng.int(0, text.length);
      const d = parseGoroutineDump(text.slice(0, cut));
      // Every goroutine before the one that was cut is read exactly; that one is read as far as it goes.
      const done = d.goroutines.length > 0 ? d.goroutines.length - 1 : 0;
      sameGoroutines(d.goroutines.slice(0, done), full.goroutines.slice(0, done), `cut at ${cut}`);
      const last = d.goroutines[done];
      if (last) {
        const whole = full.goroutines.find((g) => g.id === last.id)!;
        assert.ok(last.frames.length <= whole.frames.length);
      }
      // Cut in a function line or right after it (its file:line lost): that goroutine is known to be incomplete.
      const lineStart = text.lastIndexOf('\n', cut - 1) + 1;
      const line = text.slice(lineStart, text.indexOf('\n', lineStart));
      if (cut > lineStart && /^[^\t].*\)$/.test(line) && !line.startsWith('goroutine ') && last) {
        assert.ok(d.warnings.some((w) => /cut short/.test(w)), `cut at ${cut} in ${JSON.stringify(line)}: ${JSON.stringify(d.warnings)}`);
      }
    }
  }
});

test('log lines mixed into the dump are skipped with a warning; the goroutines are read the same', async () => {
  const rng = new Rng(7);
  const logs = [
    '2024/05/01 12:00:00 http: TLS handshake error from 10.0.0.7:51234: EOF',
    '{"level":"info","ts":1714564800.123,"msg":"request done","status":200}',
    'time="2024-05-01T12:00:00Z" level=warning msg="slow request (2.3s)"',
    'I0501 12:00:00.000000       1 controller.go:123] Syncing (default/web)',
    '\tat com.example.Foo(Foo.java:12)',
  ];
  for (const text of await realDumps()) {
    const clean = parseGoroutineDump(text);
    const lines = text.split('\n');
    const mixed: string[] = [];
    let inserted = 0;
    for (const l of lines) {
      mixed.push(l);
      if (rng.next() < 0.05) {
        mixed.push(rng.pick(logs));
        inserted++;
      }
    }
    const d = parseGoroutineDump(mixed.join('\n'));
    sameGoroutines(d.goroutines, clean.goroutines, 'with log lines');
    assert.ok(inserted > 10);
    assert.ok(d.warnings.some((w) => /not part of a goroutine dump/.test(w)));
    assert.ok(d.warnings.length <= 12, 'warnings are bounded');
  }
});

test('fuzz: mutated real dumps and garbage never throw and take bounded time', async () => {
  const texts = await realDumps();
  const rng = new Rng(0xf22);
  const start = Date.now();
  const pieces = ['goroutine ', '[', ']:', '\t', '(', ')', '...', 'created by ', ' in goroutine ', ':12 +0x1f', '\n', '\r\n', ' labels:{"', '\\u', '"', '0x', '\u0000', '😀'];
  for (let i = 0; i < 3000; i++) {
    let t = rng.pick(texts);
    const edits = rng.int(1, 20);
    for (let e = 0; e < edits; e++) {
      const at = rng.int(0, t.length);
      switch (rng.int(0, 4)) {
        case 0:
          t = t.slice(0, at) + rng.pick(pieces) + t.slice(at);
          break;
        case 1:
          t = t.slice(0, at) + t.slice(at + rng.int(1, 200));
          break;
        case 2:
          t = t.slice(0, at) + String.fromCharCode(rng.int(0, 0x10000)) + t.slice(at + 1);
          break;
        default: {
          const from = rng.int(0, t.length);
          t = t.slice(0, at) + t.slice(from, from + rng.int(1, 2000)) + t.slice(at);
        }
      }
    }
    const d = parseGoroutineDump(t);
    assert.ok(Array.isArray(d.goroutines) && Array.isArray(d.warnings));
    for (const g of d.goroutines) assert.ok(Number.isSafeInteger(g.id) && g.id > 0);
  }
  // Hostile shapes: one enormous line, millions of headers, deep nesting of brackets.
  const t0 = Date.now();
  parseGoroutineDump('x'.repeat(20 << 20));
  parseGoroutineDump('goroutine 1 ['.repeat(1 << 20));
  parseGoroutineDump(`${'main.f('.repeat(100_000)}\n`.repeat(20));
  const many = parseGoroutineDump('goroutine 5 [select]:\nmain.f()\n\t/a.go:1 +0x1\n\n'.repeat(200_000), { maxGoroutines: 1000 });
  assert.equal(many.goroutines.length, 1, 'one goroutine 5');
  const distinct = Array.from({ length: 5000 }, (_, i) => `goroutine ${i + 1} [select]:\nmain.f()\n\t/a.go:1 +0x1\n`).join('\n');
  const capped = parseGoroutineDump(distinct, { maxGoroutines: 1000 });
  assert.equal(capped.goroutines.length, 1000);
  assert.ok(capped.warnings.some((w) => /only the first 1000 goroutines/.test(w)));
  assert.ok(Date.now() - t0 < 20_000, `hostile inputs took ${Date.now() - t0} ms`);
  assert.ok(Date.now() - start < 120_000);
});

test('header and frame spellings of every release, including ones the fixture cannot produce', () => {
  const d = parseGoroutineDump(
    [
      'goroutine 7 gp=0xc000007c00 m=nil [sync.WaitGroup.Wait (durable), 12 minutes, synctest bubble 3]:',
      'sync.(*WaitGroup).Wait(0xc00001c0f0)',
      '\t/usr/lib/go/src/sync/waitgroup.go:118 +0x60',
      'created by testing/synctest.Test in goroutine 6',
      '\t/usr/lib/go/src/testing/synctest/synctest.go:30 +0x25',
      '',
      'goroutine 8 gp=0xc000007e00 m=4 mp=0xc000100008 [sleep (scan) (durable), synctest bubble 3]:',
      'time.Sleep(0x3b9aca00)',
      '\t/usr/lib/go/src/runtime/time.go:338 +0x165 fp=0xc0000fe7a8 sp=0xc0000fe770 pc=0x4721e5',
      '',
      'goroutine 9 [chan receive (leaked), locked to thread labels:{"path": "/a\\tb\\"]", "emoji": "\\U0001f600\\u00e9\\x7f"}]:',
      'main.worker(...)',
      '\t/src/main.go:12',
      'panic(0x4b1e20, 0xc00009e000)',
      '\t/usr/lib/go/src/runtime/panic.go:965 +0x1b9',
      '',
      'goroutine 10 [running]:',
      '\tgoroutine running on other thread; stack unavailable',
      'created by main.main',
      '\t/src/main.go:30 +0x4f',
      '[originating from goroutine 1]:',
      'main.main(...)',
      '\t/src/main.go:30 +0x4f',
      '',
      'goroutine 11 [waiting]:\r',
      'main.g()\r',
      '\tC:/src/main.go:40 +0x1\r',
    ].join('\n') + '\n',
  );
  assert.deepEqual(d.warnings, []);
  const [g7, g8, g9, g10, g11] = d.goroutines;
  assert.deepEqual(
    { state: g7!.state, status: g7!.status, reason: g7!.waitReason, durable: g7!.durable, minutes: g7!.waitMinutes, bubble: g7!.bubble, m: g7!.m, goid: g7!.createdBy?.goid },
    { state: 'waiting', status: 'sync.WaitGroup.Wait (durable)', reason: 'sync.WaitGroup.Wait (durable)', durable: true, minutes: 12, bubble: 3, m: undefined, goid: 6 },
  );
  assert.deepEqual({ status: g8!.status, durable: g8!.durable, m: g8!.m, pc: g8!.frames[0]!.pc }, { status: 'sleep', durable: true, m: 4, pc: 0x4721e5 });
  assert.deepEqual({ state: g9!.state, reason: g9!.waitReason, locked: g9!.lockedToThread }, { state: 'leaked', reason: 'chan receive', locked: true });
  assert.deepEqual(g9!.labels, { path: '/a\tb"]', emoji: '😀é\x7f' });
  assert.deepEqual(g9!.frames.map((f) => [f.function, f.inlined ?? false, f.args]), [['main.worker', true, undefined], ['runtime.gopanic', false, '0x4b1e20, 0xc00009e000']]);
  assert.deepEqual({ state: g10!.state, error: g10!.error, frames: g10!.frames.length, creator: g10!.createdBy?.function }, { state: 'running', error: 'running on another thread; stack unavailable', frames: 0, creator: 'main.main' });
  assert.deepEqual({ state: g11!.state, reason: g11!.waitReason, file: g11!.frames[0]!.file, line: g11!.frames[0]!.line }, { state: 'waiting', reason: undefined, file: 'C:/src/main.go', line: 40 });
});
