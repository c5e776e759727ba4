// quietflame's generic BPF loader: no Go, no pprof — objects, programs, maps, links, ring buffers.
export * from './codec';
export { isBpfError, usageError, type BpfError } from './errors';
export { ensureBpffs, ensureTracefs, isMounted, mounts, BPFFS, TRACEFS } from './mount';
export {
  bpfObjectPath,
  native,
  packageRoot,
  type MapInfo,
  type NativeGlobal,
  type NativeMap,
  type NativeProgram,
  type ProgramInfo,
} from './native';
export {
  BpfLink,
  BpfMap,
  BpfObject,
  BpfProgram,
  PerfSoftware,
  PerfType,
  UpdateFlags,
  type GlobalValue,
  type OpenOptions,
  type PerfEventAttachOptions,
} from './object';
export { RingBufferReader, type RingBufferOptions, type RingBufferStats } from './ringbuf';

import { closeSync } from 'node:fs';

import { native as loadNative } from './native';

/**
 * Counts run_time_ns/run_cnt of every BPF program (ProgramInfo, `bpftool prog show`) until close():
 * BPF_ENABLE_STATS, which is kernel.bpf_stats_enabled=1 scoped to this handle.
 */
export function enableRunTimeStats(): { close(): void } {
  let fd: number | undefined = loadNative().enableRunTimeStats();
  return {
    close(): void {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

/** CPUs the kernel could ever bring up (the per-CPU map value count). */
export function possibleCpus(): number {
  return loadNative().possibleCpus();
}

export function onlineCpus(): number[] {
  return loadNative().onlineCpus();
}
