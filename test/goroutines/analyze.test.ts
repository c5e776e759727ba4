// Goroutine-dump analysis on real dumps: the dumps fixture sent SIGQUIT under GOTRACEBACK=all and crash, Go 1.15 …
// 1.26. The fixture's source is the oracle: which goroutines share a stack, which mutex three goroutines wait on
// and who holds it, what that holder waits on, the two goroutines deadlocked on two mutexes, the workers that
// hold a WaitGroup's count. Then what people send: cut short, mixed with log lines, waits of minutes; and the
// two ways in: `quietflame goroutines analyze FILE` and POST /api/goroutines/analyze.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import pino from 'pino';
import { parseGoroutineDump } from '../../src/goroutines/parse';
import { analysisText, analyzeDump, type DumpAnalysis } from '../../src/goroutines/analyze';
import type { GoroutineDump } from '../../src/goroutines/model';
import { decodePprof } from '../../src/profile/pprof';
import { buildServer } from '../../src/server/app';
import { createMetricsRegistry } from '../../src/metrics/registry';
import type { SampleSource } from '../../src/sampler/types';
import { goEnv, newestToolchain } from '../support/go-toolchains';
import { runCli } from '../support/cli';
import { sigquitDump, startDumps, startFunction } from './dumps-fixture';

const COPIES = 3;

/** Goroutine IDs whose stack runs through `fn` (a user function of the fixture), ascending. */
function idsIn(d: GoroutineDump, fn: string): number[] {
  return d.goroutines
    .filter((g) => g.frames.some((f) => f.function === fn))
    .map((g) => g.id)
    .sort((a, b) => a - b);
}


function objectWaitedBy(a: DumpAnalysis, ids: number[]): number {
  const i = a.objects.findIndex((o) => JSON.stringify(o.waiterIds) === JSON.stringify(ids));
  assert.ok(i >= 0, `an object waited on by exactly goroutines ${ids}: ${JSON.stringify(a.objects.map((o) => [o.kind, o.waiterIds]))}`);
  return i;
}

function checkAnalysis(d: GoroutineDump, a: DumpAnalysis, go: string, system: boolean): void {
  const minor = Number(go.split('.')[1]);
  // Groups: one per kind of parked goroutine, with all its goroutines.
  for (const start of ['main.chanSend', 'main.chanRecv', 'main.selectTwo', 'main.lockShared', 'main.waitAll', 'main.sleepLong', 'main.readPipe', 'main.deep']) {
    const want = d.goroutines.filter((g) => startFunction(g) === start).map((g) => g.id).sort((x, y) => x - y);
    assert.equal(want.length, COPIES, `${COPIES} goroutines started in ${start}`);
    const group = a.groups.find((g) => JSON.stringify(g.ids) === JSON.stringify(want));
    assert.ok(group, `go${go}: one group holds the goroutines of ${start}`);
    assert.equal(group.count, COPIES);
  }
  const labelled = a.groups.filter((g) => g.labels?.['tier'] === 'parked');
  assert.equal(labelled.reduce((n, g) => n + g.count, 0), 0, 'labels come with Go 1.26 tracebacklabels only; none here');

  // Three goroutines wait on one mutex, which holdThenWait holds (it passes the pointer and waits elsewhere).
  const holder = idsIn(d, 'main.holdThenWait');
  const mu = objectWaitedBy(a, idsIn(d, 'main.lockShared'));
  assert.equal(a.objects[mu]!.kind, 'mutex');
  assert.deepEqual(a.objects[mu]!.holders.map((h) => h.id), holder);
  const chain = a.chains.find((c) => c.steps[0]!.object === mu);
  assert.ok(chain && chain.steps[0]!.holder === holder[0] && !chain.cycle, 'the chain from the mutex names its holder');
  if (system) {
    // Runtime frames name channels: the holder waits on the gate channel, with the workers.
    const gate = objectWaitedBy(a, [...holder, ...idsIn(d, 'main.worker')].sort((x, y) => x - y));
    assert.equal(a.objects[gate]!.kind, 'channel');
    assert.equal(a.objects[mu]!.holders[0]!.blockedOn, gate);
    assert.deepEqual(chain.steps[1], { object: gate });
  }
  // lockBoth × 2: each holds the mutex the other waits on.
  const pair = idsIn(d, 'main.lockBoth');
  assert.equal(pair.length, 2);
  const deadlock = a.chains.find((c) => c.cycle);
  assert.ok(deadlock, `go${go}: the deadlock is found`);
  assert.deepEqual(deadlock.steps.map((s) => s.holder).sort((x, y) => x! - y!), pair);
  assert.deepEqual(deadlock.steps.map((s) => a.objects[s.object]!.kind), ['mutex', 'mutex']);
  assert.equal(a.chains[0], deadlock, 'a deadlock comes first');
  // Go 1.15 passes arguments on the stack: the workers holding the WaitGroup's count are named too.
  if (minor <= 16) {
    const wg = objectWaitedBy(a, idsIn(d, 'main.waitAll'));
    assert.equal(a.objects[wg]!.kind, 'waitgroup');
    assert.deepEqual(a.objects[wg]!.holders.map((h) => h.id).sort((x, y) => x - y), idsIn(d, 'main.worker'));
  }
  // Goroutines in select pass their channels: they are not taken for holders.
  const selecting = new Set(idsIn(d, 'main.selectTwo'));
  assert.ok(a.objects.every((o) => o.holders.every((h) => !selecting.has(h.id))));
  assert.equal(a.goroutines + a.runtimeGoroutines, d.goroutines.length);
  assert.equal(Object.values(a.states).reduce((n, x) => n + x, 0), a.goroutines);
  const text = analysisText(a);
  assert.match(text, /DEADLOCK: mutex 0x[0-9a-f]+ \(1 waiter\)\n {4}→ held by goroutine \d+ \[(sync\.Mutex\.Lock|semacquire)\] in main\.lockBoth/);
}

