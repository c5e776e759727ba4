// A small /proc/PID/maps reader for the symbolizer: the executable mappings of a process and where their bytes
// come from. (src/proc/ will own process discovery; this file only parses what symbolization needs.)

import * as fs from 'node:fs';

export interface ProcMapping {
  /** Runtime address range [start, end). */
  start: number;
  end: number;
  /** 'r-xp' etc. */
  perms: string;
  /** File offset of `start`. */
  offset: number;
  /** Device as printed ('fe:00'); '00:00' for anonymous memory. */
  dev: string;
  inode: number;
  /** The path column, without a trailing ' (deleted)'; '' for anonymous mappings; '[vdso]' etc. for specials. */
  path: string;
  /** The kernel marked the file as deleted (replaced or removed since it was mapped). */
  deleted: boolean;
}

/** Parses the text of /proc/PID/maps. Lines it cannot read are skipped. */
export function parseProcMaps(text: string): ProcMapping[] {
  const out: ProcMapping[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    // start-end perms offset dev inode [path] — the path may contain spaces; it starts after the inode's padding.
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)\s*(.*)$/.exec(line);
    if (!m) continue;
    let path = m[7]!;
    let deleted = false;
    if (path.endsWith(' (deleted)')) {
      deleted = true;
      path = path.slice(0, -' (deleted)'.length);
    }
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

/** The process's mappings, or undefined when it is gone (or not readable). Never throws. */
export function readProcMaps(pid: number, procRoot = '/proc'): ProcMapping[] | undefined {
  try {
    return parseProcMaps(fs.readFileSync(`${procRoot}/${pid}/maps`, 'latin1'));
  } catch {
    return undefined;
  }
}

/**
 * The process's start time (field 22 of /proc/PID/stat, clock ticks since boot): with the PID it identifies one
 * process across PID reuse. undefined when the process is gone.
 */
export function readProcStartTime(pid: number, procRoot = '/proc'): string | undefined {
  try {
    const stat = fs.readFileSync(`${procRoot}/${pid}/stat`, 'latin1');
    // comm (field 2) is in parentheses and may hold spaces or ')': the fields after it start at the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19]; // field 22 = index 19 after pid, comm
  } catch {
    return undefined;
  }
}

/** Executable, file-backed mappings (what a user PC can land in), plus the [vdso]. */
export function isExecutable(m: ProcMapping): boolean {
  return m.perms[2] === 'x';
}

export function isFileBacked(m: ProcMapping): boolean {
  return m.inode !== 0 && m.path.startsWith('/');
}
