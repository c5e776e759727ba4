// The image, run as deploy/daemonset.yaml says (podman with runc, host PID namespace, every capability dropped but
// the manifest's, read-only root, its mounts, Secrets and args, all read from the rendered manifest), profiles Go
// processes on the host: the standalone pprof with a client certificate and go tool pprof with the token get the
// hot function, symbolized, labelled with its pod; /metrics answers; `podman stop` ends it within the grace period
// with none of its BPF programs left. Then each granted capability in turn: without it the agent exits 1 naming it
// and the securityContext line; started anyway, something is lost (else the capability would not be granted).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bpfTest } from '../bpf/support';
import { goTool, startHot } from '../support/agent';
import { buildUpstreamPprof, buildFixture, newestToolchain } from '../support/go-toolchains';
import { httpsGet } from '../support/tls';
import { inCgroup } from '../proc/cgroup-support';
import { decodePprof } from '../../src/profile/pprof';
import { find, renderDeploy, type K8sObject } from './manifests-support';
import { bpfProgramExists, bpfProgramsOf, buildImage, freePort, podman, podmanRunArgs, type RunAsDaemonSet } from './image-support';

interface Setup {
  ds: K8sObject;
  image: string;
  run: Omit<RunAsDaemonSet, 'ports'>;
  ca: string;
  clientCert: string;
  clientKey: string;
  token: string;
  /** The kubelet log layout the container sees at /var/log/pods and /var/log/containers. */
  pod: { uid: string; containerId: string; namespace: string; name: string; container: string };
}

function setup(): Setup {
  const { objects, secrets } = renderDeploy();
  const ds = find(objects, 'DaemonSet');
  const image = buildImage(ds['spec']['template']['spec']['containers'][0].image);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-image-'));
  const pod = { uid: crypto.randomUUID(), containerId: crypto.randomBytes(32).toString('hex'), namespace: 'shop', name: 'checkout-6b8f-x2', container: 'app' };
  const podDir = path.join(tmp, 'log', 'pods', `${pod.namespace}_${pod.name}_${pod.uid}`, pod.container);
  fs.mkdirSync(podDir, { recursive: true });
  fs.writeFileSync(path.join(podDir, '0.log'), '');
  fs.mkdirSync(path.join(tmp, 'log', 'containers'));
  fs.symlinkSync(path.join(podDir, '0.log'), path.join(tmp, 'log', 'containers', `${pod.name}_${pod.namespace}_${pod.container}-${pod.containerId}.log`));
  return {
    ds,
    image,
    run: {
      objects,
      secretsDir: path.join(tmp, 'secrets'),
      hostPaths: { '/var/log/pods': path.join(tmp, 'log', 'pods'), '/var/log/containers': path.join(tmp, 'log', 'containers') },
      nodeName: os.hostname(),
    },
    ca: path.join(secrets, 'ca.crt'),
    clientCert: path.join(secrets, 'client.crt'),
    clientKey: path.join(secrets, 'client.key'),
    token: fs.readFileSync(path.join(secrets, 'token'), 'utf8').trim(),
    pod,
  };
}

interface Running {
  name: string;
  base: string;
  graceSeconds: number;
  /** Resolves with the container's exit code once it has stopped by itself. */
  exited(ms: number): number | undefined;
  logs(): string;
  remove(): void;
}

let containers = 0;

async function runAsDaemonSet(s: Setup, extra: Partial<RunAsDaemonSet> = {}): Promise<Running> {
  const name = `qf-test-${process.pid}-${containers++}`;
  const port = await freePort();
  const { args, graceSeconds } = podmanRunArgs(s.ds, name, { ...s.run, ...extra, ports: { https: port } });
  const r = podman(['run', '--detach', ...args]);
  assert.equal(r.status, 0, `podman run: ${r.stderr}`);
  const logs = (): string => {
    const l = podman(['logs', name]);
    return l.stdout + l.stderr;
  };
  return {
    name,
    base: `https://127.0.0.1:${port}`,
    graceSeconds,
    logs,
    exited: (ms) => {
      const w = podman(['wait', '--condition', 'stopped', name], ms);
      if (w.status !== 0) return undefined;
      return Number(podman(['inspect', '--format', '{{.State.ExitCode}}', name]).stdout.trim());
    },
    remove: () => void podman(['rm', '--force', '--time', '0', name]),
  };
}