for (const [go, tb] of [['1.15', 'all'], ['1.15', 'crash'], ['1.19', 'crash'], ['1.21', 'all'], ['1.23', 'crash'], ['1.26', 'all'], ['1.26', 'crash']] as const) {
  test(`go${go} GOTRACEBACK=${tb}: the SIGQUIT dump's groups, blocking chains and deadlock`, async () => {
    const d = parseGoroutineDump(await sigquitDump(go, tb, COPIES));
    assert.deepEqual(d.warnings, []);
    const a = analyzeDump(d);
    // Go 1.15 prints GOTRACEBACK=all's other goroutines at level 1: runtime frames (and channels) only at crash.
    checkAnalysis(d, a, go, !(go === '1.15' && tb === 'all'));
    assert.ok(a.runtimeGoroutines > 0 || (go === '1.15' && tb === 'all'), 'runtime goroutines are counted, not grouped');
    const withSystem = analyzeDump(d, { system: true });
    assert.equal(withSystem.goroutines, d.goroutines.length);
  });
}

/** A real dump of the fixture's own runtime.Stack(all), with its process's SIGQUIT text at level 2. */
async function realDumps(): Promise<{ stack: string; quit: string }> {
  const p = await startDumps('1.26', { copies: COPIES, env: { GOTRACEBACK: 'crash' } });
  try {
    return { stack: await p.ownStack(), quit: await p.quit() };
  } finally {
    p.stop();
  }
}

