// The sampler: loads profile.bpf.o, samples every CPU at `hz` (software cpu-clock, frequency mode), times the
// off-CPU intervals of the threads an off-CPU profile asks for (a sched_switch program attached only while one
// runs), reads the ring buffer and hands RawSamples to subscribers. It also finds the Go processes on the node (a /proc scan at
// start and every second, and at once on exec through a sched_process_exec tracepoint) and writes their unwind
// tables and configs into the BPF maps (symbols/injector.ts), so the BPF side unwinds Go stacks right and reads
// goroutine IDs; a process's entries go when it exits (or execs), a binary's table with its last process.
//
//   const sampler = Sampler.start({ hz: 99 });
//   const stop = sampler.subscribe({ pid, kind: 'cpu' }, (batch) => …);
//   …; stop(); await sampler.close();
//
// The records it reads and the constants it shares with bpf/profile.h: ./records.ts.

import * as fs from 'node:fs';

import { u32, u64, u8 } from '../bpf/codec';
import { onlineCpus } from '../bpf/index';
import { bpfObjectPath } from '../bpf/native';
import { BpfObject, type BpfLink, type BpfMap, type BpfProgram } from '../bpf/object';
import { FeatureUnavailable, Features, loadWithOptional, testAttachTargets } from '../bpf/features';
import type { RingBufferReader } from '../bpf/ringbuf';
import { resolveExecutable, type Executable } from '../proc/exe';
import { mappingsOfFile, readMaps } from '../proc/maps';
import { isAlive, listPids, PF_KTHREAD, readStat } from '../proc/process';
import { ReaderThread } from '../symbols/reader-thread';
import { loadBias, ProcConfig, UnwindInjector, type GoBinaryInfo } from '../symbols/injector';
import { UnwindChunk, UnwindKey } from '../symbols/unwind-table';
import {
  Counter,
  type CounterName,
  decodeOffCpu,
  decodeSample,
  ExecRecord,
  ExitRecord,
  FilterMode,
  DEFAULT_LABEL_LIMITS,
  LabelCaps,
  type LabelLimits,
  RecordKind,
  recordSize,
  TargetBit,
} from './records';
import { sampleCount, type RawSample, type SampleFilter, type SampleKind, type SampleSource } from './types';

export { DEFAULT_LABEL_LIMITS, type LabelLimits } from './records';


export interface SamplerOptions {
  /** Samples per second per CPU (default 99). */
  hz?: number;
  /** Off-CPU sampling period in ms (default 10): longer intervals are all sent, shorter ones sampled. */
  offCpuPeriodMs?: number;
  /** Sample only this process, fixed at load time (default: as subscribers ask). */
  targetPid?: number;
  /** Write unwind tables (default true). false: frame pointers only (for comparisons and diagnosis). */
  unwindTables?: boolean;
  /**
   * For how long after its start a process the sampler has not configured (a new Go process while its binary is
   * read) sends the word at its SP with its stacks (RawSample.spCaller; default 30000 ms). Older ones never will be.
   */
  spCallerAgeMs?: number;
  /** Go binaries kept ready (unwind table in the map) after their last process exits (default 8). */
  idleBinaries?: number;
  /** Interval of the /proc scan for new and exited processes (default 1000 ms). */
  scanIntervalMs?: number;
  /** While exec and exit records are complete, /proc is listed every this many scan intervals (default 10). */
  fullScanEvery?: number;
  /** Watch exec() with a sched_process_exec tracepoint to configure new processes at once (default true). */
  execEvents?: boolean;
  /**
   * Watch process exits (sched_process_exit): a process's config leaves the BPF maps at once and onExit is told,
   * in stream order, after the process's last sample (default true).
   */
  exitEvents?: boolean;
  /**
   * The goroutines' pprof labels sent with each sample: at most this many labels (default 16; 0 = none), keys and
   * values cut to these many bytes (default 64 and 128). At most LabelCaps.
   */
  labels?: LabelLimits;
  /** Capacity of unwind_pages (default 65536 entries of 508 bytes, allocated as used). */
  maxUnwindEntries?: number;
  /** Capacity of proc_configs (default 8192 processes). */
  maxProcesses?: number;
  /** Capacity of target_pids, the pid filter (default 1024). */
  maxTargetPids?: number;
  /** Ring buffer size in bytes, a power of two (default 256 KiB per CPU, at least 1 MiB, at most 64 MiB). */
  ringBufferBytes?: number;
  /** CPUs to sample (default every online CPU). */
  cpus?: number[];
  /** Where new binaries are read (shared with the symbolizer); default a thread of the sampler's own. */
  reader?: ReaderThread;
  procRoot?: string;
  /** Path of profile.bpf.o (default build/bpf/profile.bpf.o of this package). */
  objectPath?: string;
  /** Called with things worth a log line (a binary that could not be read, a full map). */
  onWarning?: (message: string) => void;
  /** Called after a Go process was configured or forgotten (for tests and logs). */
  onProcess?: (event: ProcessEvent) => void;
  /**
   * A process (a Go one the agent configured, or one a profile wants) exited; every sample of it came before.
   * startTime: /proc/PID/stat's.
   */
  onExit?: (pid: number, startTime: bigint) => void;
  /** A process exec'd a new image (with exec events): every sample of its old image came before. */
  onExecImage?: (pid: number) => void;
  /** Where the features the kernel refused are noted (default: a fresh list, see features). */
  features?: Features;
}

