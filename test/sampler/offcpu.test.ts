// Off-CPU intervals end to end: real sched_switch and kprobe programs, real Go threads blocked in read(2) and
// nanosleep(2) and one spinning (test/fixtures/go/offcpu), each on its own locked OS thread.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { onCpuNs, preemptions } from '../support/schedstat';

import { Sampler, clipOffCpu } from '../../src/sampler/sampler';
import { RunqueueLatency } from '../../src/metrics/runqlat';
import type { RawSample } from '../../src/sampler/types';
import { buildFixture, newestToolchain } from '../support/go-toolchains';
import { Bpftrace, MARKER_PROBES, MARK_OFF, MARK_ON, mark } from '../support/bpftrace';
import { collect, run, samplerTest, sleep, symbolizer } from './support';
import { test } from 'node:test';

const NEWEST = newestToolchain().version;
const WINDOW_MS = 5000;

interface OffCpuWorker {
  role: 'pipe' | 'sleep' | 'spin' | 'ping' | 'pong';
  goid: number;
  tid: number;
  function: string;
}

function offCpuNs(samples: readonly RawSample[], tid: number): number {
  let ns = 0;
  for (const s of samples) if (s.tid === tid) ns += s.offCpu!.weightNs;
  return ns;
}

samplerTest('off-CPU time per thread: blocked threads ≈ the window, the spinner as long as the kernel says it waited, with their own stacks and goroutines', async () => {
  const binary = buildFixture({ go: NEWEST, fixture: 'offcpu', mode: 'plain' });
  const fx = await run(binary);
  const sampler = Sampler.start({ hz: 99 });
  await sampler.ready();
  try {
    const workers = (fx.startup as unknown as { workers: OffCpuWorker[] }).workers;
    const byRole = new Map(workers.map((w) => [w.role, w]));
    const proc = sampler.goProcesses().find((p) => p.pid === fx.pid);
    assert.ok(proc, 'the fixture was configured');
    const spinTid = byRole.get('spin')!.tid;
    const t0 = process.hrtime.bigint();
    const ran0 = onCpuNs(fx.pid, spinTid);
    const preempted0 = workers.map((w) => preemptions(fx.pid, w.tid));
    const samples = await collect(sampler, { pid: fx.pid, kind: 'offcpu' }, WINDOW_MS);
    const preempted = workers.map((w, i) => preemptions(fx.pid, w.tid) - preempted0[i]!);
    const ran1 = onCpuNs(fx.pid, spinTid);
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
        // Blocked, but for the times the kernel preempted it (a loaded machine): no more runnable intervals than that.
        const runnable = mine.filter((s) => s.offCpu!.state === 'runnable').length;
        const kernel = preempted[workers.indexOf(w)]!;
        assert.ok(runnable <= kernel, `${role}: ${runnable} runnable intervals, the kernel preempted it ${kernel} times`);
        const withFn = mine.filter((s) => sym.names(s.userStack).includes(w.function));
        assert.ok(withFn.length / mine.length >= 0.95, `${role}: ${withFn.length}/${mine.length} stacks pass through ${w.function}`);
        const withGoid = mine.filter((s) => s.goid === w.goid);
        assert.ok(withGoid.length / mine.length >= 0.95, `${role}: ${withGoid.length}/${mine.length} records carry goid ${w.goid}`);
        assert.ok(mine.every((s) => s.kernelStack.length > 0), `${role}: kernel stacks (where it blocked)`);
      }
      // The spinner never blocks: it is off the CPU only while other threads have it (a loaded machine), and the
      // kernel's own account of its CPU time says how long. The records are a sample (intervals shorter than the
      // period are sent with probability length/period), so they agree within their spread, sqrt(off × period).
      const spinOffNs = offCpuNs(samples, spinTid);
      const truthNs = Math.max(0, windowNs - (ran1 - ran0));
      const allowedNs = 4 * Math.sqrt(truthNs * sampler.offCpuPeriodNs) + 0.02 * windowNs;
      const pct = (ns: number): string => `${((ns / windowNs) * 100).toFixed(1)}%`;
      assert.ok(Math.abs(spinOffNs - truthNs) <= allowedNs, `spinner off the CPU ${pct(spinOffNs)} of the window, the kernel says ${pct(truthNs)} (want within ${pct(allowedNs)}; ${samples.filter((x) => x.tid === spinTid).length} records, lost ${JSON.stringify(sampler.stats().samples.lostInKernelByKind)})`);
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

/** bcc offcputime's method, exact (every interval of the given threads), for the intervals that end in the marked
 * window: @off[tid] = their off-CPU nanoseconds. */
function bpftraceOffCpu(tids: number[]): string {
  return `${MARKER_PROBES}
tracepoint:sched:sched_switch /${tids.map((t) => `args->prev_pid == ${t}`).join(' || ')}/ { @start[args->prev_pid] = nsecs; }
tracepoint:sched:sched_switch /@start[args->next_pid]/ {
  if (@on) { @off[args->next_pid] = sum(nsecs - @start[args->next_pid]); }
  delete(@start[args->next_pid]);
}
END { clear(@start); clear(@on); }
`;
}

for (const via of ['own program', 'run-queue program'] as const) {
samplerTest(`threads that leave the CPU for microseconds: few stacks read, their off-CPU time still adds up (off-CPU program: ${via})`, async (t) => {
  // ping and pong pass a byte back and forth over two pipes: tens of thousands of intervals a second, each far
  // shorter than the 10 ms period, so most switch-outs skip the stack read (bpf/profile.h) and the records that
  // are sent carry weights scaled to make up for it. bpftrace timing every interval of the two is the oracle.
  // Twice: the off-CPU program attached on its own, and tail-called by the run-queue metrics' program (the agent's
  // way when both load: one program entry per switch).
  const binary = buildFixture({ go: NEWEST, fixture: 'offcpu', mode: 'plain' });
  const fx = await run(binary, ['pingpong']);
  const warnings: string[] = [];
  const sampler = Sampler.start({ hz: 99, onWarning: (m) => warnings.push(m) });
  const runqueue = via === 'run-queue program' ? RunqueueLatency.start() : undefined;
  sampler.shareSwitch(runqueue);
  await sampler.ready();
  const workers = (fx.startup as unknown as { workers: OffCpuWorker[] }).workers;
  const bt = new Bpftrace(bpftraceOffCpu(workers.map((w) => w.tid)));
  try {
    const proc = sampler.goProcesses().find((p) => p.pid === fx.pid);
    assert.ok(proc, 'the fixture was configured');
    await bt.waitPrintf('ready', 60_000);
    const before = sampler.stats().counters;
    const samples: RawSample[] = [];
    const stop = sampler.subscribe({ pid: fx.pid, kind: 'offcpu' }, (batch) => samples.push(...batch));
    assert.equal(sampler.stats().offCpuVia, via, `off-CPU program run as the ${via}; warnings: ${warnings.join('; ')}`);
    await sleep(200);
    const on = process.hrtime.bigint(); // CLOCK_MONOTONIC, as the records' times and bpftrace's nsecs
    mark(MARK_ON);
    await sleep(WINDOW_MS);
    mark(MARK_OFF);
    const off = process.hrtime.bigint();
    sampler.readNow(); // the window's records are read now, as a capture's end asks for them
    await sleep(300);
    stop();
    const inWindow = samples.filter((s) => s.timeNs > on && s.timeNs <= off); // the intervals bpftrace counted
    const counters = sampler.stats().counters;
    const exact = (await bt.printed('map', '@off', 30_000)) as Record<string, number>;
    const truth = workers.map((w) => exact[w.tid] ?? 0);
    const estimate = workers.map((w) => offCpuNs(inWindow, w.tid));
    const ratio = estimate.reduce((a, b) => a + b) / truth.reduce((a, b) => a + b);
    const ends = counters.offcpuEnds - before.offcpuEnds;
    const reads = counters.offcpuReads - before.offcpuReads;
    t.diagnostic(`off-CPU ns: ours ${estimate}, bpftrace ${truth} (${ratio.toFixed(3)}); ${reads} stack reads, ${ends} intervals, ${samples.length} records`);
    assert.ok(ratio >= 0.85 && ratio <= 1.15, `off-CPU ns: ours ${estimate}, bpftrace ${truth}: ratio ${ratio.toFixed(3)} (want 0.85–1.15)`);

    assert.ok(ends > 20_000, `${ends} intervals ended: the fixture did not ping-pong`);
    assert.ok(reads < ends / 4, `${reads} stack reads for ${ends} intervals: short intervals should skip most`);

    const sym = symbolizer(binary, proc.bias);
    try {
      for (const w of workers) {
        // Blocked means waiting for the other's byte (ping can also be preempted while it computes: runnable).
        const mine = samples.filter((s) => s.tid === w.tid && s.offCpu!.state === 'blocked');
        // Its thread also blocks, less often, where the runtime parks it (stop-the-world for GC, preemption of a
        // locked thread), and more so on a busy machine: most, not all, pass through the wait.
        const withFn = mine.filter((s) => sym.names(s.userStack).includes(w.function));
        const others = mine.filter((s) => !withFn.includes(s)).map((s) => sym.names(s.userStack).slice(0, 3).join(' < '));
        assert.ok(mine.length > 0 && withFn.length / mine.length >= 0.85, `${w.role}: ${withFn.length}/${mine.length} blocked stacks pass through ${w.function}; others: ${others.slice(0, 5).join('; ')}`);
      }
    } finally {
      sym.close();
    }
    assert.equal(sampler.stats().offCpuVia, undefined, 'no off-CPU program runs once nobody asks');
  } finally {
    await bt.kill();
    await sampler.close();
    runqueue?.close();
    await fx.stop();
  }
});
}

test('clipOffCpu cuts intervals that began before the subscription, keeps sampled short ones whole, scales scaled ones', () => {
  const base = { pid: 1, tid: 1, cpu: 0, comm: 'x', goid: undefined, userStack: [], kernelStack: [] };
  const long: RawSample = { ...base, timeNs: 1_000n, offCpu: { weightNs: 600, startNs: 400n, state: 'blocked' } };
  const sampled: RawSample = { ...base, timeNs: 1_000n, offCpu: { weightNs: 500, startNs: 900n, state: 'runnable' } };
  const before: RawSample = { ...base, timeNs: 700n, offCpu: { weightNs: 100, startNs: 600n, state: 'blocked' } };
  // Stands for 4× its interval (its thread's stacks were read at a quarter of its switch-outs): scaled with it.
  const scaled: RawSample = { ...base, timeNs: 1_000n, offCpu: { weightNs: 2400, startNs: 400n, state: 'blocked' } };
  const out = clipOffCpu([long, sampled, before, scaled], 800n);
  assert.deepEqual(out.map((s) => s.offCpu), [
    { weightNs: 200, startNs: 800n, state: 'blocked' },
    { weightNs: 500, startNs: 900n, state: 'runnable' },
    { weightNs: 800, startNs: 800n, state: 'blocked' },
  ]);
});

samplerTest('a full ring buffer: off-CPU records are counted as lost, the sampler keeps running and delivering', async () => {
  // 8 KiB holds three off-CPU records, and a 1 µs period sends nearly every switch of the node: it overflows
  // between two reads of the ring buffer.
  const sampler = Sampler.start({ hz: 99, ringBufferBytes: 8192, offCpuPeriodMs: 0.001 });
  await sampler.ready();
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