/** Polls the readinessProbe (path and scheme from the manifest) until it answers 200; undefined if it exits first. */
async function ready(s: Setup, c: Running, ms = 60_000): Promise<boolean> {
  const probe = s.ds['spec']['template']['spec']['containers'][0].readinessProbe.httpGet;
  assert.equal(probe.scheme, 'HTTPS');
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const state = podman(['inspect', '--format', '{{.State.Running}}', c.name]).stdout.trim();
    if (state !== 'true') return false;
    try {
      if ((await httpsGet(c.base + probe.path, { ca: s.ca })).status === 200) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`${c.name}: not ready within ${ms} ms\n${c.logs()}`);
}

const bearer = (s: Setup) => ({ ca: s.ca, headers: { Authorization: `Bearer ${s.token}` } });

async function listedPids(s: Setup, c: Running): Promise<Set<number>> {
  const r = await httpsGet(`${c.base}/api/processes`, bearer(s));
  assert.equal(r.status, 200, r.body.toString());
  return new Set((JSON.parse(r.body.toString()) as { processes: Array<{ pid: number }> }).processes.map((p) => p.pid));
}

/** A Go program whose binary only its owner (nobody) may read, started as nobody. */
async function ownerOnlyHot(): Promise<{ pid: number; kill(): void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-owner-only-'));
  fs.chmodSync(dir, 0o755);
  const binary = path.join(dir, 'hot');
  fs.copyFileSync(buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' }), binary);
  fs.chownSync(binary, 65534, 65534);
  fs.chmodSync(binary, 0o500);
  const proc = spawnSync('bash', ['-c', `setpriv --reuid 65534 --regid 65534 --clear-groups ${binary} >/dev/null 2>&1 & echo $!`], { encoding: 'utf8' });
  const pid = Number(proc.stdout.trim());
  assert.ok(pid > 0, proc.stderr);
  return { pid, kill: () => void spawnSync('kill', ['-KILL', String(pid)]) };
}

bpfTest('the image under the DaemonSet\'s exact security context profiles host Go processes, names their pod, serves /metrics and stops cleanly', async () => {
  const s = setup();
  const hot = await startHot();
  const c = await runAsDaemonSet(s);
  try {
    const components = ['kubepods.slice', 'kubepods-besteffort.slice', `kubepods-besteffort-pod${s.pod.uid.replace(/-/g, '_')}.slice`, `cri-containerd-${s.pod.containerId}.scope`];
    await inCgroup(hot.pid, components, async () => {
      assert.ok(await ready(s, c), `the agent exited:\n${c.logs()}`);
      const url = `${c.base}/debug/pprof/profile?seconds=3&pid=${hot.pid}`;
      const upstream = spawnSync(buildUpstreamPprof(), ['-top', '-tls_cert', s.clientCert, '-tls_key', s.clientKey, '-tls_ca', s.ca, url], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, PPROF_TMPDIR: os.tmpdir() } });
      assert.equal(upstream.status, 0, upstream.stderr);
      assert.match(upstream.stdout, /main\.leafSpin/, 'pprof with a client certificate: the hot function, symbolized');
      const withToken = goTool(['pprof', '-top', url.replace('https://', `https://sre:${s.token}@`)], undefined, { SSL_CERT_FILE: s.ca });
      assert.equal(withToken.status, 0, withToken.stderr);
      assert.match(withToken.stdout, /main\.leafSpin/, 'go tool pprof with the token');

      const byPod = await httpsGet(`${c.base}/debug/pprof/profile?seconds=2&pod=${s.pod.namespace}/${s.pod.name}`, { ca: s.ca, cert: s.clientCert, key: s.clientKey });
      assert.equal(byPod.status, 200, byPod.body.toString());
      const p = decodePprof(byPod.body);
      assert.ok(p.sample.length > 0);
      for (const sample of p.sample) {
        const l = Object.fromEntries(sample.label.map((x) => [p.stringTable[x.key]!, x.str ? p.stringTable[x.str]! : x.num]));
        assert.deepEqual([l['pid'], l['namespace'], l['pod'], l['container'], l['container_id']], [hot.pid, s.pod.namespace, s.pod.name, s.pod.container, s.pod.containerId]);
      }

      const metrics = await httpsGet(`${c.base}/metrics`, bearer(s));
      assert.equal(metrics.status, 200);
      assert.match(metrics.body.toString(), /^quietflame_runqueue_latency_seconds_bucket\{le="[^"]+"\} \d+$/m);
      assert.equal((await httpsGet(`${c.base}/metrics`, { ca: s.ca })).status, 401, '/metrics needs credentials');
    });

    const agentPid = Number(podman(['inspect', '--format', '{{.State.Pid}}', c.name]).stdout.trim());
    const programs = bpfProgramsOf(agentPid);
    assert.ok(programs.length >= 3, `the agent holds its BPF programs: ${programs.join(', ')}`);
    const t0 = Date.now();
    const stop = podman(['stop', '--time', String(c.graceSeconds), c.name], (c.graceSeconds + 30) * 1000);
    const took = Date.now() - t0;
    assert.equal(stop.status, 0, stop.stderr);
    assert.ok(took < c.graceSeconds * 1000, `podman stop took ${took} ms (grace period ${c.graceSeconds} s: SIGKILL after it)`);
    assert.equal(c.exited(10_000), 0, `exit code after SIGTERM\n${c.logs()}`);
    let left = programs;
    for (let i = 0; i < 40 && left.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 50)); // the kernel frees programs through RCU
      left = left.filter(bpfProgramExists);
    }
    assert.deepEqual(left, [], 'BPF programs left behind');
  } finally {
    hot.proc.kill('SIGKILL');
    c.remove();
  }
});

