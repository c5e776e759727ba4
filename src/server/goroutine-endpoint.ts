// GET /debug/pprof/goroutine?pid=P — net/http/pprof's goroutine profile, for any Go process on the node, read from
// outside (never stopped or signalled): debug=0 the pprof protobuf (goroutine/count, labels state, wait_reason and
// the goroutine's pprof labels), debug=1 counts per stack, debug=2 every goroutine as Go prints it on SIGQUIT, with
// the pprof labels Go's own text leaves out; traceback=system adds the runtime's goroutines and frames.

import type { FastifyInstance } from 'fastify';
import { GoroutineReadError } from '../goroutines/errors';
import { goroutineProfile } from '../goroutines/profile';
import { writeCountText } from '../goroutines/count-text';
import { writeTracebackText } from '../goroutines/traceback-text';
import type { ReadGoroutines } from '../goroutines/snapshotter';
import { TooManySnapshots } from '../goroutines/snapshotter';
import { BadRequest, parseDebug, parsePid, parsePodSelector, parseTraceback, type QueryValue } from './params';
import { describeSelector, podMatcher, type PodOf } from './pod-selector';

export interface GoroutineEndpointDeps {
  goroutines: ReadGoroutines;
  processExists(pid: number): boolean;
  /** The Go processes the agent knows, and where they run: pod= and container= pick one of them. */
  processes(): ReadonlyArray<{ pid: number }>;
  podOf?: PodOf;
}

const MAX_WARNING_HEADERS = 8;

/** The one process a request names: by pid=, or by pod=/container= when exactly one Go process runs there. */
function targetPid(query: Record<string, QueryValue>, deps: GoroutineEndpointDeps): number {
  const pid = parsePid(query.pid);
  const selector = parsePodSelector(query.pod, query.container);
  if (pid === undefined && !selector) throw new BadRequest('pid: required, or pod=NAMESPACE/NAME and/or container=NAME (goroutines belong to one process; GET /api/processes lists the Go processes)');
  if (pid !== undefined && !deps.processExists(pid)) throw new BadRequest(`pid=${pid}: no such process (a thread ID is not a process ID)`, 404);
  if (!selector) return pid!;
  const inPod = podMatcher(selector, deps.podOf);
  if (pid !== undefined) {
    if (!inPod(pid)) throw new BadRequest(`pid=${pid} does not run in ${describeSelector(selector)}`, 404);
    return pid;
  }
  const there = deps.processes().filter((p) => inPod(p.pid)).map((p) => p.pid);
  if (there.length === 0) throw new BadRequest(`${describeSelector(selector)}: no Go process the agent knows runs there`, 404);
  if (there.length > 1) throw new BadRequest(`${describeSelector(selector)}: ${there.length} Go processes run there (pids ${there.join(', ')}): add pid=`);
  return there[0]!;
}

/** What could not be read, as headers a client can show (one line each, printable, a bounded number). */
function warningHeaders(warnings: readonly string[]): string[] {
  const lines = warnings.slice(0, MAX_WARNING_HEADERS).map((w) => w.replace(/[^\x20-\x7e]/g, '?').slice(0, 300));
  if (warnings.length > MAX_WARNING_HEADERS) lines.push(`... and ${warnings.length - MAX_WARNING_HEADERS} more`);
  return lines;
}

export function registerGoroutineEndpoint(app: FastifyInstance, deps: GoroutineEndpointDeps): void {
  app.get<{ Querystring: Record<string, QueryValue> }>('/debug/pprof/goroutine', async (req, reply) => {
    const debug = parseDebug(req.query.debug);
    const traceback = parseTraceback(req.query.traceback);
    if (req.query.seconds !== undefined) throw new BadRequest('seconds: goroutine dumps are snapshots; take two and compare them (go tool pprof -diff_base)');
    const pid = targetPid(req.query, deps);
    let dump;
    try {
      dump = await deps.goroutines(pid, { locations: debug !== 2 });
    } catch (e) {
      if (e instanceof GoroutineReadError) throw new BadRequest(e.message, e.httpStatus);
      if (e instanceof TooManySnapshots) {
        reply.header('Retry-After', '5');
        throw new BadRequest(e.message, 429);
      }
      throw e;
    }
    req.log.info({ pid, debug, goroutines: dump.goroutines.length, warnings: dump.warnings.length }, 'goroutines read');
    reply.header('X-Content-Type-Options', 'nosniff');
    // What the reader skipped or could not read: in the profile's comments (go tool pprof -comments) and here.
    if (dump.warnings.length > 0) reply.header('X-Quietflame-Warning', warningHeaders(dump.warnings));
    if (debug === 0) {
      return reply
        .header('Content-Type', 'application/octet-stream')
        .header('Content-Disposition', 'attachment; filename="goroutine"')
        .send(goroutineProfile(dump));
    }
    const text = debug === 1 ? writeCountText(dump) : writeTracebackText(dump, { system: traceback === 'system', labels: true });
    return reply.type('text/plain; charset=utf-8').send(text);
  });
}
