// Access control: the agent as a DaemonSet runs it (listening beyond loopback, TLS, client certificates signed by
// the operator's CA, a token) with certificates openssl makes here, real HTTPS clients, the standalone pprof with
// -tls_cert -tls_key -tls_ca and `go tool pprof` with the token in the URL. Wrong or missing credentials get 401/403 with a reason; right ones the
// profile; /healthz stays open; flags that would leave the port open refuse to start.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { bpfTest } from '../bpf/support';
import { goTool, startAgent, startHot } from '../support/agent';
import { runCli } from '../support/cli';
import { buildUpstreamPprof } from '../support/go-toolchains';
import { httpsGet, makeTestPki, type HttpsAnswer, type TestPki } from '../support/tls';
import { buildServer } from '../../src/server/app';
import { loadAccessControl } from '../../src/server/access';
import { createMetricsRegistry } from '../../src/metrics/registry';
import { decodePprof } from '../../src/profile/pprof';

let pki: TestPki | undefined;
function testPki(): TestPki {
  pki ??= makeTestPki(fs.mkdtempSync(path.join(os.tmpdir(), 'qf-pki-')));
  return pki;
}

function assertDenied(a: HttpsAnswer, status: 401 | 403, reason: RegExp, what: string): void {
  assert.equal(a.status, status, `${what}: ${a.status} ${a.body.toString()}`);
  assert.equal(a.headers['x-go-pprof'], '1', `${what}: pprof clients show the reason`);
  assert.match(a.body.toString(), reason, what);
}

