// Run-queue latency (bpf/runqlat.bpf.c): the time from a thread becoming runnable (wakeup, new thread, or
// preemption) to it running, by the kernel's own clock for it (sched_info, as /proc/PID/schedstat's run delay), as cumulative floor-log2 histograms of microseconds that are never reset, and
// a prom-client collector exporting them as the Prometheus histogram quietflame_runqueue_latency_seconds; and the
// node's off-CPU time of user threads by state, as quietflame_offcpu_seconds_total{state}.
//
//   const rq = RunqueueLatency.start();            // loads and attaches; throws with the loader's context
//   rq.read();                                      // { slots, sumNs, count, drops }
//   registry.registerMetric(runqueueLatencyHistogram(() => rq.read()) as unknown as Metric);
//   rq.close();
import { existsSync } from 'node:fs';

import type { Metric } from 'prom-client';

import { type CodecValue, array, struct, u32, u64 } from '../bpf/codec';
import { bpfObjectPath } from '../bpf/native';
import { BpfLink, BpfMap, BpfObject, type BpfProgram } from '../bpf/object';
import { testAttachTargets } from '../bpf/features';
import { containerIdFromPath } from '../proc/container';
import type { CgroupPaths } from './cgroup-paths';

// Mirrors bpf/runqlat.h.
export const RUNQ_SLOTS = 32;
export const RUNQ_MAX_CGROUPS = 1024;
export const RunqHist = struct({ slots: array(u64, RUNQ_SLOTS), sum_ns: u64, count: u64 });
type HistValue = CodecValue<typeof RunqHist>;
export const RUNQ_DROP_START = 0;
export const RUNQ_DROP_CGROUP = 1;
/** Indexes of the per-CPU offcpu_ns array (enum offcpu_state). */
export const OFFCPU_NS_INDEX = { blocked: 0, runnable: 1 } as const;
export type OffCpuNsState = keyof typeof OFFCPU_NS_INDEX;

/** Why latencies went unrecorded, as the `map` label of quietflame_runqueue_latency_drops_total. */
export const DROP_MAPS = ['start', 'cgroup_hists'] as const;
export type DropMap = (typeof DROP_MAPS)[number];

/** One cumulative histogram. slots[i] counts latencies in [2^i, 2^(i+1)) µs (slot 0 also 0 µs); the last slot is open-ended. */
export interface LatencyHistogram {
  slots: number[];
  /** Sum of the latencies in nanoseconds. */
  sumNs: bigint;
  /** Latencies recorded (the BPF counter; equals the sum of slots except while a CPU is mid-update). */
  count: number;
}

export interface RunqueueLatencySnapshot extends LatencyHistogram {
  /** Cumulative: `start` (no task storage: a latency without any part a migration ended early, blocked time not
   * counted), `cgroup_hists` (map full: a latency not in a per-cgroup histogram). */
  drops: Record<DropMap, number>;
  /** Node-wide off-CPU nanoseconds of user threads: blocked (until woken) and runnable (until running). */
  offCpuNs: Record<OffCpuNsState, bigint>;
}

export interface RunqueueLatencyOptions {
  /** Also keep one histogram per cgroup v2 id (off by default). */
  perCgroup?: boolean;
  /** Capacity of the per-cgroup hash (default RUNQ_MAX_CGROUPS); cgroups beyond it count as drops. */
  maxCgroups?: number;
  /** The BPF object (default build/bpf/runqlat.bpf.o of this package). */
  objectPath?: string;
}


/** missing_fields bits (runqlat.h MISSING_*) */
const MISSING_RQ_CLOCK = 0x1;
const MISSING_SCHED_INFO = 0x2;

export class RunqueueLatency {
  readonly perCgroup: boolean;
  private readonly hist: BpfMap<number, HistValue[]>;
  private readonly drops: BpfMap<number, bigint[]>;
  private readonly offCpu: BpfMap<number, bigint[]>;
  private readonly cgroups: BpfMap<bigint, HistValue>;
  /** then_run: the sched_switch program tail-called after this one's (slot 0). */
  private readonly thenRun: BpfMap<number, number>;

