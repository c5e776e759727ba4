// The agent's HTTP face: net/http/pprof conventions for profiles (so `go tool pprof http://NODE:7070/...` just
// works), plain JSON for the process list, and a health check that is green only while the BPF programs run.

import Fastify, { FastifyBaseLogger, FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { countProfileRequest } from '../metrics/registry';
import { RawSample, SampleKind, SampleSource } from '../sampler/types';
import { describeSelector, podMatcher, type PodOf } from './pod-selector';
import { BadRequest, parsePid, parsePodSelector, parseSeconds, type QueryValue } from './params';
import { CaptureManager, CaptureWindow, type NewProfile, TooManyCaptures } from './capture';
import { FeatureUnavailable, type FeatureState } from '../bpf/features';
import { CaptureStore } from './capture-store';
import { type Analyze, registerCaptureApi } from './captures-api';
import { registerUi } from './ui';
import { analyzeCapture, registerDiagnoseApi } from './diagnosis';
import { registerGoroutinesApi } from './goroutines-api';
import type { ReadGoroutines } from '../goroutines/snapshotter';
import { registerGoroutineEndpoint } from './goroutine-endpoint';
import type { AccessControl } from './access';

export interface ProcessSummary {
  pid: number;
  exe: string;
  goVersion?: string;
  buildId?: string;
  /** The 64-hex container ID from its cgroup path, when it runs in a container. */
  containerId?: string;
  /** NAMESPACE/NAME of its pod, where known. */
  pod?: string;
  namespace?: string;
  /** Its container's name in the pod, where known. */
  container?: string;
}

export type { PodOf };

export interface AgentServices {
  sampler: SampleSource;
  /** A profile in the making: takes samples as they come, then encodes the finished window (gzipped pprof). */
  newProfile: NewProfile;
  /** Go processes the agent knows about. */
  processes(): ProcessSummary[];
  /** Whether a process (thread group) with this pid exists on the node (404 otherwise; a thread ID is not one). */
  processExists(pid: number): boolean;
  /** Served at /metrics (Prometheus text format). */
  metrics: Registry;
  /** A goroutine snapshot of a live Go process, read from outside (throws with a one-line reason). */
  /** Every goroutine of a live Go process, read from outside (rejects with GoroutineReadError). */
  goroutines?: ReadGoroutines;
  /** Diagnoses a finished page capture (default: the diagnosis rules, findings counted in /metrics). */
  analyzeCapture?: Analyze;
  /** Pod identity of a process (none: `pod=` and `container=` select nothing). */
  podOf?: PodOf;
  /** The features the kernel gave and why one is off (shown by /healthz). */
  features?: () => Record<string, FeatureState>;
  /** Executables being read for the first time, off the event loop (/api/processes; their count in /healthz). */
  readingBinaries?: () => string[];
}

export interface ServerOptions {
  logger: Logger;
  maxSeconds?: number;
  /** Captures at once (default 8), and node-wide off-CPU captures among them (default 1). */
  maxConcurrentProfiles?: number;
  maxNodeOffCpuProfiles?: number;
  /** Page captures kept: at most this many (default 20) and this many bytes of pprof (default 32 MiB). */
  keepCaptures?: number;
  keepCaptureBytes?: number;
  /** TLS and credentials checked on every route (none: plain HTTP, all open). */
  access?: AccessControl;
}

/** Errors as net/http/pprof writes them: text/plain with X-Go-Pprof, which pprof clients show to the user. */
function pprofError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply
    .code(status)
    .header('Content-Type', 'text/plain; charset=utf-8')
    .header('X-Go-Pprof', '1')
    .header('X-Content-Type-Options', 'nosniff')
    .send(message + '\n');
}

