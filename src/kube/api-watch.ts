// Pod names from the Kubernetes API, when the operator turns it on (--kube-api): one list and then a watch of the
// pods on this node only (fieldSelector spec.nodeName), as the pod's service account (RBAC: get, list and watch
// pods; deploy/kube-api). The kubelet's log layout (identity.ts) stays the fallback: it needs no API access.
//
// The API server is trusted, its answers are still bounded: bodies, lines and the number of pods kept.

import * as fs from 'node:fs';
import * as https from 'node:https';
import type { Logger } from 'pino';
import type { PodIdentity, PodNames } from './identity';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface PodWatchOptions {
  /** https://HOST:PORT of the API server (in a pod: KUBERNETES_SERVICE_HOST and _PORT). */
  server: string;
  /** Holds `token` (re-read at every request: projected tokens rotate) and `ca.crt`. */
  serviceAccountDir: string;
  nodeName: string;
  logger: Logger;
  /** A deleted pod's names are kept this long, for its last samples (default 60 s). */
  keepDeletedMs?: number;
}

interface PodEntry {
  namespace: string;
  pod: string;
  /** container ID (64 hex, no runtime prefix) → container name */
  containers: Map<string, string>;
  names: string[];
  deletedAt?: number;
}

/** The parts of a v1.Pod this reads. */
interface PodObject {
  metadata?: { uid?: string; name?: string; namespace?: string; resourceVersion?: string };
  spec?: { containers?: Array<{ name?: string }> };
  status?: Record<string, Array<{ name?: string; containerID?: string }> | undefined>;
}

interface WatchEvent {
  type?: string;
  object?: PodObject & { code?: number; message?: string };
}

const MAX_PODS = 10_000; // the kubelet runs at most a few hundred; anything beyond is not this node's
const MAX_BODY = 64 << 20;
const MAX_LINE = 16 << 20;
const STATUS_LISTS = ['containerStatuses', 'initContainerStatuses', 'ephemeralContainerStatuses'];

/** Why a request failed, in one line; `gone` asks for a new list (the resourceVersion is too old). */
class ApiError extends Error {
  constructor(
    message: string,
    readonly gone = false,
  ) {
    super(message);
  }
}

export class PodWatch implements PodNames {
  private readonly pods = new Map<string, PodEntry>();
  private resourceVersion: string | undefined;
  private readonly abort = new AbortController();
  private readonly keepDeletedMs: number;
  private lastProblem = '';
  /** The pod list has been read at least once. */
  synced = false;

  constructor(private readonly opts: PodWatchOptions) {
    this.keepDeletedMs = opts.keepDeletedMs ?? 60_000;
  }

  /** Lists and watches until stop(); a failed request is retried with backoff (1 s doubling to 30 s). */
  start(): void {
    void this.loop();
  }

  stop(): void {
    this.abort.abort();
  }

  lookup(podUid: string, containerId?: string): PodIdentity | undefined {
    const p = this.pods.get(podUid);
    if (!p) return undefined;
    const container = (containerId && p.containers.get(containerId)) || (p.names.length === 1 ? p.names[0] : undefined);
    return { namespace: p.namespace, pod: p.pod, podUid, ...(container ? { container } : {}), ...(containerId ? { containerId } : {}) };
  }

  private async loop(): Promise<void> {
    let backoffMs = 1000;
    while (!this.abort.signal.aborted) {
      try {
        if (this.resourceVersion === undefined) await this.list();
        await this.watch();
        backoffMs = 1000;
      } catch (e) {
        if (this.abort.signal.aborted) return;
        if (e instanceof ApiError && e.gone) {
          this.resourceVersion = undefined; // relist at once
          continue;
        }
        const problem = (e as Error).message;
        // Once per kind of failure, not once per retry.
        if (problem !== this.lastProblem) this.opts.logger.warn(`kubernetes API: ${problem}; pod names from the kubelet's logs until it answers (retrying)`);
        this.lastProblem = problem;
        await sleep(backoffMs, this.abort.signal);
        backoffMs = Math.min(backoffMs * 2, 30_000);
      }
    }
  }

