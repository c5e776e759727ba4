// Off-CPU profiles end to end: the real agent, a Go program with threads blocked in read(2) and nanosleep(2) and one
// spinning (test/fixtures/go/offcpu), and the real `go tool pprof` fetching /debug/pprof/offcpu over HTTP.

import assert from 'node:assert/strict';
import { onCpuNs, preemptions } from '../support/schedstat';
import { spawn } from 'node:child_process';
import * as readline from 'node:readline';

import { bpfTest } from '../bpf/support';
import { inContainerCgroup } from '../proc/cgroup-support';
import { expectPprofError, goTool, numLabel, readPprof, startAgent } from '../support/agent';
import { buildFixture, newestToolchain } from '../support/go-toolchains';
import type { Profile } from '../../src/profile/pprof';

interface Worker {
  role: 'pipe' | 'sleep' | 'spin';
  goid: number;
  tid: number;
  function: string;
}

async function startOffCpuFixture(): Promise<{ pid: number; workers: Worker[]; stop(): void }> {
  const proc = spawn(buildFixture({ go: newestToolchain().version, fixture: 'offcpu', mode: 'plain' }), [], { stdio: ['ignore', 'pipe', 'inherit'] });
  const first = await readline.createInterface({ input: proc.stdout! })[Symbol.asyncIterator]().next();
  const info = JSON.parse(first.value as string) as { pid: number; workers: Worker[] };
  return { ...info, stop: () => proc.kill('SIGKILL') };
}

function strLabel(p: Profile, s: Profile['sample'][number], key: string): string | undefined {
  const l = s.label.find((x) => p.stringTable[x.key] === key);
  return l === undefined ? undefined : p.stringTable[l.str];
}

function functionsOf(p: Profile, s: Profile['sample'][number]): string[] {
  const locs = new Map(p.location.map((l) => [l.id, l]));
  const fns = new Map(p.function.map((f) => [f.id, p.stringTable[f.name]!]));
  return s.locationId.flatMap((id) => (locs.get(id)?.line ?? []).map((ln) => fns.get(ln.functionId)!));
}

const CONTAINER = 'c0ffee00'.repeat(8);