/** A sched_switch program that can run ours after its own (RunqueueLatency): see Sampler.shareSwitch. */
export interface SwitchHost {
  readonly attached: boolean;
  /** Tail-calls this program after the host's own (undefined: none); throws when the kernel refuses it. */
  runAfter(program: BpfProgram | undefined): void;
}

/** Optional programs of profile.bpf.o and the feature each one gives. */
const OPTIONAL_PROGRAMS = { on_exec: 'exec_events', on_exit: 'exit_events', offcpu_switch: 'offcpu' } as const;
type OptionalProgram = keyof typeof OPTIONAL_PROGRAMS;

function checkLabelLimits(l: LabelLimits): void {
  const within = (v: number, hi: number): boolean => Number.isInteger(v) && v >= 0 && v <= hi;
  if (!within(l.maxLabels, LabelCaps.labels) || !within(l.keyBytes, LabelCaps.keyBytes) || !within(l.valueBytes, LabelCaps.valueBytes)) {
    throw new RangeError(`label limits must be integers up to ${LabelCaps.labels} labels, ${LabelCaps.keyBytes}-byte keys and ${LabelCaps.valueBytes}-byte values, not ${JSON.stringify(l)}`);
  }
}

export type ProcessEvent =
  | { type: 'added'; process: GoProcessInfo }
  | { type: 'removed'; pid: number; reason: 'exited' | 'exec' | 'pid-reused' | 'closed' };

export interface GoProcessInfo {
  pid: number;
  startTime: bigint;
  /** The executable as the process sees it. */
  exe: string;
  deleted: boolean;
  otherMountNamespace: boolean;
  goVersion: string;
  buildId: string | undefined;
  /** runtime − link-time address of the Go text. */
  bias: number;
  /** binary_id of its unwind table in unwind_pages; 0 = none (see noTable). */
  binaryId: number;
  noTable?: string;
  /** Where the runtime.g offsets came from ('dwarf', 'table', …). */
  offsetsSource: string;
}

export interface SamplerStats {
  hz: number;
  attached: boolean;
  /** Fill of each bounded map: entries in use and max_entries. */
  maps: Record<'unwind_pages' | 'proc_configs' | 'target_pids', { entries: number; capacity: number }>;
  samples: {
    /** Sample records decoded by the agent (CPU samples and off-CPU records). */
    received: number;
    /** The same by kind. */
    receivedByKind: Record<SampleKind, number>;
    /** Records of an unknown kind or size (a profile.bpf.o that does not match the agent). */
    malformed: number;
    /** Lost in the kernel (ring buffer full) plus lost in the agent (reader queue full). */
    lost: number;
    lostInKernel: number;
    lostInAgent: number;
    /** Lost in the kernel by kind: ring buffer full; for off-CPU also switches not timed (no task storage). */
    lostInKernelByKind: Record<SampleKind, number>;
  };
  /** The BPF program's counters, summed over CPUs. */
  counters: Record<CounterName, number>;
  goProcesses: number;
  goBinaries: number;
  tablesRefused: number;
  processesRefused: number;
  /** Executables looked at and found not to be (usable) Go binaries, cached by file identity. */
  otherBinaries: number;
  /** Executables being read for the first time (on the binary reader's thread). */
  readingBinaries: string[];
  /**
   * How the off-CPU program runs while off-CPU profiles are in flight: tail-called by the run-queue metrics'
   * sched_switch program ('run-queue program'), or attached on its own; undefined when none is in flight.
   */
  offCpuVia: 'run-queue program' | 'own program' | undefined;
  /** The scan timer's ticks so far, and the whole /proc listings (scan()) among them and outside them. */
  scans: { ticks: number; listings: number };
}

interface Subscriber {
  pid: number | undefined;
  kind: SampleKind;
  /** CLOCK_MONOTONIC ns of the subscription: off-CPU time before it is not the subscriber's. */
  sinceNs: bigint;
  onBatch: (batch: RawSample[]) => void;
}

interface Tracked {
  startTime: bigint;
  /** dev:inode of /proc/PID/exe when last looked at ('' for kernel threads). */
  exeId: string;
  go: GoProcessInfo | undefined;
}

const MAX_OTHER_CACHE = 4096;
/** task_struct.flags: the thread is in do_exit (include/linux/sched.h). */
const PF_EXITING = 0x4;
/** Binaries read that no process has taken yet, kept for the next process (each holds its unwind table). */
const KEEP_UNTAKEN = 4;
/** Looks at a Go process whose text is not mapped yet before giving up on unwinding it. */
const MAX_ATTEMPTS = 5;
/**
 * While every exec and exit is reported and none was lost, the timer lists /proc only every this many ticks (a
 * safety net): new processes come with their exec record. The other ticks look only at the processes to be
 * looked at again. Listing /proc was most of an idle agent's timer work (and grows with the node's processes).
 */
const FULL_SCAN_EVERY = 10;
/**
 * The ring buffer of samples is read this often (sooner when it would fill: it holds about 1.25 s of samples at
 * 99 Hz on every CPU): each read is a batch the event loop handles, whose fixed cost was a fifth of the agent's CPU
 * while profiling at 100 ms, and the longer a batch, the more repeats of a sample it merges (coalesceSamples). A
 * capture asks for a read when its window starts and ends (readNow), so no profile waits for it. An exec wakes the
 * reader (at most every 50 ms, profile.bpf.c), and the read after such a wakeup is followed by one
 * EXEC_FOLLOW_UP_MS later: a new program is looked at within about that long, while it still runs, even when it
 * lives a few hundred milliseconds.
 */
