// tracefs (classic tracepoints read their ids there) and bpffs (pinning) are not always mounted
// in a container or a minimal VM: mount them, or say exactly what is missing.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';

import { native } from './native';

export const TRACEFS = '/sys/kernel/tracing';
export const BPFFS = '/sys/fs/bpf';

export interface Mount {
  source: string;
  target: string;
  fstype: string;
}

export function mounts(): Mount[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const [source = '', target = '', fstype = ''] = l.split(' ');
      return { source, target: target.replace(/\\040/g, ' '), fstype };
    });
}

export function isMounted(target: string, fstype: string): boolean {
  return mounts().some((m) => m.target === target && m.fstype === fstype);
}

/** Mounts tracefs at /sys/kernel/tracing unless it (or debugfs's tracing dir) is there. Returns true if it mounted. */
export function ensureTracefs(target = TRACEFS): boolean {
  if (existsSync(`${target}/events`) || existsSync('/sys/kernel/debug/tracing/events')) return false;
  return mountFs('tracefs', target, 'tracefs');
}

/** Mounts bpffs at /sys/fs/bpf unless already mounted. Returns true if it mounted. */
export function ensureBpffs(target = BPFFS): boolean {
  if (isMounted(target, 'bpf')) return false;
  return mountFs('bpf', target, 'bpf');
}

function mountFs(source: string, target: string, fstype: string): boolean {
  if (!existsSync(target)) {
    try {
      mkdirSync(target, { recursive: true });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      e.message = `cannot create ${target} to mount ${fstype} on: ${e.message}`;
      throw e;
    }
  }
  native().mount(source, target, fstype);
  return true;
}
