// deploy/ as a cluster receives it (`kubectl kustomize`, offline) and what a security reviewer checks, as
// assertions: every object valid against the Kubernetes schemas (no unknown field); least privilege (no privileged
// mode, every capability dropped but the four the agent needs, no privilege escalation, read-only root, no API
// token); access control on (the args parse with the agent's own parser and name files the Secrets hold); probes
// that speak the agent's scheme; Service, PodMonitor and NetworkPolicy pointing at the agent's port.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cliNodeFlags } from '../support/cli';
import { parseAgentArgs } from '../../src/cli/agent-args';
import { DEPLOY, find, parseYaml, renderDeploy, validateObjects, type K8sObject } from './manifests-support';

function agentContainer(ds: K8sObject): any {
  return ds['spec']['template']['spec']['containers'].find((c: any) => c.name === 'agent');
}

test('kubectl kustomize renders every manifest in deploy/, each valid against the Kubernetes schemas with no unknown field', async () => {
  const { objects } = renderDeploy();
  const k = parseYaml(fs.readFileSync(path.join(DEPLOY, 'kustomization.yaml'), 'utf8'), 'kustomization.yaml')[0]!;
  const onDisk = fs.readdirSync(DEPLOY).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  assert.deepEqual([...(k['resources'] as string[])].sort(), onDisk.sort(), 'kustomization.yaml lists every manifest');
  assert.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
    'DaemonSet/quietflame', 'Namespace/quietflame', 'NetworkPolicy/quietflame', 'Secret/quietflame-tls', 'Secret/quietflame-token', 'Service/quietflame', 'ServiceAccount/quietflame',
  ]);
  for (const o of objects) if (o.kind !== 'Namespace') assert.equal(o.metadata.namespace, 'quietflame', `${o.kind} namespaced`);
  const podMonitor = parseYaml(fs.readFileSync(path.join(DEPLOY, 'prometheus-operator', 'podmonitor.yaml'), 'utf8'), 'podmonitor.yaml');
  await validateObjects([...objects, ...podMonitor]);
});

test('the schema check refuses what the API server would: a misspelt field, a wrong type, a missing required field', async () => {
  const ds = find(renderDeploy().objects, 'DaemonSet');
  const broken = (f: (o: any) => void): K8sObject => {
    const o = structuredClone(ds);
    f(o);
    return o;
  };
  await assert.rejects(validateObjects([broken((o) => (agentContainer(o).securityContext.capabilites = { add: ['SYS_ADMIN'] }))]), /capabilites/);
  await assert.rejects(validateObjects([broken((o) => (agentContainer(o).ports[0].containerPort = '7070'))]), /containerPort must be integer/);
  await assert.rejects(validateObjects([broken((o) => delete o.spec.selector)]), /required property selector/);
});

test('the DaemonSet asks for the least privilege the agent needs', () => {
  const ds = find(renderDeploy().objects, 'DaemonSet');
  const pod = ds['spec']['template']['spec'];
  assert.equal(pod['hostPID'], true, 'hostPID: the agent profiles every process on the node');
  assert.notEqual(pod['hostNetwork'], true, 'no host network');
  assert.equal(pod['automountServiceAccountToken'], false);
  assert.equal(pod['containers'].length, 1);
  const c = agentContainer(ds);
  const sc = c['securityContext'];
  assert.equal(sc['privileged'], false);
  assert.equal(sc['allowPrivilegeEscalation'], false);
  assert.equal(sc['readOnlyRootFilesystem'], true);
  assert.deepEqual(sc['capabilities']['drop'], ['ALL']);
  assert.deepEqual([...sc['capabilities']['add']].sort(), ['BPF', 'DAC_READ_SEARCH', 'PERFMON', 'SYS_PTRACE']);
  const hostPaths = pod['volumes'].filter((v: any) => v['hostPath']).map((v: any) => v['hostPath']['path']).sort();
  assert.deepEqual(hostPaths, ['/sys/kernel/btf', '/sys/kernel/tracing', '/var/log/containers', '/var/log/pods']);
  const hostVolumes = new Set(pod['volumes'].filter((v: any) => v['hostPath']).map((v: any) => v['name']));
  for (const m of c['volumeMounts']) if (hostVolumes.has(m['name'])) assert.equal(m['readOnly'], true, `${m['mountPath']}: host paths read-only`);
  assert.ok(c['resources']['limits']['memory'] && c['resources']['limits']['cpu']);
  const port = c['ports'].find((p: any) => p['name'] === 'https');
  assert.equal(port['containerPort'], 7070);
  for (const probe of ['livenessProbe', 'readinessProbe']) {
    assert.deepEqual(c[probe]['httpGet'], { path: '/healthz', port: 'https', scheme: 'HTTPS' }, `${probe}: the open endpoint, over TLS`);
  }
});

