// Pod names from the Kubernetes API (--kube-api), through the real agent. No API server can be installed here
// (Debian packages kubectl only), so the test serves the two requests the agent makes — the pod list and the
// watch of /api/v1/pods, as the API documents them (PodList; newline-delimited watch events, BOOKMARK, ERROR 410
// Gone) — over TLS with certificates made by scripts/make-secrets.sh, and checks what the agent asks and does.
// The processes are real Go programs in cgroups named as the kubelet names a pod's containers.

import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { bpfTest } from '../bpf/support';
import { readPprof, startAgent, startHot } from '../support/agent';
import { makeTestPki } from '../support/tls';
import { inCgroup } from '../proc/cgroup-support';

const NODE = 'node-a';

interface FakePod {
  uid: string;
  namespace: string;
  name: string;
  containers: Array<{ name: string; id: string }>;
}

function podObject(p: FakePod, rv: number): object {
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: { uid: p.uid, name: p.name, namespace: p.namespace, resourceVersion: String(rv) },
    spec: { nodeName: NODE, containers: p.containers.map((c) => ({ name: c.name, image: 'x' })) },
    status: { phase: 'Running', containerStatuses: p.containers.map((c) => ({ name: c.name, containerID: `containerd://${c.id}`, ready: true })) },
  };
}

/** The API server's side of list and watch, for pods on NODE; requests recorded, watches held open for events. */
class FakeApi {
  readonly requests: URL[] = [];
  readonly authorizations: string[] = [];
  private readonly watches: Array<import('node:http').ServerResponse> = [];
  private rv = 100;
  private server!: https.Server;
  url = '';

  constructor(
    private readonly pods: FakePod[],
    private readonly token: string,
  ) {}

