// What a security reviewer checks in the DaemonSet, as assertions: least privilege (no privileged mode, every
// capability dropped but the four the agent needs, no privilege escalation, read-only root, no API token),
// bounded resources, probes on /healthz, and the port users point `go tool pprof` at.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { cliNodeFlags } from '../support/cli';

const deployDir = path.resolve(__dirname, '../../../deploy');

function load(file: string): Record<string, any>[] {
  return parseAllDocuments(fs.readFileSync(path.join(deployDir, file), 'utf8')).map((d) => {
    assert.equal(d.errors.length, 0, `${file}: ${d.errors.join('; ')}`);
    return d.toJS() as Record<string, any>;
  });
}

test('kustomization lists every manifest in deploy/, and each parses', () => {
  const k = load('kustomization.yaml')[0]!;
  const listed = new Set(k['resources'] as string[]);
  const onDisk = fs.readdirSync(deployDir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  assert.deepEqual([...listed].sort(), onDisk.sort());
  for (const f of onDisk) assert.ok(load(f).length > 0);
});

test('the DaemonSet asks for the least privilege the agent needs', () => {
  const ds = load('daemonset.yaml')[0]!;
  assert.equal(ds['kind'], 'DaemonSet');
  const pod = ds['spec']['template']['spec'];
  assert.equal(pod['hostPID'], true, 'hostPID: the agent profiles every process on the node');
  assert.notEqual(pod['hostNetwork'], true, 'no host network');
  assert.equal(pod['automountServiceAccountToken'], false);
  assert.equal(pod['containers'].length, 1);
  const c = pod['containers'][0];
  const sc = c['securityContext'];
  assert.equal(sc['privileged'], false);
  assert.equal(sc['allowPrivilegeEscalation'], false);
  assert.equal(sc['readOnlyRootFilesystem'], true);
  assert.deepEqual(sc['capabilities']['drop'], ['ALL']);
  assert.deepEqual([...sc['capabilities']['add']].sort(), ['BPF', 'DAC_READ_SEARCH', 'PERFMON', 'SYS_PTRACE']);
  assert.ok(!sc['capabilities']['add'].includes('SYS_ADMIN'));
  for (const v of pod['volumes']) {
    if (v['hostPath']) assert.ok(['/sys/kernel/btf', '/sys/kernel/tracing'].includes(v['hostPath']['path']), `unexpected host path ${v['hostPath']['path']}`);
  }
  for (const m of c['volumeMounts']) if (m['mountPath'].startsWith('/sys/')) assert.equal(m['readOnly'], true, m['mountPath']);
  assert.ok(c['resources']['limits']['memory'] && c['resources']['limits']['cpu']);
  assert.equal(c['livenessProbe']['httpGet']['path'], '/healthz');
  assert.equal(c['readinessProbe']['httpGet']['path'], '/healthz');
  const port = c['ports'].find((p: any) => p['name'] === 'http');
  assert.equal(port['containerPort'], 7070);
  assert.ok(c['args'].includes('--listen') && c['args'].includes('0.0.0.0:7070'));
});

test('the image runs the CLI with the node flags of its shebang (what `npx quietflame` runs with)', () => {
  const line = fs.readFileSync(path.join(deployDir, 'Containerfile'), 'utf8').split('\n').find((l) => l.startsWith('ENTRYPOINT '));
  assert.ok(line, 'Containerfile has an ENTRYPOINT');
  const entrypoint = JSON.parse(line.slice('ENTRYPOINT '.length)) as string[];
  assert.deepEqual(entrypoint, ['node', ...cliNodeFlags(), '/opt/quietflame/dist/src/cli.js']);
  assert.ok(cliNodeFlags().includes('--max-semi-space-size=1'), 'the agent\'s memory target counts on a small young generation');
});
