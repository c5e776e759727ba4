// Certificates made at test time by scripts/make-secrets.sh (what operators run; openssl underneath, nothing
// checked in): a CA, a server certificate for 127.0.0.1/localhost/quietflame signed by it, a client certificate it
// signed, a token, and a client certificate from another CA (a second run). Plus an HTTPS GET that presents them.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { repoRoot } from './go-toolchains';

export interface TestPki {
  /** scripts/make-secrets.sh's output: ca.crt, tls.crt, tls.key, client.crt, client.key, token. */
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate signed by a CA the agent does not trust. */
  rogueCert: string;
  rogueKey: string;
  tokenFile: string;
  token: string;
}

export function makeSecrets(dir: string, args: string[] = []): void {
  const r = spawnSync('bash', [path.join(repoRoot(), 'scripts', 'make-secrets.sh'), '--out', dir, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `make-secrets.sh: ${r.stderr}`);
}

export function makeTestPki(dir: string): TestPki {
  makeSecrets(dir);
  const rogue = path.join(dir, 'rogue');
  makeSecrets(rogue, ['--client', 'intruder']);
  const p = (f: string): string => path.join(dir, f);
  return {
    dir,
    ca: p('ca.crt'),
    serverCert: p('tls.crt'),
    serverKey: p('tls.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    rogueCert: path.join(rogue, 'client.crt'),
    rogueKey: path.join(rogue, 'client.key'),
    tokenFile: p('token'),
    token: fs.readFileSync(p('token'), 'utf8').trim(),
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
