// HTTP semantics of the agent's server: parameters, errors in net/http/pprof's format, concurrency limits,
// client disconnects and shutdown. The sampler here is a stand-in that emits samples on a timer (the real one is
// tested with real BPF in test/sampler); the HTTP server, client and sockets are real.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { buildServer } from '../../src/server/app';
import { RawSample, SampleFilter, SampleSource } from '../../src/sampler/types';
import { CaptureWindow } from '../../src/server/capture';
import { createMetricsRegistry } from '../../src/metrics/registry';

class TimerSampler implements SampleSource {
  readonly hz = 99;
  readonly offCpuPeriodNs = 10_000_000;
  attached = true;
  subscribers = 0;
  subscribe(filter: SampleFilter, onBatch: (batch: RawSample[]) => void): () => void {
    this.subscribers++;
    const timer = setInterval(() => {
      onBatch([{ pid: filter.pid ?? 1, tid: 1, cpu: 0, comm: 'x', goid: undefined, timeNs: process.hrtime.bigint(), userStack: [0x401000], kernelStack: [] }]);
    }, 10);
    return () => {
      clearInterval(timer);
      this.subscribers--;
    };
  }
}

async function start(maxConcurrentProfiles = 8) {
  const sampler = new TimerSampler();
  const { app, captures } = buildServer(
    {
      sampler,
      newProfile: () => {
        let added = 0;
        return {
          add: (batch: readonly RawSample[]) => void (added += batch.length),
          finish: (w: CaptureWindow) => Buffer.from(JSON.stringify({ samples: added, counted: w.samples, ended: w.ended })),
        };
      },
      processes: () => [{ pid: process.pid, exe: process.execPath }],
      processExists: (pid) => pid === process.pid,
      metrics: createMetricsRegistry({ defaultMetrics: false }),
    },
    { logger: pino({ level: 'silent' }), maxSeconds: 60, maxConcurrentProfiles },
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as { port: number };
  return { app, captures, sampler, base: `http://127.0.0.1:${addr.port}` };
}

async function expectPprofError(url: string, status: number, pattern: RegExp): Promise<void> {
  const r = await fetch(url);
  assert.equal(r.status, status, url);
  assert.equal(r.headers.get('x-go-pprof'), '1', url);
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
  assert.match(await r.text(), pattern);
}

test('healthz follows the sampler; bad parameters and paths get pprof-style errors', async () => {
  const { app, sampler, base } = await start();
  try {
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    sampler.attached = false;
    assert.equal((await fetch(`${base}/healthz`)).status, 503);
    sampler.attached = true;
    await expectPprofError(`${base}/debug/pprof/profile?seconds=abc`, 400, /seconds="abc": not a number/);
    await expectPprofError(`${base}/debug/pprof/profile?seconds=-1`, 400, /seconds/);
    await expectPprofError(`${base}/debug/pprof/profile?seconds=0`, 400, /out of range/);
    await expectPprofError(`${base}/debug/pprof/profile?seconds=100000`, 400, /at most 60/);
    await expectPprofError(`${base}/debug/pprof/profile?seconds=1&pid=abc`, 400, /not a process ID/);
    await expectPprofError(`${base}/debug/pprof/profile?seconds=1&pid=-3`, 400, /not a process ID/);
    await expectPprofError(`${base}/debug/pprof/profile?seconds=1&pid=999999`, 404, /no such process/);
    await expectPprofError(`${base}/debug/pprof/nope`, 404, /no such endpoint/);
    const sym = await fetch(`${base}/debug/pprof/symbol`, { method: 'POST', body: '0x401000+0x401010' });
    assert.equal(sym.status, 200);
    assert.equal(await sym.text(), 'num_symbols: 1\n');
    assert.equal(await (await fetch(`${base}/debug/pprof/symbol`)).text(), 'num_symbols: 1\n');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /quietflame_profile_requests_total\{endpoint="\/debug\/pprof\/profile",code="400"\} [1-9]/);
    const procs = (await (await fetch(`${base}/api/processes`)).json()) as { processes: Array<{ pid: number }> };
    assert.equal(procs.processes[0]!.pid, process.pid);
  } finally {
    await app.close();
  }
});

test('a profile request captures for its window and answers as net/http/pprof does', async () => {
  const { app, base } = await start();
  try {
    const r = await fetch(`${base}/debug/pprof/profile?seconds=0.5&pid=${process.pid}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/octet-stream');
    assert.equal(r.headers.get('content-disposition'), 'attachment; filename="profile"');
    const body = JSON.parse(await r.text()) as { samples: number; counted: number; ended: string };
    assert.equal(body.ended, 'elapsed');
    assert.equal(body.samples, body.counted);
    assert.ok(body.samples >= 20 && body.samples <= 80, `${body.samples} samples in 0.5 s at 100/s`);
  } finally {
    await app.close();
  }
});

test('12 concurrent profiles with a limit of 8: each 200 or 429, and 8 succeed', async () => {
  const { app, base } = await start(8);
  try {
    const rs = await Promise.all(Array.from({ length: 12 }, () => fetch(`${base}/debug/pprof/profile?seconds=1`)));
    const codes = rs.map((r) => r.status);
    assert.ok(codes.every((c) => c === 200 || c === 429), codes.join(','));
    assert.equal(codes.filter((c) => c === 200).length, 8, codes.join(','));
    const refused = rs.find((r) => r.status === 429)!;
    assert.equal(refused.headers.get('x-go-pprof'), '1');
    assert.ok(refused.headers.get('retry-after'));
    await Promise.all(rs.map((r) => r.arrayBuffer()));
  } finally {
    await app.close();
  }
});

test('a client that disconnects ends its capture', async () => {
  const { app, captures, sampler, base } = await start();
  try {
    const ac = new AbortController();
    const pending = fetch(`${base}/debug/pprof/profile?seconds=30`, { signal: ac.signal }).catch(() => undefined);
    await waitFor(() => captures.inFlight === 1);
    ac.abort();
    await pending;
    await waitFor(() => captures.inFlight === 0 && sampler.subscribers === 0);
  } finally {
    await app.close();
  }
});

test('close() with a profile in flight answers it with what was captured and returns promptly', async () => {
  const { app, captures, base } = await start();
  const pending = fetch(`${base}/debug/pprof/profile?seconds=30`);
  await waitFor(() => captures.inFlight === 1);
  await new Promise((r) => setTimeout(r, 200));
  const t0 = Date.now();
  await app.close();
  assert.ok(Date.now() - t0 < 2000, `close took ${Date.now() - t0} ms`);
  const r = await pending;
  assert.equal(r.status, 200);
  const body = JSON.parse(await r.text()) as { samples: number; ended: string };
  assert.equal(body.ended, 'shutdown');
  assert.ok(body.samples > 0);
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
