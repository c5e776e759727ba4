// Query parameters of the pprof endpoints, validated the way a user can act on: what was wrong and what is allowed.

export class BadRequest extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export const DEFAULT_SECONDS = 30; // net/http/pprof's default

/** A query parameter as parsed (repeated keys give an array): its first value, as Go's FormValue takes. */
export type QueryValue = string | string[] | undefined;
function first(v: QueryValue): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** `seconds`: absent → 30; otherwise a positive number no larger than max. */
export function parseSeconds(value: QueryValue, max: number): number {
  const raw = first(value);
  if (raw === undefined || raw === '') return DEFAULT_SECONDS;
  if (!/^\d+(\.\d+)?$/.test(raw)) throw new BadRequest(`seconds=${JSON.stringify(raw)}: not a number of seconds (greater than 0, at most ${max})`);
  const s = Number(raw);
  if (s <= 0 || s > max) throw new BadRequest(`seconds=${raw}: out of range (greater than 0, at most ${max})`);
  return s;
}

/** `pid`: absent → every process; otherwise a positive integer. Whether it exists is the caller's check (404). */
export function parsePid(value: QueryValue): number | undefined {
  const raw = first(value);
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d{1,10}$/.test(raw) || Number(raw) === 0 || Number(raw) > 0x3fffffff) {
    throw new BadRequest(`pid=${JSON.stringify(raw)}: not a process ID`);
  }
  return Number(raw);
}

/** `debug` of /debug/pprof/goroutine: absent → 0 (pprof protobuf), 1 (counts per stack) or 2 (every goroutine). */
export function parseDebug(value: QueryValue): 0 | 1 | 2 {
  const raw = first(value);
  if (raw === undefined || raw === '' || raw === '0') return 0;
  if (raw === '1' || raw === '2') return Number(raw) as 1 | 2;
  throw new BadRequest(`debug=${JSON.stringify(raw)}: expected 0 (pprof), 1 (counts per stack) or 2 (every goroutine, as Go prints them)`);
}

/** `traceback` of debug=2: as GOTRACEBACK names its levels; `system` adds runtime goroutines and frames. */
export function parseTraceback(value: QueryValue): 'user' | 'system' {
  const raw = first(value);
  if (raw === undefined || raw === '' || raw === 'all' || raw === 'user') return 'user';
  if (raw === 'system') return 'system';
  throw new BadRequest(`traceback=${JSON.stringify(raw)}: expected all (what runtime.Stack and debug=2 show) or system (runtime goroutines and frames too)`);
}

/** What `pod=NAMESPACE/NAME` and `container=NAME` select: processes whose pod identity matches every one given. */
export interface PodSelector {
  namespace?: string;
  pod?: string;
  container?: string;
}

const K8S_NAME = /^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$/;

/** `pod=NAMESPACE/NAME` and `container=NAME`: absent → undefined; otherwise Kubernetes names. */
export function parsePodSelector(pod: QueryValue, container: QueryValue): PodSelector | undefined {
  const p = first(pod);
  const c = first(container);
  const out: PodSelector = {};
  if (p !== undefined && p !== '') {
    const [ns, name, ...rest] = p.split('/');
    if (rest.length > 0 || !ns || !name || !K8S_NAME.test(ns) || !K8S_NAME.test(name)) {
      throw new BadRequest(`pod=${JSON.stringify(p)}: expected NAMESPACE/NAME, e.g. pod=default/web-0`);
    }
    out.namespace = ns;
    out.pod = name;
  }
  if (c !== undefined && c !== '') {
    if (!K8S_NAME.test(c)) throw new BadRequest(`container=${JSON.stringify(c)}: not a container name`);
    out.container = c;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
