// A process's executable: the path it has in the process's own mount namespace, a path the agent can open, and
// the file's identity (device + inode + size + mtime) to share one parsed binary between processes.
//
// Where the bytes are read from, best first:
//   root       /proc/PID/root/<path>: the same file through the process's root, so it works for a process in
//              another mount namespace (a container) — used when that path still holds the very inode mapped;
//   exe        /proc/PID/exe: the kernel's link to the mapped file itself; works when the file was deleted or
//              replaced since the process started (the path then names another file, or none);
//   map_files  /proc/PID/map_files/<range> of an executable mapping of that inode (needs CAP_SYS_ADMIN or
//              CAP_CHECKPOINT_RESTORE), when /proc/PID/exe cannot be opened.

import * as fs from 'node:fs';

import { isExecutable, mapFilesPath, readMaps } from './maps';

export interface Executable {
  pid: number;
  /** The path in the process's mount namespace (readlink /proc/PID/exe, without ' (deleted)'). */
  path: string;
  /** The file was removed or replaced after the process mapped it. */
  deleted: boolean;
  /** The process lives in another mount namespace than the agent. */
  otherMountNamespace: boolean;
  /** A path that opens the mapped file from the agent. */
  openPath: string;
  how: 'root' | 'exe' | 'map_files';
  dev: number;
  inode: number;
  size: number;
  mtimeMs: number;
  /** dev:inode:size:mtime — the same key means the same bytes. */
  key: string;
}

function fileKey(st: fs.Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${Math.round(st.mtimeMs)}`;
}

function statOrUndefined(path: string): fs.Stats | undefined {
  try {
    return fs.statSync(path);
  } catch {
    return undefined;
  }
}

function readlinkOrUndefined(path: string): string | undefined {
  try {
    return fs.readlinkSync(path);
  } catch {
    return undefined;
  }
}

let ownMountNs: string | undefined;

function mountNamespace(pid: number | 'self', procRoot: string): string | undefined {
  return readlinkOrUndefined(`${procRoot}/${pid}/ns/mnt`);
}

/**
 * The executable of a process, or undefined for kernel threads and processes that are gone or unreadable.
 * Never throws.
 */
export function resolveExecutable(pid: number, procRoot = '/proc'): Executable | undefined {
  const link = readlinkOrUndefined(`${procRoot}/${pid}/exe`);
  if (link === undefined) return undefined; // kernel thread, gone, or no permission
  const deleted = link.endsWith(' (deleted)');
  const path = deleted ? link.slice(0, -' (deleted)'.length) : link;
  ownMountNs ??= mountNamespace('self', procRoot);
  const ns = mountNamespace(pid, procRoot);
  const otherMountNamespace = ns !== undefined && ownMountNs !== undefined && ns !== ownMountNs;

  const mapped = statOrUndefined(`${procRoot}/${pid}/exe`); // follows the kernel's link to the mapped inode
  const base = { pid, path, deleted, otherMountNamespace };
  if (mapped !== undefined) {
    if (!deleted && path.startsWith('/')) {
      const viaRoot = `${procRoot}/${pid}/root${path}`;
      const st = statOrUndefined(viaRoot);
      if (st !== undefined && st.dev === mapped.dev && st.ino === mapped.ino) {
        return { ...base, openPath: viaRoot, how: 'root', dev: st.dev, inode: st.ino, size: st.size, mtimeMs: st.mtimeMs, key: fileKey(st) };
      }
    }
    return {
      ...base,
      deleted: deleted || mapped.nlink === 0,
      openPath: `${procRoot}/${pid}/exe`,
      how: 'exe',
      dev: mapped.dev,
      inode: mapped.ino,
      size: mapped.size,
      mtimeMs: mapped.mtimeMs,
      key: fileKey(mapped),
    };
  }
  // /proc/PID/exe could be read as a link but not opened: try an executable mapping of the same path.
  const maps = readMaps(pid, procRoot);
  const m = maps?.find((x) => isExecutable(x) && x.path === path && x.inode !== 0);
  if (m === undefined) return undefined;
  const viaMap = mapFilesPath(pid, m, procRoot);
  const st = statOrUndefined(viaMap);
  if (st === undefined) return undefined;
  return { ...base, openPath: viaMap, how: 'map_files', dev: st.dev, inode: st.ino, size: st.size, mtimeMs: st.mtimeMs, key: fileKey(st) };
}