const SAMPLE_READ_MS = 1000;
const EXEC_FOLLOW_UP_MS = 50;

function defaultRingBytes(cpus: number): number {
  const want = Math.min(64 << 20, Math.max(1 << 20, cpus * (256 << 10)));
  return 2 ** Math.ceil(Math.log2(want));
}

function exeIdOf(pid: number, procRoot: string): string | undefined {
  try {
    const st = fs.statSync(`${procRoot}/${pid}/exe`);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

export class Sampler implements SampleSource {
  readonly hz: number;
  readonly offCpuPeriodNs: number;
  private readonly obj: BpfObject;
  private readonly injector: UnwindInjector;
  private readonly targetPids: BpfMap<number, number>;
  private readonly counters: BpfMap<number, bigint[]>;
  private readonly procRoot: string;
  private readonly opts: SamplerOptions;
  private readonly subscribers = new Map<number, Subscriber>();
  private nextSubscriber = 1;
  private readonly tracked = new Map<number, Tracked>();
  /** File identity → why it is not a usable Go binary. */
  private readonly otherBinaries = new Map<string, string>();
  /** The pid filter as written to target_pids: pid → TargetBit bits. */
  private readonly filterPids = new Map<number, number>();
  private links: BpfLink[] = [];
  /** The off-CPU programs' links while an off-CPU profile runs. */
  private offCpuLinks: BpfLink[] = [];
  /** The sched_switch program that runs ours after its own while off-CPU profiles are in flight (shareSwitch). */
  private switchHost: SwitchHost | undefined;
  private chainedOffCpu = false;
  /** Times the off-CPU program was attached (bpf's offcpu_attachment): intervals from an earlier one are not sent. */
  private offCpuAttachments = 0;
  private reader: RingBufferReader | undefined;
  private timer: NodeJS.Timeout | undefined;
  private execQueue = new Set<number>();
  private execTimer: NodeJS.Immediate | undefined;
  private readonly received: Record<SampleKind, number> = { cpu: 0, offcpu: 0 };
  private malformed = 0;
  private closed = false;
  private execLink: BpfLink | undefined;
  private exitLink: BpfLink | undefined;
  /** Exec and exit records lost (in the kernel or the agent) as of the last scan. */
  private lastLost: number | undefined;
  /** PIDs of Go programs whose text was not mapped yet when looked at, and how often that happened. */
  private readonly pending = new Map<number, { startTime: bigint; attempts: number }>();
  /** PIDs whose executable could not be resolved when looked at (gone, or not yet readable): looked at next tick. */
  private readonly unresolved = new Set<number>();
  private ticks = 0;
  private listings = 0;
  /** New binaries are read on the reader thread; the reads in flight by file key, and the processes that wait. */
  private readonly binaries: ReaderThread;
  private readonly ownsBinaries: boolean;
  private readonly reads = new Map<string, { path: string; waiting: Set<number>; done: Promise<void> }>();
  /**
   * Reads no process has taken yet, oldest first (at most KEEP_UNTAKEN): the processes that waited may all have
   * exited by the time their binary was read (150 ms ones under churn), and the next one must not wait again.
   */
  private readonly justRead = new Map<string, GoBinaryInfo>();
  private firstScan: Promise<void> = Promise.resolve();
  /** What the kernel gave: cpu_profile and the optional programs' features. */
  readonly features: Features;
  /** Optional programs the kernel refused (at load or attach), with the reason. */
  private readonly disabled: Map<string, string>;

  private constructor(obj: BpfObject, opts: SamplerOptions, disabled: Map<string, string>) {
    this.obj = obj;
    this.opts = opts;
    this.disabled = disabled;
    this.features = opts.features ?? new Features();
    this.hz = opts.hz ?? 99;
    this.offCpuPeriodNs = Math.round((opts.offCpuPeriodMs ?? 10) * 1e6);
    this.procRoot = opts.procRoot ?? '/proc';
    this.injector = new UnwindInjector(obj.map('unwind_pages'), obj.map('proc_configs', u32), {
      tables: opts.unwindTables ?? true,
      ...(opts.idleBinaries !== undefined ? { idleBinaries: opts.idleBinaries } : {}),
    });
    this.targetPids = obj.map('target_pids', u32, u8);
    this.ownsBinaries = opts.reader === undefined;
    this.binaries = opts.reader ?? new ReaderThread();
    this.counters = obj.perCpuMap('counters', u32, u64);
  }

  /** Loads and attaches the BPF programs, scans /proc once, and starts sampling. Throws when BPF is unusable. */
  static start(options: SamplerOptions = {}): Sampler {
    const hz = options.hz ?? 99;
    if (!Number.isInteger(hz) || hz < 1 || hz > 10_000) throw new RangeError(`hz must be an integer in 1..10000, not ${hz}`);
    const periodMs = options.offCpuPeriodMs ?? 10;
    if (!(periodMs >= 0.001 && periodMs <= 10_000)) throw new RangeError(`offCpuPeriodMs must be in 0.001..10000, not ${periodMs}`);
    const spCallerAgeMs = options.spCallerAgeMs ?? 30_000;
    if (!(spCallerAgeMs >= 0 && spCallerAgeMs <= 3_600_000)) throw new RangeError(`spCallerAgeMs must be in 0..3600000, not ${spCallerAgeMs}`);
    const cpus = options.cpus ?? onlineCpus();
    const labels = options.labels ?? DEFAULT_LABEL_LIMITS;
    checkLabelLimits(labels);
    const wantOptional: Record<OptionalProgram, boolean> = {
      on_exec: options.execEvents ?? true,
      on_exit: options.exitEvents ?? true,
      offcpu_switch: true,
    };
    const optional = (Object.keys(wantOptional) as OptionalProgram[]).filter((p) => wantOptional[p]);
    const open = (autoload: Record<string, boolean>): BpfObject => BpfObject.open(options.objectPath ?? bpfObjectPath('profile'), {
      globals: {
        ...(options.targetPid !== undefined ? { target_tgid: options.targetPid } : {}),
        sp_caller_age_ns: BigInt(Math.round(spCallerAgeMs * 1e6)),
        labels_max: labels.maxLabels,
        label_key_bytes: labels.keyBytes,
        label_value_bytes: labels.valueBytes,
      },
      maxEntries: {
        unwind_pages: options.maxUnwindEntries ?? 65536,
        proc_configs: options.maxProcesses ?? 8192,
        target_pids: options.maxTargetPids ?? 1024,
        events: options.ringBufferBytes ?? defaultRingBytes(cpus.length),
      },
      autoload: { ...wantOptional, ...autoload },
      attachTargets: testAttachTargets(Object.keys(OPTIONAL_PROGRAMS), { ...wantOptional, ...autoload }),
    });
    const { obj, disabled } = loadWithOptional(open, optional);
    let sampler: Sampler | undefined;
    try {
      sampler = new Sampler(obj, options, disabled);
      sampler.noteFeatures(wantOptional);
      checkLayouts(obj);
      obj.setGlobal('offcpu_period_ns', BigInt(sampler.offCpuPeriodNs));
      sampler.applyFilter();
      sampler.reader = obj.ringBuffer('events', {
        minIntervalMs: SAMPLE_READ_MS,
        followUpMs: EXEC_FOLLOW_UP_MS,
        coalesceSamples: true,
        onBatch: (records, counts) => sampler!.onRecords(records, counts),
      });
      sampler.execLink = sampler.attachOptional('on_exec');
      sampler.exitLink = sampler.attachOptional('on_exit');
      sampler.firstScan = sampler.scan();
      sampler.links.push(...obj.attachPerfEvent('do_sample', { freq: hz, cpus }));
      const s = sampler;
      sampler.timer = setInterval(() => s.tick(), options.scanIntervalMs ?? 1000);
      sampler.timer.unref();
    } catch (err) {
      sampler?.stopTimers();
      obj.close();
      throw err;
    }
    return sampler;
  }

  /** Is any profile subscribed now? */
  get subscribed(): boolean {
    return this.subscribers.size > 0;
  }

  get attached(): boolean {
    return !this.closed && this.links.length > 0 && this.links.every((l) => l.isAttached);
  }

  readNow(): void {
    this.reader?.readNow();
  }

  subscribe(filter: SampleFilter, onBatch: (batch: RawSample[]) => void): () => void {
    if (this.closed) throw new Error('the sampler is closed');
    const id = this.nextSubscriber++;
    this.subscribers.set(id, { pid: filter.pid, kind: filter.kind ?? 'cpu', sinceNs: process.hrtime.bigint(), onBatch });
    try {
      this.applyFilter();
    } catch (err) {
      this.subscribers.delete(id);
      this.applyFilter();
      throw err;
    }
    // Records gathered so far are read now: a record with a count (coalesceSamples) then cannot hold samples from
    // both sides of this subscriber's start (a window keeps or drops a record by its first sample's time).
    this.reader?.readNow();
    return () => {
      if (this.subscribers.delete(id) && !this.closed) this.applyFilter();
    };
  }

  /** Resolves when the processes found at start are configured (their binaries read off the event loop). */
  ready(): Promise<void> {
    return this.firstScan;
  }

  /** The Go processes configured in the BPF maps now. */
  goProcesses(): GoProcessInfo[] {
    const out: GoProcessInfo[] = [];
    for (const t of this.tracked.values()) if (t.go !== undefined) out.push(t.go);
    return out.sort((a, b) => a.pid - b.pid);
  }

  stats(): SamplerStats {
    const inj = this.injector.stats();
    const counters = {} as Record<CounterName, number>;
    for (const name of Object.keys(Counter) as CounterName[]) counters[name] = this.counter(name);
    const lostInAgent = this.reader?.stats().dropped ?? 0;
    const lostInKernel = { cpu: counters.ringbufDrops, offcpu: counters.offcpuDrops + counters.offcpuNoSlot };
    return {
      hz: this.hz,
      attached: this.attached,
      maps: {
        unwind_pages: { entries: inj.unwindEntries, capacity: inj.unwindCapacity },
        proc_configs: { entries: inj.configEntries, capacity: inj.configCapacity },
        target_pids: { entries: this.filterPids.size, capacity: this.targetPids.maxEntries },
      },
      samples: {
        received: this.received.cpu + this.received.offcpu,
        receivedByKind: { ...this.received },
        malformed: this.malformed,
        lost: lostInKernel.cpu + lostInKernel.offcpu + lostInAgent,
        lostInKernel: lostInKernel.cpu + lostInKernel.offcpu,
        lostInAgent,
        lostInKernelByKind: lostInKernel,
      },
      counters,
      goProcesses: inj.processes,
      goBinaries: inj.binaries,
      tablesRefused: inj.tablesRefused,
      processesRefused: inj.processesRefused,
      otherBinaries: this.otherBinaries.size,
      readingBinaries: this.readingBinaries(),
      offCpuVia: this.chainedOffCpu ? 'run-queue program' : this.offCpuLinks.length > 0 ? 'own program' : undefined,
      scans: { ticks: this.ticks, listings: this.listings },
    };
  }

  /** Executables being read for the first time (on the binary reader's thread). */
  readingBinaries(): string[] {
    return [...this.reads.values()].map((r) => r.path);
  }

  /**
   * Entries in one of the bounded maps, counted by walking the kernel's map (slow for big maps; stats() gives
   * the agent's own count).
   */
  countEntries(map: 'unwind_pages' | 'proc_configs' | 'target_pids'): number {
    let n = 0;
    for (const _ of this.obj.map(map).keys()) n++;
    return n;
  }

  /**
   * Looks for new, exec'd and exited processes now (also runs every scanIntervalMs). Resolves when the binaries it
   * found new have been read and their processes configured.
   */
  scan(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const pids = listPids(this.procRoot);
    this.listings++;
    const live = new Set(pids);
    for (const pid of [...this.tracked.keys()]) if (!live.has(pid)) this.forget(pid, 'exited');
    for (const pid of [...this.pending.keys()]) if (!live.has(pid)) this.pending.delete(pid);
    // While every exec is reported, a known process that is not Go can only become one by exec (or by its PID
    // going to a new process, which then execs): those need no look until then. While every exit of a Go
    // process is reported too (its exit record forgets it before any later process of its PID is seen), known
    // Go processes need none either: on a node of 1,000 of them, that is 1,000 /proc reads a second saved.
    // A record lost anywhere, and every process is looked at again.
    const execs = this.execLink?.isAttached === true;
    const exits = this.exitLink?.isAttached === true;
    const lost = execs ? this.recordsLost() : undefined;
    const complete = lost !== undefined && lost === this.lastLost;
    this.lastLost = lost;
    for (const pid of pids) {
      const t = this.tracked.get(pid);
      if (complete && t !== undefined && (t.go === undefined || exits)) continue;
      this.look(pid);
    }
    return this.readsSettled();
  }

  /** Resolves when no binary is being read (the processes that waited for each one configured). */
  private async readsSettled(): Promise<void> {
    while (this.reads.size > 0) await Promise.all([...this.reads.values()].map((r) => r.done));
  }

  /** Stops sampling and releases every BPF object, link and thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopTimers();
    for (const l of this.links) l.detach();
    this.detachOffCpu();
    this.links = [];
    const reader = this.reader;
    this.reader = undefined;
    if (reader !== undefined) await reader.stop();
    for (const [pid, t] of this.tracked) if (t.go !== undefined) this.opts.onProcess?.({ type: 'removed', pid, reason: 'closed' });
    this.tracked.clear();
    this.subscribers.clear();
    if (this.ownsBinaries) await this.binaries.close();
    this.obj.close();
  }

  /** A BPF counter summed over CPUs (0 once closed). */
  private counter(name: CounterName): number {
    if (this.closed) return 0;
    return Number((this.counters.lookup(Counter[name]) ?? []).reduce((a, b) => a + b, 0n));
  }

  // ---- samples

  private onRecords(records: Buffer[], counts?: Uint32Array): void {
    let cpu: RawSample[] = [];
    let offCpu: RawSample[] = [];
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      const kind = r.length >= 4 ? r.readUInt32LE(0) : 0;
      const size = recordSize(r);
      if (kind === RecordKind.SAMPLE && r.length === size) {
        const s = decodeSample(r);
        const n = counts?.[i] ?? 1;
        if (n > 1) s.count = n;
        cpu.push(s);
      } else if (kind === RecordKind.OFFCPU && r.length === size) offCpu.push(decodeOffCpu(r));
      else if (kind === RecordKind.EXEC && r.length === size) {
        // Samples before it are of the old image, those after of the new one: hand them over first.
        this.dispatch(cpu, offCpu);
        cpu = [];
        offCpu = [];
        const pid = r.readUInt32LE(ExecRecord.offsets.tgid);
        this.notify(() => this.opts.onExecImage?.(pid));
        this.onExec(pid);
      } else if (kind === RecordKind.EXIT && r.length === size) {
        // The process's samples so far are all of it: hand them over before it is forgotten.
        this.dispatch(cpu, offCpu);
        cpu = [];
        offCpu = [];
        const e = ExitRecord.decode(r);
        this.onExitRecord(e.tgid, e.start_ticks);
      } else if (this.malformed++ === 0) this.warn(`ring buffer record of kind ${kind} and ${r.length} bytes: is profile.bpf.o out of date?`);
    }
    this.dispatch(cpu, offCpu);
  }

  private dispatch(cpu: RawSample[], offCpu: RawSample[]): void {
    this.received.cpu += sampleCount(cpu);
    this.received.offcpu += offCpu.length;
    if (this.closed || cpu.length + offCpu.length === 0) return;
    for (const sub of [...this.subscribers.values()]) {
      const all = sub.kind === 'cpu' ? cpu : offCpu;
      if (all.length === 0) continue;
      let mine = sub.pid === undefined ? all : all.filter((s) => s.pid === sub.pid);
      if (sub.kind === 'offcpu') mine = clipOffCpu(mine, sub.sinceNs);
      if (mine.length === 0) continue;
      try {
        sub.onBatch(mine);
      } catch (err) {
        this.warn(`a sample subscriber threw: ${(err as Error).message}`);
      }
    }
  }

  /**
   * Writes what the subscribers want: per kind FILTER_ALL when one wants every process, FILTER_PIDS for the pids
   * asked for (target_pids holds a TargetBit per kind), else FILTER_NONE; and attaches the off-CPU programs while
   * an off-CPU subscriber exists.
   */
  private applyFilter(): void {
    const all: Record<SampleKind, boolean> = { cpu: false, offcpu: false };
    const want = new Map<number, number>();
    for (const s of this.subscribers.values()) {
      if (s.pid === undefined) all[s.kind] = true;
      else want.set(s.pid, (want.get(s.pid) ?? 0) | TargetBit[s.kind]);
    }
    if (this.opts.targetPid === undefined) {
      if (all.cpu && all.offcpu) want.clear();
      for (const pid of [...this.filterPids.keys()]) {
        if (want.has(pid)) continue;
        this.targetPids.delete(pid);
        this.filterPids.delete(pid);
      }
      for (const [pid, bits] of want) {
        if (this.filterPids.get(pid) === bits) continue;
        if (!this.filterPids.has(pid) && this.filterPids.size >= this.targetPids.maxEntries) {
          this.warn(`pid filter full (${this.targetPids.maxEntries}): profiling every process instead`);
          all.cpu = all.offcpu = true;
          break;
        }
        this.targetPids.update(pid, bits);
        this.filterPids.set(pid, bits);
      }
    }
    const mode = (kind: SampleKind): number => {
      if (all[kind]) return FilterMode.ALL;
      for (const bits of want.values()) if (bits & TargetBit[kind]) return FilterMode.PIDS;
      return FilterMode.NONE;
    };
    const offMode = mode('offcpu');
    if (offMode !== FilterMode.NONE) this.attachOffCpu();
    this.obj.setGlobal('filter_mode', mode('cpu'));
    this.obj.setGlobal('offcpu_filter_mode', offMode);
    if (offMode === FilterMode.NONE) this.detachOffCpu();
  }

  /**
   * Off-CPU profiles from now on run through host's sched_switch program (the run-queue metrics'), tail-called
   * after its own work, instead of as a second program on the hook; undefined: attached on its own again.
   */
  shareSwitch(host: SwitchHost | undefined): void {
    const running = this.offCpuLinks.length > 0 || this.chainedOffCpu;
    if (running) this.detachOffCpu();
    this.switchHost = host;
    if (running) this.attachOffCpu();
  }

  private attachOffCpu(): void {
    if (this.offCpuLinks.length > 0 || this.chainedOffCpu) return;
    const off = this.disabled.get('offcpu_switch');
    if (off !== undefined) throw new FeatureUnavailable(`off-CPU profiles are not available on this kernel: ${off}`);
    this.obj.setGlobal('offcpu_attachment', ++this.offCpuAttachments);
    const host = this.switchHost;
    if (host?.attached) {
      try {
        host.runAfter(this.obj.program('offcpu_switch'));
        this.chainedOffCpu = true;
        return;
      } catch (err) {
        this.switchHost = undefined; // not again: the kernel will refuse it the same way
        this.warn(`off-CPU profiles run as a second sched_switch program: the run-queue program cannot call it (${(err as Error).message})`);
      }
    }
    this.offCpuLinks = [this.obj.attach('offcpu_switch')];
  }

  /** Notes which optional programs' features the kernel gave (and logs those it refused). */
  private noteFeatures(want: Record<OptionalProgram, boolean>): void {
    this.features.set('cpu_profile', true);
    for (const p of Object.keys(OPTIONAL_PROGRAMS) as OptionalProgram[]) {
      const why = want[p] ? this.disabled.get(p) : 'turned off';
      this.features.set(OPTIONAL_PROGRAMS[p], why === undefined, why);
      if (want[p] && why !== undefined) this.warn(`feature ${OPTIONAL_PROGRAMS[p]} is off: the kernel refused program ${p}: ${why}`);
    }
  }

  /** Attaches an optional program that loaded; a refusal now turns its feature off (logged). */
  private attachOptional(p: OptionalProgram): BpfLink | undefined {
    if (this.features.get(OPTIONAL_PROGRAMS[p])?.enabled !== true) return undefined;
    try {
      const link = this.obj.attach(p);
      this.links.push(link);
      return link;
    } catch (err) {
      const why = (err as Error).message;
      this.disabled.set(p, why);
      this.features.set(OPTIONAL_PROGRAMS[p], false, why);
      this.warn(`feature ${OPTIONAL_PROGRAMS[p]} is off: attaching program ${p} failed: ${why}`);
      return undefined;
    }
  }

  private detachOffCpu(): void {
    for (const l of this.offCpuLinks) l.detach();
    this.offCpuLinks = [];
    if (this.chainedOffCpu) {
      this.chainedOffCpu = false;
      try {
        this.switchHost?.runAfter(undefined);
      } catch {
        // the host is gone (closed): so is its call to us
      }
    }
  }

  // ---- processes

  private onExec(pid: number): void {
    this.execQueue.add(pid);
    this.execTimer ??= setImmediate(() => {
      this.execTimer = undefined;
      const pids = [...this.execQueue];
      this.execQueue.clear();
      for (const p of pids) {
        if (this.closed) return;
        this.safely(() => {
          // The same process (same start time) has a new image, maybe of the same file but mapped elsewhere:
          // configure it afresh. A different start time is PID reuse, which look() tells by itself.
          const prev = this.tracked.get(p);
          if (prev !== undefined && readStat(p, this.procRoot)?.startTime === prev.startTime) this.forget(p, 'exec');
          this.look(p);
        });
      }
    });
  }

  /** A process exited (its last sample came before): forget it now rather than at the next scan. */
  private onExitRecord(pid: number, startTime: bigint): void {
    this.pending.delete(pid);
    const t = this.tracked.get(pid);
    // A different start time: the PID's new process, already looked at by a scan that ran before this record.
    if (t !== undefined && t.startTime === startTime) this.forget(pid, 'exited');
    this.notify(() => this.opts.onExit?.(pid, startTime));
  }

  private notify(fn: () => void): void {
    if (this.closed) return;
    try {
      fn();
    } catch (err) {
      this.warn(`a process listener threw: ${(err as Error).message}`);
    }
  }

  /** The timer's work: a whole scan when records may be missing (or every fullScanEvery ticks), else the retries. */
  private tick(): void {
    this.safely(() => {
      if (++this.ticks % (this.opts.fullScanEvery ?? FULL_SCAN_EVERY) === 0 || !this.recordsComplete()) return void this.scan();
      for (const pid of [...this.pending.keys(), ...this.unresolved]) this.look(pid);
    });
  }

  /** Every exec and exit is reported and none was lost since the last scan. */
  private recordsComplete(): boolean {
    if (this.execLink?.isAttached !== true || this.exitLink?.isAttached !== true) return false;
    return this.lastLost !== undefined && this.recordsLost() === this.lastLost;
  }

  /** Exec and exit records lost in the kernel so far, plus records of any kind the agent dropped (they may have been). */
  private recordsLost(): number {
    return this.counter('execDrops') + (this.reader?.stats().dropped ?? 0);
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.warn(`process scan: ${(err as Error).message}`);
    }
  }

  /** Checks one PID: new process, PID reused, exec'd, or unchanged. */
  private look(pid: number): void {
    this.unresolved.delete(pid);
    const st = readStat(pid, this.procRoot);
    if (st === undefined) {
      if (this.tracked.has(pid)) this.forget(pid, 'exited');
      return;
    }
    const prev = this.tracked.get(pid);
    if (prev !== undefined) {
      if (prev.startTime !== st.startTime) {
        this.forget(pid, 'pid-reused');
      } else {
        if (prev.exeId === '') return; // kernel thread
        const exeId = exeIdOf(pid, this.procRoot);
        if (exeId === undefined || exeId === prev.exeId) return; // unchanged (or exiting)
        this.forget(pid, 'exec');
      }
    }
    if ((st.flags & PF_KTHREAD) !== 0) {
      this.tracked.set(pid, { startTime: st.startTime, exeId: '', go: undefined });
      return;
    }
    if (st.state === 'Z' || st.state === 'X') return;
    const exe = resolveExecutable(pid, this.procRoot);
    if (exe === undefined) {
      this.unresolved.add(pid); // gone, or not readable: tried again at the next tick
      return;
    }
    const exeId = `${exe.dev}:${exe.inode}`;
    const go = this.configure(pid, st.startTime, exe);
    if (go === 'reading') return; // looked at again when its binary has been read
    if (go === 'retry') {
      // The program's text is not mapped (yet): look again at the next scans, but not forever.
      const p = this.pending.get(pid);
      const attempts = p !== undefined && p.startTime === st.startTime ? p.attempts + 1 : 1;
      if (attempts < MAX_ATTEMPTS) {
        this.pending.set(pid, { startTime: st.startTime, attempts });
        return;
      }
      this.warn(`pid ${pid} (${exe.path}): its Go text is not mapped where the ELF headers say; sampled without Go unwinding`);
    }
    this.pending.delete(pid);
    const info = go === 'retry' ? null : go;
    this.tracked.set(pid, { startTime: st.startTime, exeId, go: info ?? undefined });
    if (info) this.opts.onProcess?.({ type: 'added', process: info });
    // Exiting before its config was written? Then its exit hook may have found nothing to remove: check after
    // writing. PF_EXITING is set before the hook runs (a process is not a zombie until after it).
    if (info && (!isAlive({ pid, startTime: st.startTime }, this.procRoot) || ((readStat(pid, this.procRoot)?.flags ?? 0) & PF_EXITING) !== 0)) {
      this.forget(pid, 'exited');
    }
  }

  /**
   * Writes a Go process's table and config; null for other processes, 'retry' when its text is not mapped yet,
   * 'reading' when its binary is new: it is read on the binary reader's thread and the process looked at again.
   */
  private configure(pid: number, startTime: bigint, exe: Executable): GoProcessInfo | null | 'retry' | 'reading' {
    if (this.otherBinaries.has(exe.key)) return null;
    const maps = readMaps(pid, this.procRoot);
    if (maps === undefined) return 'retry';
    const fileMaps = mappingsOfFile(maps, { inode: exe.inode, dev: exe.dev, path: exe.path });
    const info = this.injector.binaryInfo(exe.key) ?? this.justRead.get(exe.key);
    if (info === undefined) {
      // Not mapped executable yet (just exec'd): no read until it is.
      if (!fileMaps.some((m) => m.perms[2] === 'x')) return 'retry';
      this.readBinary(exe, pid);
      return 'reading';
    }
    const bias = loadBias(info, fileMaps);
    if (bias === undefined) return 'retry';
    const r = this.injector.addProcess(pid, info, bias, startTime);
    this.justRead.delete(exe.key); // held by the injector now
    if (r === undefined) {
      this.warn(`proc_configs is full (${this.injector.stats().configCapacity}): pid ${pid} is sampled without Go unwinding`);
      return null;
    }
    if (r.noTable !== undefined && this.opts.unwindTables !== false) this.warn(`pid ${pid} (${exe.path}): ${r.noTable}`);
    const go: GoProcessInfo = {
      pid,
      startTime,
      exe: exe.path,
      deleted: exe.deleted,
      otherMountNamespace: exe.otherMountNamespace,
      goVersion: info.goVersion,
      buildId: info.buildId,
      bias,
      binaryId: r.binaryId,
      offsetsSource: info.offsets.source,
    };
    if (r.noTable !== undefined) go.noTable = r.noTable;
    return go;
  }

  /** Reads a binary the injector does not hold (once, however many processes wait), then looks at its processes. */
  private readBinary(exe: Executable, pid: number): void {
    const known = this.reads.get(exe.key);
    if (known) {
      known.waiting.add(pid);
      return;
    }
    const waiting = new Set([pid]);
    const done = this.binaries.binaryInfo(exe, this.procRoot).then((r) => {
      this.reads.delete(exe.key);
      if (this.closed) return;
      if (r.kind === 'other') {
        if (r.warn) this.warn(`${exe.path} (pid ${exe.pid}): ${r.why}`);
        if (this.otherBinaries.size >= MAX_OTHER_CACHE) this.otherBinaries.clear();
        this.otherBinaries.set(exe.key, r.why);
      } else {
        if (r.info.problem !== undefined) this.warn(`${exe.path} (pid ${exe.pid}): ${r.info.problem}; runtime.g layout from the release table`);
        this.justRead.set(exe.key, r.info);
        for (const key of this.justRead.keys()) if (this.justRead.size > KEEP_UNTAKEN) this.justRead.delete(key);
      }
      for (const p of waiting) this.safely(() => this.look(p));
    }).catch((err: unknown) => this.warn(`${exe.path} (pid ${exe.pid}): ${(err as Error).message}`));
    this.reads.set(exe.key, { path: exe.path, waiting, done });
  }

  private forget(pid: number, reason: 'exited' | 'exec' | 'pid-reused'): void {
    const t = this.tracked.get(pid);
    this.tracked.delete(pid);
    if (t?.go === undefined) return;
    this.injector.removeProcess(pid);
    this.opts.onProcess?.({ type: 'removed', pid, reason });
  }

  private stopTimers(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.execTimer !== undefined) clearImmediate(this.execTimer);
    this.execTimer = undefined;
  }

  private warn(message: string): void {
    this.opts.onWarning?.(message);
  }
}

