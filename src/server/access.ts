// Who may read the agent's endpoints. A profile shows every process's code paths (and goroutine dumps their stack
// contents), so the HTTP server is closed by default: TLS with client certificates (the standalone pprof's -tls_cert
// -tls_key -tls_ca, browsers) and/or a token (curl and scripts as a bearer token; `go tool pprof`, whose fetcher
// ignores those flags, as the password in the URL). /healthz stays open for the kubelet, /metrics
// when the operator says so. One onRequest hook on the root instance: every route, including 404s, goes through it.

import { createHash, timingSafeEqual, X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import type { TLSSocket } from 'node:tls';
import * as tls from 'node:tls';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BadRequest } from './params';

/** The access flags of `quietflame agent`, as given. */
export interface AccessFlags {
  tlsCert?: string;
  tlsKey?: string;
  /** Client certificates signed by this CA are let in. */
  tlsClientCa?: string;
  /** A file holding the bearer token (a Kubernetes Secret mounted as a file). */
  tokenFile?: string;
  /** /metrics without credentials (Prometheus scrapes from inside the cluster network). */
  openMetrics?: boolean;
  /** Listen beyond loopback with nothing checked: the operator says something else guards the port. */
  allowUnauthenticated?: boolean;
}

export const ACCESS_USAGE = `  --tls-cert FILE           serve HTTPS with this certificate (PEM; with --tls-key)
  --tls-key FILE            the certificate's private key (PEM)
  --tls-client-ca FILE      let in clients whose certificate this CA (PEM) signed (go tool pprof -tls_cert -tls_key -tls_ca)
  --token-file FILE         let in requests with the token the file holds: "Authorization: Bearer TOKEN", or Basic
                            with any user name and the token as password (go tool pprof https://any:TOKEN@HOST:PORT/…)
  --open-metrics            serve /metrics without credentials (/healthz always is)
  --allow-unauthenticated   allow a non-loopback --listen without TLS and credentials (something else guards the port)`;

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;

/** What is wrong with these flags for listening on `host`, in one line; undefined when they are fine. */
export function accessFlagsProblem(host: string, f: AccessFlags): string | undefined {
  if ((f.tlsCert === undefined) !== (f.tlsKey === undefined)) return '--tls-cert and --tls-key go together';
  if (f.tlsClientCa !== undefined && f.tlsCert === undefined) return '--tls-client-ca needs --tls-cert and --tls-key (client certificates are part of TLS)';
  if (LOOPBACK.test(host) || f.allowUnauthenticated) return undefined;
  if (f.tlsCert === undefined) {
    return `--listen ${host}: other hosts could read every process's stacks in clear text: give --tls-cert/--tls-key with --tls-client-ca and/or --token-file, or --allow-unauthenticated`;
  }
  if (f.tlsClientCa === undefined && f.tokenFile === undefined) {
    return `--listen ${host}: TLS alone lets anyone in: give --tls-client-ca and/or --token-file, or --allow-unauthenticated`;
  }
  return undefined;
}

