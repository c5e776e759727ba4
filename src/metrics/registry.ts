// The agent's Prometheus registry: prom-client's default process metrics (unprefixed, as every client
// library exports them: process_cpu_seconds_total, nodejs_*), run-queue latency from BPF, and the agent's
// own health. Served as text by the server's /metrics:
//
//   const registry = createMetricsRegistry({ runqueueLatency: rq });
//   reply.type(registry.contentType).send(await registry.metrics());
//
// Others feed health metrics through the module-level helpers, which every registry made here exports:
//   registerMapStats('symbols_pc_table', () => ({ entries, capacity }))  → quietflame_bpf_map_entries/_capacity{map}
//   countProfileRequest('/debug/pprof/profile', 200)                     → quietflame_profile_requests_total{endpoint,code}
import { Counter, Registry, collectDefaultMetrics, type Metric } from 'prom-client';

import { CgroupPaths, cgroup2Mount } from './cgroup-paths';
import { RULES } from '../diagnose/types';
import {
  type RunqueueLatency,
  cgroupRunqueueLatency,
  customMetric,
  offCpuSeconds,
  runqueueLatencyDrops,
  runqueueLatencyHistogram,
} from './runqlat';

export interface MapStats {
  entries: number;
  capacity: number;
}

/** The agent's own work, read on every scrape (all cumulative but the gauges goProcesses/goBinaries). */
export interface AgentHealth {
  /** Records the agent received, by kind ('cpu', 'offcpu'). */
  samples: Record<string, number>;
  /** Records lost, by kind and reason (e.g. ring_buffer_full, no_task_storage, agent_queue_full). */
  lost: Array<{ kind: string; reason: string; count: number }>;
  /** Go processes and binaries with unwind tables in the BPF maps now. */
  goProcesses: number;
  goBinaries: number;
  /** Seconds spent turning records into profile locations. */
  symbolizationSeconds: number;
}

export interface MetricsRegistryOptions {
  /** The agent's own health (samples, losses, processes, symbolization time); absent = no such series. */
  health?: () => AgentHealth;
  /** The run-queue latency source (or a getter, for one started or restarted later); absent = no such series. */
  runqueueLatency?: RunqueueLatency | (() => RunqueueLatency | undefined);
  /** Where the cgroup v2 tree is read, to name the per-cgroup histograms of a perCgroup source (default:
   * cgroup2Mount(), the host's tree when PID 1 is the host's). */
  cgroupRoot?: string;
  /** The features the kernel gave (quietflame_feature_enabled{feature}); absent = no such series. */
  features?: () => Record<string, { enabled: boolean }>;
  /** prom-client's default process and Node.js metrics (default true). */
  defaultMetrics?: boolean;
}

const mapStats = new Map<string, () => MapStats | undefined>();

/**
 * Reports a BPF map's fill as quietflame_bpf_map_entries{map} and quietflame_bpf_map_capacity{map}, read on
 * every scrape. `read` may return undefined (nothing to report now); a throwing callback is skipped. Returns
 * the function that unregisters it. Keep names few and fixed (one per map, not per process).
 */
export function registerMapStats(name: string, read: () => MapStats | undefined): () => void {
  mapStats.set(name, read);
  return () => {
    if (mapStats.get(name) === read) mapStats.delete(name);
  };
}

/** Distinct `endpoint` label values kept; later ones are counted as endpoint="other" (bounded cardinality). */
export const MAX_ENDPOINTS = 32;

const profileRequests = new Counter({
  name: 'quietflame_profile_requests_total',
  help: 'HTTP requests for profiles and metrics, by endpoint (route path) and response status code.',
  labelNames: ['endpoint', 'code'] as const,
  registers: [],
});
const endpoints = new Set<string>();

/** Counts one answered request. `endpoint` is the route path (e.g. '/debug/pprof/profile'), never the raw URL. */
export function countProfileRequest(endpoint: string, code: number | string): void {
  if (!endpoints.has(endpoint)) {
    if (endpoints.size >= MAX_ENDPOINTS) endpoint = 'other';
    else endpoints.add(endpoint);
  }
  const c = String(code);
  profileRequests.inc({ endpoint, code: /^[1-5]\d\d$/.test(c) ? c : 'other' });
}

const diagnosisFindings = new Counter({
  name: 'quietflame_diagnosis_findings_total',
  help: 'Findings the diagnosis reported (GET /api/diagnose and page captures), by rule.',
  labelNames: ['rule'] as const,
  registers: [],
});
for (const rule of RULES) diagnosisFindings.inc({ rule }, 0); // every rule's series exists from the start

