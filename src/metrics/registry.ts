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
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';

import {
  type RunqueueLatency,
  customMetric,
  runqueueLatencyDrops,
  runqueueLatencyHistogram,
} from './runqlat';

export interface MapStats {
  entries: number;
  capacity: number;
}

export interface MetricsRegistryOptions {
  /** The run-queue latency source (or a getter, for one started or restarted later); absent = no such series. */
  runqueueLatency?: RunqueueLatency | (() => RunqueueLatency | undefined);
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

const REDUNDANT_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function createMetricsRegistry(options: MetricsRegistryOptions = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry });
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
  return registry;
}
