// One thread that reads binaries for the agent, off its event loop, one job at a time: new executables for the
// sampler (what the BPF side needs of a Go binary) and big native symbol tables for the symbolizer. A job that
// takes too long or too much heap fails alone (its binary goes without that table); the agent goes on. The thread
// starts on the first job and is kept; a second after its last job it hands back what the job left (reader-worker.ts).
//
//   const reader = new ReaderThread();
//   const r = await reader.binaryInfo(exe, '/proc');          // { kind: 'go', info } | { kind: 'other', why, warn }
//   const t = await reader.nativeSymbols(elf, debugElf);      // NativeSymbols (the files stay open meanwhile)

import * as path from 'node:path';
import { native } from '../bpf/native';
import { FileSource } from '../gosym/bytes';
import type { ElfFile } from '../gosym/elf';
import { maxTableSize } from '../gosym/limits';
import type { Executable } from '../proc/exe';
import { JobThread, JobThreadError } from '../worker/job-thread';
import { fromWire, type BinaryInfoRequest, type BinaryInfoResult, type BinaryInfoWire } from './binary-info-job';
import { NativeSymbols, type NativeSymbolsData } from './native-elf';
import type { NativeSymbolsRequest } from './native-symbols-job';

export type ReaderRequest = { kind: 'binary-info'; request: BinaryInfoRequest } | { kind: 'native-symbols'; request: NativeSymbolsRequest };
export type ReaderReply = BinaryInfoWire | NativeSymbolsData;

export interface ReaderThreadOptions {
  /** Heap of the thread. Default 128 MiB (tables are capped by --max-binary-table-mib besides). */
  maxHeapMiB?: number;
  /** One job that takes longer is given up. Default 60 s. */
  timeoutMs?: number;
  /**
   * The thread is ended after this long without work. Default: kept for the agent's life, compacted a second after
   * each burst of jobs (reader-worker.ts). A thread started per burst (3 s idle, as before 2026-12-07) cost the
   * first profile ~0.2 s of CPU and the agent a higher peak; kept, it holds ~8 MiB.
   */
  idleMs?: number;
  /** Called once each job has settled (its answer taken in), e.g. to compact the caller's heap when work is over. */
  afterJob?: () => void;
}

export class ReaderThread {
  private readonly jobs: JobThread<ReaderRequest, ReaderReply>;
  private readonly afterJob: () => void;

  constructor(opts: ReaderThreadOptions = {}) {
    this.afterJob = opts.afterJob ?? (() => {});
    this.jobs = new JobThread({
      script: path.join(__dirname, 'reader-worker.js'),
      name: 'the binary reader',
      maxHeapMiB: opts.maxHeapMiB ?? 128,
      timeoutMs: opts.timeoutMs ?? 60_000,
      ...(opts.idleMs === undefined ? {} : { idleMs: opts.idleMs }),
      // A thread that ended (timed out, over its heap) left its tables in the heaps glibc keeps: handed back.
      onThreadEnd: () => native().releaseFreeMemory(),
    });
  }

  /** What the sampler needs from exe's file; never rejects. */
  async binaryInfo(exe: Executable, procRoot: string): Promise<BinaryInfoResult> {
    try {
      // Ahead of symbol tables: processes wait for this one (to be sampled with Go unwinding), a table only names.
      const wire = await this.jobs.run({ kind: 'binary-info', request: { exe, procRoot, maxTableBytes: maxTableSize() } }, { first: true });
      return fromWire(wire as BinaryInfoWire);
    } catch (e) {
      return { kind: 'other', why: `not read: ${failure(e as Error)}`, warn: true };
    } finally {
      this.afterJob();
    }
  }

  /** Whether nativeSymbols can read these files (open descriptors, not bytes in memory such as the vDSO's). */
  static canRead(files: ReadonlyArray<ElfFile | undefined>): boolean {
    return files.every((f) => f === undefined || (f.source instanceof FileSource && f.source.descriptor !== undefined));
  }

  /**
   * NativeSymbols.bestOf(elf, debug), built on the thread. The caller keeps both files open until this settles
   * (the thread reads through their descriptors). Rejects with the reason when the thread could not build it.
   */
  async nativeSymbols(elf: ElfFile, debug?: ElfFile): Promise<NativeSymbols> {
    const files = debug ? [elf, debug] : [elf];
    if (!ReaderThread.canRead(files)) throw new Error(`${elf.path}: its symbol table was not read: the file is not open`);
    const request: NativeSymbolsRequest = {
      files: files.map((f) => ({ fd: (f.source as FileSource).descriptor!, path: f.path })),
      maxTableBytes: maxTableSize(),
    };
    let data: NativeSymbolsData;
    try {
      data = (await this.jobs.run({ kind: 'native-symbols', request })) as NativeSymbolsData;
    } catch (e) {
      throw new Error(`${elf.path}: its symbol table was not read: ${failure(e as Error)}`);
    } finally {
      this.afterJob();
    }
    return NativeSymbols.fromData(data, files.map((f) => f.source));
  }

  async close(): Promise<void> {
    await this.jobs.close();
  }
}

function failure(e: Error): string {
  if (!(e instanceof JobThreadError)) return e.message;
  return e.kind === 'timeout' || e.kind === 'memory' ? `reading it ${e.message}` : e.message;
}