bpfTest('go tool pprof reads /debug/pprof/offcpu: blocked threads with their Go functions, state, goroutine and container labels', async () => {
  const fx = await startOffCpuFixture();
  const agent = await startAgent();
  // The fixture runs in a cgroup named as containerd names a container's: its samples carry container_id.
  await inContainerCgroup(fx.pid, CONTAINER, async () => {
    const url = `${agent.url}/debug/pprof/offcpu?seconds=3&pid=${fx.pid}`;
    const top = goTool(['pprof', '-top', '-sample_index=off_cpu', url]);
    assert.equal(top.status, 0, `go tool pprof failed: ${top.stderr}`);
    assert.match(top.stdout, /^Type: off_cpu$/m);
    for (const fn of ['main.readPipe', 'main.sleepNano']) assert.match(top.stdout, new RegExp(fn.replace('.', '\\.')), `${fn} in\n${top.stdout}`);
    assert.doesNotMatch(top.stderr, /symboliz|warning|failed/i, `pprof complained: ${top.stderr}`);

    const spin = fx.workers.find((x) => x.role === 'spin')!;
    const t0 = process.hrtime.bigint();
    const ran0 = onCpuNs(fx.pid, spin.tid);
    const preempted0 = fx.workers.map((w) => preemptions(fx.pid, w.tid));
    const { profile: p } = await readPprof(await fetch(url), 'offcpu profile');
    const ran1 = onCpuNs(fx.pid, spin.tid);
    const preempted = fx.workers.map((w, i) => preemptions(fx.pid, w.tid) - preempted0[i]!);
    const requestNs = Number(process.hrtime.bigint() - t0);
    const types = p.sampleType.map((t) => `${p.stringTable[t.type]}/${p.stringTable[t.unit]}`);
    assert.deepEqual(types, ['samples/count', 'off_cpu/nanoseconds']);
    assert.equal(`${p.stringTable[p.periodType!.type]}/${p.stringTable[p.periodType!.unit]}`, 'off_cpu/nanoseconds');
    assert.equal(p.period, 10_000_000, 'period = the default --offcpu-period-ms');
    const durationNs = Number(p.durationNanos);
    assert.ok(durationNs >= 2.5e9 && durationNs <= 4e9, `duration ${durationNs} ns`);
    for (const w of fx.workers.filter((x) => x.role !== 'spin')) {
      const mine = p.sample.filter((s) => numLabel(p, s, 'tid') === w.tid);
      const ns = mine.reduce((a, s) => a + (s.value[1] ?? 0), 0);
      assert.ok(ns >= 0.85 * durationNs && ns <= 1.05 * durationNs, `${w.role}: ${(ns / 1e6).toFixed(0)} ms off-CPU in a ${(durationNs / 1e6).toFixed(0)} ms profile`);
      // Blocked, but for the times the kernel preempted it (a loaded machine): no more runnable records than that.
      const runnable = mine.filter((s) => strLabel(p, s, 'state') === 'runnable').reduce((a, s) => a + (s.value[0] ?? 0), 0);
      const kernel = preempted[fx.workers.indexOf(w)]!;
      assert.ok(mine.some((s) => strLabel(p, s, 'state') === 'blocked') && runnable <= kernel, `${w.role}: ${runnable} runnable records, the kernel preempted it ${kernel} times`);
      // Most of it in the goroutine's own syscall; the rest on the thread's g0, waiting for a P after the syscall
      // (the spinner holds one of the two), which is off-CPU time too but belongs to no goroutine.
      const share = (keep: (s: Profile['sample'][number]) => boolean): number => mine.filter(keep).reduce((a, s) => a + (s.value[1] ?? 0), 0) / ns;
      const own = share((s) => numLabel(p, s, 'goid') === w.goid && functionsOf(p, s).includes(w.function));
      assert.ok(own >= 0.9, `${w.role}: ${(own * 100).toFixed(1)}% of its off-CPU time in goroutine ${w.goid} under ${w.function}`);
      assert.ok(mine.every((s) => [w.goid, undefined].includes(numLabel(p, s, 'goid'))), `${w.role}: no other goroutine on its thread`);
      assert.ok(mine.every((s) => strLabel(p, s, 'comm') === 'offcpu'));
      assert.ok(mine.every((s) => strLabel(p, s, 'container_id') === CONTAINER), `${w.role}: container_id`);
    }
    // The spinner never blocks: it is off the CPU only while other threads have it (a loaded machine), as long as
    // the kernel's own account of its CPU time says; the records are a sample, within their spread.
    const spinNs = p.sample.filter((s) => numLabel(p, s, 'tid') === spin.tid).reduce((a, s) => a + (s.value[1] ?? 0), 0);
    // The kernel's figure covers the whole request, the profile only its window inside it: the profile's share
    // lies between the kernel's figure less the time outside the window, and the kernel's figure.
    const truthNs = Math.max(0, requestNs - (ran1 - ran0));
    const outsideNs = Math.max(0, requestNs - durationNs);
    const allowedNs = 4 * Math.sqrt(truthNs * p.period) + 0.05 * durationNs;
    assert.ok(spinNs <= truthNs + allowedNs && spinNs >= truthNs - outsideNs - allowedNs, `spinner ${(spinNs / 1e6).toFixed(0)} ms off-CPU, the kernel says ${(truthNs / 1e6).toFixed(0)} ms over the ${(requestNs / 1e6).toFixed(0)} ms request (want within ${(allowedNs / 1e6).toFixed(0)} ms)`);

    await expectPprofError(await fetch(`${agent.url}/debug/pprof/offcpu?seconds=abc`), 400, 'seconds=abc');
    await expectPprofError(await fetch(`${agent.url}/debug/pprof/offcpu?seconds=1&pid=x`), 400, 'pid=x');
  }).finally(async () => {
    fx.stop();
    assert.equal(await agent.stop(), 0, agent.stderr());
  });
});
