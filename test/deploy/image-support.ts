// The agent's image run the way deploy/daemonset.yaml says, with podman: every field of the pod spec the test
// understands is turned into podman's flag for it, and a field it does not know fails the test, so the manifest
// cannot grow a setting the tests do not exercise. Host paths can be pointed elsewhere (the node's kubelet log
// directories are the test's); Secrets are written from the rendered Secret objects.

import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { repoRoot } from '../support/go-toolchains';
import type { K8sObject } from './manifests-support';

export const CONTAINERS_CONF = path.join(repoRoot(), 'scripts', 'containers.conf');

export function podman(args: string[], timeoutMs = 120_000): SpawnSyncReturns<string> {
  return spawnSync('podman', args, { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, CONTAINERS_CONF } });
}

let built: string | undefined;

/**
 * scripts/build-image.sh with this tag (once per test process). .ci/run builds the image before the tests, so
 * here it is a cache hit unless the sources changed; a cold build (bases from Debian packages) takes far longer.
 */
export function buildImage(tag: string): string {
  if (built === tag) return tag;
  const r = spawnSync('bash', [path.join(repoRoot(), 'scripts', 'build-image.sh'), '--tag', tag], { encoding: 'utf8', timeout: 9 * 60_000 });
  assert.equal(r.status, 0, `scripts/build-image.sh ${r.error ? `${r.error.message} (run it once before the tests: a cold build takes long)` : ''}\n${r.stderr.slice(-3000)}`);
  built = tag;
  return tag;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface RunAsDaemonSet {
  /** Host directory to mount instead of a hostPath (path → directory). */
  hostPaths?: Record<string, string>;
  /** Where Secret volumes are written (one directory per Secret). */
  secretsDir: string;
  /** The rendered objects, for the Secrets the pod mounts. */
  objects: readonly K8sObject[];
  /** Host port (on 127.0.0.1) each named container port is published on. */
  ports: Record<string, number>;
  /** spec.nodeName for fieldRef env. */
  nodeName: string;
  /** Capabilities to leave out of securityContext.capabilities.add (to show each is needed). */
  withoutCapabilities?: readonly string[];
  /** More environment (QUIETFLAME_SKIP_CAPABILITY_CHECK). */
  env?: Record<string, string>;
}

function only(o: Record<string, unknown>, known: readonly string[], where: string): void {
  const unknown = Object.keys(o).filter((k) => !known.includes(k));
  assert.deepEqual(unknown, [], `${where}: the image test does not know how to run ${unknown.join(', ')}; teach test/deploy/image-support.ts`);
}

const BYTES: Record<string, number> = { Ki: 1 << 10, Mi: 1 << 20, Gi: 1 << 30 };
function bytes(q: string): number {
  const m = /^(\d+)(Ki|Mi|Gi)$/.exec(q);
  assert.ok(m, `quantity ${q}: expected N{Ki,Mi,Gi}`);
  return Number(m[1]) * BYTES[m[2]!]!;
}
function cpus(q: string): string {
  const m = /^(\d+)(m?)$/.exec(q);
  assert.ok(m, `cpu ${q}`);
  return m[2] ? String(Number(m[1]) / 1000) : m[1]!;
}

/** `podman run` arguments (after `run`) for the DaemonSet's pod, and the grace period `podman stop` gets. */
export function podmanRunArgs(ds: K8sObject, name: string, o: RunAsDaemonSet): { args: string[]; graceSeconds: number } {
  const pod = ds['spec']['template']['spec'];
  only(pod, ['serviceAccountName', 'automountServiceAccountToken', 'hostPID', 'priorityClassName', 'terminationGracePeriodSeconds', 'tolerations', 'containers', 'volumes'], 'pod spec');
  assert.equal(pod.containers.length, 1, 'one container');
  const c = pod.containers[0];
  only(c, ['name', 'image', 'imagePullPolicy', 'args', 'ports', 'env', 'securityContext', 'resources', 'readinessProbe', 'livenessProbe', 'volumeMounts'], `container ${c.name}`);
  const args = ['--runtime', 'runc', '--name', name, '--pull', 'never'];
  if (pod.hostPID) args.push('--pid=host');
  const sc = c.securityContext ?? {};
  only(sc, ['privileged', 'allowPrivilegeEscalation', 'readOnlyRootFilesystem', 'runAsUser', 'runAsNonRoot', 'capabilities', 'seccompProfile', 'appArmorProfile'], 'securityContext');
  if (sc.privileged) args.push('--privileged');
  if (sc.allowPrivilegeEscalation === false) args.push('--security-opt', 'no-new-privileges');
  if (sc.readOnlyRootFilesystem) args.push('--read-only', '--read-only-tmpfs=false'); // podman would add tmpfs mounts the pod does not have
  if (sc.runAsUser !== undefined) args.push('--user', String(sc.runAsUser));
  only(sc.capabilities ?? {}, ['drop', 'add'], 'capabilities');
  for (const cap of sc.capabilities?.drop ?? []) args.push(`--cap-drop=${cap === 'ALL' ? 'ALL' : `CAP_${cap}`}`);
  for (const cap of sc.capabilities?.add ?? []) if (!o.withoutCapabilities?.includes(cap)) args.push(`--cap-add=CAP_${cap}`);
  const profileType = (p: { type: string } | undefined, what: string): string | undefined => {
    if (p === undefined || p.type === 'RuntimeDefault') return undefined;
    assert.equal(p.type, 'Unconfined', `${what}: only RuntimeDefault and Unconfined are run here`);
    return 'unconfined';
  };
  const seccomp = profileType(sc.seccompProfile, 'seccompProfile');
  if (seccomp) args.push('--security-opt', `seccomp=${seccomp}`);
  if (profileType(sc.appArmorProfile, 'appArmorProfile') && fs.existsSync('/sys/kernel/security/apparmor')) args.push('--security-opt', 'apparmor=unconfined');
  const limits = c.resources?.limits ?? {};
  if (limits.memory) args.push('--memory', String(bytes(limits.memory)));
  if (limits.cpu) args.push('--cpus', cpus(limits.cpu));
  for (const e of c.env ?? []) {
    if (e.value !== undefined) args.push('--env', `${e.name}=${e.value}`);
    else {
      assert.equal(e.valueFrom?.fieldRef?.fieldPath, 'spec.nodeName', `env ${e.name}: only spec.nodeName is known here`);
      args.push('--env', `${e.name}=${o.nodeName}`);
    }
  }
  for (const [k, v] of Object.entries(o.env ?? {})) args.push('--env', `${k}=${v}`);
  for (const p of c.ports ?? []) {
    const host = o.ports[p.name];
    assert.ok(host, `port ${p.name}: no host port given`);
    args.push('--publish', `127.0.0.1:${host}:${p.containerPort}/${(p.protocol ?? 'TCP').toLowerCase()}`);
  }
  const volumes = new Map<string, any>(pod.volumes.map((v: any) => [v.name, v]));
  for (const m of c.volumeMounts ?? []) {
    only(m, ['name', 'mountPath', 'readOnly'], `volumeMount ${m.name}`);
    const v = volumes.get(m.name);
    assert.ok(v, `volumeMount ${m.name}: no such volume`);
    const ro = m.readOnly ? ':ro' : '';
    if (v.hostPath) {
      const source = o.hostPaths?.[v.hostPath.path] ?? v.hostPath.path;
      if (v.hostPath.type === 'Directory') assert.ok(fs.statSync(source).isDirectory(), `hostPath ${source}: type Directory`);
      args.push('--volume', `${source}:${m.mountPath}${ro}`);
    } else if (v.secret) {
      args.push('--volume', `${writeSecret(v.secret, o)}:${m.mountPath}${ro}`);
    } else if (v.emptyDir) {
      assert.equal(v.emptyDir.medium, 'Memory', 'emptyDir: only medium Memory (tmpfs) is run here');
      args.push('--tmpfs', `${m.mountPath}:rw,nosuid,nodev,size=${bytes(v.emptyDir.sizeLimit)}`);
    } else {
      assert.fail(`volume ${v.name}: the image test does not know this kind of volume`);
    }
  }
  args.push(c.image, ...(c.args ?? []));
  return { args, graceSeconds: pod.terminationGracePeriodSeconds ?? 30 };
}

/** A Secret volume as the kubelet lays it out: one file per key, the volume's defaultMode. */
function writeSecret(volume: { secretName: string; defaultMode?: number }, o: RunAsDaemonSet): string {
  const secret = o.objects.find((x) => x.kind === 'Secret' && x.metadata.name === volume.secretName);
  assert.ok(secret, `Secret ${volume.secretName}: not among the rendered objects`);
  const dir = path.join(o.secretsDir, volume.secretName);
  fs.mkdirSync(dir, { recursive: true });
  for (const [key, value] of Object.entries(secret['data'] as Record<string, string>)) {
    fs.writeFileSync(path.join(dir, key), Buffer.from(value, 'base64'), { mode: volume.defaultMode ?? 0o644 });
  }
  return dir;
}

/** IDs of the BPF programs a process holds open (its fdinfo says prog_id). */
export function bpfProgramsOf(pid: number): number[] {
  const ids: number[] = [];
  for (const fd of fs.readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      const m = /^prog_id:\s*(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) ids.push(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return ids;
}

export function bpfProgramExists(id: number): boolean {
  return spawnSync('bpftool', ['prog', 'show', 'id', String(id)], { encoding: 'utf8' }).status === 0;
}
