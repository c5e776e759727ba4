// Recent captures started from the page, kept so a reload or a second person sees them: their pprof bytes and
// what was found in them. Bounded by count and by bytes (the agent's memory target is small); the oldest finished
// captures go first. Running captures are listed with their progress and never evicted (the capture manager
// already bounds how many run at once).

import { randomBytes } from 'node:crypto';
import type { CaptureInfo } from './api-types';

export type { CaptureInfo };

interface Entry {
  info: CaptureInfo;
  pprof?: Buffer;
  /** The flame model the page draws, as gzipped JSON (made once, served as it is). */
  flame?: Buffer;
}

export const CAPTURE_ID = /^[0-9a-f]{12}$/;

export class CaptureStore {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  constructor(
    readonly maxCount: number,
    readonly maxBytes: number,
  ) {}

  /** A new running capture; its id is random, so ids say nothing about others' captures. */
  start(info: Omit<CaptureInfo, 'id' | 'state' | 'samples' | 'bytes' | 'startedAtMs'>): CaptureInfo {
    let id: string;
    do id = randomBytes(6).toString('hex');
    while (this.entries.has(id));
    const entry: Entry = { info: { ...info, id, state: 'running', samples: 0, bytes: 0, startedAtMs: Date.now() } };
    this.entries.set(id, entry);
    return entry.info;
  }

  progress(id: string, samples: number): void {
    const e = this.entries.get(id);
    if (e && e.info.state === 'running') e.info.samples = samples;
  }

  finish(id: string, pprof: Buffer, flame: Buffer, extra: Pick<CaptureInfo, 'samples' | 'ended' | 'findings' | 'notes'>): void {
    const e = this.entries.get(id);
    if (!e) return;
    Object.assign(e.info, extra, { state: 'done', bytes: pprof.length });
    e.pprof = pprof;
    e.flame = flame;
    this.bytes += pprof.length + flame.length;
    this.evict();
  }

  fail(id: string, error: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    e.info.state = 'failed';
    e.info.error = error;
    this.evict();
  }

  get(id: string): { info: CaptureInfo; pprof?: Buffer; flame?: Buffer } | undefined {
    return this.entries.get(id);
  }

  /** Newest first. */
  list(): CaptureInfo[] {
    return [...this.entries.values()].map((e) => e.info).reverse();
  }

  get totalBytes(): number {
    return this.bytes;
  }

  /** Drops the oldest finished captures until both bounds hold (pprof and flame model bytes; a capture larger than maxBytes is not kept). */
  private evict(): void {
    const done = [...this.entries.values()].filter((e) => e.info.state !== 'running');
    while (done.length > 0 && (done.length > this.maxCount || this.bytes > this.maxBytes)) {
      const oldest = done.shift()!;
      this.entries.delete(oldest.info.id);
      this.bytes -= (oldest.pprof?.length ?? 0) + (oldest.flame?.length ?? 0);
    }
  }
}
