// Pod identity from real cgroups: a process moved into cgroups named as the kubelet names them (systemd and cgroupfs
// drivers; containerd, CRI-O and docker; cgroup v2 and v1) is found in a kubelet log layout the test lays out, by
// pod UID and container ID. What a node shows is what the agent reads: /proc/PID/cgroup and directory names.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KubeletLogs, PodIdentities, podUidFromCgroup } from '../../src/kube/identity';
import { hierarchy, inCgroup } from '../proc/cgroup-support';

interface Layout {
  name: string;
  /** cgroup path components below the hierarchy's root for pod UID u and container ID c. */
  components: (u: string, c: string) => string[];
}

const underscored = (u: string): string => u.replace(/-/g, '_');
const LAYOUTS: Layout[] = [
  { name: 'systemd + containerd (burstable)', components: (u, c) => ['kubepods.slice', 'kubepods-burstable.slice', `kubepods-burstable-pod${underscored(u)}.slice`, `cri-containerd-${c}.scope`] },
  { name: 'systemd + CRI-O (besteffort)', components: (u, c) => ['kubepods.slice', 'kubepods-besteffort.slice', `kubepods-besteffort-pod${underscored(u)}.slice`, `crio-${c}.scope`] },
  { name: 'systemd + docker (guaranteed)', components: (u, c) => ['kubepods.slice', `kubepods-pod${underscored(u)}.slice`, `docker-${c}.scope`] },
  { name: 'cgroupfs + containerd (burstable)', components: (u, c) => ['kubepods', 'burstable', `pod${u}`, c] },
  { name: 'cgroupfs + CRI-O (besteffort)', components: (u, c) => ['kubepods', 'besteffort', `pod${u}`, `crio-${c}`] },
  { name: 'cgroupfs + docker (guaranteed)', components: (u, c) => ['kubepods', `pod${u}`, c] },
];

/** The v2 hierarchy (unified on a hybrid machine) and a v1 controller, where the machine has them. */
const HIERARCHIES: Array<{ name: string; root: string }> = [
  { name: 'cgroup v2', root: hierarchy(['/sys/fs/cgroup/unified', '/sys/fs/cgroup']) },
  ...(fs.existsSync('/sys/fs/cgroup/pids/cgroup.procs') ? [{ name: 'cgroup v1', root: '/sys/fs/cgroup/pids' }] : []),
];

/** A kubelet log layout: /var/log/pods/NS_POD_UID/CONTAINER/0.log and the /var/log/containers link. */
function layOut(root: string, ns: string, pod: string, uid: string, containers: Array<{ name: string; id?: string }>): void {
  for (const c of containers) {
    const dir = path.join(root, 'pods', `${ns}_${pod}_${uid}`, c.name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, '0.log'), '');
    if (c.id) {
      fs.mkdirSync(path.join(root, 'containers'), { recursive: true });
      fs.symlinkSync(path.join(dir, '0.log'), path.join(root, 'containers', `${pod}_${ns}_${c.name}-${c.id}.log`));
    }
  }
}

function sleeper(): ChildProcess {
  return spawn('sleep', ['120'], { stdio: 'ignore' });
}

test('every kubelet cgroup layout, v2 and v1: namespace, pod and container of a real process from its cgroup and the log layout', async () => {
  assert.ok(HIERARCHIES.length >= 1);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-kubelet-'));
  const logs = new KubeletLogs({ podsDir: path.join(root, 'pods'), containersDir: path.join(root, 'containers'), refreshMs: 0 });
  const identities = new PodIdentities(logs);
  const proc = sleeper();
  try {
    let n = 0;
    for (const h of HIERARCHIES) {
      for (const layout of LAYOUTS) {
        const uid = crypto.randomUUID();
        const id = crypto.randomBytes(32).toString('hex');
        const [ns, pod, container] = [`team-${n}`, `api-7d9f8-x${n}.v2`, `server-${n}`];
        n++;
        // A sidecar too: the container is named by its ID, not by being the only one.
        layOut(root, ns, pod, uid, [{ name: container, id }, { name: 'sidecar', id: crypto.randomBytes(32).toString('hex') }]);
        await inCgroup(proc.pid!, layout.components(uid, id), async () => {
          const cgroup = fs.readFileSync(`/proc/${proc.pid}/cgroup`, 'utf8');
          assert.equal(podUidFromCgroup(cgroup), uid, `${h.name}, ${layout.name}: pod UID in\n${cgroup}`);
          assert.deepEqual(identities.of(proc.pid!), { namespace: ns, pod, container, podUid: uid, containerId: id }, `${h.name}, ${layout.name}`);
        }, h.root);
      }
    }
    assert.equal(identities.of(proc.pid!), undefined, 'back outside the pod cgroups: no pod');
    assert.equal(identities.of(process.pid), undefined, 'the test runner is in no pod');
  } finally {
    proc.kill('SIGKILL');
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('the log layout is re-read for a pod that started after the last read; a one-container pod is named before its link exists; foreign names are skipped', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-kubelet-'));
  const logs = new KubeletLogs({ podsDir: path.join(root, 'pods'), containersDir: path.join(root, 'containers'), refreshMs: 0 });
  try {
    fs.mkdirSync(path.join(root, 'pods'), { recursive: true });
    const uid = crypto.randomUUID();
    const id = crypto.randomBytes(32).toString('hex');
    assert.equal(logs.lookup(uid, id), undefined, 'not laid out yet');
    layOut(root, 'default', 'web-0', uid, [{ name: 'nginx' }]);
    assert.deepEqual(logs.lookup(uid, id), { namespace: 'default', pod: 'web-0', container: 'nginx', podUid: uid, containerId: id });

    const two = crypto.randomUUID();
    layOut(root, 'default', 'web-1', two, [{ name: 'nginx' }, { name: 'istio-proxy' }]);
    assert.deepEqual(logs.lookup(two, id), { namespace: 'default', pod: 'web-1', podUid: two, containerId: id }, 'two containers, no link: no container name');

    for (const bad of ['..', 'a_b_c_d', `Default_web_${crypto.randomUUID()}`, `ns_pod_not-a-uid`, `ns__${crypto.randomUUID()}`]) {
      fs.mkdirSync(path.join(root, 'pods', bad), { recursive: true });
    }
    fs.mkdirSync(path.join(root, 'containers'), { recursive: true });
    fs.writeFileSync(path.join(root, 'containers', `web-1_default_nginx-${'g'.repeat(64)}.log`), '');
    fs.writeFileSync(path.join(root, 'containers', `web-1_default_nginx-${id}.log`), '');
    assert.deepEqual(logs.lookup(two, id), { namespace: 'default', pod: 'web-1', container: 'nginx', podUid: two, containerId: id }, 'the link names it');
    const other = crypto.randomUUID();
    assert.equal(logs.lookup(other), undefined);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('a refresh is rate-limited: a miss re-reads the directories at most once per refreshMs', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-kubelet-'));
  const logs = new KubeletLogs({ podsDir: path.join(root, 'pods'), containersDir: path.join(root, 'containers'), refreshMs: 60_000 });
  try {
    fs.mkdirSync(path.join(root, 'pods'));
    const uid = crypto.randomUUID();
    assert.equal(logs.lookup(uid), undefined);
    layOut(root, 'default', 'late', uid, [{ name: 'app' }]);
    assert.equal(logs.lookup(uid), undefined, 'within refreshMs of the last read: not re-read');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
