// Crash-safe: `kill -9` of the agent leaves nothing behind that hinders the next start. Everything the agent holds
// (maps, programs, links, perf events) hangs off its file descriptors, nothing is pinned, so the kernel frees it all
// when the process dies. Checked with the kernel's own lists (bpftool), 20 kill/start cycles in a row, then a
// working profile.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { bpfTest, sleep } from '../bpf/support';
import { run } from '../sampler/support';
import { readPprof, startAgent } from '../support/agent';
import { existingIds, heldBpfIds, type BpfKind, type HeldIds } from '../support/bpf-objects';
import { buildFixture, newestToolchain } from '../support/go-toolchains';

const CYCLES = 20;
const KINDS: BpfKind[] = ['map', 'prog', 'link'];

function pinned(): string[] {
  const walk = (dir: string): string[] =>
    fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(`${dir}/${e.name}`) : [`${dir}/${e.name}`])) : [];
  return walk('/sys/fs/bpf').sort();
}

/** Ids of `held` that still exist, waiting up to 2 s (the kernel frees some objects after an RCU grace period). */
async function survivors(held: HeldIds): Promise<string[]> {
  let left: string[] = [];
  for (let i = 0; i < 40; i++) {
    left = KINDS.flatMap((k) => {
      const now = existingIds(k);
      return [...held[k]].filter((id) => now.has(id)).map((id) => `${k} ${id} (${now.get(id)})`);
    });
    if (left.length === 0) break;
    await sleep(50);
  }
  return left;
}

bpfTest(`${CYCLES} kill -9 / start cycles leave no BPF object, pin or perf event behind; then a profile works`, async (t) => {
  const pinsBefore = pinned();
  const kprobesBefore = fs.existsSync('/sys/kernel/tracing/kprobe_events') ? fs.readFileSync('/sys/kernel/tracing/kprobe_events', 'utf8') : '';
  let objects = 0;
  for (let i = 0; i < CYCLES; i++) {
    const agent = await startAgent();
    const pid = agent.proc.pid!;
    const held = heldBpfIds(pid);
    assert.ok(held.prog.size >= 3 && held.link.size >= 3 && held.map.size >= 5, `cycle ${i}: the agent holds its programs, links and maps: ${JSON.stringify({ maps: held.map.size, progs: held.prog.size, links: held.link.size })}`);
    objects += held.map.size + held.prog.size + held.link.size;
    const perfFds = fs.readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:[perf_event]';
      } catch {
        return false;
      }
    }).length;
    assert.ok(perfFds >= 1, `cycle ${i}: the agent holds its perf events`);
    agent.proc.kill('SIGKILL');
    await agent.exited;
    const left = await survivors(held);
    assert.deepEqual(left, [], `cycle ${i}: objects of the killed agent still exist`);
  }
  assert.deepEqual(pinned(), pinsBefore, 'nothing was pinned under /sys/fs/bpf');
  const kprobesAfter = fs.existsSync('/sys/kernel/tracing/kprobe_events') ? fs.readFileSync('/sys/kernel/tracing/kprobe_events', 'utf8') : '';
  assert.equal(kprobesAfter, kprobesBefore, 'no kprobe was left registered');
  t.diagnostic(`${CYCLES} agents killed with SIGKILL; ${objects} BPF maps, programs and links they held all freed`);

  const hot = await run(buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' }));
  const agent = await startAgent();
  try {
    const { profile } = await readPprof(await fetch(`${agent.url}/debug/pprof/profile?seconds=2&pid=${hot.pid}`), 'profile after the cycles');
    const names = new Set(profile.function.map((f) => profile.stringTable[f.name]));
    assert.ok(names.has('main.leafSpin') && names.has('main.leafCaller'), 'the profile after the crashes is symbolized');
  } finally {
    await hot.stop();
    await agent.stop();
  }
});
