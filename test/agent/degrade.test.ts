// Degrade, don't die: `quietflame agent` on a kernel that refuses some of its BPF programs keeps the rest. The
// refusal is real: a test-only override (QUIETFLAME_TEST_ATTACH_TARGETS) points programs at a tracepoint this
// kernel does not have, so the kernel rejects them at load. The agent logs one line per lost feature, reports it in
// quietflame_feature_enabled{feature} and /healthz, and CPU profiles still work.

import assert from 'node:assert/strict';
import { bpfTest } from '../bpf/support';
import { run } from '../sampler/support';
import { expectPprofError, readPprof, startAgent } from '../support/agent';
import { buildFixture, newestToolchain } from '../support/go-toolchains';
import type { FeatureState } from '../../src/bpf/features';

const MISSING = 'qf_no_such_tracepoint';

bpfTest('a kernel refusing the exit hook, the off-CPU program and runqlat.bpf.o: those features are off, the rest works', async (t) => {
  const agent = await startAgent([], { QUIETFLAME_TEST_ATTACH_TARGETS: `on_exit=${MISSING},offcpu_switch=${MISSING},on_switch=${MISSING}` });
  const hot = await run(buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' }));
  try {
    const health = await fetch(`${agent.url}/healthz`);
    assert.equal(health.status, 200, 'the CPU profiler is attached: healthy');
    const body = (await health.json()) as { status: string; features: Record<string, FeatureState> };
    t.diagnostic(JSON.stringify(body.features));
    for (const off of ['exit_events', 'offcpu', 'runqueue_latency']) {
      assert.equal(body.features[off]?.enabled, false, `${off} is off`);
      assert.match(body.features[off]?.detail ?? '', new RegExp(MISSING), `${off}: the kernel's reason names the missing tracepoint`);
    }
    for (const on of ['cpu_profile', 'exec_events']) assert.deepEqual(body.features[on], { enabled: true }, `${on} is on`);

    const logs = agent.stdout().split('\n').filter((l) => /feature \w+ is off/.test(l));
    t.diagnostic(logs.map((l) => (JSON.parse(l) as { msg: string }).msg.slice(0, 160)).join('\n'));
    for (const f of ['exit_events', 'offcpu', 'runqueue_latency']) {
      assert.equal(logs.filter((l) => l.includes(`feature ${f} is off`)).length, 1, `one log line for ${f}`);
    }

    const metrics = await (await fetch(`${agent.url}/metrics`)).text();
    for (const [f, v] of [['exit_events', 0], ['offcpu', 0], ['runqueue_latency', 0], ['cpu_profile', 1], ['exec_events', 1]] as const) {
      assert.match(metrics, new RegExp(`^quietflame_feature_enabled\\{feature="${f}"\\} ${v}$`, 'm'), `${f} gauge`);
    }
    assert.doesNotMatch(metrics, /^quietflame_runqueue_latency_seconds_count/m, 'no run-queue series without its program');

    const cpu = await readPprof(await fetch(`${agent.url}/debug/pprof/profile?seconds=2&pid=${hot.pid}`), 'cpu profile');
    const names = new Set(cpu.profile.function.map((f) => cpu.profile.stringTable[f.name]));
    assert.ok(names.has('main.leafSpin'), 'the CPU profile still symbolizes the hot fixture');
    const off = await expectPprofError(await fetch(`${agent.url}/debug/pprof/offcpu?seconds=1&pid=${hot.pid}`), 503, 'offcpu profile');
    assert.match(off, /off-CPU profiles are not available on this kernel/);
    // The refused capture did not hold a slot: as many CPU profiles as before can still run.
    await readPprof(await fetch(`${agent.url}/debug/pprof/profile?seconds=1&pid=${hot.pid}`), 'cpu profile after the 503');
  } finally {
    await hot.stop();
    assert.equal(await agent.stop(), 0, 'the agent exits cleanly');
  }
});

bpfTest('with every feature the kernel has, /healthz lists them all on and the gauge says so', async () => {
  const agent = await startAgent();
  try {
    const body = (await (await fetch(`${agent.url}/healthz`)).json()) as { status: string; features: Record<string, FeatureState> };
    assert.equal(body.status, 'ok');
    assert.deepEqual(Object.keys(body.features), ['cpu_profile', 'exec_events', 'exit_events', 'offcpu', 'runqueue_latency']);
    for (const [name, f] of Object.entries(body.features)) assert.deepEqual(f, { enabled: true }, name);
    const metrics = await (await fetch(`${agent.url}/metrics`)).text();
    assert.equal((metrics.match(/^quietflame_feature_enabled\{feature="\w+"\} 1$/gm) ?? []).length, 5);
  } finally {
    await agent.stop();
  }
});
