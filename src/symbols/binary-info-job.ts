// Reading a new binary for the BPF side: what goBinaryInfo() makes of a process's executable, or why it is not a
// usable Go binary. Runs on the reader thread (reader-worker.ts): a 100 MB binary takes a few hundred
// milliseconds of synchronous parsing, which the agent's event loop must not wait on. The result crosses threads as
// wire data (its unwind table's arrays handed over, not copied).

import type { TransferListItem } from 'node:worker_threads';
import { GoBinary } from '../gosym/binary';
import { mayBeGo } from '../gosym/buildinfo';
import { adoptSharedReads, sharedReadsOf, type HandedRead } from '../gosym/shared-reads';
import type { ElfFile } from '../gosym/elf';
import { setMaxTableBytes } from '../gosym/limits';
import { openExecutable, type Executable } from '../proc/exe';
import { goBinaryInfo, type GoBinaryInfo } from './injector';
import { UnwindTable, type UnwindTableData } from './unwind-table';

export interface BinaryInfoRequest {
  exe: Executable;
  procRoot: string;
  /** --max-binary-table-mib, in bytes (the thread has its own copy of the cap). */
  maxTableBytes: number;
}

export type BinaryInfoResult =
  | { kind: 'go'; info: GoBinaryInfo }
  /** Not a Go binary, or one that cannot be used; `warn`: worth a log line (a Go binary that could not be read). */
  | { kind: 'other'; why: string; warn: boolean };

type InfoWire = Omit<GoBinaryInfo, 'table' | 'tableStats' | 'chunkCounts'> & { table: UnwindTableData };
/**
 * `reads`: the file's big reads (its pclntab), handed over with the answer so that the agent's symbolizer, which
 * opens the same binary right after, shares them instead of reading (and holding) a second copy.
 */
export type BinaryInfoWire = { kind: 'go'; info: InfoWire; reads: HandedRead[] } | { kind: 'other'; why: string; warn: boolean };

/** Opens the process's executable safely (proc/exe.ts) and reads it. Synchronous: for the reader's thread. */
export function readBinaryInfo(req: BinaryInfoRequest): BinaryInfoResult & { reads?: HandedRead[] } {
  setMaxTableBytes(req.maxTableBytes);
  let elf: ElfFile;
  try {
    elf = openExecutable(req.exe, req.procRoot);
  } catch (err) {
    return { kind: 'other', why: `not readable as ELF: ${(err as Error).message}`, warn: false };
  }
  try {
    if (!mayBeGo(elf)) return { kind: 'other', why: 'not a Go binary', warn: false };
    const info = goBinaryInfo(new GoBinary(elf), req.exe.key);
    return { kind: 'go', info, reads: sharedReadsOf(elf.source) };
  } catch (err) {
    return { kind: 'other', why: `not a usable Go binary: ${(err as Error).message}`, warn: true };
  } finally {
    elf.close();
  }
}

export function toWire(r: ReturnType<typeof readBinaryInfo>): { wire: BinaryInfoWire; transfer: TransferListItem[] } {
  if (r.kind === 'other') return { wire: r, transfer: [] };
  const { table, tableStats: _stats, chunkCounts: _counts, ...rest } = r.info;
  if (table === undefined) throw new Error('goBinaryInfo returned no unwind table');
  const data = table.toData();
  const reads = r.reads ?? [];
  return { wire: { kind: 'go', info: { ...rest, table: data }, reads }, transfer: [...UnwindTable.transferables(data), ...reads.map((h) => h.bytes.buffer as ArrayBuffer)] };
}

/** The answer on the agent's side (the file's reads shared here from now on). */
export function fromWire(w: BinaryInfoWire): BinaryInfoResult {
  if (w.kind === 'other') return w;
  adoptSharedReads(w.reads);
  const table = UnwindTable.fromData(w.info.table);
  return { kind: 'go', info: { ...w.info, table, tableStats: table.stats, chunkCounts: table.chunkCounts } };
}
