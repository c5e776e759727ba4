// /metrics of the real agent process: its run-queue series, and --runqueue-per-cgroup adding one histogram per
// cgroup, named by path (the cgroup this test runs in among them), that promtool accepts.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { bpfTest, waitForAsync } from '../bpf/support';
import { startAgent } from '../support/agent';
import { sleeps } from '../support/schedstat';

/** This process's cgroup v2 path ("0::/path" in /proc/self/cgroup). */
function ownCgroup(): string {
  const line = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'));
  assert.ok(line, 'no cgroup v2 line in /proc/self/cgroup');
  return line.slice(3);
}

async function scrape(url: string): Promise<string> {
  const r = await fetch(`${url}/metrics`);
  assert.equal(r.status, 200);
  return r.text();
}

bpfTest('--runqueue-per-cgroup: a run-queue histogram per cgroup, labelled by path; promtool finds nothing', async () => {
  const plain = await startAgent();
  try {
    const text = await scrape(plain.url);
    assert.match(text, /^quietflame_runqueue_latency_seconds_count \d+/m);
    assert.doesNotMatch(text, /^quietflame_cgroup_runqueue_latency_seconds/m, 'per-cgroup series without the flag');
  } finally {
    await plain.stop();
  }

  const agent = await startAgent(['--runqueue-per-cgroup']);
  try {
    const mine = `quietflame_cgroup_runqueue_latency_seconds_count{cgroup="${ownCgroup()}"`;
    let text = '';
    // This process wakes up while it polls, so its cgroup has waited for a CPU by the next scrape or so.
    const seen = await waitForAsync(async () => (text = await scrape(agent.url)).includes(mine), 10_000);
    assert.ok(seen, `no ${mine}} in /metrics:\n${text.split('\n').filter((l) => l.includes('cgroup_runqueue')).slice(0, 5).join('\n')}`);
    const lint = execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    assert.equal(lint.trim(), '', `promtool: ${lint}`);
    assert.equal(await agent.stop(), 0, agent.stderr());
  } finally {
    await agent.stop();
  }
});

bpfTest('an idle agent lets its main thread sleep: a few wake-ups a second, event-loop lag series still reported', async () => {
  const agent = await startAgent();
  try {
    const pid = agent.proc.pid!;
    await new Promise((r) => setTimeout(r, 3000)); // start-up reads (its own symbol tables, /proc) are done
    const before = sleeps(pid, pid);
    const seconds = 5;
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const perSecond = (sleeps(pid, pid) - before) / seconds;
    // A 10 ms lag-sampling timer (prom-client's default) woke it 100 times a second; what is left is the ring
    // buffer's batches (an exec anywhere on the node sends one at once), the /proc scan and the lag timer.
    assert.ok(perSecond < 60, `the idle agent's main thread woke ${perSecond.toFixed(0)} times a second`);
    const text = await scrape(agent.url);
    const p99 = /^nodejs_eventloop_lag_p99_seconds (\S+)$/m.exec(text);
    assert.ok(p99 && Number(p99[1]) > 0, `no nodejs_eventloop_lag_p99_seconds value in /metrics`);
  } finally {
    await agent.stop();
  }
});
