// Which pod a process belongs to, without the Kubernetes API: the pod UID is in the process's cgroup path (kubelet
// names pod cgroups after it), and the kubelet's log layout on the node maps UIDs and container IDs to names:
//   /var/log/pods/NAMESPACE_POD_UID/CONTAINER/N.log
//   /var/log/containers/POD_NAMESPACE_CONTAINER-CONTAINERID.log   (the links log shippers read)
// Directory names are only read, never followed. Names are Kubernetes names (DNS labels and subdomains: no '_'),
// so '_' splits them unambiguously; anything else found there is skipped.

import * as fs from 'node:fs';
import { containerIdFromCgroup } from '../proc/container';

export interface PodIdentity {
  namespace: string;
  pod: string;
  /** The container's name when the logs tell it. */
  container?: string;
  podUid: string;
  containerId?: string;
}

// kubepods-besteffort-pod<uid with '_'>.slice (systemd driver) or pod<uid> (cgroupfs driver).
const POD_COMPONENT = /^(?:kubepods(?:-[a-z]+)*-)?pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$/;

/** The pod UID in /proc/PID/cgroup text (cgroup v1 or v2, either driver), or undefined outside pods. */
export function podUidFromCgroup(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const parts = line.split(':').slice(2).join(':').split('/');
    for (let i = parts.length - 1; i >= 0; i--) {
      const m = POD_COMPONENT.exec(parts[i]!);
      if (m) return m[1]!.replace(/_/g, '-');
    }
  }
  return undefined;
}

/** Where names come from: the kubelet's log layout here, the Kubernetes API in api-watch.ts. */
export interface PodNames {
  lookup(podUid: string, containerId?: string): PodIdentity | undefined;
}

const NAME = '[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?';
const IS_NAME = new RegExp(`^${NAME}$`);
const POD_DIR = new RegExp(`^(${NAME})_(${NAME})_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`);
const CONTAINER_LOG = new RegExp(`^(${NAME})_(${NAME})_(${NAME})-([0-9a-f]{64})\\.log$`);
const MAX_ENTRIES = 100_000; // a node runs at most a few hundred pods; a directory far larger is not the kubelet's

export interface KubeletLogsOptions {
  podsDir?: string;
  containersDir?: string;
  /** Re-read the directories on a miss at most this often (default 2000 ms). */
  refreshMs?: number;
}

/** Names from the kubelet's log layout, re-read when a process's pod or container is not there yet. */
export class KubeletLogs implements PodNames {
  private readonly podsDir: string;
  private readonly containersDir: string;
  private readonly refreshMs: number;
  private pods = new Map<string, { namespace: string; pod: string; containers: string[] }>();
  private containers = new Map<string, { namespace: string; pod: string; container: string }>();
  private readAt = -Infinity;

  constructor(opts: KubeletLogsOptions = {}) {
    this.podsDir = opts.podsDir ?? '/var/log/pods';
    this.containersDir = opts.containersDir ?? '/var/log/containers';
    this.refreshMs = opts.refreshMs ?? 2000;
  }

  /** Whether the layout is there at all (the DaemonSet mounts it; elsewhere there is nothing to find). */
  get available(): boolean {
    return fs.existsSync(this.podsDir);
  }

  lookup(podUid: string, containerId?: string): PodIdentity | undefined {
    let found = this.find(podUid, containerId);
    if ((!found || (containerId && !found.container)) && performance.now() - this.readAt >= this.refreshMs) {
      this.read();
      found = this.find(podUid, containerId);
    }
    return found;
  }

  private find(podUid: string, containerId?: string): PodIdentity | undefined {
    const pod = this.pods.get(podUid);
    if (!pod) return undefined;
    const byId = containerId ? this.containers.get(containerId) : undefined;
    // A pod with one container (most) names it even before its /var/log/containers link exists.
    const container = byId && byId.pod === pod.pod && byId.namespace === pod.namespace ? byId.container : pod.containers.length === 1 ? pod.containers[0] : undefined;
    return { namespace: pod.namespace, pod: pod.pod, podUid, ...(container ? { container } : {}), ...(containerId ? { containerId } : {}) };
  }

  private read(): void {
    this.readAt = performance.now();
    const pods = new Map<string, { namespace: string; pod: string; containers: string[] }>();
    for (const name of listDir(this.podsDir)) {
      const m = POD_DIR.exec(name);
      if (!m) continue;
      const containers = listDir(`${this.podsDir}/${name}`).filter((c) => IS_NAME.test(c));
      pods.set(m[3]!, { namespace: m[1]!, pod: m[2]!, containers });
    }
    const containers = new Map<string, { namespace: string; pod: string; container: string }>();
    for (const name of listDir(this.containersDir)) {
      const m = CONTAINER_LOG.exec(name);
      if (m) containers.set(m[4]!, { pod: m[1]!, namespace: m[2]!, container: m[3]! });
    }
    this.pods = pods;
    this.containers = containers;
  }
}

function listDir(dir: string): string[] {
  let d: fs.Dir | undefined;
  try {
    d = fs.opendirSync(dir);
    const names: string[] = [];
    for (let e = d.readSync(); e !== null && names.length < MAX_ENTRIES; e = d.readSync()) names.push(e.name);
    return names;
  } catch {
    return []; // not there (yet), or gone while read
  } finally {
    d?.closeSync();
  }
}

/**
 * Pod identity of running processes: cgroup → pod UID and container ID, then names from the first source that
 * knows the pod (the API watch when it is on, then the kubelet's logs); one that also names the container wins.
 */
export class PodIdentities {
  private readonly sources: readonly PodNames[];

  constructor(
    sources: PodNames | readonly PodNames[] = new KubeletLogs(),
    private readonly procRoot = '/proc',
  ) {
    this.sources = Array.isArray(sources) ? sources : [sources as PodNames];
  }

  of(pid: number): PodIdentity | undefined {
    let cgroup: string;
    try {
      cgroup = fs.readFileSync(`${this.procRoot}/${pid}/cgroup`, 'utf8');
    } catch {
      return undefined;
    }
    const podUid = podUidFromCgroup(cgroup);
    if (!podUid) return undefined;
    const containerId = containerIdFromCgroup(cgroup);
    let found: PodIdentity | undefined;
    for (const source of this.sources) {
      const named = source.lookup(podUid, containerId);
      if (named?.container) return named;
      found ??= named;
    }
    return found;
  }
}
