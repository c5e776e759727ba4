// Twelve profile requests at once against the real agent process (real BPF, a real Go program): each is either a
// real profile or a pprof-style refusal, the agent's concurrency limit holds, and nothing is left held afterwards.

import assert from 'node:assert/strict';
import { bpfTest } from '../bpf/support';
import { run } from '../sampler/support';
import { expectPprofError, numLabel, pprofRaw, readPprof, sampleCount, startAgent } from '../support/agent';
import { buildFixture, newestToolchain } from '../support/go-toolchains';
import type { Profile } from '../../src/profile/pprof';

/** Set with --max-profiles (default 8), below the number of requests. */
const AGENT_PROFILE_LIMIT = 5;
const REQUESTS = 12;

/** The samples/count column `go tool pprof -raw` prints, summed: Go's own reading of the profile. */
function rawSampleCount(raw: string): number {
  const block = /\nSamples:\n[^\n]*\n([\s\S]*?)\nLocations\n/.exec(raw);
  assert.ok(block, `go tool pprof -raw printed no Samples block:\n${raw.slice(0, 500)}`);
  let n = 0;
  for (const line of block[1]!.split('\n')) {
    const m = /^\s*(\d+)\s+\d+:/.exec(line);
    if (m) n += Number(m[1]);
  }
  return n;
}

bpfTest(`${REQUESTS} simultaneous profiles: each a profile or a pprof-style 429, the limit holds, the agent stays healthy`, async () => {
  const agent = await startAgent(['--max-profiles', String(AGENT_PROFILE_LIMIT)]);
  const hot = await run(buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' }));
  try {
    // Half for the Go program, half node-wide, interleaved so both kinds meet the limit.
    const urls = Array.from({ length: REQUESTS }, (_, i) => `${agent.url}/debug/pprof/profile?seconds=2${i % 2 === 0 ? `&pid=${hot.pid}` : ''}`);
    const answers = await Promise.all(urls.map((u) => fetch(u)));

    const ok: Array<{ url: string; profile: Profile; bytes: Buffer }> = [];
    const refused: string[] = [];
    for (const [i, r] of answers.entries()) {
      const url = urls[i]!;
      if (r.status === 200) {
        ok.push({ url, ...(await readPprof(r, url)) });
      } else {
        // 429 is the only refusal due here: the agent answers 503 only while it shuts down.
        refused.push(await expectPprofError(r, 429, url));
        assert.ok(r.headers.get('retry-after'), `${url}: 429 without Retry-After`);
      }
    }

    // The requests arrive together, long before any 2 s window ends: exactly `limit` run, the rest are refused,
    // and the refusals say which limit they met.
    const codes = answers.map((r) => r.status).join(',');
    assert.equal(ok.length, Math.min(REQUESTS, AGENT_PROFILE_LIMIT), `statuses ${codes}`);
    assert.equal(refused.length, REQUESTS - AGENT_PROFILE_LIMIT, `statuses ${codes}`);
    for (const body of refused) assert.match(body, new RegExp(`the limit is ${AGENT_PROFILE_LIMIT}\\b`), body);

    for (const { url, profile } of ok) {
      assert.ok(sampleCount(profile) > 0, `${url}: no samples`);
      const pids = new Set(profile.sample.map((s) => numLabel(profile, s, 'pid')));
      if (url.includes('pid=')) assert.deepEqual([...pids], [hot.pid], `${url}: samples of other processes`);
      else assert.ok(pids.has(hot.pid), `${url}: the node-wide profile has nothing of the busy Go program (pids ${[...pids].join(',')})`);
    }
    // Go's reader agrees with ours on one profile of each kind.
    for (const kind of [true, false]) {
      const one = ok.find((o) => o.url.includes('pid=') === kind);
      assert.ok(one, `no successful ${kind ? 'pid=' : 'node-wide'} profile among ${codes}`);
      assert.equal(rawSampleCount(pprofRaw(one.bytes)), sampleCount(one.profile), `${one.url}: go tool pprof -raw and decodePprof disagree`);
    }

    // Afterwards: healthy, every slot given back (a full set of profiles at once all succeed), and the refusals
    // counted in the agent's own metrics.
    assert.equal((await fetch(`${agent.url}/healthz`)).status, 200, 'healthz after the burst');
    const again = await Promise.all(
      Array.from({ length: AGENT_PROFILE_LIMIT }, (_, i) => fetch(`${agent.url}/debug/pprof/profile?seconds=1${i % 2 === 0 ? `&pid=${hot.pid}` : ''}`)),
    );
    for (const r of again) {
      const { profile } = await readPprof(r, 'profile after the burst');
      assert.ok(sampleCount(profile) > 0, 'a profile after the burst has no samples');
    }
    const metrics = await (await fetch(`${agent.url}/metrics`)).text();
    const counted = (code: number): number =>
      Number(new RegExp(`quietflame_profile_requests_total\\{endpoint="/debug/pprof/profile",code="${code}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
    assert.equal(counted(429), REQUESTS - AGENT_PROFILE_LIMIT, '429s in quietflame_profile_requests_total');
    assert.equal(counted(200), 2 * AGENT_PROFILE_LIMIT, '200s in quietflame_profile_requests_total');
    assert.equal(await agent.stop(), 0, agent.stderr());
  } finally {
    await hot.stop();
    await agent.stop();
  }
});

bpfTest('one node-wide off-CPU profile at a time (by default): a second is refused with 429, one of a single process still runs', async () => {
  const agent = await startAgent();
  const hot = await run(buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' }));
  try {
    const nodeWide = `${agent.url}/debug/pprof/offcpu?seconds=2`;
    const first = fetch(nodeWide);
    // The first has started once the agent counts it in flight: a second node-wide one is then refused at once.
    let second = await fetch(nodeWide);
    for (let tries = 1; second.status === 200 && tries < 3; tries++) {
      await readPprof(second, 'a node-wide off-CPU profile that ran alone (it overtook the first)');
      second = await fetch(nodeWide);
    }
    const why = await expectPprofError(second, 429, nodeWide);
    assert.match(why, /node-wide off-CPU profile is already being captured \(the limit is 1, --max-node-offcpu-profiles\)/);
    assert.ok(second.headers.get('retry-after'), '429 without Retry-After');
    const [one, cpu] = await Promise.all([
      fetch(`${agent.url}/debug/pprof/offcpu?seconds=1&pid=${hot.pid}`),
      fetch(`${agent.url}/debug/pprof/profile?seconds=1`),
    ]);
    const { profile } = await readPprof(one, 'off-CPU of one process beside the node-wide one');
    assert.deepEqual([...new Set(profile.sample.map((s) => numLabel(profile, s, 'pid')))], [hot.pid]);
    assert.ok(sampleCount((await readPprof(cpu, 'node-wide CPU beside it')).profile) > 0);
    assert.ok(sampleCount((await readPprof(await first, nodeWide)).profile) > 0, 'the first node-wide off-CPU profile');
    assert.equal(await agent.stop(), 0, agent.stderr());
  } finally {
    await hot.stop();
    await agent.stop();
  }
});
