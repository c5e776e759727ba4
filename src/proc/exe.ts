// A process's executable: the path it has in the process's own mount namespace and the file's identity (device +
// inode + size + mtime, from the kernel's link /proc/PID/exe) to share one parsed binary between processes.
// openExecutable() opens it for reading through open-mapped.ts, which checks the descriptor against
// /proc/PID/maps: nothing here is opened by a path the process's container could change.

import * as fs from 'node:fs';

import { ElfFile } from '../gosym/elf';
import { devString, isExecutable, mapFilesPath, readMaps } from './maps';
import { fileKey, openMappedFile, RefusedFileError } from './open-mapped';

export interface Executable {
  pid: number;
  /** The path in the process's mount namespace (readlink /proc/PID/exe, without ' (deleted)'). */
  path: string;
  /** The file was removed or replaced after the process mapped it. */
  deleted: boolean;
  /** The process lives in another mount namespace than the agent. */
  otherMountNamespace: boolean;
  dev: number;
  inode: number;
  size: number;
  mtimeMs: number;
  /** dev:inode:size:mtime — the same key means the same bytes. */
  key: string;
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
    return { ...base, deleted: deleted || mapped.nlink === 0, dev: mapped.dev, inode: mapped.ino, size: mapped.size, mtimeMs: mapped.mtimeMs, key: fileKey(mapped) };
  }
  // /proc/PID/exe could be read as a link but not opened: try an executable mapping of the same path.
  const maps = readMaps(pid, procRoot);
  const m = maps?.find((x) => isExecutable(x) && x.path === path && x.inode !== 0);
  if (m === undefined) return undefined;
  const st = statOrUndefined(mapFilesPath(pid, m, procRoot));
  if (st === undefined) return undefined;
  return { ...base, dev: st.dev, inode: st.ino, size: st.size, mtimeMs: st.mtimeMs, key: fileKey(st) };
}

/**
 * Opens a process's executable as ELF: the descriptor must be the very file resolveExecutable saw (same key) and
 * one the process has mapped. Throws RefusedFileError (a one-line reason naming the pid) or the ELF reader's error.
 */
export function openExecutable(exe: Executable, procRoot = '/proc'): ElfFile {
  const maps = readMaps(exe.pid, procRoot);
  if (maps === undefined) throw new RefusedFileError(`pid ${exe.pid}: gone before its executable was opened`);
  const dev = devString(exe.dev);
  const m = maps.find((x) => isExecutable(x) && x.inode === exe.inode && x.dev === dev) ?? maps.find((x) => isExecutable(x) && x.inode === exe.inode && x.path === exe.path);
  if (m === undefined) throw new RefusedFileError(`pid ${exe.pid}: ${exe.path} is not mapped executable (exiting, or not started yet)`);
  const opened = openMappedFile(exe.pid, m, { procRoot, isExe: true });
  if (opened === undefined) throw new RefusedFileError(`pid ${exe.pid}: ${exe.path} could not be opened`);
  if (opened.key !== exe.key) {
    opened.source.close();
    throw new RefusedFileError(`pid ${exe.pid}: ${exe.path} changed while it was opened; not read`);
  }
  try {
    return new ElfFile(opened.source, exe.path);
  } catch (e) {
    opened.source.close();
    throw e;
  }
}
