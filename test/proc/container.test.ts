// Container IDs from cgroup paths: the layouts of the common runtimes, and a real process moved into a cgroup
// named the way containerd names a container's.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';

import { containerIdFromCgroup, containerIdOf } from '../../src/proc/container';
import { inContainerCgroup } from './cgroup-support';

const ID = '3f4e1b2c'.repeat(8);
const OTHER = 'a0'.repeat(32);

test('container IDs in the cgroup layouts of docker, containerd, CRI-O and podman; none outside containers', () => {
  const cases: Array<[string, string | undefined]> = [
    [`0::/system.slice/docker-${ID}.scope`, ID],
    [`12:pids:/docker/${ID}\n0::/docker/${ID}`, ID],
    [`0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice/cri-containerd-${ID}.scope`, ID],
    [`0::/kubepods/besteffort/pod0f1e2d3c-aaaa-bbbb-cccc-000000000000/${ID}`, ID],
    [`0::/machine.slice/libpod-${ID}.scope/container`, ID],
    [`0::/kubepods.slice/crio-${ID}.scope`, ID],
    // a pause container's ID in the parent, the container's own deeper: the innermost wins
    [`0::/kubepods/pod-x/${OTHER}/${ID}`, ID],
    [`4:memory:/process_api/79a6f264fb685092db9387a389753b84\n0::/`, undefined],
    ['0::/user.slice/user-1000.slice/session-2.scope', undefined],
    [`0::/docker/${ID.slice(1)}`, undefined],
    ['', undefined],
  ];
  for (const [text, want] of cases) assert.equal(containerIdFromCgroup(text), want, text);
});

test('a real process in a containerd-named cgroup has that container ID; its parent has none', async () => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  try {
    await inContainerCgroup(child.pid!, ID, async () => {
      assert.equal(containerIdOf(child.pid!), ID);
    });
    assert.equal(containerIdOf(process.pid), undefined);
    assert.equal(containerIdOf(2 ** 22 + 7), undefined, 'no such process');
  } finally {
    child.kill('SIGKILL');
  }
});
