// Off-CPU intervals end to end: real sched_switch and kprobe programs, real Go threads blocked in read(2) and
// nanosleep(2) and one spinning (test/fixtures/go/offcpu), each on its own locked OS thread.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

import { CpuSampler, clipOffCpu } from '../../src/sampler/cpu-sampler';
import type { RawSample } from '../../src/sampler/types';
import { buildFixture, newestToolchain } from '../support/go-toolchains';
import { collect, run, samplerTest, symbolizer } from './support';
import { test } from 'node:test';

const NEWEST = newestToolchain().version;
const WINDOW_MS = 5000;

interface OffCpuWorker {
  role: 'pipe' | 'sleep' | 'spin';
  goid: number;
  tid: number;
  function: string;
}

function offCpuNs(samples: readonly RawSample[], tid: number): number {
  let ns = 0;
  for (const s of samples) if (s.tid === tid) ns += s.offCpu!.weightNs;
  return ns;
}

samplerTest('off-CPU time per thread: blocked threads ≈ the window, the spinner ≈ 0, with their own stacks and goroutines', async () => {
  const binary = buildFixture({ go: NEWEST, fixture: 'offcpu', mode: 'plain' });
  const fx = await run(binary);
  const sampler = CpuSampler.start({ hz: 99 });
  try {
    const workers = (fx.startup as unknown as { workers: OffCpuWorker[] }).workers;
    const byRole = new Map(workers.map((w) => [w.role, w]));
    const proc = sampler.goProcesses().find((p) => p.pid === fx.pid);
    assert.ok(proc, 'the fixture was configured');
    const t0 = process.hrtime.bigint();
    const samples = await collect(sampler, { pid: fx.pid, kind: 'offcpu' }, WINDOW_MS);
    const windowNs = Number(process.hrtime.bigint() - t0);
    assert.ok(samples.length > 0, 'off-CPU records arrived');
    assert.ok(samples.every((s) => s.pid === fx.pid && s.offCpu !== undefined && s.offCpu.weightNs > 0));

    const sym = symbolizer(binary, proc.bias);
    try {
      for (const role of ['pipe', 'sleep'] as const) {
        const w = byRole.get(role)!;
        const share = offCpuNs(samples, w.tid) / windowNs;
        assert.ok(share >= 0.9 && share <= 1.05, `${role} thread off the CPU ${(share * 100).toFixed(1)}% of the window (want 90–105%)`);
        const mine = samples.filter((s) => s.tid === w.tid);
        assert.ok(mine.every((s) => s.offCpu!.state === 'blocked'), `${role}: every interval is 'blocked'`);
        const withFn = mine.filter((s) => sym.names(s.userStack).includes(w.function));
        assert.ok(withFn.length / mine.length >= 0.95, `${role}: ${withFn.length}/${mine.length} stacks pass through ${w.function}`);
        const withGoid = mine.filter((s) => s.goid === w.goid);
        assert.ok(withGoid.length / mine.length >= 0.95, `${role}: ${withGoid.length}/${mine.length} records carry goid ${w.goid}`);
        assert.ok(mine.every((s) => s.kernelStack.length > 0), `${role}: kernel stacks (where it blocked)`);
      }
      const spin = offCpuNs(samples, byRole.get('spin')!.tid) / windowNs;
      assert.ok(spin < 0.05, `spinner off the CPU ${(spin * 100).toFixed(1)}% of the window (want < 5%)`);
    } finally {
      sym.close();
    }

    // Nobody asks any more: the off-CPU programs are detached, nothing more arrives.
    assert.equal(sampler.stats().counters.offcpuSent > 0, true);
    const after = await collect(sampler, { pid: fx.pid }, 300);
    assert.ok(after.every((s) => s.offCpu === undefined), 'a CPU subscriber gets CPU samples only');
  } finally {
    await sampler.close();
    await fx.stop();
  }
});

test('clipOffCpu cuts intervals that began before the subscription, keeps sampled short ones whole', () => {
  const base = { pid: 1, tid: 1, cpu: 0, comm: 'x', goid: undefined, userStack: [], kernelStack: [] };
  const long: RawSample = { ...base, timeNs: 1_000n, offCpu: { weightNs: 600, startNs: 400n, state: 'blocked' } };
  const sampled: RawSample = { ...base, timeNs: 1_000n, offCpu: { weightNs: 500, startNs: 900n, state: 'runnable' } };
  const before: RawSample = { ...base, timeNs: 700n, offCpu: { weightNs: 100, startNs: 600n, state: 'blocked' } };
  const out = clipOffCpu([long, sampled, before], 800n);
  assert.deepEqual(out.map((s) => s.offCpu), [
    { weightNs: 200, startNs: 800n, state: 'blocked' },
    { weightNs: 500, startNs: 900n, state: 'runnable' },
  ]);
});

samplerTest('a full ring buffer: off-CPU records are counted as lost, the sampler keeps running and delivering', async () => {
  // 8 KiB holds three off-CPU records, and a 1 µs period sends nearly every switch of the node: it overflows
  // between two reads of the ring buffer.
  const sampler = CpuSampler.start({ hz: 99, ringBufferBytes: 8192, offCpuPeriodMs: 0.001 });
  const hog = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }); // something on the CPU to sample
  try {
    const first = await collect(sampler, { kind: 'offcpu' }, 1500);
    const st = sampler.stats();
    assert.ok(st.counters.offcpuDrops > 0, `offcpuDrops ${st.counters.offcpuDrops}`);
    assert.equal(st.samples.lostInKernelByKind.offcpu, st.counters.offcpuDrops + st.counters.offcpuNoSlot);
    assert.ok(first.length > 0, 'records still arrive');
    assert.ok(sampler.attached);
    const again = await collect(sampler, {}, 500);
    assert.ok(again.length > 0, 'CPU samples after the overflow');
  } finally {
    hog.kill('SIGKILL');
    await sampler.close();
  }
});
