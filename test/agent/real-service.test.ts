// The agent against a real Go service no one here wrote: Debian's prometheus (go1.19, stripped, externally
// linked: C start-up code comes before runtime.text), kept busy and allocating by concurrent PromQL range queries
// over generated series. Its own net/http/pprof CPU profile and the agent's profile of its pid cover the same
// seconds; they must agree per function — flat (the innermost user frame) for every function at 2% or more, and
// cum for the GC's mark workers, mallocgc and the goroutines' entry points. Cum shares cross the stack switches:
// a sample on the system stack (GC work, allocation's slow path, stack growth) counts under the goroutine that
// switched there, as Go's own traceback shows it. Shares, not counts: the machine may be busy.

import assert from 'node:assert/strict';

import { bpfTest } from '../bpf/support';
import { readPprof, startAgent } from '../support/agent';
import { ASYNC_PREEMPT, cumCounts, topPercent, userFlatPercent } from '../support/own-profile';
import { PROMETHEUS, startPrometheus } from '../support/prometheus';
import { GoBinary } from '../../src/gosym/binary';
import type { Profile } from '../../src/profile/pprof';

const SECONDS = 20;

/** Percent of samples per goroutine entry point: the frame that runtime.goexit called, or a system stack's root. */
function entryPercent(p: Profile): Map<string, number> {
  const locs = new Map(p.location.map((l) => [l.id, l]));
  const fns = new Map(p.function.map((f) => [f.id, p.stringTable[f.name]!]));
  const counts = new Map<string, number>();
  let total = 0;
  for (const s of p.sample) {
    const names = s.locationId.flatMap((id) => (locs.get(id)?.line ?? []).map((l) => fns.get(l.functionId) ?? '?'));
    const entry = names.at(-1) === 'runtime.goexit' ? names.at(-2) : names.at(-1);
    counts.set(entry ?? '(empty)', (counts.get(entry ?? '(empty)') ?? 0) + Number(s.value[0]));
    total += Number(s.value[0]);
  }
  return new Map([...counts].map(([fn, n]) => [fn, (100 * n) / total]));
}

/** Within 3 points, or 3 standard deviations of the difference of two binomial shares when that is wider. */
function close(a: number, na: number, b: number, nb: number): boolean {
  const p = (a * na + b * nb) / (100 * (na + nb));
  return Math.abs(a - b) <= Math.max(3, 100 * 3 * Math.sqrt(p * (1 - p) * (1 / na + 1 / nb)));
}

bpfTest('a real service (Debian\'s prometheus under query load): the agent\'s profile agrees with the service\'s own, flat and cum across stack switches', async (t) => {
  const bin = GoBinary.open(PROMETHEUS);
  try {
    const text = bin.elf.section('.text')!;
    t.diagnostic(`${PROMETHEUS}: ${bin.version.text}, pie ${bin.isPie}, .text 0x${text.addr.toString(16)}, runtime.text 0x${bin.textStart.toString(16)}`);
    // What makes it the hard case: stripped, and linked by the C linker (C code first in .text).
    assert.equal(bin.elf.section('.symtab'), undefined, 'prometheus is not stripped');
    assert.ok(bin.textStart > text.addr, 'prometheus is not externally linked (runtime.text is .text\'s start)');
  } finally {
    bin.close();
  }

  const agent = await startAgent();
  const prom = await startPrometheus();
  const load = prom.queryLoad(4);
  try {
    const tracked = async (): Promise<boolean> => {
      const r = (await (await fetch(`${agent.url}/api/processes`)).json()) as { processes: Array<{ pid: number }> };
      return r.processes.some((p) => p.pid === prom.pid);
    };
    for (let i = 0; i < 100 && !(await tracked()); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(await tracked(), 'the agent tracks prometheus');
    await new Promise((r) => setTimeout(r, 2000)); // the load reaches its pace
    const [own, ours] = await Promise.all([
      fetch(`${prom.url}/debug/pprof/profile?seconds=${SECONDS}`).then((r) => readPprof(r, 'prometheus\'s own profile')),
      fetch(`${agent.url}/debug/pprof/profile?seconds=${SECONDS}&pid=${prom.pid}`).then((r) => readPprof(r, 'the agent\'s profile')),
    ]);
    const queries = await load.stop();
    const [a, b] = [cumCounts(ours.profile), cumCounts(own.profile)];
    t.diagnostic(`${queries} range queries; agent ${a.total} samples, own ${b.total}`);
    assert.ok(b.total >= 200, `prometheus's own profile has only ${b.total} samples: not busy`);

    const [fa, fb] = [userFlatPercent(ours.profile, ASYNC_PREEMPT), userFlatPercent(own.profile, ASYNC_PREEMPT)];
    const flat = [...fb].filter(([, p]) => p >= 2).sort((x, y) => y[1] - x[1]);
    const bad: string[] = [];
    for (const [fn, pb] of flat) {
      const pa = fa.get(fn) ?? 0;
      t.diagnostic(`flat ${fn}: agent ${pa.toFixed(1)}%, own ${pb.toFixed(1)}%`);
      if (!close(pa, a.total, pb, b.total)) bad.push(`flat ${fn}: agent ${pa.toFixed(1)}%, own ${pb.toFixed(1)}%`);
    }
    assert.ok(flat.length >= 5, `only ${flat.length} functions at 2% flat or more: ${topPercent(fb)}`);

    const [ea, eb] = [entryPercent(ours.profile), entryPercent(own.profile)];
    const entries = [...new Set([...eb, ...ea].filter(([, p]) => p >= 2).map(([fn]) => fn))]; // in either profile
    const cumOf = (c: { total: number; cum: Map<string, number> }, fn: string): number => (100 * (c.cum.get(fn) ?? 0)) / c.total;
    const cumFns = ['runtime.gcBgMarkWorker', 'runtime.mallocgc', 'runtime.systemstack', ...entries.filter((fn) => fn !== 'runtime.gcBgMarkWorker')];
    for (const fn of cumFns) {
      const [pa, pb] = [cumOf(a, fn), cumOf(b, fn)];
      t.diagnostic(`cum ${fn}: agent ${pa.toFixed(1)}%, own ${pb.toFixed(1)}%`);
      if (!close(pa, a.total, pb, b.total)) bad.push(`cum ${fn}: agent ${pa.toFixed(1)}%, own ${pb.toFixed(1)}%`);
    }
    assert.ok(cumOf(b, 'runtime.gcBgMarkWorker') >= 2 && cumOf(b, 'runtime.mallocgc') >= 5, 'prometheus hardly allocates under this load: the cum check says nothing');
    assert.deepEqual(bad, [], `agent: ${topPercent(fa)}\nown: ${topPercent(fb)}`);
  } finally {
    await load.stop().catch(() => 0);
    await prom.stop();
    await agent.stop();
  }
});
