// The page's API over real HTTP: starting captures (JSON only, validated), their progress, the pprof and flame
// model of a finished one, its diagnosis inputs (goroutine snapshots at start and end), the store's bounds, and
// the page's assets. The sampler is a stand-in emitting samples on a timer and the symbolizer a table (the real
// ones are tested with real BPF in test/web and test/agent); the profile builder, encoder and server are real.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { buildServer } from '../../src/server/app';
import type { RawSample, SampleFilter, SampleSource } from '../../src/sampler/types';
import { createMetricsRegistry } from '../../src/metrics/registry';
import { ProfileBuilder, type ResolvedLocation, type StackResolver } from '../../src/profile/builder';
import { decodePprof, encodePprof } from '../../src/profile/pprof';
import type { FlameModel } from '../../src/profile/flame';
import type { CaptureAnalysis } from '../../src/server/captures-api';
import type { CaptureInfo, CaptureList } from '../../src/server/api-types';
import type { GoroutineDump } from '../../src/goroutines/model';

class TimerSampler implements SampleSource {
  readonly hz = 100;
  readonly offCpuPeriodNs = 10_000_000;
  readonly attached = true;
  subscribe(filter: SampleFilter, onBatch: (batch: RawSample[]) => void): () => void {
    const timer = setInterval(() => {
      onBatch([{ pid: filter.pid ?? 7, tid: 8, cpu: 0, comm: 'w', goid: 42, timeNs: process.hrtime.bigint(), userStack: [0x1000, 0x2000], kernelStack: [] }]);
    }, 10);
    return () => clearInterval(timer);
  }
}

const NAMES = new Map([
  [0x1000, 'main.hot'],
  [0x2000, 'main.main'],
]);
const table: StackResolver = {
  resolveUser: (_pid, stack) => stack.map((a): ResolvedLocation => ({ mapping: undefined, address: BigInt(a), frames: [{ function: NAMES.get(a) ?? '?', file: 'x.go', line: 1 }] })),
  resolveKernel: () => [],
};

