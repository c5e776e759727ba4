// The kernel's own account of BPF objects, for tests that check what an agent process holds and leaves behind:
// the ids a process holds open (/proc/PID/fdinfo: map_id, prog_id, link_id), which ids exist (bpftool), and a
// map's entries (bpftool map dump). bpftool here has no pid column, so ownership comes from fdinfo.
//
//   const held = heldBpfIds(agent.proc.pid!);          // { maps, progs, links } of that process
//   const id = mapOfProcess(agent.proc.pid!, 'proc_configs');
//   const entries = mapEntries(id);                     // [{ key: Buffer, value: Buffer }]
//   mapHasKey(id, key)                                  // one lookup, for big maps

import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

export type BpfKind = 'map' | 'prog' | 'link';

export interface HeldIds {
  map: Set<number>;
  prog: Set<number>;
  link: Set<number>;
}

/** BPF maps, programs and links a process holds open, by id (from each fd's fdinfo). */
export function heldBpfIds(pid: number): HeldIds {
  const out: HeldIds = { map: new Set(), prog: new Set(), link: new Set() };
  for (const fd of fs.readdirSync(`/proc/${pid}/fdinfo`)) {
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile
    }
    for (const kind of ['map', 'prog', 'link'] as const) {
      const m = new RegExp(`^${kind}_id:\\s*(\\d+)$`, 'm').exec(text);
      if (m) out[kind].add(Number(m[1]));
    }
  }
  return out;
}

function bpftool<T>(args: string[]): T {
  return JSON.parse(execFileSync('bpftool', ['-j', ...args], { encoding: 'utf8', maxBuffer: 256 << 20 })) as T;
}

/** Every id of that kind that exists on the machine now, with its name. */
export function existingIds(kind: BpfKind): Map<number, string> {
  const list = bpftool<Array<{ id: number; name?: string }>>([kind, 'show']);
  return new Map(list.map((o) => [o.id, o.name ?? '']));
}

/** The id of the map named `name` that process pid holds (exactly one). */
export function mapOfProcess(pid: number, name: string): number {
  const names = existingIds('map');
  const ids = [...heldBpfIds(pid).map].filter((id) => names.get(id) === name);
  if (ids.length !== 1) throw new Error(`process ${pid} holds ${ids.length} maps named ${name}`);
  return ids[0]!;
}

/** A map's entries as the kernel has them now. */
export function mapEntries(id: number): Array<{ key: Buffer; value: Buffer }> {
  const bytes = (hex: string[]): Buffer => Buffer.from(hex.map((h) => parseInt(h, 16)));
  return bpftool<Array<{ key: string[]; value: string[] }>>(['map', 'dump', 'id', String(id)]).map((e) => ({ key: bytes(e.key), value: bytes(e.value) }));
}

/** Is there an entry under this key (bpftool map lookup: one entry, however big the map)? */
export function mapHasKey(id: number, key: Buffer): boolean {
  const hex = [...key].map((b) => `0x${b.toString(16).padStart(2, '0')}`);
  return spawnSync('bpftool', ['map', 'lookup', 'id', String(id), 'key', ...hex], { stdio: 'ignore' }).status === 0;
}
