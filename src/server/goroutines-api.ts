// POST /api/goroutines/analyze: a goroutine dump in the body (the text Go prints on SIGQUIT, runtime.Stack(all) or
// /debug/pprof/goroutine?debug=2; plain or gzipped), its analysis out: ?format=json (default), text, or pprof (a
// goroutine profile the page can draw); ?system=1 keeps runtime goroutines and frames. Bodies are bounded (413),
// what is not a dump is refused (400), and each analysis runs on a thread of its own with a bounded heap and time,
// at most a few at once (429), so a hostile body costs a failed request, never the agent's event loop.

import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { FastifyInstance } from 'fastify';
import { ANALYZE_FORMATS, type AnalyzeAnswer, type AnalyzeFormat, type AnalyzeJob } from '../goroutines/analyze-job';
import { BadRequest, type QueryValue } from './params';

export interface GoroutinesApiOptions {
  /** Largest body (and largest unpacked gzip body), bytes. Default 64 MiB. */
  maxBytes?: number;
  /** Analyses at once; more are refused with 429. Default 2. */
  maxConcurrent?: number;
  /** Heap of an analysis thread. Default 1024 MiB. */
  maxHeapMiB?: number;
  /** An analysis that takes longer is abandoned. Default 60 s. */
  timeoutMs?: number;
}

function first(v: QueryValue): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function parseFormat(v: QueryValue): AnalyzeFormat {
  const f = first(v) ?? 'json';
  if (!(ANALYZE_FORMATS as readonly string[]).includes(f)) throw new BadRequest(`format=${JSON.stringify(f)}: expected one of ${ANALYZE_FORMATS.join(', ')}`);
  return f as AnalyzeFormat;
}

function parseFlag(name: string, v: QueryValue): boolean {
  const f = first(v);
  if (f === undefined || f === '' || f === '0' || f === 'false') return false;
  if (f === '1' || f === 'true') return true;
  throw new BadRequest(`${name}=${JSON.stringify(f)}: expected 1 or 0`);
}

/** The body, at most maxBytes of it. A longer one is read to its end (so the client hears why) and dropped. */
async function readBody(body: Readable | undefined, maxBytes: number): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n <= maxBytes) chunks.push(chunk);
    else if (n > 4 * maxBytes) body.destroy(); // not a dump that was a little too big: stop listening
  }
  if (n > maxBytes) throw new BadRequest(`the dump is larger than ${maxBytes >> 20} MiB: not analyzed (send a smaller part, or gzip it)`, 413);
  return Buffer.concat(chunks);
}

export function registerGoroutinesApi(app: FastifyInstance, opts: GoroutinesApiOptions = {}): void {
  const maxBytes = opts.maxBytes ?? 64 << 20;
  const maxConcurrent = opts.maxConcurrent ?? 2;
  let running = 0;
  const analyze = (job: AnalyzeJob): Promise<AnalyzeAnswer> => {
    const maxHeapMiB = opts.maxHeapMiB ?? 1024;
    const timeoutMs = opts.timeoutMs ?? 60_000;
    return new Promise<AnalyzeAnswer>((resolve, reject) => {
      const worker = new Worker(path.join(__dirname, '../goroutines/analyze-worker.js'), { resourceLimits: { maxOldGenerationSizeMb: maxHeapMiB } });
      const timer = setTimeout(() => {
        reject(new BadRequest(`the analysis took over ${timeoutMs / 1000} s and was abandoned`, 413));
        void worker.terminate();
      }, timeoutMs);
      worker.once('message', (m: AnalyzeAnswer | { error: string }) => {
        clearTimeout(timer);
        void worker.terminate();
        if ('error' in m) reject(new Error(`goroutine dump analysis failed: ${m.error}`));
        else resolve(m);
      });
      worker.once('error', (e: Error & { code?: string }) => {
        clearTimeout(timer);
        reject(e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? new BadRequest(`the dump needs more than ${maxHeapMiB} MiB to analyze: not analyzed`, 413) : e);
      });
      worker.postMessage(job, [job.body.buffer as ArrayBuffer]);
    });
  };

  // Its own scope: the body arrives as a stream, whatever its type, and is bounded here.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    scope.post<{ Querystring: Record<string, QueryValue> }>('/api/goroutines/analyze', async (req, reply) => {
      const format = parseFormat(req.query.format);
      const system = parseFlag('system', req.query.system);
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > maxBytes) throw new BadRequest(`the dump is ${declared} bytes; at most ${maxBytes >> 20} MiB is analyzed (send a smaller part, or gzip it)`, 413);
      if (running >= maxConcurrent) {
        reply.header('Retry-After', '5');
        throw new BadRequest(`${running} goroutine dumps are being analyzed: try again shortly`, 429);
      }
      running++;
      try {
        const body = await readBody(req.body as Readable | undefined, maxBytes);
        if (body.length === 0) throw new BadRequest('empty body: send the goroutine dump text (SIGQUIT output, runtime.Stack(all) or debug=2) as the request body');
        const answer = await analyze({ body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength), format, system, maxBytes });
        if (answer.status !== 200) throw new BadRequest(Buffer.from(answer.body).toString('utf8').trimEnd(), answer.status);
        req.log.info({ format, bytes: body.length }, 'goroutine dump analyzed');
        reply.header('Content-Type', answer.contentType).header('X-Content-Type-Options', 'nosniff');
        if (format === 'pprof') reply.header('Content-Disposition', 'attachment; filename="goroutine"');
        return reply.send(Buffer.from(answer.body.buffer, answer.body.byteOffset, answer.body.byteLength));
      } finally {
        running--;
      }
    });
  });
}