  private constructor(
    private readonly obj: BpfObject,
    private readonly links: BpfLink[],
    perCgroup: boolean,
  ) {
    this.perCgroup = perCgroup;
    this.hist = obj.perCpuMap('hist', u32, RunqHist);
    this.drops = obj.perCpuMap('drops', u32, u64);
    this.offCpu = obj.perCpuMap('offcpu_ns', u32, u64);
    this.cgroups = obj.map('cgroup_hists', u64, RunqHist);
    this.thenRun = obj.map('then_run', u32, u32);
  }

  /**
   * Runs another tp_btf/sched_switch program (the off-CPU profiler's) right after this one, in the same program
   * entry: a tail call, so a switch costs one program entry for both. undefined: none again. Throws when the kernel
   * refuses the program (another type or hook): then attach it on its own.
   */
  runAfter(program: BpfProgram | undefined): void {
    if (program === undefined) {
      if (!this.obj.closed) this.thenRun.delete(0);
      return;
    }
    this.thenRun.update(0, program.fd);
  }

  /** Opens, loads and attaches the sched_switch program (tp_btf: needs kernel BTF, no tracefs). */
  static start(options: RunqueueLatencyOptions = {}): RunqueueLatency {
    if (!existsSync('/proc/self/schedstat')) {
      throw new Error('run-queue latency needs a kernel with CONFIG_SCHED_INFO (CONFIG_SCHEDSTATS or CONFIG_TASK_DELAY_ACCT): /proc/self/schedstat is missing');
    }
    const perCgroup = options.perCgroup ?? false;
    const obj = BpfObject.open(options.objectPath ?? bpfObjectPath('runqlat'), {
      globals: { per_cgroup: perCgroup ? 1 : 0 },
      maxEntries: { cgroup_hists: options.maxCgroups ?? RUNQ_MAX_CGROUPS },
      attachTargets: testAttachTargets(['on_switch']),
    });
    const links: BpfLink[] = [];
    try {
      obj.load();
      links.push(obj.attach('on_switch'));
      return new RunqueueLatency(obj, links, perCgroup);
    } catch (err) {
      obj.close();
      throw err;
    }
  }

  /** True while every program is attached. */
  get attached(): boolean {
    return !this.obj.closed && this.links.every((l) => l.isAttached);
  }

  get closed(): boolean {
    return this.obj.closed;
  }

  /**
   * Fields this kernel lacks (CO-RE), which leave the program loaded but measuring nothing: named after the
   * kernel option that provides them. Known once a task was switched in (at once on a live system).
   */
  missingFields(): string[] {
    if (this.obj.closed) return [];
    const bits = this.obj.getGlobal('missing_fields', u32) as number;
    const out: string[] = [];
    if (bits & MISSING_RQ_CLOCK) out.push('task_struct.se.cfs_rq (CONFIG_FAIR_GROUP_SCHED)');
    if (bits & MISSING_SCHED_INFO) out.push('task_struct.sched_info.last_queued (CONFIG_SCHED_INFO)');
    return out;
  }

  /** The node-wide histogram (all CPUs summed) and the drop counters; cumulative since start(). */
  read(): RunqueueLatencySnapshot {
    const perCpu = this.hist.lookup(0) ?? [];
    const sum = (m: BpfMap<number, bigint[]>, k: number): bigint => (m.lookup(k) ?? []).reduce((a, b) => a + b, 0n);
    return {
      ...sumHistograms(perCpu),
      drops: { start: Number(sum(this.drops, RUNQ_DROP_START)), cgroup_hists: Number(sum(this.drops, RUNQ_DROP_CGROUP)) },
      offCpuNs: { blocked: sum(this.offCpu, OFFCPU_NS_INDEX.blocked), runnable: sum(this.offCpu, OFFCPU_NS_INDEX.runnable) },
    };
  }