  async start(cert: string, key: string): Promise<void> {
    this.server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (req, res) => {
      const url = new URL(req.url!, 'https://x');
      this.requests.push(url);
      this.authorizations.push(req.headers.authorization ?? '');
      if (req.headers.authorization !== `Bearer ${this.token}`) {
        res.writeHead(403, { 'Content-Type': 'application/json' }).end('{"kind":"Status","code":403,"reason":"Forbidden"}');
        return;
      }
      if (url.pathname !== '/api/v1/pods') return void res.writeHead(404).end();
      if (url.searchParams.get('watch') === '1') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.flushHeaders();
        this.watches.push(res);
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items: this.pods.map((p) => podObject(p, this.rv)) }));
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  get openWatches(): number {
    return this.watches.filter((w) => !w.destroyed && !w.writableEnded).length;
  }

  /** Sends an event on every open watch; returns the resourceVersion it carried. */
  send(type: string, object: (rv: number) => object): number {
    this.rv++;
    for (const w of this.watches) if (!w.destroyed && !w.writableEnded) w.write(JSON.stringify({ type, object: object(this.rv) }) + '\n');
    return this.rv;
  }

  add(p: FakePod): number {
    this.pods.push(p);
    return this.send('ADDED', (rv) => podObject(p, rv));
  }

  /** Cuts every open watch mid-stream, as a restarting API server or a load balancer does. */
  cut(): void {
    for (const w of this.watches.splice(0)) w.socket?.destroy();
  }

  async stop(): Promise<void> {
    this.cut();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

async function waitFor<T>(what: string, get: () => Promise<T | undefined> | T | undefined, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > end) assert.fail(`waited ${ms} ms for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const podCgroup = (uid: string, id: string): string[] => ['kubepods.slice', `kubepods-pod${uid.replace(/-/g, '_')}.slice`, `cri-containerd-${id}.scope`];

bpfTest('--kube-api: names from a list and watch of this node\'s pods only, with the service account token; re-watch from the last version, relist on 410', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-kube-api-'));
  const pki = makeTestPki(path.join(dir, 'pki'));
  const sa = path.join(dir, 'serviceaccount');
  fs.mkdirSync(sa);
  fs.copyFileSync(pki.ca, path.join(sa, 'ca.crt'));
  fs.writeFileSync(path.join(sa, 'token'), pki.token + '\n');
  const emptyLogs = path.join(dir, 'var-log'); // no kubelet log layout: every name must come from the API
  fs.mkdirSync(emptyLogs);

  const first: FakePod = { uid: crypto.randomUUID(), namespace: 'shop', name: 'checkout-7d9f-abcde', containers: [
    { name: 'app', id: crypto.randomBytes(32).toString('hex') },
    { name: 'envoy', id: crypto.randomBytes(32).toString('hex') },
  ] };
  const api = new FakeApi([first], pki.token);
  await api.start(pki.serverCert, pki.serverKey);
  const agent = await startAgent(['--kube-api', '--kube-api-server', api.url, '--kube-serviceaccount-dir', sa, '--node-name', NODE, '--kubelet-log-dir', emptyLogs]);
  const hot = await startHot();
  const second = await startHot();
  const podOf = async (pid: number): Promise<Record<string, unknown> | undefined> => {
    const list = (await (await fetch(`${agent.url}/api/processes`)).json()) as { processes: Array<Record<string, unknown>> };
    const p = list.processes.find((e) => e['pid'] === pid);
    return p?.['pod'] ? p : undefined;
  };
  try {
    await inCgroup(hot.pid, podCgroup(first.uid, first.containers[0]!.id), async () => {
      const entry = await waitFor('the first pod named from the list', () => podOf(hot.pid));
      assert.deepEqual([entry['namespace'], entry['pod'], entry['container']], ['shop', 'shop/checkout-7d9f-abcde', 'app'], 'the container named by its ID, of two');
      const list = api.requests[0]!;
      assert.equal(list.searchParams.get('fieldSelector'), `spec.nodeName=${NODE}`, "only this node's pods are asked for");
      assert.ok(api.authorizations.every((a) => a === `Bearer ${pki.token}`), 'every request as the service account');
      await waitFor('a watch', () => (api.openWatches > 0 ? true : undefined));
      const watch = api.requests.find((u) => u.searchParams.get('watch') === '1')!;
      assert.equal(watch.searchParams.get('resourceVersion'), '100', "the watch starts at the list's version");
      assert.equal(watch.searchParams.get('fieldSelector'), `spec.nodeName=${NODE}`);

      // A pod added later arrives by the watch; its process is named and selected by pod=.
      const later: FakePod = { uid: crypto.randomUUID(), namespace: 'batch', name: 'worker-2', containers: [{ name: 'worker', id: crypto.randomBytes(32).toString('hex') }] };
      const addedAt = api.add(later);
      await inCgroup(second.pid, podCgroup(later.uid, later.containers[0]!.id), async () => {
        const e = await waitFor('the added pod named from the watch', () => podOf(second.pid));
        assert.deepEqual([e['pod'], e['container']], ['batch/worker-2', 'worker']);
        const { profile } = await readPprof(await fetch(`${agent.url}/debug/pprof/profile?seconds=1&pod=batch/worker-2`), 'pod=batch/worker-2');
        const pidKey = profile.stringTable.indexOf('pid');
        assert.ok(profile.sample.length > 0 && profile.sample.every((s) => s.label.find((l) => l.key === pidKey)?.num === second.pid), 'only the added pod\'s process');

        // The watch is cut: the agent watches again from the last version it saw, without a new list.
        const lists = api.requests.filter((u) => u.searchParams.get('watch') !== '1').length;
        const bookmark = api.send('BOOKMARK', (rv) => ({ kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: String(rv) } }));
        assert.ok(bookmark > addedAt);
        await new Promise((r) => setTimeout(r, 300));
        api.cut();
        const rewatch = await waitFor('a watch after the cut', () => (api.openWatches > 0 ? api.requests.at(-1) : undefined));
        assert.equal(rewatch.searchParams.get('resourceVersion'), String(bookmark), 'resumed from the bookmark');
        assert.equal(api.requests.filter((u) => u.searchParams.get('watch') !== '1').length, lists, 'no new list after a cut');

        // 410 Gone: the version is too old; the agent lists again and watches from the new list's version.
        api.send('ERROR', () => ({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 410, reason: 'Expired', message: 'too old resource version' }));
        await waitFor('a new list after 410', () => (api.requests.filter((u) => u.searchParams.get('watch') !== '1').length > lists ? true : undefined));
        assert.deepEqual([(await podOf(second.pid))?.['pod'], (await podOf(hot.pid))?.['pod']], ['batch/worker-2', 'shop/checkout-7d9f-abcde'], 'names kept across the relist');

        // A deleted pod keeps its names a while (its last samples), not forever: the entry is still there now.
        api.send('DELETED', (rv) => podObject(later, rv));
        await new Promise((r) => setTimeout(r, 300));
        assert.equal((await podOf(second.pid))?.['pod'], 'batch/worker-2', 'names kept just after the deletion');
      });
    });
    assert.equal((await fetch(`${agent.url}/healthz`)).status, 200);
    assert.equal(await agent.stop(), 0, agent.stderr());
  } finally {
    hot.proc.kill('SIGKILL');
    second.proc.kill('SIGKILL');
    await agent.stop();
    await api.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

bpfTest('--kube-api with a token the API refuses: one warning naming RBAC, names from the kubelet logs, the agent runs on', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-kube-api-'));
  const pki = makeTestPki(path.join(dir, 'pki'));
  const sa = path.join(dir, 'serviceaccount');
  fs.mkdirSync(sa);
  fs.copyFileSync(pki.ca, path.join(sa, 'ca.crt'));
  fs.writeFileSync(path.join(sa, 'token'), 'not-the-token');
  const api = new FakeApi([], pki.token);
  await api.start(pki.serverCert, pki.serverKey);
  const agent = await startAgent(['--kube-api', '--kube-api-server', api.url, '--kube-serviceaccount-dir', sa, '--node-name', NODE, '--kubelet-log-dir', path.join(dir, 'none')]);
  try {
    await waitFor('two refused requests (a retry)', () => (api.requests.length >= 2 ? true : undefined));
    const warnings = agent.stdout().split('\n').filter((l) => l.includes('kubernetes API'));
    assert.equal(warnings.length, 1, `one warning for repeated failures:\n${warnings.join('\n')}`);
    assert.match(warnings[0]!, /HTTP 403 \(RBAC: the service account needs get, list and watch on pods: deploy\/kube-api\)/);
    assert.equal((await fetch(`${agent.url}/healthz`)).status, 200);
    assert.equal(await agent.stop(), 0, agent.stderr());
  } finally {
    await agent.stop();
    await api.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
