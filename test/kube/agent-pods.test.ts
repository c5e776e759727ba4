// The agent names pods: a real Go program in cgroups named as the kubelet names a pod's container, a kubelet log
// layout laid out by the test (--kubelet-log-dir), and the real agent: its samples carry namespace, pod and
// container, /api/processes says where each process runs, and pod=/container= select processes as pid= does.

import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bpfTest, waitForAsync } from '../bpf/support';
import { expectPprofError, readPprof, startAgent, startHot } from '../support/agent';
import { inCgroup } from '../proc/cgroup-support';
import type { Profile } from '../../src/profile/pprof';

function labels(p: Profile, s: Profile['sample'][number]): Record<string, string | number> {
  return Object.fromEntries(s.label.map((l) => [p.stringTable[l.key]!, l.str ? p.stringTable[l.str]! : l.num]));
}

bpfTest('samples of a process in a pod carry namespace, pod and container; pod= and container= select it', async () => {
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-var-log-'));
  const uid = crypto.randomUUID();
  const id = crypto.randomBytes(32).toString('hex');
  const [ns, pod, container] = ['payments', 'api-5c7d9-abcde', 'server'];
  const podDir = path.join(logDir, 'pods', `${ns}_${pod}_${uid}`);
  for (const c of [container, 'istio-proxy']) fs.mkdirSync(path.join(podDir, c), { recursive: true });
  fs.writeFileSync(path.join(podDir, container, '0.log'), '');
  fs.mkdirSync(path.join(logDir, 'containers'));
  fs.symlinkSync(path.join(podDir, container, '0.log'), path.join(logDir, 'containers', `${pod}_${ns}_${container}-${id}.log`));

  const agent = await startAgent(['--kubelet-log-dir', logDir]);
  const hot = await startHot();
  const outside = await startHot();
  try {
    const components = ['kubepods.slice', 'kubepods-burstable.slice', `kubepods-burstable-pod${uid.replace(/-/g, '_')}.slice`, `cri-containerd-${id}.scope`];
    await inCgroup(hot.pid, components, async () => {
      // Both are tracked once their binary has been read (on the agent's binary reader thread).
      const processes = async (): Promise<Array<Record<string, unknown>>> => ((await (await fetch(`${agent.url}/api/processes`)).json()) as { processes: Array<Record<string, unknown>> }).processes;
      await waitForAsync(async () => (await processes()).filter((p) => p.pid === hot.pid || p.pid === outside.pid).length === 2, 10_000, 50);
      const list = { processes: await processes() };
      const entry = list.processes.find((p) => p.pid === hot.pid);
      assert.ok(entry, `${hot.pid} listed`);
      assert.deepEqual({ pod: entry['pod'], namespace: entry['namespace'], container: entry['container'], containerId: entry['containerId'] }, { pod: `${ns}/${pod}`, namespace: ns, container, containerId: id });
      assert.equal(list.processes.find((p) => p.pid === outside.pid)?.['pod'], undefined, 'a process outside pods has none');

      for (const query of [`pod=${ns}/${pod}`, `container=${container}`, `pod=${ns}/${pod}&container=${container}`]) {
        const { profile } = await readPprof(await fetch(`${agent.url}/debug/pprof/profile?seconds=2&${query}`), query);
        assert.ok(profile.sample.length > 0, `${query}: samples`);
        for (const s of profile.sample) {
          const l = labels(profile, s);
          assert.equal(l['pid'], hot.pid, `${query}: only the pod's process`);
          assert.deepEqual([l['namespace'], l['pod'], l['container'], l['container_id']], [ns, pod, container, id]);
        }
      }
      await expectPprofError(await fetch(`${agent.url}/debug/pprof/profile?seconds=1&pod=${ns}/other`), 404, 'no such pod');
      await expectPprofError(await fetch(`${agent.url}/debug/pprof/profile?seconds=1&container=istio-proxy`), 404, 'a container with no Go process');
      await expectPprofError(await fetch(`${agent.url}/debug/pprof/profile?seconds=1&pod=${pod}`), 400, 'pod without namespace');
      await expectPprofError(await fetch(`${agent.url}/debug/pprof/offcpu?seconds=1&container=Bad_Name`), 400, 'not a container name');
    });
  } finally {
    hot.proc.kill('SIGKILL');
    outside.proc.kill('SIGKILL');
    assert.equal(await agent.stop(), 0, agent.stderr());
    fs.rmSync(logDir, { recursive: true, force: true });
  }
});
