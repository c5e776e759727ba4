// The agent: the sampler (CPU and off-CPU), the run-queue latency histogram, the symbolizer and the HTTP server, started
// together and stopped together (server first, so in-flight profiles answer; then every BPF program and link).

import * as fs from 'node:fs';
import * as os from 'node:os';
import { Features, kernelTooOld, MIN_KERNEL } from '../bpf/features';
import type { Logger } from 'pino';
import { Sampler, type LabelLimits, type SamplerStats } from '../sampler/sampler';
import { ReaderThread } from '../symbols/reader-thread';
import { Symbolizer } from '../symbols/symbolizer';
import { setMaxTableBytes } from '../gosym/limits';
import { ProfileBuilder } from '../profile/builder';
import { encodePprof, warmPprofEncoder, type Profile } from '../profile/pprof';
import { RunqueueLatency } from '../metrics/runqlat';
import { createMetricsRegistry, registerMapStats, type AgentHealth } from '../metrics/registry';
import { ensureTracefs } from '../bpf/mount';
import type { RawSample } from '../sampler/types';
import { containerIdOf } from '../proc/container';
import { buildServer } from './app';
import type { CaptureWindow } from './capture';
import { KubeletLogs, PodIdentities } from '../kube/identity';
import { PodWatch } from '../kube/api-watch';
import { GoroutineSnapshotter } from '../goroutines/snapshotter';
import { loadAccessControl, type AccessFlags } from './access';
import { native } from '../bpf/native';
import { compactWhenQuiet } from '../worker/compact-when-quiet';

/** After a burst of work (a profile, a goroutine dump, new binaries read), this long without more before compacting. */
const QUIET_MS = 1000;

export interface AgentOptions {
  host: string;
  port: number;
  hz: number;
  offCpuPeriodMs: number;
  maxProfileSeconds: number;
  /** Captures at once (default 8) and node-wide off-CPU captures among them (default 1). */
  maxProfiles?: number;
  maxNodeOffCpuProfiles?: number;
  /** Go binaries whose tables stay in the BPF maps after their last process exits (default 8). */
  keepIdleBinaries?: number;
  /** Also keep run-queue latency per cgroup (default false). */
  runqueuePerCgroup?: boolean;
  /** Page captures kept (default 20) and MiB of their pprof (default 32). */
  keepCaptures?: number;
  keepCapturesMib?: number;
  /** TLS and credentials (default: none, for a loopback address). */
  access?: AccessFlags;
  /** The goroutines' pprof labels on samples (default: the sampler's). */
  labels?: LabelLimits;
  /** Cap on one table read from a profiled binary (MiB; default 64). */
  maxBinaryTableMib?: number;
  /** The kubelet's log directory (default /var/log): pods/ and containers/ name pods and containers. */
  kubeletLogDir?: string;
  /** Pod names also from the Kubernetes API (a watch of this node's pods). */
  kubeApi?: { server: string; serviceAccountDir: string; nodeName: string };
}

export interface RunningAgent {
  /** Where it listens, e.g. http://127.0.0.1:7070 */
  url: string;
  close(): Promise<void>;
}