test('the DaemonSet turns access control on: its args parse, and name files the Secrets hold', () => {
  const { objects, secrets } = renderDeploy();
  const ds = find(objects, 'DaemonSet');
  const c = agentContainer(ds);
  assert.equal(c['args'][0], 'agent');
  const args = parseAgentArgs(c['args'].slice(1)); // throws on a flag the agent does not know or an open port
  assert.equal(args.host, '0.0.0.0');
  assert.equal(args.access.allowUnauthenticated, undefined);
  assert.equal(args.access.openMetrics, undefined, '/metrics needs credentials too');
  const volumes = new Map<string, any>(ds['spec']['template']['spec']['volumes'].map((v: any) => [v.name, v]));
  const files = { tlsCert: args.access.tlsCert, tlsKey: args.access.tlsKey, tlsClientCa: args.access.tlsClientCa, tokenFile: args.access.tokenFile };
  for (const [flag, file] of Object.entries(files)) {
    assert.ok(file, `${flag} given`);
    const mount = c['volumeMounts'].find((m: any) => path.dirname(file) === m.mountPath);
    assert.ok(mount, `${file}: under a volume mount`);
    const secretName = volumes.get(mount.name)?.secret?.secretName as string;
    assert.ok(secretName, `${file}: from a Secret`);
    const secret = find(objects, 'Secret', secretName);
    const data = secret['data']?.[path.basename(file)];
    assert.ok(data, `${secretName} holds ${path.basename(file)}`);
    const onDisk = fs.readFileSync(path.join(secrets, path.basename(file)));
    assert.ok(Buffer.from(data, 'base64').equals(onDisk), `${secretName}/${path.basename(file)} is scripts/make-secrets.sh's file`);
  }
  assert.equal(find(objects, 'Secret', 'quietflame-tls')['type'], 'kubernetes.io/tls');
  for (const name of ['quietflame-tls', 'quietflame-token']) {
    assert.ok(!('ca.key' in (find(objects, 'Secret', name)['data'] ?? {})), 'the CA key stays out of the cluster');
  }
});

test('Service, PodMonitor and NetworkPolicy select the agent and its port; the PodMonitor verifies the server name the certificate carries', () => {
  const { objects, secrets } = renderDeploy();
  const ds = find(objects, 'DaemonSet');
  const labels = ds['spec']['template']['metadata']['labels'];
  const selects = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
  const c = agentContainer(ds);
  const portNames = new Set(c['ports'].map((p: any) => p.name));
  const svc = find(objects, 'Service');
  assert.ok(selects(svc['spec']['selector']));
  assert.ok(svc['spec']['ports'].every((p: any) => portNames.has(p.targetPort)));
  const np = find(objects, 'NetworkPolicy');
  assert.ok(selects(np['spec']['podSelector']['matchLabels']));
  assert.deepEqual(np['spec']['ingress'], [{ ports: [{ port: 7070, protocol: 'TCP' }] }]);
  assert.deepEqual(np['spec']['egress'], [], 'no egress: the agent opens no connection');
  const pm = parseYaml(fs.readFileSync(path.join(DEPLOY, 'prometheus-operator', 'podmonitor.yaml'), 'utf8'), 'podmonitor.yaml')[0]!;
  assert.ok(selects(pm['spec']['selector']['matchLabels']));
  const ep = pm['spec']['podMetricsEndpoints'][0];
  assert.ok(portNames.has(ep.port));
  assert.equal(ep.scheme, 'https');
  assert.ok(find(objects, 'Secret', ep.authorization.credentials.name)['data'][ep.authorization.credentials.key]);
  assert.ok(find(objects, 'Secret', ep.tlsConfig.ca.secret.name)['data'][ep.tlsConfig.ca.secret.key]);
  const cert = new crypto.X509Certificate(fs.readFileSync(path.join(secrets, 'tls.crt')));
  assert.ok(cert.checkHost(ep.tlsConfig.serverName), `the server certificate is valid for ${ep.tlsConfig.serverName}`);
  assert.ok(cert.verify(new crypto.X509Certificate(fs.readFileSync(path.join(secrets, 'ca.crt'))).publicKey), 'signed by the CA in the Secret');
});

