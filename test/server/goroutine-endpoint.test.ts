// GET /debug/pprof/goroutine over real HTTP, for what the live tests (test/goroutines/endpoint.test.ts) cannot
// make happen at will: a snapshot with warnings (what the reader skipped reaches the client: pprof comments and
// X-Quietflame-Warning headers) and pod=/container= picking the one process of a pod. The goroutines are a dump
// Go printed, parsed by our parser; the process list and pod lookup are tables.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { buildServer } from '../../src/server/app';
import { createMetricsRegistry } from '../../src/metrics/registry';
import { decodePprof } from '../../src/profile/pprof';
import { parseGoroutineDump } from '../../src/goroutines/parse';
import type { SampleSource } from '../../src/sampler/types';

const TEXT = `goroutine 1 [chan receive]:
main.main()
\t/src/main.go:12 +0x2b

goroutine 7 [select]:
main.worker()
\t/src/main.go:30 +0x55
created by main.main in goroutine 1
\t/src/main.go:10 +0x1d
`;

const idle: SampleSource = { hz: 99, offCpuPeriodNs: 10_000_000, attached: true, subscribe: () => () => undefined };

async function start(warnings: string[], pods: Record<number, { namespace: string; pod: string; container: string }>) {
  const { app } = buildServer(
    {
      sampler: idle,
      newProfile: () => assert.fail('no profile here'),
      processes: () => Object.keys(pods).map((pid) => ({ pid: Number(pid), exe: '/srv/app' })),
      processExists: (pid) => pid in pods,
      podOf: (pid) => pods[pid],
      metrics: createMetricsRegistry({ defaultMetrics: false }),
      goroutines: async (pid) => ({ ...parseGoroutineDump(TEXT), pid, warnings }),
    },
    { logger: pino({ level: 'silent' }) },
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  return { app, base: `http://127.0.0.1:${port}/debug/pprof/goroutine` };
}

test('what the reader could not read reaches the client: pprof comments and bounded one-line headers', async () => {
  const warnings = Array.from({ length: 10 }, (_, i) => `goroutine ${100 + i} appears twice (reused while read)`);
  warnings[0] = 'runtime.g layout guessed (go1.27)\nsecond line';
  const { app, base } = await start(warnings, { 41: { namespace: 'shop', pod: 'web-0', container: 'app' } });
  try {
    const pb = await fetch(`${base}?pid=41`);
    assert.equal(pb.status, 200);
    const profile = decodePprof(Buffer.from(await pb.arrayBuffer()));
    const comments = profile.comment.map((i) => profile.stringTable[i]);
    assert.equal(comments.length, 10);
    assert.equal(comments[1], 'quietflame: goroutine 101 appears twice (reused while read)');
    const text = await fetch(`${base}?pid=41&debug=2`);
    assert.equal(text.status, 200);
    const headers = text.headers.get('x-quietflame-warning')!.split(', ');
    assert.equal(headers.length, 9, '8 warnings and how many more');
    assert.equal(headers[0], 'runtime.g layout guessed (go1.27)?second line', 'one line each');
    assert.equal(headers[8], '... and 2 more');
    assert.match(await text.text(), /^goroutine 1 \[chan receive\]:/);
    const clean = await start([], { 41: { namespace: 'shop', pod: 'web-0', container: 'app' } });
    const none = await fetch(`${clean.base}?pid=41&debug=1`);
    assert.equal(none.headers.get('x-quietflame-warning'), null);
    await clean.app.close();
  } finally {
    await app.close();
  }
});

test('pod= and container= pick the one Go process running there; several, none or a pid elsewhere are clear errors', async () => {
  const { app, base } = await start([], {
    41: { namespace: 'shop', pod: 'web-0', container: 'app' },
    42: { namespace: 'shop', pod: 'batch-1', container: 'worker' },
    43: { namespace: 'shop', pod: 'batch-1', container: 'worker' },
  });
  const get = async (q: string) => {
    const r = await fetch(`${base}?${q}`);
    return { status: r.status, body: await r.text() };
  };
  try {
    assert.match((await get('pod=shop/web-0&debug=1')).body, /^goroutine profile: total 2\n/);
    assert.equal((await get('container=app&debug=2')).status, 200);
    assert.deepEqual(await get('pod=shop/batch-1'), { status: 400, body: 'pod=shop/batch-1: 2 Go processes run there (pids 42, 43): add pid=\n' });
    assert.equal((await get('pod=shop/batch-1&pid=43&debug=1')).status, 200);
    assert.deepEqual(await get('pod=shop/web-0&pid=42'), { status: 404, body: 'pid=42 does not run in pod=shop/web-0\n' });
    assert.deepEqual(await get('container=db'), { status: 404, body: 'container=db: no Go process the agent knows runs there\n' });
    assert.match((await get('debug=1')).body, /^pid: required, or pod=NAMESPACE\/NAME and\/or container=NAME/);
    assert.equal((await get('pod=web-0')).status, 400, 'a pod without its namespace');
  } finally {
    await app.close();
  }
});
