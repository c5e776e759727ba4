// Building a native binary's ELF symbol table on the reader's thread (reader-worker.ts): an unstripped binary such
// as node has ~80k symbols and takes 150–350 ms to sort out, which the agent's event loop must not wait on. The
// thread reads through the agent's own descriptors (borrowed: the agent keeps them open until the answer is back),
// so nothing is opened again by path; the table's arrays are handed back, its names stay in the files.

import type { TransferListItem } from 'node:worker_threads';
import { FileSource } from '../gosym/bytes';
import { ElfFile } from '../gosym/elf';
import { setMaxTableBytes } from '../gosym/limits';
import { NativeSymbols, type NativeSymbolsData } from './native-elf';

export interface NativeSymbolsRequest {
  /** The binary, and its separate debug file if it has one: open descriptors of the agent, with their paths. */
  files: Array<{ fd: number; path: string }>;
  /** --max-binary-table-mib, in bytes (the thread has its own copy of the cap). */
  maxTableBytes: number;
}

/** NativeSymbols.bestOf(binary, debug file) for the request's descriptors. Synchronous: for the reader's thread. */
export function readNativeSymbols(req: NativeSymbolsRequest): { data: NativeSymbolsData; transfer: TransferListItem[] } {
  setMaxTableBytes(req.maxTableBytes);
  // Only ever the agent's descriptors: a path from another container is never opened here.
  if (!req.files.every((f) => Number.isInteger(f.fd) && f.fd >= 0)) throw new Error('no open descriptor to read symbols through');
  const sources = req.files.map((f) => new FileSource(f.path, f.fd, 'borrowed'));
  const [elf, debug] = sources.map((src, i) => new ElfFile(src, req.files[i]!.path));
  if (!elf) throw new Error('no file to read symbols from');
  const data = NativeSymbols.bestOf(elf, debug).toData(sources);
  return { data, transfer: NativeSymbols.transferables(data) };
}