test('the image runs the CLI with the node flags of its shebang (what `npx quietflame` runs with)', () => {
  const line = fs.readFileSync(path.join(DEPLOY, 'Containerfile'), 'utf8').split('\n').find((l) => l.startsWith('ENTRYPOINT '));
  assert.ok(line, 'Containerfile has an ENTRYPOINT');
  const entrypoint = JSON.parse(line.slice('ENTRYPOINT '.length)) as string[];
  assert.deepEqual(entrypoint, ['node', ...cliNodeFlags(), '/opt/quietflame/dist/src/cli.js']);
  assert.ok(cliNodeFlags().includes('--max-semi-space-size=1'), 'the agent\'s memory target counts on a small young generation');
});

test('the kube-api component: pods get/list/watch and nothing else, the token mounted, --kube-api, egress to the API server only', async () => {
  const { objects } = renderDeploy(['kube-api']);
  await validateObjects(objects);
  const base = renderDeploy().objects.map((o) => `${o.kind}/${o.metadata.name}`);
  assert.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [...base, 'ClusterRole/quietflame-pod-reader', 'ClusterRoleBinding/quietflame-pod-reader'].sort());
  const role = find(objects, 'ClusterRole', 'quietflame-pod-reader');
  assert.deepEqual(role['rules'], [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] }]);
  const binding = find(objects, 'ClusterRoleBinding', 'quietflame-pod-reader');
  assert.deepEqual(binding['roleRef'], { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'quietflame-pod-reader' });
  assert.deepEqual(binding['subjects'], [{ kind: 'ServiceAccount', name: 'quietflame', namespace: 'quietflame' }]);
  const ds = find(objects, 'DaemonSet');
  assert.equal(ds['spec']['template']['spec']['automountServiceAccountToken'], true);
  const c = agentContainer(ds);
  assert.ok(c['env'].some((e: any) => e.name === 'NODE_NAME' && e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName'), 'NODE_NAME from the downward API');
  // In the pod the kubelet sets KUBERNETES_SERVICE_HOST/PORT; NODE_NAME comes from the env above.
  const args = parseAgentArgs(c['args'].slice(1), { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', NODE_NAME: 'node-a' });
  assert.deepEqual(args.kubeApi, { server: 'https://10.96.0.1:443', serviceAccountDir: '/var/run/secrets/kubernetes.io/serviceaccount', nodeName: 'node-a' });
  assert.throws(() => parseAgentArgs(c['args'].slice(1), {}), /KUBERNETES_SERVICE_HOST is not set/);
  const egress = find(objects, 'NetworkPolicy')['spec']['egress'];
  assert.deepEqual(egress, [{ ports: [{ port: 443, protocol: 'TCP' }, { port: 6443, protocol: 'TCP' }] }]);
  assert.equal(find(renderDeploy().objects, 'NetworkPolicy')['spec']['egress'].length, 0, 'without the component no egress at all');
});
