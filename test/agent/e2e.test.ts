// The agent end to end, as a user runs it: `quietflame agent` as a process (real BPF), a real Go program, and the
// real `go tool pprof` fetching over HTTP. The reference for what the profile should say is the program's own
// runtime/pprof over the same window.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bpfTest } from '../bpf/support';
import { CLI } from '../support/cli';
import { repoRoot } from '../support/go-toolchains';
import { goTool, startAgent, startHot } from '../support/agent';
import { decodePprof } from '../../src/profile/pprof';
import { topPercent as top, userFlatPercent as userFlatOf, withoutArtifacts } from '../support/own-profile';

const userFlatPercent = (file: string): Map<string, number> => userFlatOf(decodePprof(fs.readFileSync(file)));

function bpfProgIds(): Set<number> {
  const r = spawnSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' });
  return new Set((JSON.parse(r.stdout || '[]') as Array<{ id: number }>).map((p) => p.id));
}

bpfTest('go tool pprof fetches a symbolized profile of one Go process, with no symbolization warnings', async () => {
  const agent = await startAgent();
  const hot = await startHot();
  try {
    const r = goTool(['pprof', '-top', '-nodecount=40', `${agent.url}/debug/pprof/profile?seconds=3&pid=${hot.pid}`]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /main\.leafSpin/);
    assert.match(r.stdout, /main\.framedHash/);
    assert.match(r.stdout, /main\.leafCaller/);
    assert.doesNotMatch(r.stderr, /symboliz|warning|failed|unsymbolizable/i, r.stderr);
  } finally {
    hot.proc.kill('SIGKILL');
    agent.proc.kill('SIGTERM');
    await agent.exited;
  }
});

bpfTest('the agent agrees with the program\'s own runtime/pprof within a few points for every function above 3%', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-e2e-'));
  const agent = await startAgent();
  const hot = await startHot(['-leaf', '1', '-framed', '1', '-cpuprofile', path.join(dir, 'reference.pb.gz')]);
  try {
    hot.proc.kill('SIGUSR1');
    const fetched = fetch(`${agent.url}/debug/pprof/profile?seconds=5&pid=${hot.pid}`).then(async (r) => {
      assert.equal(r.status, 200);
      fs.writeFileSync(path.join(dir, 'agent.pb.gz'), Buffer.from(await r.arrayBuffer()));
    });
    await new Promise((r) => setTimeout(r, 5000));
    hot.proc.kill('SIGUSR2');
    const written = await Promise.race([hot.lines.next(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the fixture did not write its profile within 30 s of SIGUSR2')), 30_000))]);
    assert.equal(JSON.parse(written.value as string).cpuprofile, 'written');
    await fetched;
    const ref = withoutArtifacts(userFlatPercent(path.join(dir, 'reference.pb.gz')));
    const ours = withoutArtifacts(userFlatPercent(path.join(dir, 'agent.pb.gz')));
    const hotFunctions = [...ref].filter(([, pct]) => pct > 3);
    assert.ok(hotFunctions.length >= 2, `reference has only ${hotFunctions.length} functions above 3%: ${[...ref].slice(0, 5)}`);
    for (const [fn, pct] of hotFunctions) {
      const got = ours.get(fn) ?? 0;
      assert.ok(Math.abs(got - pct) <= 6, `${fn}: runtime/pprof ${pct.toFixed(1)}%, agent ${got.toFixed(1)}%\nreference: ${top(ref)}\nagent: ${top(ours)}`);
    }
  } finally {
    hot.proc.kill('SIGKILL');
    agent.proc.kill('SIGTERM');
    await agent.exited;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

bpfTest("SIGTERM with a 300 s profile in flight: exit 0 inside the DaemonSet's grace period, and every BPF program the agent loaded is gone", async () => {
  // What the kubelet allows between SIGTERM and SIGKILL: the deadline that matters, not a figure for an idle machine.
  const grace = Number(/terminationGracePeriodSeconds: (\d+)/.exec(fs.readFileSync(path.join(repoRoot(), 'deploy', 'daemonset.yaml'), 'utf8'))![1]);
  const before = bpfProgIds();
  const agent = await startAgent();
  const loaded = [...bpfProgIds()].filter((id) => !before.has(id));
  assert.ok(loaded.length >= 2, `the agent loaded only ${loaded.length} BPF programs`);
  const inFlight = fetch(`${agent.url}/debug/pprof/profile?seconds=300`).then((r) => r.status, () => 'connection closed');
  await new Promise((r) => setTimeout(r, 500));
  const t0 = Date.now();
  agent.proc.kill('SIGTERM');
  const code = await agent.exited;
  const elapsed = Date.now() - t0;
  assert.equal(code, 0, agent.stderr());
  assert.ok(elapsed < grace * 1000, `exit took ${elapsed} ms; the DaemonSet gives ${grace} s`);
  assert.ok([200, 503, 'connection closed'].includes(await inFlight));
  // The kernel frees programs after the last fd closes, through RCU: give it a moment.
  let left = loaded;
  for (let i = 0; i < 40 && left.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const now = bpfProgIds();
    left = loaded.filter((id) => now.has(id));
  }
  assert.deepEqual(left, [], 'BPF programs left behind');
});

bpfTest('without its capabilities the agent exits 1 naming what is missing; bad flags exit 2', async () => {
  const r = spawnSync('setpriv', ['--inh-caps=-all', '--bounding-set=-all', '--', process.execPath, CLI, 'agent', '--listen', '127.0.0.1:0'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /missing capabilities CAP_BPF, CAP_PERFMON/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  const bad = spawnSync(process.execPath, [CLI, 'agent', '--hz', 'fast'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--hz fast/);
});
