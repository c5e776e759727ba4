// A real Go service no one here wrote: Debian's /usr/bin/prometheus (a stripped, externally linked Go build),
// started on a free port with a scratch data directory that holds two hours of generated series (written by
// Debian's promtool, so it reads them as any backfilled data), scraping itself, and a PromQL load that keeps it
// busy and allocating.
//
//   const prom = await startPrometheus();          // prom.url, prom.pid
//   const load = prom.queryLoad(4);                 // 4 concurrent range queries, again and again
//   …; await load.stop(); await prom.stop();

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const PROMETHEUS = '/usr/bin/prometheus';
const PROMTOOL = '/usr/bin/promtool';

export interface Prometheus {
  proc: ChildProcess;
  pid: number;
  /** http://127.0.0.1:PORT */
  url: string;
  /** Everything it wrote on stderr so far. */
  stderr(): string;
  /** Range queries over the generated series from `concurrency` loops until stop(); stop() resolves with the count. */
  queryLoad(concurrency: number): { stop(): Promise<number> };
  stop(): Promise<void>;
}

/** A TCP port free a moment ago (the service binds it itself). */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

const SERIES = 2000;
const STEP_S = 15;
const HOURS = 2;

/** OpenMetrics text of SERIES counters over the last HOURS, one sample per STEP_S, in time order (promtool needs it). */
function generatedSeries(now: number): string {
  const start = now - HOURS * 3600;
  const out: string[] = ['# HELP load_requests Generated requests.', '# TYPE load_requests counter'];
  for (let t = start, i = 0; t < now; t += STEP_S, i++) {
    for (let s = 0; s < SERIES; s++) {
      out.push(`load_requests_total{instance="i${s % 40}",path="/p${s}",code="${200 + (s % 5)}"} ${i * ((s % 7) + 1)} ${t}`);
    }
  }
  out.push('# EOF');
  return out.join('\n') + '\n';
}

export async function startPrometheus(env: NodeJS.ProcessEnv = {}): Promise<Prometheus> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-prom-'));
  const data = path.join(dir, 'data');
  const now = Math.floor(Date.now() / 1000);
  fs.writeFileSync(path.join(dir, 'series.om'), generatedSeries(now));
  const fill = spawnSync(PROMTOOL, ['tsdb', 'create-blocks-from', 'openmetrics', path.join(dir, 'series.om'), data], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(fill.status, 0, `promtool: ${fill.stderr}`);
  fs.rmSync(path.join(dir, 'series.om'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  fs.writeFileSync(
    path.join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:${port}']\n`,
  );
  const proc = spawn(
    PROMETHEUS,
    [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${data}`, `--web.listen-address=127.0.0.1:${port}`],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } },
  );
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  // A test runner that gives up on the test (its timeout) exits without our finally blocks: no orphan service.
  const orphanGuard = (): void => void proc.kill('SIGKILL');
  process.once('exit', orphanGuard);
  void exited.then(() => process.off('exit', orphanGuard));
  const stop = async (): Promise<void> => {
    proc.kill('SIGKILL');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      assert.ok(proc.exitCode === null && proc.signalCode === null, `prometheus exited: ${stderr}`);
      const ok = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
      if (ok) break;
      assert.ok(Date.now() < deadline, `prometheus not ready after 60 s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const queryLoad = (concurrency: number): { stop(): Promise<number> } => {
    let running = true;
    let done = 0;
    // Each query reads every generated sample (2000 series × 480 points) and aggregates them differently.
    const queries = [
      'sum by (code) (rate(load_requests_total[5m]))',
      'topk(5, sum by (instance) (increase(load_requests_total[10m])))',
      'histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[1m]))) or count by (path) (load_requests_total > 100)',
    ];
    const loop = async (k: number): Promise<void> => {
      for (let i = k; running; i++) {
        const q = new URLSearchParams({ query: queries[i % queries.length]!, start: String(now - HOURS * 3600), end: String(now), step: String(STEP_S) });
        const r = await fetch(`${url}/api/v1/query_range?${q}`);
        const body = await r.text();
        if (r.status !== 200) throw new Error(`query ${queries[i % queries.length]}: ${r.status} ${body.slice(0, 300)}`);
        done++;
      }
    };
    // A failed query stops its loop; stop() throws it (no unhandled rejection meanwhile).
    const loops = Array.from({ length: concurrency }, (_, k) => loop(k).then(() => undefined, (e: Error) => e));
    return {
      stop: async () => {
        running = false;
        const failed = (await Promise.all(loops)).find((e) => e !== undefined);
        if (failed) throw failed;
        return done;
      },
    };
  };
  return { proc, pid: proc.pid!, url, stderr: () => stderr, queryLoad, stop };
}
