// A cgroup named the way containerd names a container's, created for a test and removed after it: processes
// moved into it look, by their /proc/PID/cgroup, as if they ran in a container. Needs root.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A writable cgroup hierarchy: the v2 one (unified or hybrid), else the v1 pids controller (or the ones given). */
export function hierarchy(candidates = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup', '/sys/fs/cgroup/pids']): string {
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, 'cgroup.procs'))) {
      try {
        fs.accessSync(dir, fs.constants.W_OK);
        return dir;
      } catch {
        // not writable: try the next
      }
    }
  }
  assert.fail('no writable cgroup hierarchy (cgroup.procs) under /sys/fs/cgroup: run as root');
}

/** Moves pid into <hierarchy>/qf-test-<pid>/cri-containerd-<id>.scope while fn runs, then back to the root. */
export async function inContainerCgroup<T>(pid: number, id: string, fn: () => Promise<T>): Promise<T> {
  return inCgroup(pid, [`cri-containerd-${id}.scope`], fn);
}

/**
 * Moves pid into <root>/qf-test-<pid>/<components…> (created for it) while fn runs, then back to the root and
 * removes what it created. root: a hierarchy's mount point (default: hierarchy()).
 */
export async function inCgroup<T>(pid: number, components: readonly string[], fn: () => Promise<T>, root = hierarchy()): Promise<T> {
  const dirs = [path.join(root, `qf-test-${process.pid}-${pid}`)];
  for (const c of components) dirs.push(path.join(dirs.at(-1)!, c));
  fs.mkdirSync(dirs.at(-1)!, { recursive: true });
  try {
    fs.writeFileSync(path.join(dirs.at(-1)!, 'cgroup.procs'), String(pid));
    return await fn();
  } finally {
    try {
      fs.writeFileSync(path.join(root, 'cgroup.procs'), String(pid));
    } catch {
      // the process is gone: its cgroup is empty anyway
    }
    for (const d of dirs.reverse()) fs.rmdirSync(d);
  }
}
