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