  /** Deletes the per-cgroup histograms of these cgroup v2 ids (cgroups that no longer exist). */
  forgetCgroups(ids: readonly bigint[]): void {
    for (const id of ids) this.cgroups.delete(id);
  }

  /** Per-cgroup histograms by cgroup v2 id (the cgroup directory's inode number); empty unless perCgroup. */
  readCgroups(): Map<bigint, LatencyHistogram> {
    const out = new Map<bigint, LatencyHistogram>();
    for (const [id, h] of this.cgroups.entries()) out.set(id, sumHistograms([h]));
    return out;
  }

  /** Entries and capacity of the bounded map (the per-cgroup hash), for quietflame_bpf_map_entries/_capacity. */
  mapStats(): { name: string; entries: number; capacity: number } {
    let entries = 0;
    if (this.perCgroup && !this.obj.closed) for (const _ of this.cgroups.keys()) entries++;
    return { name: 'runqlat_cgroup_hists', entries, capacity: this.cgroups.maxEntries };
  }

  /** Detaches and frees everything. Idempotent. */
  close(): void {
    this.obj.close();
  }
}

function sumHistograms(hs: readonly HistValue[]): LatencyHistogram {
  const slots = new Array<bigint>(RUNQ_SLOTS).fill(0n);
  let sumNs = 0n;
  let count = 0n;
  for (const h of hs) {
    h.slots.forEach((v, i) => (slots[i] = (slots[i] as bigint) + v));
    sumNs += h.sum_ns;
    count += h.count;
  }
  return { slots: slots.map(Number), sumNs, count: Number(count) };
}

// ---- Prometheus export ----------------------------------------------------------------------------------------

export const RUNQUEUE_LATENCY_METRIC = 'quietflame_runqueue_latency_seconds';
export const RUNQUEUE_DROPS_METRIC = 'quietflame_runqueue_latency_drops_total';

/**
 * The `le` label of each finite bucket, seconds: floor-log2 slot i covers [2^i, 2^(i+1)) µs, so its upper
 * bound is 2^(i+1) µs. The last slot is open-ended (it also takes everything longer), so it has no finite
 * bucket of its own: it only reaches `+Inf`. The strings are computed once and never change.
 */
export const BUCKET_LE: readonly string[] = Array.from({ length: RUNQ_SLOTS - 1 }, (_, i) => String(2 ** (i + 1) / 1e6));

interface Sample {
  metricName?: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of one classic Prometheus histogram built from floor-log2 µs slots: cumulative buckets, +Inf = _count. */
export function histogramSamples(name: string, h: LatencyHistogram, labels: Record<string, string> = {}): Sample[] {
  const out: Sample[] = [];
  let cum = 0;
  for (let i = 0; i < RUNQ_SLOTS; i++) {
    cum += h.slots[i] ?? 0;
    if (i < BUCKET_LE.length) out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: BUCKET_LE[i] as string }, value: cum });
  }
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cum });
  out.push({ metricName: `${name}_sum`, labels, value: nsToSeconds(h.sumNs) });
  // _count from the slots, not the BPF count: a per-CPU read can catch a CPU between its two increments.
  out.push({ metricName: `${name}_count`, labels, value: cum });
  return out;
}

function nsToSeconds(ns: bigint): number {
  return Number(ns / 1_000_000_000n) + Number(ns % 1_000_000_000n) / 1e9;
}

/**
 * A duck-typed prom-client metric (prom-client's Histogram cannot be fed bucket counts) that reads the BPF
 * histogram on every scrape. `read` returning undefined (e.g. the BPF side is gone) emits no samples.
 */