bpfTest('each granted capability is needed: without it the agent names it and its securityContext line; started anyway, something is lost', async () => {
  const s = setup();
  const granted = s.ds['spec']['template']['spec']['containers'][0].securityContext.capabilities.add as string[];
  const hot = await startHot(); // root, its binary readable by anyone
  const ownerOnly = await ownerOnlyHot();
  const targets = [hot.proc.pid!, ownerOnly.pid];
  try {
    // What the full set gets: both processes tracked (their binaries read, their goroutines labelled).
    const full = await runAsDaemonSet(s);
    try {
      assert.ok(await ready(s, full), full.logs());
      let listed = new Set<number>();
      for (let i = 0; i < 40 && !targets.every((p) => listed.has(p)); i++) {
        await new Promise((r) => setTimeout(r, 250));
        listed = await listedPids(s, full);
      }
      assert.deepEqual(targets.filter((p) => !listed.has(p)), [], 'with every granted capability both processes are tracked');
    } finally {
      full.remove();
    }

    for (const cap of granted) {
      const refused = await runAsDaemonSet(s, { withoutCapabilities: [cap] });
      try {
        assert.equal(refused.exited(60_000), 1, `without CAP_${cap}: exit 1\n${refused.logs()}`);
        assert.match(refused.logs(), new RegExp(`missing capabilities CAP_${cap} \\(CAP_${cap} to [^)]+\\): grant them, in Kubernetes with securityContext\\.capabilities\\.add: \\["${cap}"\\]`));
      } finally {
        refused.remove();
      }

      const anyway = await runAsDaemonSet(s, { withoutCapabilities: [cap], env: { QUIETFLAME_SKIP_CAPABILITY_CHECK: '1' } });
      try {
        let lost: string | undefined;
        if (!(await ready(s, anyway))) {
          const code = anyway.exited(30_000);
          assert.notEqual(code, 0, 'an agent that stopped by itself failed');
          lost = `the agent cannot start: ${anyway.logs().trim().split('\n').at(-1)}`;
        } else {
          await new Promise((r) => setTimeout(r, 5000)); // the full run tracked both within this
          const now = await listedPids(s, anyway);
          const missing = targets.filter((p) => !now.has(p));
          if (missing.length > 0) lost = `processes no longer tracked: ${missing.join(', ')}`;
        }
        assert.ok(lost, `CAP_${cap} can be dropped with nothing lost: remove it from deploy/daemonset.yaml`);
        if (cap === 'DAC_READ_SEARCH') assert.equal(lost, `processes no longer tracked: ${ownerOnly.pid}`, 'only the binary its owner alone may read');
      } finally {
        anyway.remove();
      }
    }
  } finally {
    hot.proc.kill('SIGKILL');
    ownerOnly.kill();
  }
});
