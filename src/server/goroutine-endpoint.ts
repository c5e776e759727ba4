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
import { BadRequest, parseDebug, parsePid, parseTraceback, type QueryValue } from './params';

export interface GoroutineEndpointDeps {
  goroutines: ReadGoroutines;
  processExists(pid: number): boolean;
}

export function registerGoroutineEndpoint(app: FastifyInstance, deps: GoroutineEndpointDeps): void {
  app.get<{ Querystring: Record<string, QueryValue> }>('/debug/pprof/goroutine', async (req, reply) => {
    const debug = parseDebug(req.query.debug);
    const traceback = parseTraceback(req.query.traceback);
    if (req.query.seconds !== undefined) throw new BadRequest('seconds: goroutine dumps are snapshots; take two and compare them (go tool pprof -diff_base)');
    const pid = parsePid(req.query.pid);
    if (pid === undefined) throw new BadRequest('pid: required (goroutines belong to one process; GET /api/processes lists the Go processes)');
    if (!deps.processExists(pid)) throw new BadRequest(`pid=${pid}: no such process (a thread ID is not a process ID)`, 404);
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
