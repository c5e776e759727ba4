// Loads the N-API addon (native/, built by node-gyp into build/Release/) and types its surface.
// Everything here is raw: indexes, ids and Buffers. The typed face is object.ts.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface NativeProgram {
  name: string;
  section: string;
  type: string;
  autoload: boolean;
  fd: number;
}

export interface NativeMap {
  name: string;
  type: string;
  keySize: number;
  valueSize: number;
  /** Bytes a lookup returns: valueSize, or round_up(valueSize, 8) × possible CPUs for per-CPU maps. */
  valueBufferSize: number;
  maxEntries: number;
  flags: number;
  perCpu: boolean;
  internal: boolean;
  fd: number;
}

export interface NativeGlobal {
  name: string;
  section: string;
  map: string;
  offset: number;
  size: number;
  readOnly: boolean;
}

export interface ProgramInfo {
  id: number;
  name: string;
  type: string;
  tag: string;
  /** Only counted while kernel.bpf_stats_enabled=1. */
  runTimeNs: bigint;
  runCount: bigint;
  recursionMisses: bigint;
  verifiedInsns: number;
}

export interface MapInfo {
  id: number;
  name: string;
  type: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

export interface PerfEventOptions {
  type?: number;
  config?: number;
  frequency?: number;
  period?: number;
  cpus?: number[];
  pid?: number;
}

export interface NativeRingStats {
  records: number;
  delivered: number;
  batches: number;
  bytes: number;
  dropped: number;
  /** Records folded into an earlier one of their batch (coalesceSamples). */
  coalesced: number;
  queuedBytes: number;
  running: boolean;
  error?: string;
}

export interface NativeDump {
  keys: Buffer;
  values: Buffer;
  count: number;
  batched: boolean;
}

export interface NativeBpfObject {
  load(): void;
  close(): void;
  state(): { path: string; loaded: boolean; closed: boolean; links: number; ringBuffers: number };
  programs(): NativeProgram[];
  maps(): NativeMap[];
  globals(): NativeGlobal[];
  programInfo(prog: number): ProgramInfo;
  mapInfo(map: number): MapInfo;
  setGlobal(name: string, value: Buffer): void;
  getGlobal(name: string): Buffer;
  setAutoload(prog: number, autoload: boolean): void;
  setAttachTarget(prog: number, target: string): void;
  setMaxEntries(map: number, maxEntries: number): void;
  attach(prog: number): number;
  attachTracepoint(prog: number, category: string, name: string): number;
  attachRawTracepoint(prog: number, name: string): number;
  attachPerfEvent(prog: number, options: PerfEventOptions): number[];
  detach(link: number): boolean;
  linkCount(): number;
  lookup(map: number, key: Buffer, flags?: number | bigint): Buffer | undefined;
  lookupAndDelete(map: number, key: Buffer): Buffer | undefined;
  update(map: number, key: Buffer, value: Buffer, flags?: number | bigint): void;
  delete(map: number, key: Buffer): boolean;
  nextKey(map: number, key: Buffer | null): Buffer | undefined;
  dump(map: number, deleteEntries: boolean): NativeDump;
  ringBufferStart(
    map: number,
    onBatch: (data: Buffer | null, offsets: Uint32Array | null, counts?: Uint32Array) => void,
    options?: { maxBatchRecords?: number; maxQueuedBytes?: number; minIntervalMs?: number; followUpMs?: number; coalesceSamples?: boolean },
  ): number;
  ringBufferStop(id: number): NativeRingStats | undefined;
  ringBufferStats(id: number): NativeRingStats | undefined;
  ringBufferRef(id: number, ref: boolean): void;
  ringBufferReadNow(id: number): void;
}

/** zlib decompression a piece at a time (native/inflater.h). */
export interface NativeInflater {
  /** Decompresses from input's start into output's start, as far as both allow: [consumed, produced, ended]. */
  inflate(input: Buffer, output: Buffer): [number, number, boolean];
  close(): void;
}

export interface NativeAddon {
  BpfObject: new (path: string) => NativeBpfObject;
  Inflater: new () => NativeInflater;
  mount(source: string, target: string, fstype: string): void;
  /** An fd; BPF run-time statistics are collected while it is open. */
  enableRunTimeStats(): number;
  possibleCpus(): number;
  onlineCpus(): number[];
  /** malloc_trim(0): glibc's free heap pages back to the kernel; true when some were released. */
  releaseFreeMemory(): boolean;
  /** `bytes` zero-filled bytes in 2 MiB-aligned memory marked MADV_HUGEPAGE (native/huge_pages.h): for big buffers filled once. */
  hugePageBuffer(bytes: number): Buffer;
  /** The calling thread's name (first 15 bytes), as /proc/PID/task/TID/comm and `top -H` show it. */
  setThreadName(name: string): void;
  /**
   * process_vm_readv in batches: requests are [addr, len] pairs, their bytes laid end to end in `out`; the result
   * holds the bytes read per request (less than asked where the remote range runs into unmapped memory).
   */
  readProcessMemory(pid: number, requests: Float64Array, out: Buffer): Int32Array;
  /** openat2(open(root), path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), O_RDONLY | O_NONBLOCK | O_CLOEXEC: a raw fd. */
  openInRoot(root: string, path: string): number;
  /** close(2) of a descriptor openInRoot gave (fs.closeSync would make a worker thread warn: it did not open it). */
  closeDescriptor(fd: number): void;
  libbpfVersion: string;
}

export const ADDON_PATH = 'build/Release/quietflame_bpf.node';

/** The directory holding binding.gyp (the repo, or the installed package), searched upward. */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(join(dir, 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find binding.gyp above ${__dirname}: is quietflame installed whole?`);
    dir = up;
  }
}

/** build/bpf/NAME.bpf.o of this package (built by scripts/build-bpf.sh). */
export function bpfObjectPath(name: string): string {
  return join(packageRoot(), 'build', 'bpf', `${name}.bpf.o`);
}

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (addon === undefined) {
    const path = join(packageRoot(), ADDON_PATH);
    try {
      addon = require(path) as NativeAddon;
    } catch (err) {
      const e = new Error(
        `cannot load the native addon ${path}: ${(err as Error).message} — build it with \`npm ci\` ` +
          '(or `npx node-gyp rebuild`); it needs libbpf-dev, libelf-dev, zlib1g-dev (scripts/install-system-deps.sh)',
      ) as Error & { code: string };
      e.code = 'ERR_QF_NATIVE_ADDON';
      throw e;
    }
  }
  return addon;
}