bpfTest('the agent on 0.0.0.0 with TLS, client CA and token: only the right credentials get a profile (pprof with client certificates, go tool pprof with the token)', async () => {
  const p = testPki();
  const agent = await startAgent(['--listen', '0.0.0.0:0', '--tls-cert', p.serverCert, '--tls-key', p.serverKey, '--tls-client-ca', p.ca, '--token-file', p.tokenFile]);
  const hot = await startHot();
  try {
    assert.match(agent.url, /^https:\/\/0\.0\.0\.0:\d+$/);
    const base = agent.url.replace('0.0.0.0', '127.0.0.1');
    const anon = (p2: string) => httpsGet(base + p2, { ca: p.ca });

    const health = await anon('/healthz');
    assert.equal(health.status, 200, 'the kubelet probes /healthz without credentials');

    for (const route of ['/debug/pprof/profile?seconds=1', '/debug/pprof/offcpu?seconds=1', '/metrics', '/api/processes', '/debug/pprof/symbol', '/no/such/route']) {
      const a = await anon(route);
      assertDenied(a, 401, /credentials required: a client certificate signed by the agent's CA or the token \(Authorization: Bearer TOKEN/, route);
      assert.equal(a.headers['www-authenticate'], 'Bearer realm="quietflame", Basic realm="quietflame", charset="UTF-8"', route);
    }
    const wrong = await httpsGet(`${base}/api/processes`, { ca: p.ca, headers: { Authorization: `Bearer ${p.token}x` } });
    assertDenied(wrong, 401, /^wrong token$/m, 'wrong token');
    assert.match(String(wrong.headers['www-authenticate']), /^Bearer realm="quietflame", error="invalid_token", Basic/);
    assertDenied(await httpsGet(`${base}/api/processes`, { ca: p.ca, headers: { Authorization: `Token ${p.token}` } }), 401, /expected "Bearer TOKEN" or Basic/, 'another scheme');
    const basic = (user: string, pass: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` });
    assertDenied(await httpsGet(`${base}/api/processes`, { ca: p.ca, headers: basic(p.token, 'x') }), 401, /^wrong token$/m, 'the token as user name');
    assert.equal((await httpsGet(`${base}/api/processes`, { ca: p.ca, headers: basic('anyone', p.token) })).status, 200, 'Basic, token as password');
    assertDenied(await httpsGet(`${base}/api/processes`, { ca: p.ca, cert: p.rogueCert, key: p.rogueKey }), 403, /client certificate not accepted: not signed by the agent's client CA \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/, 'a certificate from another CA');

    // hot was just started: its binary may still be being read (the agent starts by reading its own tables).
    const tracked = async (): Promise<boolean> => {
      const byToken = await httpsGet(`${base}/api/processes`, { ca: p.ca, headers: { Authorization: `Bearer ${p.token}` } });
      assert.equal(byToken.status, 200, byToken.body.toString());
      return (JSON.parse(byToken.body.toString()) as { processes: Array<{ pid: number }> }).processes.some((x) => x.pid === hot.pid);
    };
    for (let i = 0; i < 100 && !(await tracked()); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(await tracked(), 'the token lets curl and scripts in');
    const byCert = await httpsGet(`${base}/debug/pprof/profile?seconds=2&pid=${hot.pid}`, { ca: p.ca, cert: p.clientCert, key: p.clientKey });
    assert.equal(byCert.status, 200, byCert.body.toString());
    assert.ok(decodePprof(byCert.body).sample.length > 0, 'a client certificate gets the profile');

    // The standalone pprof presents a client certificate; go tool pprof (which ignores -tls_*) sends the token as
    // the URL's password and trusts the CA through SSL_CERT_FILE. Both get the hot function, symbolized.
    const path_ = `/debug/pprof/profile?seconds=3&pid=${hot.pid}`;
    const upstream = spawnSync(buildUpstreamPprof(), ['-top', '-tls_cert', p.clientCert, '-tls_key', p.clientKey, '-tls_ca', p.ca, base + path_], { encoding: 'utf8', env: { ...process.env, PPROF_TMPDIR: p.dir }, timeout: 120_000 });
    assert.equal(upstream.status, 0, upstream.stderr);
    assert.match(upstream.stdout, /main\.leafSpin/);
    const withToken = goTool(['pprof', '-top', base.replace('https://', `https://sre:${p.token}@`) + path_], undefined, { SSL_CERT_FILE: p.ca });
    assert.equal(withToken.status, 0, withToken.stderr);
    assert.match(withToken.stdout, /main\.leafSpin/);
    const refused = goTool(['pprof', '-top', base + path_], undefined, { SSL_CERT_FILE: p.ca });
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /401 Unauthorized - credentials required/, 'go tool pprof shows why');
  } finally {
    hot.proc.kill('SIGKILL');
    assert.equal(await agent.stop(), 0, agent.stderr());
  }
});

test('flags that would leave a non-loopback port open, or bad credential files, stop the agent with one line', () => {
  const p = testPki();
  const shortToken = path.join(p.dir, 'short-token');
  fs.writeFileSync(shortToken, 'hunter2\n');
  const cases: Array<[string[], number, RegExp]> = [
    [['--listen', '0.0.0.0:0'], 2, /--listen 0\.0\.0\.0: other hosts could read every process's stacks in clear text: give --tls-cert\/--tls-key with --tls-client-ca and\/or --token-file, or --allow-unauthenticated/],
    [['--listen', '[::]:0', '--token-file', p.tokenFile], 2, /--listen ::: other hosts could read/],
    [['--listen', '10.1.2.3:0', '--tls-cert', p.serverCert, '--tls-key', p.serverKey], 2, /TLS alone lets anyone in/],
    [['--tls-cert', p.serverCert], 2, /--tls-cert and --tls-key go together/],
    [['--tls-client-ca', p.ca], 2, /--tls-client-ca needs --tls-cert and --tls-key/],
    [['--token-file'], 2, /--token-file: expected a file/],
    [['--tls-cert', p.serverCert, '--tls-key', p.rogueKey, '--listen', '127.0.0.1:0'], 1, /--tls-cert\/--tls-key: .*key values mismatch/],
    [['--tls-cert', path.join(p.dir, 'nope.crt'), '--tls-key', p.serverKey, '--listen', '127.0.0.1:0'], 1, /--tls-cert .*nope\.crt: ENOENT/],
    [['--tls-cert', p.serverCert, '--tls-key', p.serverKey, '--tls-client-ca', p.serverKey, '--listen', '127.0.0.1:0'], 1, /--tls-client-ca .*tls\.key: no PEM certificate in it/],
    [['--tls-cert', p.serverCert, '--tls-key', p.serverKey, '--tls-client-ca', p.clientCert, '--listen', '127.0.0.1:0'], 1, /--tls-client-ca .*client\.crt: CN=sre is not a CA certificate/],
    [['--token-file', shortToken, '--listen', '127.0.0.1:0'], 1, /expected one token of at least 16 characters/],
  ];
  for (const [args, status, message] of cases) {
    const r = runCli(['agent', ...args], '', 30_000);
    assert.equal(r.status, status, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.equal(r.stderr.trim().split('\n')[0]!.length > 0 && !/\n\s+at /.test(r.stderr), true, `no stack trace: ${r.stderr}`);
  }
});

test('routes added after the server is built (other plugins) inherit the check; --open-metrics opens /metrics only', async () => {
  const p = testPki();
  const services = {
    sampler: { hz: 99, offCpuPeriodNs: 10_000_000, attached: true, subscribe: () => () => undefined },
    newProfile: () => ({ add: () => undefined, finish: () => Buffer.alloc(0) }),
    processes: () => [],
    processExists: () => false,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
  };
  const access = loadAccessControl({ tokenFile: p.tokenFile, openMetrics: true });
  const { app } = buildServer(services, { logger: pino({ level: 'silent' }), access });
  await app.register(async (child) => {
    child.get('/later', async () => 'secret\n');
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  try {
    assert.equal((await fetch(`${base}/later`)).status, 401);
    const ok = await fetch(`${base}/later`, { headers: { Authorization: `Bearer ${p.token}` } });
    assert.equal(await ok.text(), 'secret\n');
    assert.equal((await fetch(`${base}/metrics`)).status, 200, '--open-metrics');
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/api/processes`)).status, 401);
    assert.equal((await fetch(`${base}/metrics/../api/processes`)).status, 401, 'a path that normalizes elsewhere is not /metrics');
  } finally {
    await app.close();
  }
});