async function start(opts: { keepCaptures?: number; keepCaptureBytes?: number; maxConcurrentProfiles?: number; goroutines?: (pid: number) => GoroutineDump } = {}) {
  const analyzed: CaptureAnalysis[] = [];
  const { app } = buildServer(
    {
      sampler: new TimerSampler(),
      newProfile: (kind, startUnixNs) => {
        const b = new ProfileBuilder({ resolver: table, kind, hz: 100, startTimeNs: startUnixNs });
        return { add: (batch) => b.add(batch), finish: (w) => encodePprof(b.build(w.endUnixNs)) };
      },
      processes: () => [{ pid: process.pid, exe: '/usr/bin/example' }],
      processExists: (pid) => pid === process.pid,
      metrics: createMetricsRegistry({ defaultMetrics: false }),
      goroutines: opts.goroutines && (async (pid) => opts.goroutines!(pid)),
      analyzeCapture: (a) => {
        analyzed.push(a);
        return { findings: [], notes: ['analyzed'] };
      },
    },
    { logger: pino({ level: 'silent' }), maxSeconds: 60, ...opts },
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  return { app, base, analyzed };
}

function post(base: string, body: unknown, type = 'application/json'): Promise<Response> {
  return fetch(`${base}/api/captures`, { method: 'POST', headers: { 'Content-Type': type }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

async function expectError(r: Response | Promise<Response>, status: number, pattern: RegExp): Promise<void> {
  const res = await r;
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  assert.match(text, pattern);
  assert.equal(text.trim().split('\n').length, 1, 'one line');
}

async function list(base: string): Promise<CaptureList> {
  return (await (await fetch(`${base}/api/captures`)).json()) as CaptureList;
}

async function until(base: string, id: string, state: CaptureInfo['state']): Promise<CaptureInfo> {
  for (let i = 0; i < 200; i++) {
    const c = (await list(base)).captures.find((x) => x.id === id);
    if (c?.state === state) return c;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`capture ${id} never became ${state}`);
}

test('bad capture requests get one-line errors with the right status', async () => {
  const { app, base } = await start();
  try {
    await expectError(post(base, 'kind=cpu', 'application/x-www-form-urlencoded'), 415, /JSON body/);
    await expectError(post(base, '{"kind":', 'application/json'), 400, /JSON/);
    await expectError(post(base, { kind: 'wall' }), 400, /kind="wall": expected "cpu" or "offcpu"/);
    await expectError(post(base, { seconds: 0 }), 400, /seconds=0: out of range/);
    await expectError(post(base, { seconds: 61 }), 400, /at most 60/);
    await expectError(post(base, { seconds: { a: 1 } }), 400, /seconds: expected a number/);
    await expectError(post(base, { pid: 'x1' }), 400, /not a process ID/);
    await expectError(post(base, { pid: 999999 }), 404, /no such process/);
    await expectError(fetch(`${base}/api/captures/..%2f..%2fetc`), 400, /not a capture ID/);
    await expectError(fetch(`${base}/api/captures/0123456789ab`), 404, /no such capture/);
    await expectError(fetch(`${base}/api/captures/0123456789ab/flame`), 404, /no such capture/);
  } finally {
    await app.close();
  }
});

test('a capture runs in the background with its progress listed, then serves its pprof and flame model; goroutines are read at its start and end', async () => {
  const reads: number[] = [];
  const { app, base, analyzed } = await start({ goroutines: (pid) => (reads.push(pid), { pid, goroutines: [], warnings: [] }) });
  try {
    const r = await post(base, { kind: 'cpu', seconds: 0.6, pid: process.pid });
    assert.equal(r.status, 202);
    const { capture } = (await r.json()) as { capture: CaptureInfo };
    assert.match(capture.id, /^[0-9a-f]{12}$/);
    assert.equal(capture.state, 'running');
    assert.equal(capture.exe, '/usr/bin/example');
    await expectError(fetch(`${base}/api/captures/${capture.id}`), 409, /still running/);
    await new Promise((res) => setTimeout(res, 300));
    const running = (await list(base)).captures[0]!;
    assert.equal(running.state, 'running');
    assert.ok(running.elapsedMs! >= 200 && running.elapsedMs! <= 600, `elapsedMs ${running.elapsedMs}`);
    assert.ok(running.samples > 5, `${running.samples} samples so far`);

    const done = await until(base, capture.id, 'done');
    assert.ok(done.samples >= 30 && done.samples <= 80, `${done.samples} samples in 0.6 s at 100/s`);
    assert.deepEqual(done.notes, ['analyzed']);
    assert.deepEqual(reads, [process.pid, process.pid]);
    assert.equal(analyzed.length, 1);
    assert.equal(analyzed[0]!.dumps.length, 2);
    assert.equal(analyzed[0]!.kind, 'cpu');

    const pprof = await fetch(`${base}/api/captures/${capture.id}`);
    assert.equal(pprof.headers.get('content-disposition'), `attachment; filename="quietflame-${capture.id}-cpu.pb.gz"`);
    const bytes = Buffer.from(await pprof.arrayBuffer());
    assert.equal(bytes.length, done.bytes);
    const p = decodePprof(bytes);
    assert.equal(p.sample.reduce((n, s) => n + s.value[0]!, 0), done.samples);

    const flameAnswer = await fetch(`${base}/api/captures/${capture.id}/flame`);
    assert.equal(flameAnswer.headers.get('content-encoding'), 'gzip');
    const flame = (await flameAnswer.json()) as FlameModel;
    const plain = await fetch(`${base}/api/captures/${capture.id}/flame`, { headers: { 'Accept-Encoding': 'identity' } });
    assert.equal(plain.headers.get('content-encoding'), null);
    assert.deepEqual(await plain.json(), flame);
    assert.deepEqual(flame.valueType, { type: 'cpu', unit: 'nanoseconds' });
    assert.deepEqual(flame.stacks.map((s) => s.map((f) => flame.frames[f]!.name)), [['main.main', 'main.hot']]);
    assert.ok(flame.labels.some(([k, v]) => k === 'goid' && v === '42'));
    assert.equal(flame.samples.reduce((n, s) => n + s[1]!, 0), done.samples);
  } finally {
    await app.close();
  }
});

test('a goroutine snapshot that cannot be read becomes a note; the capture still finishes', async () => {
  const { app, base } = await start({
    goroutines: () => {
      throw new Error('pid 1: not a Go program');
    },
  });
  try {
    const { capture } = (await (await post(base, { seconds: 0.2, pid: process.pid })).json()) as { capture: CaptureInfo };
    const done = await until(base, capture.id, 'done');
    assert.deepEqual(done.notes, ['goroutines at the start not read: pid 1: not a Go program', 'goroutines at the end not read: pid 1: not a Go program', 'analyzed']);
  } finally {
    await app.close();
  }
});

test('the store keeps the newest captures within its count and byte bounds; running ones over the limit are refused (429)', async () => {
  const { app, base } = await start({ keepCaptures: 2, maxConcurrentProfiles: 2 });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { capture } = (await (await post(base, { seconds: 0.1 })).json()) as { capture: CaptureInfo };
      await until(base, capture.id, 'done');
      ids.push(capture.id);
    }
    assert.deepEqual((await list(base)).captures.map((c) => c.id), [ids[2], ids[1]]);
    await expectError(fetch(`${base}/api/captures/${ids[0]}`), 404, /dropped to keep the store within its limits/);

    await post(base, { seconds: 1 });
    await post(base, { seconds: 1 });
    const refused = await post(base, { seconds: 1 });
    assert.ok(refused.headers.get('retry-after'));
    await expectError(refused, 429, /already being captured/);
  } finally {
    await app.close();
  }
  const small = await start({ keepCaptureBytes: 1 });
  try {
    const { capture } = (await (await post(small.base, { seconds: 0.1 })).json()) as { capture: CaptureInfo };
    for (let i = 0; i < 100 && (await list(small.base)).captures.length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual((await list(small.base)).captures, [], 'a capture larger than the byte bound is not kept');
    await expectError(fetch(`${small.base}/api/captures/${capture.id}`), 404, /no such capture/);
  } finally {
    await small.app.close();
  }
});

test('the page and its assets: local files only, a CSP, ETags', async () => {
  const { app, base } = await start();
  try {
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/);
    const html = await page.text();
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!).filter((u) => !u.startsWith('data:'));
    assert.deepEqual(refs.sort(), ['/assets/app.js', '/assets/style.css', '/assets/vendor.js']);
    for (const ref of refs) {
      const r = await fetch(base + ref);
      assert.equal(r.status, 200, ref);
      const etag = r.headers.get('etag')!;
      assert.equal((await fetch(base + ref, { headers: { 'If-None-Match': etag } })).status, 304, ref);
    }
    const vendor = await (await fetch(`${base}/assets/vendor.js`)).text();
    assert.match(vendor, /^\/\* internmap [\d.]+ \(ISC\) \*\//);
    assert.match(vendor, /\/\* d3-flame-graph 5\.0\.0 \(Apache-2\.0\) \*\//);
    assert.doesNotMatch(vendor + html, /https?:\/\/(?!d3js\.org|github\.com|www\.w3\.org)/, 'nothing loaded from elsewhere');
    assert.equal((await fetch(`${base}/assets/nope.js`)).status, 404);
    assert.equal((await fetch(`${base}/assets/..%2fpackage.json`)).status, 404);
  } finally {
    await app.close();
  }
});
