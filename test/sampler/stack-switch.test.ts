// Stacks that cross from a goroutine's stack to the system stack (g0): the switches fixture spends its time in
// runtime.systemstack (allocation, GC assists, the GC's mark workers), in runtime.morestack → newstack (goroutines
// whose stacks grow again and again) and in a cgo call (C code on g0, reached through asmcgocall). Go's own
// traceback jumps back to the goroutine's stack at each of them (runtime/traceback.go); the agent's BPF walk must do
// the same, so that its CPU profile, taken over the same seconds as the program's own runtime/pprof profile, puts
// those samples under the same goroutines: the same share of them reach the goroutine's root, and every function
// named below has the same cumulative share in both (within sampling noise).
import assert from 'node:assert/strict';

import { buildFixture, type FixtureMode } from '../support/go-toolchains';
import { cumCounts, functionsOf, profileWithOwn, sameShare } from '../support/own-profile';
import type { Profile } from '../../src/profile/pprof';
import { samplerTest } from './support';

interface Startup {
  pid: number;
  goVersion: string;
  workers: string[];
}

/** The goroutines' start functions (the fixture's and the runtime's own). */
const ROOTS = new Set([
  'main.allocWorker', 'main.growWorker', 'main.deepRoot', 'main.cWorker', 'runtime.gcBgMarkWorker', 'runtime.bgsweep',
  'runtime.bgscavenge', 'runtime.main', 'runtime.forcegchelper', 'runtime.runfinq',
]);

/** Where a switch shows in a stack, and the roots its samples belong under. */
const SWITCHES: ReadonlyArray<{ what: string; through: string; roots: ReadonlySet<string> }> = [
  { what: 'systemstack', through: 'runtime.systemstack', roots: ROOTS },
  { what: 'morestack', through: 'runtime.newstack', roots: new Set(['main.deepRoot']) },
  { what: 'cgo call', through: 'runtime.cgocall', roots: new Set(['main.cWorker']) },
];

const CUM = [
  'main.allocWorker', 'runtime.mallocgc', 'runtime.gcBgMarkWorker', 'runtime.systemstack', 'main.deepRoot', 'main.recurse',
  'runtime.newstack', 'main.cWorker', 'main.spinInC', 'runtime.cgocall',
];

/** Of the samples through `through`, how many, and how many reach one of `roots`. */
function reach(p: Profile, through: string, roots: ReadonlySet<string>): { n: number; reached: number } {
  let n = 0;
  let reached = 0;
  for (const s of p.sample) {
    const fns = functionsOf(p, s);
    if (!fns.has(through)) continue;
    n += Number(s.value[0]);
    if ([...fns].some((f) => roots.has(f))) reached += Number(s.value[0]);
  }
  return { n, reached };
}

const CASES: Array<[string, FixtureMode]> = [
  ['1.15', 'plain'], ['1.19', 'plain'], ['1.19', 'external-stripped-pie'], ['1.23', 'plain'],
  ['1.26', 'plain'], ['1.26', 'external-stripped-pie'],
];

for (const [go, mode] of CASES) {
  samplerTest(`go${go} ${mode}: samples on the system stack join their goroutine's stack, as in the program's own profile`, async (t) => {
    const binary = buildFixture({ go, fixture: 'switches', mode });
    const run = await profileWithOwn<Startup>({ binary });
    try {
      const ours = run.ours.profile!.profile;
      const mine = run.mine;
      assert.deepEqual([...run.startup.workers].sort(), ['alloc', 'cspin', 'grow']);

      for (const { what, through, roots } of SWITCHES) {
        const a = reach(ours, through, roots);
        const b = reach(mine, through, roots);
        t.diagnostic(`go${go} ${mode} ${what}: ${a.reached}/${a.n} agent samples through ${through} reach the goroutine's root, own profile ${b.reached}/${b.n}`);
        assert.ok(b.n >= 10 && b.reached >= 0.9 * b.n, `own profile: ${b.reached}/${b.n} through ${through} reach the root`);
        assert.ok(a.n >= 10, `${a.n} agent samples through ${through}`);
        assert.ok(a.reached / a.n >= b.reached / b.n - 0.05, `${what}: ${a.reached}/${a.n} agent samples through ${through} reach the root, own profile ${b.reached}/${b.n}`);
      }

      const [a, b] = [cumCounts(ours), cumCounts(mine)];
      for (const fn of CUM) {
        const [pa, pb] = [(100 * (a.cum.get(fn) ?? 0)) / a.total, (100 * (b.cum.get(fn) ?? 0)) / b.total];
        t.diagnostic(`go${go} ${mode} cum ${fn}: agent ${pa.toFixed(1)}% of ${a.total}, own ${pb.toFixed(1)}% of ${b.total}`);
        assert.ok(sameShare(pa, a.total, pb, b.total), `cum ${fn}: agent ${pa.toFixed(1)}% of ${a.total} samples, own ${pb.toFixed(1)}% of ${b.total}`);
      }
    } finally {
      await run.close();
    }
  });
}
