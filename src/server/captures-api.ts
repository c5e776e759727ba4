// Captures started from the page: POST /api/captures starts one in the background and answers at once (202), the
// page polls GET /api/captures for its progress, then draws GET /api/captures/ID/flame and offers
// GET /api/captures/ID (the gzipped pprof) for download. Each finished capture is diagnosed (with goroutine
// snapshots of its process taken at its start and end, when the agent can read them) and kept in a bounded store.

import * as zlib from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { decodePprof, type Profile } from '../profile/pprof';
import { flameModel } from '../profile/flame';
import type { GoroutineDump } from '../goroutines/model';
import type { ReadGoroutines } from '../goroutines/snapshotter';
import type { Finding } from '../diagnose/types';
import { sampleCount, type SampleKind } from '../sampler/types';
import { BadRequest, parsePid, parseSeconds, type QueryValue } from './params';
import { trySnapshot } from './diagnosis';
import type { CaptureManager, NewProfile, SampleSink } from './capture';
import type { CaptureInfo, CaptureList } from './api-types';
import { CAPTURE_ID, CaptureStore } from './capture-store';

/** What a finished capture is diagnosed from, and what comes back (JSON-ready findings, notes on missing inputs). */
export interface CaptureAnalysis {
  kind: SampleKind;
  profile: Profile;
  pid?: number;
  dumps: GoroutineDump[];
}
export type Analyze = (a: CaptureAnalysis) => { findings: Finding[]; notes: string[] };

export interface CaptureApiDeps {
  captures: CaptureManager;
  store: CaptureStore;
  maxSeconds: number;
  logger: Logger;
  newProfile: NewProfile;
  processExists(pid: number): boolean;
  /** The executable of a process, for the capture's title. */
  exeOf(pid: number): string | undefined;
  /** A goroutine snapshot of a live Go process (throws with a one-line reason when it cannot be read). */
  goroutines?: ReadGoroutines;
  analyze: Analyze;
}

interface StartBody {
  kind?: unknown;
  seconds?: unknown;
  pid?: unknown;
}

const KINDS: readonly SampleKind[] = ['cpu', 'offcpu'];

/** A JSON number or string as the query parser would have seen it. */
function asQuery(v: unknown, what: string): QueryValue {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' || typeof v === 'string') return String(v);
  throw new BadRequest(`${what}: expected a number`);
}

export function registerCaptureApi(app: FastifyInstance, deps: CaptureApiDeps): void {
  const { store, captures } = deps;

  const snapshot = (pid: number | undefined, notes: string[], when: string): Promise<GoroutineDump | undefined> => trySnapshot(deps.goroutines, pid, notes, when);

  const run = async (info: CaptureInfo): Promise<void> => {
    const notes: string[] = [];
    const before = snapshot(info.pid, notes, 'start'); // read on the reader's thread while the capture runs
    const startUnixNs = BigInt(Date.now()) * 1_000_000n;
    const profile = deps.newProfile(info.kind, startUnixNs);
    let samples = 0;
    const sink: SampleSink = {
      add: (batch) => {
        profile.add(batch);
        samples += sampleCount(batch);
        store.progress(info.id, samples);
      },
    };
    // Nobody waits on the request: only the agent's shutdown ends the window early.
    const window = await captures.capture(info.seconds, { pid: info.pid, kind: info.kind }, new AbortController().signal, sink, startUnixNs);
    const pprof = await profile.finish(window);
    const built = profile.built?.() ?? decodePprof(pprof);
    const after = window.ended === 'elapsed' ? await snapshot(info.pid, notes, 'end') : undefined;
    const dumps = [await before, after].filter((d): d is GoroutineDump => d !== undefined);
    const { findings, notes: more } = deps.analyze({ kind: info.kind, profile: built, pid: info.pid, dumps });
    notes.push(...more);
    const flame = zlib.gzipSync(JSON.stringify(flameModel(built)), { level: 1 });
    store.finish(info.id, pprof, flame, { samples: window.samples, ended: window.ended === 'shutdown' ? 'shutdown' : 'elapsed', findings, notes });
    deps.logger.info({ capture: info.id, kind: info.kind, pid: info.pid, samples: window.samples, bytes: pprof.length }, 'capture kept');
  };

  app.get('/api/captures', async (): Promise<CaptureList> => {
    const now = Date.now();
    return {
      captures: store.list().map((c) => (c.state === 'running' ? { ...c, elapsedMs: Math.min(now - c.startedAtMs, c.seconds * 1000) } : c)),
      limits: { count: store.maxCount, bytes: store.maxBytes, maxSeconds: deps.maxSeconds },
    };
  });

  app.post<{ Body: StartBody }>('/api/captures', async (req, reply) => {
    // JSON only: a cross-site form cannot send it without the browser asking first (CORS preflight).
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) throw new BadRequest('send a JSON body (Content-Type: application/json)', 415);
    const body = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as StartBody;
    const kind = (body.kind ?? 'cpu') as SampleKind;
    if (!KINDS.includes(kind)) throw new BadRequest(`kind=${JSON.stringify(body.kind)}: expected "cpu" or "offcpu"`);
    const seconds = parseSeconds(asQuery(body.seconds, 'seconds'), deps.maxSeconds);
    const pid = parsePid(asQuery(body.pid, 'pid'));
    if (pid !== undefined && !deps.processExists(pid)) throw new BadRequest(`pid=${pid}: no such process (a thread ID is not a process ID)`, 404);
    const refused = captures.refusal([{ pid, kind }]);
    if (refused) {
      reply.header('Retry-After', '5');
      throw new BadRequest(refused, 429);
    }
    const info = store.start({ kind, seconds, pid, exe: pid === undefined ? undefined : deps.exeOf(pid) });
    run(info).catch((e: Error) => {
      store.fail(info.id, e.message);
      deps.logger.warn({ capture: info.id, err: e }, 'capture failed');
    });
    return reply.code(202).send({ capture: info });
  });

  const find = (id: string): { info: CaptureInfo; pprof?: Buffer; flame?: Buffer } => {
    if (!CAPTURE_ID.test(id)) throw new BadRequest(`capture ${JSON.stringify(id)}: not a capture ID`);
    const c = store.get(id);
    if (!c) throw new BadRequest(`capture ${id}: no such capture (it may have been dropped to keep the store within its limits)`, 404);
    if (c.info.state === 'running') throw new BadRequest(`capture ${id} is still running`, 409);
    if (!c.pprof) throw new BadRequest(`capture ${id} failed: ${c.info.error ?? 'no profile'}`, 409);
    return c;
  };

  app.get<{ Params: { id: string } }>('/api/captures/:id', async (req, reply) => {
    const c = find(req.params.id);
    return reply
      .header('Content-Type', 'application/octet-stream')
      .header('Content-Disposition', `attachment; filename="quietflame-${c.info.id}-${c.info.kind}.pb.gz"`)
      .header('X-Content-Type-Options', 'nosniff')
      .send(c.pprof);
  });

  // The flame model (src/profile/flame-model.ts), made when the capture finished and kept gzipped: sent as it is
  // to clients that take gzip (every browser), unzipped for the others.
  app.get<{ Params: { id: string } }>('/api/captures/:id/flame', async (req, reply) => {
    const c = find(req.params.id);
    reply.header('Content-Type', 'application/json; charset=utf-8').header('Vary', 'Accept-Encoding');
    if (/\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) return reply.header('Content-Encoding', 'gzip').send(c.flame);
    return reply.send(zlib.gunzipSync(c.flame!));
  });
}