export async function startAgent(opts: AgentOptions, logger: Logger): Promise<RunningAgent> {
  const access = loadAccessControl(opts.access ?? {}); // bad files end the start before any BPF is loaded
  setMaxTableBytes((opts.maxBinaryTableMib ?? 64) << 20);
  if (ensureTracefs()) logger.info('mounted tracefs at /sys/kernel/tracing');
  const tooOld = kernelTooOld();
  if (tooOld) logger.warn({ kernel: os.release(), minimum: MIN_KERNEL.join('.') }, 'this kernel is older than quietflame needs (bpf_loop): the CPU profiler will likely not load');
  const features = new Features();
  // The symbolizer reads a new Go process's mappings while a profile runs (a short-lived one is gone by the time
  // its samples would be looked at), and forgets a process when its exit comes through the ring buffer.
  // One thread reads binaries for both: new executables for the sampler, big native symbol tables for the symbolizer.
  // The heap is compacted a second after each burst of work, once no profile is in flight (a profile's end calls it
  // again): the Buffers a profile, a dump or a binary's read leave behind are otherwise freed only by V8's next full
  // collection, which an agent at rest may not run for hours (12 MiB of them after start, measured).
  let sampler: Sampler | undefined;
  const compactHeap = compactWhenQuiet(QUIET_MS, () => native().releaseFreeMemory(), () => sampler?.subscribed === true);
  const reader = new ReaderThread({ afterJob: compactHeap });
  const symbolizer = new Symbolizer({ onWarning: (message) => logger.warn(message), reader });
  try {
    sampler = Sampler.start({
      reader,
      hz: opts.hz,
      offCpuPeriodMs: opts.offCpuPeriodMs,
      ...(opts.labels ? { labels: opts.labels } : {}),
      ...(opts.keepIdleBinaries !== undefined ? { idleBinaries: opts.keepIdleBinaries } : {}),
      features,
      onWarning: (message) => logger.warn(message),
      onProcess: (event) => {
        logger.debug({ event }, 'go process');
        if (event.type === 'added' && sampler?.subscribed) symbolizer.observeProcess(event.process.pid);
      },
      onExit: (pid, startTime) => symbolizer.forgetProcess(pid, startTime),
      onExecImage: (pid) => {
        // The old image's samples are all in; the new image's mappings are read now, while it surely runs.
        symbolizer.forgetProcess(pid);
        if (sampler?.subscribed) symbolizer.observeProcess(pid);
      },
    });
  } catch (e) {
    await reader.close();
    const why = tooOld ? ` (kernel ${os.release()} is older than ${MIN_KERNEL.join('.')})` : '';
    throw new Error(`the CPU profiler (profile.bpf.o) did not load${why}: ${(e as Error).message}`);
  }
  const started = sampler;
  const cleanups: Array<() => unknown> = [() => started.close(), () => symbolizer.close(), () => reader.close()];
  try {
    // Run-queue latency is a feature of its own: a kernel that refuses runqlat.bpf.o loses only these metrics.
    let runqueue: RunqueueLatency | undefined;
    try {
      runqueue = RunqueueLatency.start({ perCgroup: opts.runqueuePerCgroup ?? false });
      features.set('runqueue_latency', true);
      started.shareSwitch(runqueue); // off-CPU profiles ride on its sched_switch program: one entry per switch
      cleanups.push(() => runqueue?.close());
    } catch (e) {
      features.set('runqueue_latency', false, (e as Error).message);
      logger.warn({ err: (e as Error).message }, 'feature runqueue_latency is off: runqlat.bpf.o did not load');
    }
    const goroutineReader = new GoroutineSnapshotter();
    cleanups.push(() => goroutineReader.close());
    const logDir = opts.kubeletLogDir ?? '/var/log'; // the DaemonSet mounts the kubelet's pods/ and containers/
    const logs = new KubeletLogs({ podsDir: `${logDir}/pods`, containersDir: `${logDir}/containers` });
    let podWatch: PodWatch | undefined;
    if (opts.kubeApi) {
      podWatch = new PodWatch({ ...opts.kubeApi, logger });
      podWatch.start();
      cleanups.push(() => podWatch!.stop());
    }
    const identities = new PodIdentities(podWatch ? [podWatch, logs] : [logs]);
    let symbolizationNs = 0n;
    // A run-queue program that loaded on a kernel lacking its fields measures nothing: it is off too.
    let missingLogged = false;
    const currentFeatures = (): ReturnType<Features['all']> => {
      const missing = runqueue?.missingFields() ?? [];
      if (missing.length > 0) {
        features.set('runqueue_latency', false, `this kernel lacks ${missing.join(', ')}`);
        if (!missingLogged) logger.warn({ missing }, 'feature runqueue_latency is off: the kernel lacks fields it reads');
        missingLogged = true;
      }
      return features.all();
    };
    // Kernel symbols are read at start and kept fresh from a timer, so that no profile waits for /proc/kallsyms;
    // the agent's own files (node: ~80k symbols) likewise, as the agent is in every node-wide profile it takes.
    symbolizer.refreshKernel();
    symbolizer.keepProcess(process.pid);
    warmPprofEncoder(); // protobufjs generates its encoders on first use: at start, not in the first profile
    const kallsymsTimer = setInterval(() => symbolizer.refreshKernel(), 60_000).unref();
    cleanups.push(() => clearInterval(kallsymsTimer));
    for (const name of ['unwind_pages', 'proc_configs', 'target_pids'] as const) {
      cleanups.push(registerMapStats(name, () => started.stats().maps[name]));
    }
    const { app } = buildServer(
      {
        sampler: started,
        newProfile: (kind, startUnixNs) => {
          const builder = new ProfileBuilder({
            resolver: symbolizer,
            kind,
            hz: started.hz,
            offCpuPeriodNs: started.offCpuPeriodNs,
            startTimeNs: startUnixNs,
            processLabels: processLabels(identities),
          });
          const add = (batch: readonly RawSample[]): void => {
            const t0 = process.hrtime.bigint();
            builder.add(batch);
            symbolizationNs += process.hrtime.bigint() - t0;
          };
          let built: Profile | undefined;
          const finish = async (w: CaptureWindow): Promise<Buffer> => {
            await builder.settle(); // native symbol tables still being read for it
            compactHeap();
            return encodePprof((built = builder.build(w.endUnixNs)));
          };
          return { add, finish, built: () => built };
        },
        processes: () =>
          started.goProcesses().map((p) => {
            const id = identities.of(p.pid);
            const where = id ? { namespace: id.namespace, pod: `${id.namespace}/${id.pod}`, ...(id.container ? { container: id.container } : {}) } : {};
            return { pid: p.pid, exe: p.exe, goVersion: p.goVersion, buildId: p.buildId, containerId: containerIdOf(p.pid), ...where };
          }),
        podOf: (pid) => identities.of(pid),
        processExists: (pid) => isProcess(pid),
        goroutines: (pid, o) => goroutineReader.snapshot(pid, o?.locations ? symbolizer : undefined).finally(compactHeap),
        metrics: createMetricsRegistry({
          runqueueLatency: () => runqueue,
          health: () => agentHealth(started.stats(), symbolizationNs),
          features: () => currentFeatures(),
        }),
        features: () => currentFeatures(),
        readingBinaries: () => started.readingBinaries(),
      },
      {
        logger,
        maxSeconds: opts.maxProfileSeconds,
        maxConcurrentProfiles: opts.maxProfiles,
        maxNodeOffCpuProfiles: opts.maxNodeOffCpuProfiles,
        keepCaptures: opts.keepCaptures,
        keepCaptureBytes: opts.keepCapturesMib === undefined ? undefined : opts.keepCapturesMib * (1 << 20),
        access,
      },
    );
    cleanups.unshift(() => app.close());
    await app.listen({ host: opts.host, port: opts.port });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : opts.port;
    const url = `${access.scheme}://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;
    logger.info({ url, hz: opts.hz }, 'quietflame agent listening');
    compactHeap(); // what start-up read and parsed
    return { url, close: () => runCleanups(cleanups) };
  } catch (e) {
    await runCleanups(cleanups);
    throw e;
  }
}

/**
 * container_id, and namespace, pod and container where the kubelet's layout names them, for the processes of one
 * profile, each read once (a profile is short; a process keeps its cgroup).
 */
function processLabels(identities: PodIdentities): (pid: number) => Record<string, string> | undefined {
  const byPid = new Map<number, Record<string, string> | undefined>();
  return (pid) => {
    if (!byPid.has(pid)) {
      const id = containerIdOf(pid);
      const pod = id === undefined ? undefined : identities.of(pid);
      const labels = id === undefined ? undefined : { container_id: id, ...(pod ? { namespace: pod.namespace, pod: pod.pod } : {}), ...(pod?.container ? { container: pod.container } : {}) };
      byPid.set(pid, labels);
    }
    return byPid.get(pid);
  };
}

/** A thread group leader: /proc/N exists for every thread ID too, but only a process has Tgid N. */
function isProcess(pid: number): boolean {
  try {
    return new RegExp(`^Tgid:\\s*${pid}$`, 'm').test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function agentHealth(s: SamplerStats, symbolizationNs: bigint): AgentHealth {
  return {
    samples: s.samples.receivedByKind,
    lost: [
      { kind: 'cpu', reason: 'ring_buffer_full', count: s.counters.ringbufDrops },
      { kind: 'offcpu', reason: 'ring_buffer_full', count: s.counters.offcpuDrops },
      { kind: 'offcpu', reason: 'no_task_storage', count: s.counters.offcpuNoSlot },
      // The reader drops raw records before decoding them: their kind is not known.
      { kind: 'any', reason: 'agent_queue_full', count: s.samples.lostInAgent },
    ],
    goProcesses: s.goProcesses,
    goBinaries: s.goBinaries,
    symbolizationSeconds: Number(symbolizationNs) / 1e9,
  };
}

async function runCleanups(cleanups: Array<() => unknown>): Promise<void> {
  for (const c of cleanups.splice(0)) await c();
}
