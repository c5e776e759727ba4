// Opens a file another process has mapped, without ever letting that process (a container) steer the agent to
// some other file. The bytes are read from one descriptor, and that descriptor must be a regular file whose device
// and inode /proc/PID/maps lists for the process; no path is stat()ed first and opened again later.
//
// Where the descriptor comes from, best first:
//   map_files  /proc/PID/map_files/<range>: the mapped file itself (needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE);
//   exe        /proc/PID/exe, for the main executable: the kernel's own reference, not a path lookup;
//   root       the mapping's path resolved inside the process's root (openat2 RESOLVE_IN_ROOT, no magic links),
//              so a symlink or '..' in the container's tree stays in the container.
// Every open is O_NONBLOCK (a FIFO swapped in answers at once instead of stalling the agent) and O_CLOEXEC.

import * as fs from 'node:fs';

import { native } from '../bpf/native';
import { FileSource } from '../gosym/bytes';
import { devString, isExecutable, Mapping, readMaps } from './maps';

const OVERLAYFS_MAGIC = 0x794c7630;
const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY;

/** The file could not be opened safely: a one-line reason that names the pid. */
export class RefusedFileError extends Error {
  override name = 'RefusedFileError';
}

export interface MappedFileSource {
  source: FileSource;
  how: 'map_files' | 'exe' | 'root';
  /** dev:inode:size:mtime of the descriptor: the same key means the same bytes. */
  key: string;
}

export interface OpenMappedOptions {
  procRoot?: string;
  /** Try /proc/PID/map_files first (default true; without the capability it fails and the next way is tried). */
  mapFiles?: boolean;
  /** The mapping is of the process's main executable: /proc/PID/exe may be used. */
  isExe?: boolean;
}

/** dev:inode:size:mtime — the same key means the same bytes. */
export function fileKey(st: fs.Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${Math.round(st.mtimeMs)}`;
}

function describe(st: fs.Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

function onOverlay(fd: number): boolean {
  try {
    return fs.statfsSync(`/proc/self/fd/${fd}`).type === OVERLAYFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * Does the open descriptor hold the file of mapping `m`? Device and inode must both match; on overlayfs, kernels
 * before 6.6 list the underlying file's device in maps (inode numbers agree), so there the inode alone decides.
 */
function isMappedFile(fd: number, st: fs.Stats, m: Mapping, maps: readonly Mapping[]): boolean {
  if (st.ino !== m.inode) return false;
  if (devString(st.dev) === m.dev) return true;
  return onOverlay(fd) && !maps.some((x) => x.inode === st.ino && x.dev === devString(st.dev));
}

function tryOpen(open: () => number): number | undefined {
  try {
    return open();
  } catch {
    return undefined;
  }
}

/**
 * Opens the file behind mapping `m` of process `pid`. Throws RefusedFileError when a descriptor was opened but is
 * not that file (another file now sits at the path, a FIFO, a device…) and no other way gave it; returns undefined
 * when nothing could be opened at all (the process is gone, no permission) or the process no longer maps it.
 */
export function openMappedFile(pid: number, m: Mapping, opts: OpenMappedOptions = {}): MappedFileSource | undefined {
  const procRoot = opts.procRoot ?? '/proc';
  const dir = `${procRoot}/${pid}`;
  const ways: Array<[MappedFileSource['how'], () => number, (fd: number) => void]> = [];
  if (opts.mapFiles ?? true) ways.push(['map_files', () => fs.openSync(`${dir}/map_files/${m.start.toString(16)}-${m.end.toString(16)}`, OPEN_FLAGS), fs.closeSync]);
  if (opts.isExe) ways.push(['exe', () => fs.openSync(`${dir}/exe`, OPEN_FLAGS), fs.closeSync]);
  if (!m.deleted && m.path.startsWith('/')) ways.push(['root', () => native().openInRoot(`${dir}/root`, m.path), closeNative]);
  let maps: Mapping[] | undefined;
  let refused: string | undefined;
  for (const [how, open, close] of ways) {
    const fd = tryOpen(open);
    if (fd === undefined) continue;
    let keep = false;
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) {
        refused ??= `pid ${pid}: ${m.path} is ${describe(st)} (via ${how}); not read`;
        continue;
      }
      maps ??= readMaps(pid, procRoot) ?? [];
      // Gone from a fresh read of the maps: the process exec'd or exited since `m` was read (short-lived processes
      // do this all the time). Nothing to read, and nothing was refused.
      if (!maps.some((x) => isExecutable(x) && x.start === m.start && x.inode === m.inode)) return undefined;
      if (!isMappedFile(fd, st, m, maps)) {
        refused ??= `pid ${pid}: ${m.path} (via ${how}) is not the file it has mapped (inode ${st.ino} on ${devString(st.dev)}, mapped ${m.inode} on ${m.dev}); not read`;
        continue;
      }
      keep = true;
      return { source: new FileSource(`${dir}:${m.path}`, fd, close), how, key: fileKey(st) };
    } catch (e) {
      refused ??= `pid ${pid}: ${m.path} (via ${how}): ${(e as Error).message}`;
    } finally {
      if (!keep) closeQuietly(fd, close);
    }
  }
  if (refused !== undefined) throw new RefusedFileError(refused);
  return undefined;
}

/**
 * The key (fileKey) of the file behind mapping `m`, by a stat of the process's own link to it in map_files: the
 * kernel's reference, no open and no path a container could redirect. Cheap enough for every new process: a file
 * already read is recognised without opening it again. undefined when the link cannot be read (no capability, the
 * process gone) or is not that mapping's regular file.
 */
export function mappedFileKey(pid: number, m: Mapping, procRoot = '/proc'): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(`${procRoot}/${pid}/map_files/${m.start.toString(16)}-${m.end.toString(16)}`);
  } catch {
    return undefined;
  }
  return st.isFile() && st.ino === m.inode ? fileKey(st) : undefined;
}

/**
 * Opens a file by its path inside process `pid`'s root (a separate debug file, say), never leaving that root.
 * Regular files only; undefined when it is not there, not regular, or not readable.
 */
export function openInProcessRoot(pid: number, path: string, procRoot = '/proc'): FileSource | undefined {
  const fd = tryOpen(() => native().openInRoot(`${procRoot}/${pid}/root`, path));
  if (fd === undefined) return undefined;
  try {
    if (!fs.fstatSync(fd).isFile()) {
      closeQuietly(fd, closeNative);
      return undefined;
    }
    return new FileSource(`${procRoot}/${pid}/root:${path}`, fd, closeNative);
  } catch {
    closeQuietly(fd, closeNative);
    return undefined;
  }
}

/** Closes what openInRoot opened (natively: fs.closeSync in a worker thread warns about descriptors fs did not open). */
function closeNative(fd: number): void {
  native().closeDescriptor(fd);
}

function closeQuietly(fd: number, close: (fd: number) => void): void {
  try {
    close(fd);
  } catch {
    // already closed
  }
}
