// Bad requests against the real agent process (real BPF, real flags): the same pprof-style errors
// test/server/http.test.ts checks on an in-process server with a stand-in sampler, here through `quietflame agent`
// as deployed — its flags reach the server, its real process check answers 404, and refusals hold nothing.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { bpfTest } from '../bpf/support';
import { expectPprofError, readPprof, sampleCount, startAgent } from '../support/agent';

/** PIDs are below pid_max, so pid_max itself names no process. */
function absentPid(): number {
  const pid = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());
  assert.ok(!fs.existsSync(`/proc/${pid}`), `/proc/${pid} exists`);
  return pid;
}

/** A thread of this test process other than its main thread (node runs several). */
function threadId(): number {
  const tid = fs.readdirSync('/proc/self/task').map(Number).find((t) => t !== process.pid);
  assert.ok(tid !== undefined, 'node has worker threads');
  return tid;
}

bpfTest('bad seconds, pid and paths get net/http/pprof-style 400/404 from the real agent, and cost it nothing', async () => {
  const agent = await startAgent();
  try {
    const get = (p: string): Promise<Response> => fetch(`${agent.url}${p}`);
    const cases: Array<[string, number, RegExp]> = [
      ['/debug/pprof/profile?seconds=abc', 400, /seconds="abc": not a number/],
      ['/debug/pprof/profile?seconds=-1', 400, /seconds/],
      ['/debug/pprof/profile?seconds=0', 400, /out of range/],
      ['/debug/pprof/profile?seconds=301', 400, /at most 300/], // the default --max-profile-seconds
      ['/debug/pprof/profile?seconds=1e3', 400, /not a number/],
      ['/debug/pprof/profile?seconds=1&pid=x', 400, /pid="x": not a process ID/],
      ['/debug/pprof/profile?seconds=1&pid=-1', 400, /not a process ID/],
      ['/debug/pprof/profile?seconds=1&pid=0', 400, /not a process ID/],
      ['/debug/pprof/profile?seconds=1&pid=99999999999', 400, /not a process ID/],
      [`/debug/pprof/profile?seconds=1&pid=${absentPid()}`, 404, /no such process/],
      // a thread ID names a /proc entry but no process
      [`/debug/pprof/profile?seconds=1&pid=${threadId()}`, 404, /a thread ID is not a process ID/],
      // repeated parameters: the first counts, as Go's FormValue takes it
      ['/debug/pprof/profile?seconds=abc&seconds=1', 400, /seconds="abc"/],
      ['/debug/pprof/offcpu?seconds=abc', 400, /not a number/],
      [`/debug/pprof/offcpu?seconds=1&pid=${absentPid()}`, 404, /no such process/],
      ['/debug/pprof/nope', 404, /no such endpoint/],
    ];
    for (const [p, status, body] of cases) assert.match(await expectPprofError(await get(p), status, p), body, p);
    // Outside /debug/pprof net/http's mux answers a plain-text 404 (without X-Go-Pprof); the agent's has it too.
    const other = await get('/nope');
    assert.equal(other.status, 404);
    assert.match(other.headers.get('content-type') ?? '', /^text\/plain/);
    await other.arrayBuffer();

    // Every refusal is counted by status, none held a capture slot, and the agent still profiles.
    const metrics = await (await get('/metrics')).text();
    const counted = (endpoint: string, code: number): number =>
      Number(new RegExp(`quietflame_profile_requests_total\\{endpoint="${endpoint}",code="${code}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
    assert.equal(counted('/debug/pprof/profile', 400), 10, metrics);
    assert.equal(counted('/debug/pprof/profile', 404), 2, metrics);
    assert.equal(counted('/debug/pprof/offcpu', 400), 1, metrics);
    assert.equal(counted('/debug/pprof/offcpu', 404), 1, metrics);
    assert.equal((await get('/healthz')).status, 200);
    const { profile } = await readPprof(await get('/debug/pprof/profile?seconds=1'), 'a profile after the bad requests');
    assert.ok(sampleCount(profile) > 0, 'a node-wide profile after the bad requests has no samples');
    assert.equal(await agent.stop(), 0, agent.stderr());
  } finally {
    await agent.stop();
  }
});

bpfTest('--max-profile-seconds reaches the server: longer windows are refused with the limit named', async () => {
  const agent = await startAgent(['--max-profile-seconds', '5']);
  try {
    const r = await fetch(`${agent.url}/debug/pprof/profile?seconds=5.5`);
    assert.match(await expectPprofError(r, 400, 'seconds=5.5'), /at most 5\b/);
    assert.equal(await agent.stop(), 0, agent.stderr());
  } finally {
    await agent.stop();
  }
});