test('waits of minutes, a dump cut short and one mixed with log lines', async () => {
  const { quit } = await realDumps();
  // Go prints ", N minutes" once a goroutine has waited a minute: two groups' goroutines get waits.
  const d0 = parseGoroutineDump(quit);
  const started = (fn: string): Set<number> => new Set(d0.goroutines.filter((g) => startFunction(g) === fn).map((g) => g.id));
  const recv = started('main.chanRecv');
  const sleep = started('main.sleepLong');
  let n = 0;
  const waited = quit.replace(/^goroutine (\d+) (gp=\S+ m=\S+(?: mp=\S+)? )?\[([^\]]+)\]:$/gm, (line, id: string, extra: string | undefined, status: string) => {
    const minutes = recv.has(Number(id)) ? 12 - n++ : sleep.has(Number(id)) ? 3 : undefined;
    return minutes === undefined ? line : `goroutine ${id} ${extra ?? ''}[${status}, ${minutes} minutes]:`;
  });
  const a = analyzeDump(parseGoroutineDump(waited));
  const recvGroup = a.groups.findIndex((g) => g.ids.every((id) => recv.has(id)) && g.count === COPIES);
  assert.deepEqual(a.groups[recvGroup]!.waitMinutes, { min: 10, max: 12 });
  assert.deepEqual(a.longestWait, { minutes: 12, group: recvGroup });
  assert.match(analysisText(a), /longest wait: 12 minutes/);
  assert.match(analysisText(a), /\[chan receive, 10~12 minutes\] on channel/);

  // Cut short: what was read is analyzed, and the analysis says the dump was cut.
  const cut = analyzeDump(parseGoroutineDump(quit.slice(0, Math.floor(quit.length * 0.6))));
  assert.ok(cut.goroutines > 10 && cut.goroutines < d0.goroutines.length);
  assert.ok(cut.warnings.some((w) => /cut short/.test(w)) || cut.goroutines > 0);

  // Log lines between (and inside) goroutines change nothing but the warnings.
  const mixed = quit
    .split('\n')
    .flatMap((l, i) => (i % 7 === 3 ? [l, `2024/05/01 12:00:0${i % 10} worker ${i}: retrying (attempt ${i})`] : [l]))
    .join('\n');
  const m = analyzeDump(parseGoroutineDump(mixed));
  const clean = analyzeDump(d0);
  assert.deepEqual(m.groups, clean.groups);
  assert.deepEqual(m.chains, clean.chains);
  assert.ok(m.warnings.some((w) => /not part of a goroutine dump/.test(w)));
});

