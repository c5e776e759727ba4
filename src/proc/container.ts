// Which container a process runs in, from its cgroup paths: what Kubernetes users filter profiles by.
//
// Container runtimes name a container's cgroup after its 64-hex-digit ID: ".../docker/<id>",
// ".../kubepods/.../<id>" (cgroupfs driver) or ".../cri-containerd-<id>.scope", "crio-<id>.scope",
// "docker-<id>.scope", "libpod-<id>.scope" (systemd driver). The innermost such component wins.

import * as fs from 'node:fs';

const CONTAINER_COMPONENT = /^(?:[a-z][a-z0-9]*-)*([0-9a-f]{64})(?:\.scope)?$/;

/** The container ID in /proc/PID/cgroup text, or undefined for a process outside containers. */
export function containerIdFromCgroup(text: string): string | undefined {
  let found: string | undefined;
  let depth = -1;
  for (const line of text.split('\n')) {
    // hierarchy-ID:controllers:path — the path may itself hold ':'.
    const hit = innermostContainer(line.split(':').slice(2).join(':'));
    if (hit !== undefined && hit.depth > depth) ({ id: found, depth } = hit);
  }
  return found;
}

/** The container ID in one cgroup path (e.g. "/kubepods.slice/…/cri-containerd-<id>.scope"), if any. */
export function containerIdFromPath(path: string): string | undefined {
  return innermostContainer(path)?.id;
}

function innermostContainer(path: string): { id: string; depth: number } | undefined {
  const parts = path.split('/');
  for (let i = parts.length - 1; i >= 0; i--) {
    const m = CONTAINER_COMPONENT.exec(parts[i]!);
    if (m) return { id: m[1]!, depth: i };
  }
  return undefined;
}

/** The container ID of a running process (undefined when it has none or is gone). */
export function containerIdOf(pid: number, procRoot = '/proc'): string | undefined {
  try {
    return containerIdFromCgroup(fs.readFileSync(`${procRoot}/${pid}/cgroup`, 'utf8'));
  } catch {
    return undefined;
  }
}