export function runqueueLatencyHistogram(read: () => LatencyHistogram | undefined): Metric {
  return customMetric(
    RUNQUEUE_LATENCY_METRIC,
    'Time threads spent runnable before running (woken, new or preempted, until on a CPU; the run delay of /proc/PID/schedstat), node-wide, from BPF log2 buckets of microseconds.',
    'histogram',
    () => {
      const h = read();
      return h === undefined ? [] : histogramSamples(RUNQUEUE_LATENCY_METRIC, h);
    },
  );
}

/** quietflame_runqueue_latency_drops_total{map}: latencies the BPF side could not record. */
export function runqueueLatencyDrops(read: () => Pick<RunqueueLatencySnapshot, 'drops'> | undefined): Metric {
  return customMetric(
    RUNQUEUE_DROPS_METRIC,
    'Run-queue latencies recorded incompletely: map="start" no task storage (part before a migration, blocked time left out), map="cgroup_hists" per-cgroup map full.',
    'counter',
    () => {
      const s = read();
      return s === undefined ? [] : DROP_MAPS.map((map) => ({ labels: { map }, value: s.drops[map] }));
    },
  );
}

export const CGROUP_RUNQUEUE_LATENCY_METRIC = 'quietflame_cgroup_runqueue_latency_seconds';

/**
 * quietflame_cgroup_runqueue_latency_seconds{cgroup, container_id}: one histogram per cgroup v2 the BPF side has
 * seen a wait in (RunqueueLatency with perCgroup). cgroup is the path below the cgroup2 mount; container_id is
 * set for a container's cgroup. Histograms of removed cgroups are deleted from the BPF map (their series end),
 * so containers coming and going do not fill it.
 */
export function cgroupRunqueueLatency(rq: () => RunqueueLatency | undefined, paths: CgroupPaths): Metric {
  return customMetric(
    CGROUP_RUNQUEUE_LATENCY_METRIC,
    'Time threads spent runnable before running, per cgroup (v2): as quietflame_runqueue_latency_seconds, for the threads of one cgroup.',
    'histogram',
    () => {
      const r = rq();
      if (r === undefined) return [];
      const out: Sample[] = [];
      const gone: bigint[] = [];
      for (const [id, h] of r.readCgroups()) {
        const cgroup = paths.pathOf(id);
        if (cgroup === undefined) {
          if (paths.isGone(id)) gone.push(id);
          continue;
        }
        const containerId = containerIdFromPath(cgroup);
        out.push(...histogramSamples(CGROUP_RUNQUEUE_LATENCY_METRIC, h, containerId === undefined ? { cgroup } : { cgroup, container_id: containerId }));
      }
      if (gone.length > 0) {
        r.forgetCgroups(gone);
        paths.forget(gone);
      }
      return out;
    },
  );
}

export const OFFCPU_SECONDS_METRIC = 'quietflame_offcpu_seconds_total';

/** quietflame_offcpu_seconds_total{state}: node-wide off-CPU time of user threads, blocked or runnable. */
export function offCpuSeconds(read: () => Pick<RunqueueLatencySnapshot, 'offCpuNs'> | undefined): Metric {
  return customMetric(
    OFFCPU_SECONDS_METRIC,
    'Time user threads on the node spent off the CPU: state="blocked" switched out until woken, state="runnable" woken or preempted until running.',
    'counter',
    () => {
      const s = read();
      return s === undefined ? [] : (Object.keys(OFFCPU_NS_INDEX) as OffCpuNsState[]).map((state) => ({ labels: { state }, value: nsToSeconds(s.offCpuNs[state]) }));
    },
  );
}

/** A metric object prom-client's Registry accepts: name, help, type, get() (called on every scrape), reset(). */
export function customMetric(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', samples: () => Sample[]): Metric {
  const m = {
    name,
    help,
    type,
    aggregator: 'sum',
    get() {
      return { name, help, type, aggregator: 'sum', values: samples() };
    },
    reset() {
      // BPF counters are cumulative by design; Registry.resetMetrics() must not (and cannot) clear them.
    },
  };
  return m as unknown as Metric;
}