test('quietflame goroutines analyze FILE: text, --json, --pprof, stdin gzipped, and clear errors', async () => {
  const { quit, stack } = await realDumps();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-analyze-'));
  try {
    const file = path.join(dir, 'quit.txt');
    fs.writeFileSync(file, quit);
    const text = runCli(['goroutines', 'analyze', file]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^\d+ goroutines in \d+ groups \(\d+ runtime goroutines left out\)\n/);
    assert.match(text.stdout, /DEADLOCK: mutex/);
    const json = runCli(['goroutines', 'analyze', '--json', file]);
    const a = JSON.parse(json.stdout) as DumpAnalysis;
    assert.deepEqual(a, JSON.parse(JSON.stringify(analyzeDump(parseGoroutineDump(quit)))));
    const out = path.join(dir, 'goroutine.pb.gz');
    assert.equal(runCli(['goroutines', 'analyze', '--pprof', out, file]).status, 0);
    const prof = decodePprof(fs.readFileSync(out));
    assert.equal(prof.sample.reduce((s, x) => s + x.value[0]!, 0), a.goroutines);
    const tc = newestToolchain();
    const top = spawnSync(tc.goBin, ['tool', 'pprof', '-top', out], { env: goEnv(tc), encoding: 'utf8' });
    assert.equal(top.stderr, '');
    assert.match(top.stdout, /main\.lockShared/);
    const piped = spawnSync(process.execPath, [path.resolve(__dirname, '../../src/cli.js'), 'goroutines', 'analyze', '-'], { input: zlib.gzipSync(stack), encoding: 'utf8' });
    assert.equal(piped.status, 0, piped.stderr);
    assert.match(piped.stdout, /^\d+ goroutines in \d+ groups\n/);

    const missing = runCli(['goroutines', 'analyze', path.join(dir, 'nope.txt')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /^quietflame goroutines: .*nope\.txt: no such file\n$/);
    const notDump = path.join(dir, 'not-a-dump.txt');
    fs.writeFileSync(notDump, 'goroutine profile: total 3\n3 @ 0x1 0x2\n#\t0x1\tmain.f+0x0\t/a.go:1\n\n');
    const wrong = runCli(['goroutines', 'analyze', notDump]);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /^quietflame goroutines analyze: .*not-a-dump\.txt: no goroutine dump found .*debug=1 goroutine profile.*ask for debug=2\n$/);
    const usage = runCli(['goroutines', 'analyze']);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /usage: quietflame goroutines analyze/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('POST /api/goroutines/analyze: JSON, text and pprof answers; 400, 413 and 429 with reasons', async () => {
  const { quit } = await realDumps();
  const sampler: SampleSource = { hz: 99, offCpuPeriodNs: 10_000_000, attached: true, subscribe: () => () => {} } as unknown as SampleSource;
  const { app } = buildServer(
    {
      sampler,
      newProfile: () => ({ add: () => {}, finish: () => Buffer.alloc(0) }),
      processes: () => [],
      processExists: () => false,
      metrics: createMetricsRegistry({ defaultMetrics: false }),
    },
    { logger: pino({ level: 'silent' }) },
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/api/goroutines/analyze`;
  const post = (q: string, body: string | Buffer | undefined, headers: Record<string, string> = { 'Content-Type': 'text/plain' }) => fetch(base + q, { method: 'POST', body, headers });
  try {
    const json = await post('', quit);
    assert.equal(json.status, 200);
    assert.match(json.headers.get('content-type')!, /^application\/json/);
    assert.deepEqual(await json.json(), JSON.parse(JSON.stringify(analyzeDump(parseGoroutineDump(quit)))));
    const text = await post('?format=text', zlib.gzipSync(quit), { 'Content-Type': 'application/octet-stream' });
    assert.equal(text.status, 200);
    assert.equal(await text.text(), analysisText(analyzeDump(parseGoroutineDump(quit))));
    const pprof = await post('?format=pprof&system=1', quit);
    assert.equal(pprof.status, 200);
    const prof = decodePprof(Buffer.from(await pprof.arrayBuffer()));
    assert.equal(prof.sample.length, parseGoroutineDump(quit).goroutines.length, 'one sample per goroutine, runtime ones too');

    const expectError = async (r: Response, status: number, reason: RegExp): Promise<void> => {
      assert.equal(r.status, status);
      assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
      assert.match(await r.text(), reason);
    };
    await expectError(await post('', undefined), 400, /^empty body: send the goroutine dump text/);
    await expectError(await post('', 'hello\nworld\n'), 400, /^no goroutine dump found \(expected the text Go prints on SIGQUIT/);
    await expectError(await post('?format=svg', quit), 400, /^format="svg": expected one of json, text, pprof/);
    await expectError(await post('?system=maybe', quit), 400, /^system="maybe": expected 1 or 0/);
    await expectError(await post('', Buffer.alloc(65 << 20, 0x41)), 413, /^the dump is \d+ bytes; at most 64 MiB is analyzed/);
    await expectError(await post('', zlib.gzipSync(Buffer.alloc(80 << 20, 0x41)), { 'Content-Type': 'application/octet-stream' }), 413, /^the gzipped dump unpacks to more than 64 MiB/);
    // Sent without a length (chunked): bounded as it arrives.
    const chunked = new ReadableStream({
      start(c) {
        for (let i = 0; i < 70; i++) c.enqueue(new Uint8Array(1 << 20).fill(0x41));
        c.close();
      },
    });
    const r = await fetch(base, { method: 'POST', body: chunked, headers: { 'Content-Type': 'text/plain' }, duplex: 'half' } as RequestInit);
    await expectError(r, 413, /larger than 64 MiB: not analyzed/);
    // At most two at once: a third is told to come back.
    const big = quit.repeat(40);
    const answers = await Promise.all([post('', big), post('', big), post('', big)]);
    assert.deepEqual(answers.map((x) => x.status).sort(), [200, 200, 429]);
    await expectError(answers.find((x) => x.status === 429)!, 429, /goroutine dumps are being analyzed: try again shortly/);
    // The agent's other routes still answer.
    assert.equal((await fetch(base.replace('/api/goroutines/analyze', '/api/processes'))).status, 200);
  } finally {
    await app.close();
  }
});