export function buildServer(services: AgentServices, opts: ServerOptions): { app: FastifyInstance; captures: CaptureManager } {
  const maxSeconds = opts.maxSeconds ?? 300;
  const captures = new CaptureManager(services.sampler, {
    total: opts.maxConcurrentProfiles ?? 8,
    nodeWideOffCpu: opts.maxNodeOffCpuProfiles ?? 1,
  });
  const https = opts.access?.https ? { https: opts.access.https } : {};
  // With `https` Fastify's types switch to an https.Server instance; routes and hooks are the same.
  const app = Fastify({ loggerInstance: opts.logger as FastifyBaseLogger, return503OnClosing: true, forceCloseConnections: true, ...https }) as unknown as FastifyInstance;
  opts.access?.register(app); // first, so every route added below or by later plugins inherits it

  // Shutdown: end in-flight captures first so their requests answer and close() is not held up for `seconds`.
  app.addHook('preClose', async () => captures.shutdown());

  app.setNotFoundHandler((req, reply) => pprofError(reply, 404, `${req.method} ${req.url.split('?')[0]}: no such endpoint`));
  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    if (err instanceof BadRequest) return pprofError(reply, err.status, err.message);
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return pprofError(reply, err.statusCode, err.message);
    req.log.error({ err }, 'request failed');
    return pprofError(reply, 500, `internal error: ${err.message}`);
  });

  // Profile requests by endpoint and status, for the agent's own health metrics (bounded: routes, not URLs).
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url;
    if (route?.startsWith('/debug/pprof/')) countProfileRequest(route, reply.statusCode);
  });

  app.get('/metrics', async (_req, reply) => reply.type(services.metrics.contentType).send(await services.metrics.metrics()));

  app.get('/healthz', async (_req, reply) => {
    // 200 while the CPU sampler is attached (a feature the kernel refused does not fail the probe: it is listed).
    // A count only: /healthz is open to anyone who reaches the port, and paths tell what other tenants run.
    const body = { features: services.features?.() ?? {}, binariesBeingRead: services.readingBinaries?.().length ?? 0 };
    if (services.sampler.attached) return reply.send({ status: 'ok', ...body });
    return reply.code(503).send({ status: 'BPF programs are not attached', ...body });
  });

  app.get('/api/processes', async () => ({ processes: services.processes(), readingBinaries: services.readingBinaries?.() ?? [] }));

  // pprof asks here for mappings without has_functions (only binaries the agent could not read). Profiles carry
  // their own symbols, so the answer is net/http/pprof's "symbolization available" with no further names:
  // pprof then keeps those addresses as they are instead of failing the whole fetch.
  app.get('/debug/pprof/symbol', async (_req, reply) => reply.type('text/plain; charset=utf-8').send('num_symbols: 1\n'));
  app.post('/debug/pprof/symbol', async (_req, reply) => reply.type('text/plain; charset=utf-8').send('num_symbols: 1\n'));
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 1 << 20 }, (_req, body, done) => done(null, body));

  // CPU and off-CPU profiles: the same parameters, errors and answers; only the records differ.
  const profileRoute = (url: string, kind: SampleKind, filename: string): void => {
    app.get<{ Querystring: Record<string, QueryValue> }>(url, async (req, reply) => {
      const seconds = parseSeconds(req.query.seconds, maxSeconds);
      const pid = parsePid(req.query.pid);
      if (pid !== undefined && !services.processExists(pid)) return pprofError(reply, 404, `pid=${pid}: no such process (a thread ID is not a process ID)`);
      const selector = parsePodSelector(req.query.pod, req.query.container);
      const inPod = selector && podMatcher(selector, services.podOf);
      if (inPod && !services.processes().some((p) => inPod(p.pid))) {
        return pprofError(reply, 404, `${describeSelector(selector)}: no Go process the agent knows runs there`);
      }
      const startUnixNs = BigInt(Date.now()) * 1_000_000n;
      const whole = services.newProfile(kind, startUnixNs);
      const profile = inPod ? { ...whole, add: (batch: readonly RawSample[]) => whole.add(batch.filter((s) => inPod(s.pid))), finish: whole.finish } : whole;
      let window: CaptureWindow;
      try {
        window = await captures.capture(seconds, { pid, kind }, req.signal, profile, startUnixNs);
      } catch (e) {
        if (e instanceof TooManyCaptures) return pprofError(reply.header('Retry-After', '5'), 429, e.message);
        if (e instanceof FeatureUnavailable) return pprofError(reply, 503, e.message);
        throw e;
      }
      if (window.ended === 'aborted') return reply; // the client left: nobody to answer
      req.log.info({ kind, pid, seconds, samples: window.samples, ended: window.ended }, 'profile captured');
      const body = await profile.finish(window);
      return reply
        .header('Content-Type', 'application/octet-stream')
        .header('Content-Disposition', `attachment; filename="${filename}"`)
        .header('X-Content-Type-Options', 'nosniff')
        .send(body);
    });
  };
  profileRoute('/debug/pprof/profile', 'cpu', 'profile');
  profileRoute('/debug/pprof/offcpu', 'offcpu', 'offcpu');

  // The page and its captures.
  registerUi(app);
  registerCaptureApi(app, {
    captures,
    store: new CaptureStore(opts.keepCaptures ?? 20, opts.keepCaptureBytes ?? 32 << 20),
    maxSeconds,
    logger: opts.logger,
    newProfile: (kind, start) => services.newProfile(kind, start),
    processExists: (pid) => services.processExists(pid),
    exeOf: (pid) => services.processes().find((p) => p.pid === pid)?.exe,
    goroutines: services.goroutines,
    analyze: (a) => (services.analyzeCapture ?? analyzeCapture)(a),
  });
  registerGoroutinesApi(app);
  registerDiagnoseApi(app, {
    captures,
    maxSeconds,
    newProfile: (kind, start) => services.newProfile(kind, start),
    processExists: (pid) => services.processExists(pid),
    goroutines: services.goroutines,
  });
  if (services.goroutines) {
    registerGoroutineEndpoint(app, {
      goroutines: services.goroutines,
      processExists: (pid) => services.processExists(pid),
      processes: () => services.processes(),
      podOf: services.podOf,
    });
  }

  return { app, captures };
}
