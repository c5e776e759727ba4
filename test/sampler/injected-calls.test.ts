// Stacks through a call the runtime injects from a signal handler (runtime/traceback.go's injected calls): the
// switches fixture's fault worker loads through nil in main.nilLoad, a frameless function, again and again, and the SIGSEGV
// handler sends it to runtime.sigpanic (through sigpanic0 on amd64 since Go 1.17) with the faulting PC pushed as the
// return address. Go's traceback names that PC itself, not the instruction before it (nilLoad faults at its first
// instruction, so the one before is another function's), and finds nilLoad's caller by its frame size, since
// nilLoad never set up a frame and the frame pointer is still its caller's. The agent's profile, taken over the same
// seconds as the program's own runtime/pprof profile, must show those samples the same way: sigpanic ← nilLoad ←
// faultCaller ← faultWorker. (asyncPreempt is injected the same way and takes the same path in the BPF walk; its
// samples are too rare to count on here.)
import assert from 'node:assert/strict';

import type { Profile } from '../../src/profile/pprof';
import { buildFixture, type FixtureMode } from '../support/go-toolchains';
import { profileWithOwn, stackOf } from '../support/own-profile';
import { samplerTest } from './support';

const INJECTED = new Set(['runtime.sigpanic', 'runtime.sigpanic0']);
const BELOW = ['main.nilLoad', 'main.faultCaller', 'main.faultWorker'];

/** Samples (by count) through sigpanic, and those whose frames after the outermost sigpanic frame are BELOW. */
function throughSigpanic(p: Profile): { n: number; whole: number; other: Map<string, number> } {
  let n = 0;
  let whole = 0;
  const other = new Map<string, number>();
  for (const s of p.sample) {
    const names = stackOf(p, s);
    let last = -1;
    names.forEach((f, i) => INJECTED.has(f) && (last = i));
    if (last < 0) continue;
    const count = Number(s.value[0]);
    n += count;
    const after = names.slice(last + 1, last + 1 + BELOW.length);
    if (after.join(' ') === BELOW.join(' ')) whole += count;
    else other.set(after.join(' ← '), (other.get(after.join(' ← ')) ?? 0) + count);
  }
  return { n, whole, other };
}

const CASES: Array<[string, FixtureMode]> = [['1.15', 'plain'], ['1.19', 'external-stripped-pie'], ['1.26', 'plain'], ['1.26', 'stripped-pie']];

for (const [go, mode] of CASES) {
  samplerTest(`go${go} ${mode}: a fault's sigpanic sits on the faulting frameless function and its caller, as in the program's own profile`, async (t) => {
    const binary = buildFixture({ go, fixture: 'switches', mode });
    const run = await profileWithOwn<{ pid: number }>({ binary, args: ['-workers', 'fault'], agentArgs: ['--hz', '500'] });
    try {
      const a = throughSigpanic(run.ours.profile!.profile);
      const b = throughSigpanic(run.mine);
      const show = (x: typeof a): string => `${x.whole}/${x.n} ${JSON.stringify([...x.other].slice(0, 3))}`;
      t.diagnostic(`go${go} ${mode}: sigpanic ← ${BELOW.join(' ← ')} in agent ${show(a)}, own ${show(b)}`);
      assert.ok(b.n >= 10 && b.whole >= 0.95 * b.n, `own profile: ${show(b)}`);
      assert.ok(a.n >= 10, `only ${a.n} agent samples through sigpanic`);
      assert.ok(a.whole >= 0.95 * a.n, `agent: ${show(a)}`);
    } finally {
      await run.close();
    }
  });
}
