// /proc/PID/maps: a process's memory mappings, and where their bytes come from.
//
//   const maps = readMaps(pid);                  // undefined once the process is gone
//   const m = findMapping(maps, pc);             // the mapping holding a runtime address
//   const text = executableMappings(maps, { inode: st.ino });

import { readProcText } from './read';

export interface Mapping {
  /** Runtime address range [start, end). */
  start: number;
  end: number;
  /** 'r-xp' etc. */
  perms: string;
  /** File offset of `start`. */
  offset: number;
  /** Device as /proc prints it: major:minor in hex ('fe:01'); '00:00' for anonymous memory. */
  dev: string;
  inode: number;
  /** The path column without a trailing ' (deleted)'; '' for anonymous memory; '[vdso]', '[stack]' … for specials. */
  path: string;
  /** The kernel marks the file as deleted (removed or replaced since it was mapped). */
  deleted: boolean;
}

const LINE = /^([0-9a-f]+)-([0-9a-f]+) ([-r][-w][-x][-sp]) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)(?: +(.*))?$/;
const DELETED = ' (deleted)';

/** Parses the text of /proc/PID/maps; lines it cannot read are skipped. */
export function parseMaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  let at = 0;
  while (at < text.length) {
    let nl = text.indexOf('\n', at);
    if (nl < 0) nl = text.length;
    const m = LINE.exec(text.slice(at, nl));
    at = nl + 1;
    if (!m) continue;
    let path = m[7] ?? '';
    const deleted = path.endsWith(DELETED);
    if (deleted) path = path.slice(0, -DELETED.length);
    out.push({
      start: parseInt(m[1]!, 16),
      end: parseInt(m[2]!, 16),
      perms: m[3]!,
      offset: parseInt(m[4]!, 16),
      dev: m[5]!,
      inode: Number(m[6]!),
      path,
      deleted,
    });
  }
  return out;
}

/** The process's mappings, or undefined when it is gone or unreadable. Never throws. */
export function readMaps(pid: number, procRoot = '/proc'): Mapping[] | undefined {
  const text = readProcText(`${procRoot}/${pid}/maps`);
  return text === undefined ? undefined : parseMaps(text);
}

export function isExecutable(m: Mapping): boolean {
  return m.perms[2] === 'x';
}

export function isFileBacked(m: Mapping): boolean {
  return m.inode !== 0 && m.path.startsWith('/');
}

/** The mapping holding a runtime address (mappings sorted by start, as /proc lists them), or undefined. */
export function findMapping(maps: readonly Mapping[], addr: number): Mapping | undefined {
  let lo = 0;
  let hi = maps.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (maps[mid]!.end <= addr) lo = mid + 1;
    else hi = mid;
  }
  const m = maps[lo];
  return m !== undefined && m.start <= addr && addr < m.end ? m : undefined;
}

/** A device number (stat's st_dev) as /proc/PID/maps prints it: major:minor in hex, at least two digits each. */
export function devString(dev: number): string {
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 4096) & 0xfff00);
  return `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}`;
}

/**
 * Mappings of one file, executable ones only unless `all`. A mapping matches by path (as the process sees it:
 * what /proc/PID/exe reads), or by inode (and device, when given). Either can miss alone: overlayfs (container
 * images) shows the underlying file's inode in maps, and a file renamed after mapping keeps its old path there.
 */
export function mappingsOfFile(maps: readonly Mapping[], file: { inode: number; dev?: number; path?: string }, all = false): Mapping[] {
  const dev = file.dev === undefined ? undefined : devString(file.dev);
  return maps.filter(
    (m) => (all || isExecutable(m)) && ((file.path !== undefined && m.path === file.path) || (m.inode === file.inode && (dev === undefined || m.dev === dev))),
  );
}

/** /proc/PID/map_files/<start>-<end>: opens the mapped file itself (needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE). */
export function mapFilesPath(pid: number, m: Mapping, procRoot = '/proc'): string {
  return `${procRoot}/${pid}/map_files/${m.start.toString(16)}-${m.end.toString(16)}`;
}