function readFlagFile(flag: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new Error(`${flag} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The CA certificates in a PEM bundle; Node would silently take a file with none (and then trust no client). */
function readCaBundle(file: string): Buffer {
  const pem = readFlagFile('--tls-client-ca', file);
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error(`--tls-client-ca ${file}: no PEM certificate in it`);
  for (const b of blocks) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(b);
    } catch (e) {
      throw new Error(`--tls-client-ca ${file}: ${(e as Error).message}`);
    }
    if (!cert.ca) throw new Error(`--tls-client-ca ${file}: ${cert.subject.replace(/\n/g, ', ')} is not a CA certificate`);
  }
  return pem;
}

/** Why TLS did not accept a client's certificate, in words (OpenSSL's code kept for searching). */
function certificateProblem(code: string | undefined): string {
  const words: Record<string, string> = {
    UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'not signed by the agent\'s client CA',
    UNABLE_TO_GET_ISSUER_CERT: 'not signed by the agent\'s client CA',
    UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'not signed by the agent\'s client CA',
    DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed, not signed by the agent\'s client CA',
    SELF_SIGNED_CERT_IN_CHAIN: 'its chain ends at a CA the agent does not trust',
    CERT_HAS_EXPIRED: 'expired',
    CERT_NOT_YET_VALID: 'not valid yet',
  };
  return code === undefined ? 'not verified' : `${words[code] ?? 'not verified'} (${code})`;
}

/**
 * The token in an Authorization header: `Bearer TOKEN` (curl, scripts) or Basic with it as the password, whatever
 * the user name (`go tool pprof https://any:TOKEN@NODE:7070/…`: Go's HTTP client sends a URL's user info as Basic,
 * and pprof has no way to add a header; browsers ask for it).
 */
function tokenOf(header: string): string | undefined {
  const bearer = /^Bearer +(\S+)$/i.exec(header);
  if (bearer) return bearer[1];
  const basic = /^Basic +([A-Za-z0-9+/=]+)$/i.exec(header);
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

const sha256 = (b: Buffer | string): Buffer => createHash('sha256').update(b).digest();

export interface AccessControl {
  /** The https options for the server, when TLS is on. */
  readonly https?: tls.SecureContextOptions & tls.TlsOptions;
  /** Installs the check on the root instance: call before any route is added. */
  register(app: FastifyInstance): void;
  /** The scheme the server speaks. */
  readonly scheme: 'http' | 'https';
}

/** Reads the files the flags name (a clear one-line error for each bad one) and makes the server's access control. */
export function loadAccessControl(f: AccessFlags): AccessControl {
  let https: AccessControl['https'];
  if (f.tlsCert !== undefined && f.tlsKey !== undefined) {
    const cert = readFlagFile('--tls-cert', f.tlsCert);
    const key = readFlagFile('--tls-key', f.tlsKey);
    const ca = f.tlsClientCa === undefined ? undefined : readCaBundle(f.tlsClientCa);
    // Ask for a client certificate but let the handshake finish without one: /healthz must answer the kubelet, and
    // a refused request gets an HTTP status saying why instead of a bare TLS alert.
    https = { cert, key, ...(ca ? { ca, requestCert: true, rejectUnauthorized: false } : {}), minVersion: 'TLSv1.2' };
    try {
      tls.createSecureContext(https);
    } catch (e) {
      throw new Error(`--tls-cert/--tls-key${ca ? '/--tls-client-ca' : ''}: ${(e as Error).message}`);
    }
  }
  let tokenDigest: Buffer | undefined;
  if (f.tokenFile !== undefined) {
    const token = readFlagFile('--token-file', f.tokenFile).toString('utf8').trim(); // a trailing newline is not part of it
    if (token.length < 16 || /\s/.test(token)) throw new Error(`--token-file ${f.tokenFile}: expected one token of at least 16 characters, no spaces`);
    tokenDigest = sha256(token);
  }
  const clientCerts = https?.ca !== undefined;
  const checked = clientCerts || tokenDigest !== undefined;
  const open = new Set(['/healthz', ...(f.openMetrics ? ['/metrics'] : [])]);
  const challenges = ['Bearer realm="quietflame"', 'Basic realm="quietflame", charset="UTF-8"'];

  const deny = (req: FastifyRequest, reply: FastifyReply, status: 401 | 403, why: string, invalidToken = false): never => {
    req.log.info({ remote: req.ip, url: req.url.split('?')[0], status, why }, 'access denied');
    if (status === 401 && tokenDigest) reply.header('WWW-Authenticate', invalidToken ? [`${challenges[0]}, error="invalid_token"`, challenges[1]] : challenges);
    throw new BadRequest(why, status);
  };

  const check = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!checked || open.has(req.routeOptions.url ?? '')) return; // the route matched, not the raw path
    const socket = req.raw.socket as TLSSocket;
    if (clientCerts && socket.authorized) return;
    const auth = req.headers.authorization;
    if (tokenDigest && auth !== undefined) {
      const presented = tokenOf(auth);
      if (presented === undefined) return deny(req, reply, 401, 'Authorization header: expected "Bearer TOKEN" or Basic with the token as password');
      // Digests have one length, so the comparison takes the same time whatever the client sent.
      if (timingSafeEqual(sha256(presented), tokenDigest)) return;
      deny(req, reply, 401, 'wrong token', true);
    }
    if (clientCerts && typeof socket.getPeerCertificate === 'function' && Object.keys(socket.getPeerCertificate()).length > 0) {
      deny(req, reply, 403, `client certificate not accepted: ${certificateProblem(socket.authorizationError?.toString())}`);
    }
    const accepted = [clientCerts ? "a client certificate signed by the agent's CA" : '', tokenDigest ? 'the token (Authorization: Bearer TOKEN, or https://any:TOKEN@HOST/... for go tool pprof)' : ''];
    deny(req, reply, 401, `credentials required: ${accepted.filter(Boolean).join(' or ')}`);
  };

  return {
    https,
    scheme: https ? 'https' : 'http',
    register: (app) => app.addHook('onRequest', check),
  };
}