/**
 * Off-CPU records cut to what happened after `sinceNs`: an interval that began earlier counts from then, its weight
 * scaled down with it (a sampled short one, weighted by the period, is kept or dropped whole by where it ended).
 */
export function clipOffCpu(samples: RawSample[], sinceNs: bigint): RawSample[] {
  const out: RawSample[] = [];
  for (const s of samples) {
    const off = s.offCpu;
    if (off === undefined || s.timeNs <= sinceNs) continue;
    if (off.startNs >= sinceNs) {
      out.push(s);
      continue;
    }
    const actual = Number(s.timeNs - off.startNs);
    const after = Number(s.timeNs - sinceNs);
    // weight ≥ actual: the interval itself, or scaled up for the switch-outs whose stacks were not read.
    const weightNs = Math.round((off.weightNs * after) / actual);
    out.push(off.weightNs >= actual ? { ...s, offCpu: { ...off, startNs: sinceNs, weightNs } } : s);
  }
  return out;
}

/** The loaded object's maps have the sizes the TS mirrors assume (a stale profile.bpf.o fails loudly here). */
function checkLayouts(obj: BpfObject): void {
  const want: Record<string, [number, number]> = {
    unwind_pages: [UnwindKey.size, UnwindChunk.size],
    proc_configs: [4, ProcConfig.size],
  };
  for (const m of obj.maps()) {
    const w = want[m.name];
    if (w && (m.keySize !== w[0] || m.valueSize !== w[1])) {
      throw new Error(`${obj.path}: map ${m.name} has key/value sizes ${m.keySize}/${m.valueSize}, the agent expects ${w[0]}/${w[1]}: rebuild with 'npm run build:bpf'`);
    }
  }
}