  private query(extra: string): string {
    return `/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${this.opts.nodeName}`)}${extra}`;
  }

  private async list(): Promise<void> {
    const body = await this.request(this.query(''), (res) => readBody(res));
    let list: { metadata?: { resourceVersion?: string }; items?: PodObject[] };
    try {
      list = JSON.parse(body) as typeof list;
    } catch {
      throw new ApiError('the pod list is not JSON');
    }
    if (!Array.isArray(list.items) || typeof list.metadata?.resourceVersion !== 'string') throw new ApiError('the pod list has no items or resourceVersion');
    this.pods.clear();
    for (const item of list.items) this.put(item);
    this.resourceVersion = list.metadata.resourceVersion;
    if (!this.synced || this.lastProblem) this.opts.logger.info({ node: this.opts.nodeName, pods: this.pods.size }, 'kubernetes API: pods of this node listed');
    this.synced = true;
    this.lastProblem = '';
  }

  /** One watch request: events until the server ends it (its timeout) or it fails. */
  private async watch(): Promise<void> {
    const path = this.query(`&watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=${encodeURIComponent(this.resourceVersion!)}`);
    await this.request(path, (res) => readLines(res, (line) => this.handle(line)));
  }

  private handle(line: string): void {
    let ev: WatchEvent;
    try {
      ev = JSON.parse(line) as WatchEvent;
    } catch {
      throw new ApiError('a watch event is not JSON');
    }
    const obj = ev.object ?? {};
    if (ev.type === 'ERROR') throw new ApiError(`watch error ${obj.code ?? '?'}: ${obj.message ?? ''}`, obj.code === 410);
    const rv = obj.metadata?.resourceVersion;
    if (typeof rv === 'string') this.resourceVersion = rv;
    if (ev.type === 'ADDED' || ev.type === 'MODIFIED') this.put(obj);
    else if (ev.type === 'DELETED') {
      const entry = obj.metadata?.uid ? this.pods.get(obj.metadata.uid) : undefined;
      if (entry) entry.deletedAt = Date.now();
    }
    this.prune();
  }

  private put(obj: PodObject): void {
    const { uid, name, namespace } = obj.metadata ?? {};
    if (typeof uid !== 'string' || typeof name !== 'string' || typeof namespace !== 'string') return;
    if (!this.pods.has(uid) && this.pods.size >= MAX_PODS) return;
    const containers = new Map<string, string>();
    for (const key of STATUS_LISTS) {
      const statuses = obj.status?.[key];
      if (!Array.isArray(statuses)) continue;
      for (const s of statuses) {
        // "containerd://<64 hex>", "cri-o://…", "docker://…": the cgroup path holds the bare ID.
        const id = /^[a-z-]+:\/\/([0-9a-f]{64})$/.exec(s.containerID ?? '')?.[1];
        if (id && typeof s.name === 'string') containers.set(id, s.name);
      }
    }
    const names = (obj.spec?.containers ?? []).map((c) => c.name).filter((n): n is string => typeof n === 'string');
    this.pods.set(uid, { namespace, pod: name, containers, names });
  }

  private prune(): void {
    const before = Date.now() - this.keepDeletedMs;
    for (const [uid, p] of this.pods) if (p.deletedAt !== undefined && p.deletedAt < before) this.pods.delete(uid);
  }

  private request<T>(path: string, read: (res: import('node:http').IncomingMessage) => Promise<T>): Promise<T> {
    const dir = this.opts.serviceAccountDir;
    let token: string;
    let ca: Buffer;
    try {
      token = fs.readFileSync(`${dir}/token`, 'utf8').trim();
      ca = fs.readFileSync(`${dir}/ca.crt`);
    } catch (e) {
      return Promise.reject(new ApiError(`no service account credentials in ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): is automountServiceAccountToken on (deploy/kube-api)?`));
    }
    const url = new URL(path, this.opts.server);
    return new Promise<T>((resolve, reject) => {
      const req = https.get(url, { ca, headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' }, signal: this.abort.signal, timeout: 30_000 }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          const hint = res.statusCode === 403 ? ' (RBAC: the service account needs get, list and watch on pods: deploy/kube-api)' : '';
          reject(new ApiError(`GET ${url.pathname}: HTTP ${res.statusCode}${hint}`, res.statusCode === 410));
          return;
        }
        req.setTimeout(0); // a watch is quiet for minutes; the server's timeoutSeconds ends it
        read(res).then(resolve, reject);
      });
      req.on('timeout', () => req.destroy(new Error('no answer in 30 s')));
      req.on('error', (e) => reject(e instanceof ApiError ? e : new ApiError(`GET ${url.origin}${url.pathname}: ${e.message}`)));
    });
  }
}

function readBody(res: import('node:http').IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) res.destroy(new ApiError(`the pod list is over ${MAX_BODY >> 20} MiB`));
      else chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

/** Calls `onLine` for each newline-ended line of the stream; resolves when it ends. */
function readLines(res: import('node:http').IncomingMessage, onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let pending = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      pending += chunk;
      try {
        for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (line.trim()) onLine(line);
        }
        if (pending.length > MAX_LINE) throw new ApiError(`a watch event is over ${MAX_LINE >> 20} MiB`);
      } catch (e) {
        res.destroy(e as Error);
      }
    });
    res.on('end', () => resolve());
    res.on('error', reject);
    res.on('close', () => (res.complete ? resolve() : reject(new ApiError('the watch was cut off'))));
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
}
