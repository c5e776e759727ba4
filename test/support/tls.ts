// Certificates made by the real `openssl` at test time (nothing checked in): a CA, a server certificate for
// 127.0.0.1/localhost signed by it, a client certificate it signed, and a client certificate from another CA.
// Plus an HTTPS GET that presents them, for the agent's access control.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';

export interface TestPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate signed by a CA the agent does not trust. */
  rogueCert: string;
  rogueKey: string;
  /** A file holding a random bearer token (with a trailing newline, as `echo` and Secrets often leave one). */
  tokenFile: string;
  token: string;
}

function openssl(dir: string, args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
}

/** Key and certificate `name`.{key,crt}: self-signed when `ca` is undefined, else signed by ca.{key,crt}. */
function issue(dir: string, name: string, subject: string, ca?: string, extensions?: string): void {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-subj', subject];
  if (ca === undefined) return openssl(dir, ['req', '-x509', ...key, '-out', `${name}.crt`, '-days', '2']);
  openssl(dir, ['req', ...key, '-out', `${name}.csr`]);
  fs.writeFileSync(path.join(dir, `${name}.ext`), extensions ?? '');
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
}

export function makeTestPki(dir: string): TestPki {
  fs.mkdirSync(dir, { recursive: true });
  issue(dir, 'ca', '/CN=quietflame test CA');
  issue(dir, 'server', '/CN=quietflame', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  issue(dir, 'client', '/CN=sre', 'ca', 'extendedKeyUsage=clientAuth\n');
  issue(dir, 'rogue-ca', '/CN=someone else');
  issue(dir, 'rogue', '/CN=intruder', 'rogue-ca', 'extendedKeyUsage=clientAuth\n');
  const token = crypto.randomBytes(24).toString('base64url');
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  const p = (f: string): string => path.join(dir, f);
  return {
    dir,
    ca: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    rogueCert: p('rogue.crt'),
    rogueKey: p('rogue.key'),
    tokenFile,
    token,
  };
}

export interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** GET over HTTPS trusting `ca`, presenting a client certificate and/or headers when given. */
export function httpsGet(url: string, opts: { ca: string; cert?: string; key?: string; headers?: Record<string, string> }): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      url,
      {
        ca: fs.readFileSync(opts.ca),
        ...(opts.cert ? { cert: fs.readFileSync(opts.cert), key: fs.readFileSync(opts.key!) } : {}),
        headers: opts.headers ?? {},
        agent: false,
        timeout: 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in 60 s`)));
  });
}
