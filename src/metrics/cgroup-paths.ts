// cgroup v2 ids, as BPF reads them (task->cgroups->dfl_cgrp->kn->id), to paths: on 64-bit kernels the id is the
// cgroup directory's inode number under the cgroup2 mount. The tree is walked at most every refreshMs (on a
// lookup: a scrape), so a scrape stays cheap on a node with thousands of cgroups.

import * as fs from 'node:fs';
import * as path from 'node:path';


/**
 * Where the node's cgroup v2 tree can be read: through /proc/1/root when this process sees the host's PID 1
 * (hostPID in a pod: its own /sys/fs/cgroup shows only its cgroup namespace), else its own mount; undefined on a
 * cgroup v1 only host.
 */
export function cgroup2Mount(): string | undefined {
  for (const [mountsFile, prefix] of [['/proc/1/mounts', '/proc/1/root'], ['/proc/self/mounts', '']] as const) {
    try {
      const line = fs.readFileSync(mountsFile, 'utf8').split('\n').find((l) => l.split(' ')[2] === 'cgroup2');
      if (line !== undefined) {
        const target = prefix + line.split(' ')[1]!;
        if (fs.statSync(target).isDirectory()) return target;
      }
    } catch {
      // not readable from here: try the next
    }
  }
  return undefined;
}

/** The root cgroup's id (kernfs root inode number). */
const ROOT_CGROUP_ID = 1n;

export class CgroupPaths {
  private paths = new Map<bigint, string>();
  private generation = 0;
  private scannedAtMs = -Infinity;
  /** Walking from the root cgroup (not a cgroup namespace's view): an id no scan finds is no cgroup. */
  private wholeTree = false;
  /** Ids looked up and not found, with the generation of the scan that missed them. */
  private readonly missing = new Map<bigint, number>();
  /** Ids a scan found and a later scan did not: removed cgroups. */
  private readonly removed = new Set<bigint>();

  constructor(
    private readonly root: string,
    private readonly refreshMs = 10_000,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** The cgroup's path below the mount ("/" for the root cgroup), or undefined if no such cgroup exists. */
  pathOf(id: bigint): string | undefined {
    if (this.nowMs() - this.scannedAtMs >= this.refreshMs) this.scan();
    const p = this.paths.get(id);
    if (p === undefined && !this.missing.has(id)) this.missing.set(id, this.generation);
    return p;
  }

  /**
   * The cgroup is gone: a scan found it and a later one did not, or, walking the whole tree, two scans missed it
   * (a cgroup that came and went between scans). A cgroup outside a namespaced view is never called gone.
   */
  isGone(id: bigint): boolean {
    if (this.removed.has(id)) return true;
    const missedAt = this.missing.get(id);
    return this.wholeTree && missedAt !== undefined && this.generation > missedAt && !this.paths.has(id);
  }

  /** Stop tracking ids whose data the caller has dropped. */
  forget(ids: readonly bigint[]): void {
    for (const id of ids) {
      this.removed.delete(id);
      this.missing.delete(id);
    }
  }

  private scan(): void {
    const found = new Map<bigint, string>();
    const walk = (dir: string, rel: string): void => {
      try {
        found.set(fs.statSync(dir, { bigint: true }).ino, rel);
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
          if (e.isDirectory()) walk(path.join(dir, e.name), path.posix.join(rel, e.name));
        }
      } catch {
        // removed while walking
      }
    };
    walk(this.root, '/');
    for (const id of this.paths.keys()) if (!found.has(id)) this.removed.add(id);
    for (const id of found.keys()) {
      this.missing.delete(id);
      this.removed.delete(id);
    }
    this.wholeTree = found.get(ROOT_CGROUP_ID) === '/';
    this.paths = found;
    this.generation++;
    this.scannedAtMs = this.nowMs();
  }
}
