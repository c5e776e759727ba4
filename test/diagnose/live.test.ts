// Every rule against a Go program that has its shape for real, through the agent's GET /api/diagnose (real BPF
// CPU and off-CPU profiles, goroutines read from outside at the start and end of the window): the rule fires,
// on the right process, with evidence that names the fixture's own code. A healthy CPU-bound program fires none.
// The findings are counted in /metrics.

import assert from 'node:assert/strict';
import { after } from 'node:test';
import type { Finding, RuleName } from '../../src/diagnose/types';
import { RULES } from '../../src/diagnose/types';
import { bpfTest } from '../bpf/support';
import { type AgentProcess, startAgent } from '../support/agent';
import { sleep, startShape } from './support';

let agent: Promise<AgentProcess> | undefined;
const theAgent = (): Promise<AgentProcess> => (agent ??= startAgent());
after(async () => {
  if (agent) await (await agent).stop();
});

interface Answer {
  pid: number;
  seconds: number;
  inputs: { cpuSamples: number; offcpuSamples: number; goroutines: number[] };
  findings: Finding[];
  notes: string[];
}

async function diagnoseShape(shape: string, seconds = 3): Promise<Answer> {
  const a = await theAgent();
  const fx = await startShape(shape);
  try {
    await sleep(1000); // let the shape settle (heaps built, queues filled)
    const r = await fetch(`${a.url}/api/diagnose?pid=${fx.pid}&seconds=${seconds}`);
    const text = await r.text();
    assert.equal(r.status, 200, text);
    const body = JSON.parse(text) as Answer;
    assert.equal(body.pid, fx.pid);
    assert.equal(body.inputs.goroutines.length, 2, `both goroutine snapshots were read: ${JSON.stringify(body.notes)}`);
    return body;
  } finally {
    fx.kill();
  }
}

function fired(body: Answer, rule: RuleName): Finding {
  const f = body.findings.find((x) => x.rule === rule);
  assert.ok(f, `${rule} did not fire: ${JSON.stringify(body, null, 1).slice(0, 3000)}`);
  assert.equal(f.pid, body.pid);
  assert.ok(f.evidence.summary.length > 10 && f.advice.length > 40);
  return f;
}

const framesOf = (f: Finding): string[] => (f.evidence.stacks ?? []).flatMap((s) => s.frames);
const functionsOf = (f: Finding): string[] => (f.evidence.functions ?? []).map((x) => x.function);

bpfTest('scheduler-thrash: goroutines ping-ponging over unbuffered channels', async () => {
  const f = fired(await diagnoseShape('scheduler-thrash'), 'scheduler-thrash');
  assert.ok(f.evidence.share! >= 0.35, `share ${f.evidence.share}`);
  assert.ok(functionsOf(f).some((n) => /^runtime\.(park_m|ready|schedule|mcall)$/.test(n)), functionsOf(f).join(', '));
});

bpfTest('netpoll-wait: clients waiting on a slow server, every goroutine in IO wait', async () => {
  const body = await diagnoseShape('netpoll-wait');
  const f = fired(body, 'netpoll-wait');
  assert.ok(f.evidence.goroutines! >= 400, `${f.evidence.goroutines} goroutines`);
  assert.ok(framesOf(f).includes('internal/poll.runtime_pollWait'));
  assert.ok(framesOf(f).some((n) => n === 'main.awaitAnswers' || n === 'main.serveConn'), framesOf(f).join(', '));
  assert.ok(typeof f.evidence.measures?.['offCpuNetpollShare'] === 'number' && f.evidence.measures['offCpuNetpollShare'] > 0, JSON.stringify(f.evidence.measures));
});

bpfTest('deep-servehttp: a handler wrapped in 12 middlewares', async () => {
  const f = fired(await diagnoseShape('deep-servehttp'), 'deep-servehttp');
  assert.ok(Number(f.evidence.measures?.['depth']) >= 13, JSON.stringify(f.evidence));
  assert.match(f.evidence.summary, /main\.\(\*middleware\)\.ServeHTTP ×12/);
});

bpfTest('gc-pressure: a pointer-rich heap and goroutines churning garbage', async () => {
  const f = fired(await diagnoseShape('gc-pressure'), 'gc-pressure');
  assert.ok(functionsOf(f).some((n) => n.startsWith('runtime.mallocgc') || n.startsWith('runtime.gcDrain')), functionsOf(f).join(', '));
});

bpfTest('idle-with-pileup: 4,000 requests queued behind one slow dependency', async () => {
  const f = fired(await diagnoseShape('idle-with-pileup'), 'idle-with-pileup');
  assert.ok(f.evidence.goroutines! >= 3000, `${f.evidence.goroutines}`);
  assert.ok(framesOf(f).includes('main.callDependency'));
  assert.ok(Number(f.evidence.measures?.['cores']) < 0.25);
});

bpfTest('lock-contention: 64 goroutines on one sync.Mutex', async () => {
  const f = fired(await diagnoseShape('lock-contention'), 'lock-contention');
  assert.ok(f.evidence.goroutines! >= 10, JSON.stringify(f.evidence));
  assert.ok(framesOf(f).includes('main.critical'), framesOf(f).join(', '));
});

bpfTest('goroutine-leak: a goroutine per request that never finishes', async () => {
  const f = fired(await diagnoseShape('goroutine-leak'), 'goroutine-leak');
  assert.ok(Number(f.evidence.measures?.['growth']) >= 500, JSON.stringify(f.evidence.measures));
  assert.equal(f.evidence.stacks![0]!.state, 'chan send');
  assert.ok(framesOf(f).includes('main.fetch'));
});

bpfTest('syscall-heavy: goroutines reading /dev/zero', async () => {
  const f = fired(await diagnoseShape('syscall-heavy'), 'syscall-heavy');
  assert.ok(functionsOf(f).includes('read(2)'), functionsOf(f).join(', '));
  assert.ok(functionsOf(f).includes('main.readZeros'), functionsOf(f).join(', '));
});

bpfTest('a healthy CPU-bound program fires no rule', async () => {
  const body = await diagnoseShape('healthy');
  assert.ok(body.inputs.cpuSamples > 50, `${body.inputs.cpuSamples} CPU samples`);
  assert.deepEqual(body.findings, []);
});

bpfTest('findings are counted in /metrics by rule; bad requests get one-line errors', async () => {
  const a = await theAgent();
  const text = await (await fetch(`${a.url}/metrics`)).text();
  for (const rule of RULES) assert.match(text, new RegExp(`^quietflame_diagnosis_findings_total\\{rule="${rule}"\\} \\d+$`, 'm'), rule);
  // This file's tests ran first on this agent: the shapes they fired are counted.
  assert.match(text, /^quietflame_diagnosis_findings_total\{rule="goroutine-leak"\} [1-9]/m);
  const bad = await fetch(`${a.url}/api/diagnose?pid=nope&seconds=1`);
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /^pid="nope": not a process ID\n$/);
  const gone = await fetch(`${a.url}/api/diagnose?pid=999999&seconds=1`);
  assert.equal(gone.status, 404);
});