/** Counts the findings of one diagnosis. */
export function countFindings(findings: ReadonlyArray<{ rule: string }>): void {
  for (const f of findings) diagnosisFindings.inc({ rule: (RULES as readonly string[]).includes(f.rule) ? f.rule : 'other' });
}

const REDUNDANT_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];
/**
 * How often the event-loop lag series sample the loop (prom-client's default is 10 ms: a timer that woke an idle
 * agent 100 times a second, most of its idle CPU). Every stall of this length or more still shows.
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

export function createMetricsRegistry(options: MetricsRegistryOptions = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    // Gauges named like counters, which `promtool check metrics` rejects; each is only the sum of the
    // same-named gauge without _total (nodejs_active_handles{type} etc.), so nothing is lost.
    for (const name of REDUNDANT_DEFAULTS) registry.removeSingleMetric(name);
  }

  const src = options.runqueueLatency;
  const rq = (): RunqueueLatency | undefined => {
    const r = typeof src === 'function' ? src() : src;
    return r === undefined || r.closed ? undefined : r;
  };
  if (src !== undefined) {
    registry.registerMetric(runqueueLatencyHistogram(() => rq()?.read()));
    registry.registerMetric(runqueueLatencyDrops(() => rq()?.read()));
    registry.registerMetric(offCpuSeconds(() => rq()?.read()));
    const cgroupRoot = options.cgroupRoot ?? cgroup2Mount();
    if (cgroupRoot !== undefined) {
      registry.registerMetric(cgroupRunqueueLatency(() => (rq()?.perCgroup ? rq() : undefined), new CgroupPaths(cgroupRoot)));
    }
  }

  const allMapStats = (): Array<[string, MapStats]> => {
    const out: Array<[string, MapStats]> = [];
    const r = rq();
    if (r?.perCgroup) {
      const s = r.mapStats();
      out.push([s.name, s]);
    }
    for (const [name, read] of mapStats) {
      try {
        const s = read();
        if (s !== undefined) out.push([name, s]);
      } catch {
        // one broken source must not fail the scrape
      }
    }
    return out;
  };
  registry.registerMetric(
    customMetric('quietflame_bpf_map_entries', 'Entries in a BPF map the agent owns.', 'gauge', () =>
      allMapStats().map(([map, s]) => ({ labels: { map }, value: s.entries })),
    ),
  );
  registry.registerMetric(
    customMetric('quietflame_bpf_map_capacity', 'Capacity (max_entries) of a BPF map the agent owns.', 'gauge', () =>
      allMapStats().map(([map, s]) => ({ labels: { map }, value: s.capacity })),
    ),
  );
  registry.registerMetric(profileRequests);
  registry.registerMetric(diagnosisFindings);
  if (options.health !== undefined) for (const m of healthMetrics(options.health)) registry.registerMetric(m);
  const features = options.features;
  if (features !== undefined) {
    registry.registerMetric(
      customMetric('quietflame_feature_enabled', 'Whether a feature is on (1) or off because the kernel refused its BPF program (0); why: /healthz.', 'gauge', () =>
        Object.entries(features()).map(([feature, f]) => ({ labels: { feature }, value: f.enabled ? 1 : 0 })),
      ),
    );
  }
  return registry;
}

function healthMetrics(source: () => AgentHealth): Metric[] {
  // One scrape asks every metric in turn: read the agent once per scrape, not once per metric.
  let last: { at: number; value: AgentHealth } | undefined;
  const read = (): AgentHealth => {
    const now = Date.now();
    if (last === undefined || now - last.at > 500) last = { at: now, value: source() };
    return last.value;
  };
  return [
    customMetric('quietflame_samples_total', 'Records received from the BPF programs, by kind (cpu samples, offcpu intervals).', 'counter', () =>
      Object.entries(read().samples).map(([kind, value]) => ({ labels: { kind }, value })),
    ),
    customMetric('quietflame_samples_lost_total', 'Records lost, by kind and reason (ring_buffer_full, no_task_storage, agent_queue_full).', 'counter', () =>
      read().lost.map(({ kind, reason, count }) => ({ labels: { kind, reason }, value: count })),
    ),
    customMetric('quietflame_go_processes', 'Go processes whose stacks the agent unwinds (configured in the BPF maps).', 'gauge', () => [
      { labels: {}, value: read().goProcesses },
    ]),
    customMetric('quietflame_go_binaries', 'Go binaries whose unwind tables are in the BPF maps.', 'gauge', () => [{ labels: {}, value: read().goBinaries }]),
    customMetric('quietflame_symbolization_seconds_total', 'Time the agent spent symbolizing records into profiles.', 'counter', () => [
      { labels: {}, value: read().symbolizationSeconds },
    ]),
  ];
}
