// Run-queue latency from BPF (bpf/runqlat.bpf.c + src/metrics/runqlat.ts) and its Prometheus export
// (src/metrics/registry.ts), checked against real tools: bpftrace measuring the same window with bcc's
// runqlat method, promtool's linter, and a real Prometheus server scraping the registry over HTTP.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

import { ensureTracefs, mounts } from '../../src/bpf/mount';
import { bpfObjectPath } from '../../src/bpf/native';
import { CgroupPaths } from '../../src/metrics/cgroup-paths';
import { type AgentHealth, MAX_ENDPOINTS, countProfileRequest, createMetricsRegistry, registerMapStats } from '../../src/metrics/registry';
import {
  BUCKET_LE,
  type LatencyHistogram,
  RUNQ_SLOTS,
  RunqHist,
  RunqueueLatency,
  type RunqueueLatencySnapshot,
  cgroupRunqueueLatency,
} from '../../src/metrics/runqlat';
import { bpfTest, sleep, waitFor, waitForAsync } from '../bpf/support';
import { Bpftrace, MARKER_PROBES, MARK_OFF, MARK_ON, mark, stopChild } from '../support/bpftrace';
import { buildFixture, newestToolchain } from '../support/go-toolchains';

const RUNQLAT = bpfObjectPath('runqlat');
const WINDOW_MS = 4000;
// Four CPU hogs for the two cores of these machines: twice as many runnable threads as CPUs.
const HOGS = Math.max(4, 2 * availableParallelism());

// ---- helpers ---------------------------------------------------------------------------------------------------

/** A test needing real BPF, runqlat.bpf.o and these tools: skipped locally with the reason, failed under CI=true. */
function rqTest(name: string, tools: string[], fn: (t: TestContext) => Promise<void>): void {
  bpfTest(name, async (t) => {
    const missing = [
      ...(existsSync(RUNQLAT) ? [] : [`${RUNQLAT} (run \`npm run build:bpf\`)`]),
      ...tools.filter((tool) => !onPath(tool)).map((tool) => `${tool} (run scripts/install-system-deps.sh)`),
    ];
    if (missing.length > 0) {
      const why = `missing: ${missing.join(', ')}`;
      if (process.env.CI === 'true') assert.fail(`cannot run (CI=true, nothing may skip): ${why}`);
      t.skip(why);
      return;
    }
    await fn(t);
  });
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, tool)));
}

/** CPU-bound processes that never sleep; killed (and reaped) by the returned function. */
function spawnHogs(n: number): { pids: number[]; stop(): Promise<void> } {
  const procs: ChildProcess[] = [];
  for (let i = 0; i < n; i++) procs.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  return {
    pids: procs.map((p) => p.pid as number),
    async stop() {
      await Promise.all(procs.map((p) => stopChild(p, 'SIGKILL')));
    },
  };
}

function delta(a: RunqueueLatencySnapshot, b: RunqueueLatencySnapshot): LatencyHistogram {
  return { slots: b.slots.map((v, i) => v - (a.slots[i] ?? 0)), sumNs: b.sumNs - a.sumNs, count: b.count - a.count };
}

/** The slot holding the q-quantile: the first whose cumulative count reaches q × total. */
function quantileSlot(slots: number[], q: number): number {
  const total = slots.reduce((a, b) => a + b, 0);
  let cum = 0;
  for (let i = 0; i < slots.length; i++) {
    cum += slots[i] ?? 0;
    if (cum >= q * total && cum > 0) return i;
  }
  return -1;
}

/** The q-quantile in µs, interpolated inside its [2^i, 2^(i+1)) µs slot as Prometheus's histogram_quantile does. */
function quantileUs(slots: number[], q: number): number {
  const total = slots.reduce((a, b) => a + b, 0);
  const i = quantileSlot(slots, q);
  const below = slots.slice(0, i).reduce((a, b) => a + b, 0);
  const lo = i === 0 ? 0 : 2 ** i;
  return lo + (2 ** (i + 1) - lo) * ((q * total - below) / (slots[i] ?? 1));
}

function describe(h: LatencyHistogram): string {
  const us = (q: number): string => quantileUs(h.slots, q).toFixed(0);
  return `count ${h.count}, p50 ${us(0.5)} µs (slot ${quantileSlot(h.slots, 0.5)}), p90 ${us(0.9)} µs, p99 ${us(0.99)} µs (slot ${quantileSlot(h.slots, 0.99)})`;
}

// bcc's runqlat method in bpftrace (tools/runqlat.py: enqueue at wakeup/wakeup_new, and at sched_switch for a prev
// still TASK_RUNNING, read from the task like bcc does — the tracepoint's prev_state reports a preempted task
// as TASK_REPORT_MAX, not 0; the idle task is skipped as bcc's trace_enqueue does). Only latencies that end
// between two marker syscalls (kill(MARK, 0), which fails with ESRCH) go into the histogram, so its window
// is exactly the one the test reads the BPF map around.
const BPFTRACE_RUNQLAT = `${MARKER_PROBES}
tracepoint:sched:sched_wakeup, tracepoint:sched:sched_wakeup_new { @qtime[args->pid] = nsecs; }
tracepoint:sched:sched_switch
{
	if (args->prev_pid && curtask->__state == 0) { @qtime[args->prev_pid] = nsecs; }
	$ns = @qtime[args->next_pid];
	if ($ns && @on) { @usecs = hist((nsecs - $ns) / 1000); }
	delete(@qtime[args->next_pid]);
}
END { clear(@qtime); clear(@on); }
`;

/** bpftrace's @usecs histogram as counts per floor-log2 µs slot (its [0] and [1] are both slot 0). */
async function bpftraceSlots(bt: Bpftrace, timeoutMs: number): Promise<number[]> {
  const slots = new Array<number>(RUNQ_SLOTS).fill(0);
  for (const b of (await bt.printed('hist', '@usecs', timeoutMs)) as Array<{ min: number; count: number }>) {
    const slot = Math.min(b.min <= 1 ? 0 : Math.floor(Math.log2(b.min)), RUNQ_SLOTS - 1);
    slots[slot] = (slots[slot] ?? 0) + b.count;
  }
  return slots;
}

interface ParsedHistogram {
  le: string[];
  buckets: number[];
  sum: number;
  count: number;
}

/** One histogram out of Prometheus text exposition, le in order of appearance. */
function parseHistogram(text: string, name: string): ParsedHistogram {
  const out: ParsedHistogram = { le: [], buckets: [], sum: NaN, count: NaN };
  for (const line of text.split('\n')) {
    let m = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`).exec(line);
    if (m) {
      out.le.push(m[1] as string);
      out.buckets.push(Number(m[2]));
      continue;
    }
    m = new RegExp(`^${name}_(sum|count) (\\S+)$`).exec(line);
    if (m) out[m[1] as 'sum' | 'count'] = Number(m[2]);
  }
  return out;
}

function sampleValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function cgroup2Root(): string | undefined {
  return mounts().find((m) => m.fstype === 'cgroup2')?.target;
}

// ---- tests -----------------------------------------------------------------------------------------------------

rqTest('struct runq_hist in the object BTF matches the TS codec', [], async () => {
  const btf = execFileSync('bpftool', ['btf', 'dump', 'file', RUNQLAT], { encoding: 'utf8' });
  const m = /STRUCT 'runq_hist' size=(\d+) vlen=3\n((?:\s+'.*\n){3})/.exec(btf);
  assert.ok(m, 'struct runq_hist not in BTF');
  assert.equal(Number(m[1]), RunqHist.size);
  const offsets = [...(m[2] ?? '').matchAll(/'(\w+)' type_id=\d+ bits_offset=(\d+)/g)].map((x) => [x[1], Number(x[2]) / 8]);
  assert.deepEqual(offsets, Object.entries(RunqHist.offsets));
});

rqTest(`${HOGS} CPU hogs on ${availableParallelism()} cores: count and mean wait rise over idle, upper quantiles never fall; bpftrace agrees on the median`, ['bpftrace'], async (t) => {
  ensureTracefs();
  const rq = RunqueueLatency.start();
  let hogs: ReturnType<typeof spawnHogs> | undefined;
  let bt: Bpftrace | undefined;
  try {
    await sleep(300);
    const a = rq.read();
    await sleep(WINDOW_MS);
    const b = rq.read();
    const idle = delta(a, b);

    bt = new Bpftrace(BPFTRACE_RUNQLAT);
    await bt.waitPrintf('ready', 60_000);
    hogs = spawnHogs(HOGS);
    await sleep(1000); // probes all attached, hogs competing
    const c = rq.read();
    mark(MARK_ON);
    await sleep(WINDOW_MS);
    mark(MARK_OFF);
    const d = rq.read();
    await bt.waitPrintf('on', 5000);
    const loaded = delta(c, d);
    const btSlots = await bpftraceSlots(bt, 30_000);
    await hogs.stop();
    const btHist: LatencyHistogram = { slots: btSlots, sumNs: 0n, count: btSlots.reduce((x, y) => x + y, 0) };

    t.diagnostic(`idle   ${WINDOW_MS} ms: ${describe(idle)}`);
    t.diagnostic(`loaded ${WINDOW_MS} ms: ${describe(loaded)}`);
    t.diagnostic(`bpftrace, same window: ${describe(btHist)}`);
    t.diagnostic(`loaded slots ${JSON.stringify(loaded.slots.slice(0, 16))}`);
    t.diagnostic(`bpftrace     ${JSON.stringify(btSlots.slice(0, 16))}`);

    assert.ok(idle.count > 0, 'no run-queue latency recorded while idle');
    assert.equal(idle.count, idle.slots.reduce((x, y) => x + y, 0));
    assert.ok(loaded.count > idle.count, `count: loaded ${loaded.count} should exceed idle ${idle.count}`);
    // On a machine already busy with other work the "idle" window has a long tail too (the top slots can be the
    // same): the loaded upper quantiles are never below idle's, and the mean wait is longer.
    for (const q of [0.9, 0.99]) {
      const [li, ii] = [quantileSlot(loaded.slots, q), quantileSlot(idle.slots, q)];
      assert.ok(li >= ii, `p${q * 100}: loaded slot ${li} should not be below idle slot ${ii}`);
    }
    const mean = (h: LatencyHistogram): number => Number(h.sumNs) / h.count;
    assert.ok(mean(loaded) > mean(idle), `mean wait: loaded ${mean(loaded).toFixed(0)} ns should exceed idle ${mean(idle).toFixed(0)} ns`);
    const [ours, theirs] = [quantileSlot(loaded.slots, 0.5), quantileSlot(btSlots, 0.5)];
    assert.ok(Math.abs(ours - theirs) <= 1, `median slot: ours ${ours}, bpftrace ${theirs} (more than one log2 bucket apart)`);
    const ratio = loaded.count / btHist.count;
    assert.ok(ratio > 0.9 && ratio < 1.1, `counts in the same window: ours ${loaded.count}, bpftrace ${btHist.count}`);
    const meanUs = Number(loaded.sumNs) / loaded.count / 1000;
    assert.ok(meanUs >= 1 && meanUs < 2 ** RUNQ_SLOTS, `mean ${meanUs} µs`);
    assert.ok(rq.attached);
    assert.deepEqual(rq.read().drops, { start: 0, cgroup_hists: 0 });
  } finally {
    await hogs?.stop();
    await bt?.kill();
    rq.close();
  }
});

rqTest('node-wide off-CPU seconds: blocked covers sleeping threads; runnable grows with CPU hogs, within the histogram sum', [], async (t) => {
  const rq = RunqueueLatency.start();
  const fixture = spawn(buildFixture({ go: newestToolchain().version, fixture: 'offcpu', mode: 'plain' }), [], { stdio: ['ignore', 'pipe', 'inherit'] });
  let hogs: ReturnType<typeof spawnHogs> | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      fixture.stdout!.once('data', () => resolve());
      fixture.once('exit', (code) => reject(new Error(`offcpu fixture exited with ${code}`)));
    });
    // Two of the fixture's threads sleep (read(2) on a pipe fed every 20 ms, nanosleep(2) of 10 ms) nearly all
    // the time: the node's blocked time grows by at least that much.
    const a = rq.read();
    await sleep(WINDOW_MS);
    const b = rq.read();
    const blocked = Number(b.offCpuNs.blocked - a.offCpuNs.blocked) / 1e6;
    assert.ok(blocked >= 2 * 0.9 * WINDOW_MS, `blocked grew ${blocked.toFixed(0)} ms in ${WINDOW_MS} ms; two threads alone sleep ~${2 * WINDOW_MS} ms`);

    hogs = spawnHogs(HOGS);
    await sleep(300);
    const c = rq.read();
    await sleep(WINDOW_MS);
    const d = rq.read();
    const runnable = Number(d.offCpuNs.runnable - c.offCpuNs.runnable) / 1e6;
    const histSum = Number(d.sumNs - c.sumNs) / 1e6;
    t.diagnostic(`blocked +${blocked.toFixed(0)} ms idle; runnable +${runnable.toFixed(0)} ms with ${HOGS} hogs, histogram _sum +${histSum.toFixed(0)} ms`);
    // HOGS threads on availableParallelism() CPUs: about HOGS - CPUs of them wait at any moment.
    assert.ok(runnable >= WINDOW_MS, `runnable grew ${runnable.toFixed(0)} ms in ${WINDOW_MS} ms with ${HOGS} hogs`);
    // User threads' waits are a part of all threads' waits (small slack: the two maps are read one after the other).
    assert.ok(runnable <= histSum + 50, `runnable ${runnable.toFixed(0)} ms > the histogram's _sum ${histSum.toFixed(0)} ms`);
  } finally {
    await hogs?.stop();
    await stopChild(fixture, 'SIGKILL');
    rq.close();
  }
});

rqTest('promtool check metrics finds nothing; scrapes are cumulative, monotonic, with stable le strings', ['promtool'], async (t) => {
  const rq = RunqueueLatency.start();
  const hogs = spawnHogs(HOGS);
  try {
    const health: AgentHealth = {
      samples: { cpu: 1200, offcpu: 30 },
      lost: [
        { kind: 'cpu', reason: 'ring_buffer_full', count: 3 },
        { kind: 'offcpu', reason: 'no_task_storage', count: 0 },
      ],
      goProcesses: 6,
      goBinaries: 4,
      symbolizationSeconds: 0.25,
    };
    const registry = createMetricsRegistry({ runqueueLatency: rq, health: () => health });
    const name = 'quietflame_runqueue_latency_seconds';
    // Health metrics with values in them, so promtool sees them too.
    const unregister = registerMapStats('test_pc_table', () => ({ entries: 7, capacity: 4096 }));
    const unregisterBroken = registerMapStats('test_broken', () => {
      throw new Error('a broken source must not fail the scrape');
    });
    countProfileRequest('/debug/pprof/profile', 200);
    countProfileRequest('/debug/pprof/profile', 200);
    countProfileRequest('/debug/pprof/offcpu', 400);
    const scrapes: ParsedHistogram[] = [];
    let text = '';
    for (let i = 0; i < 6; i++) {
      await sleep(250);
      text = await registry.metrics();
      scrapes.push(parseHistogram(text, name));
    }

    const lint = execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    assert.equal(lint.trim(), '', `promtool: ${lint}`);
    assert.match(text, new RegExp(`^# TYPE ${name} histogram$`, 'm'));
    assert.match(text, /^process_cpu_seconds_total \S+$/m);

    const expectedLe = [...BUCKET_LE, '+Inf'];
    assert.equal(expectedLe[0], '0.000002');
    assert.equal(expectedLe.at(-2), '2147.483648');
    for (const [i, s] of scrapes.entries()) {
      assert.deepEqual(s.le, expectedLe, `scrape ${i}: le strings`);
      for (let j = 1; j < s.buckets.length; j++) assert.ok((s.buckets[j] as number) >= (s.buckets[j - 1] as number), `scrape ${i}: bucket ${s.le[j]} below ${s.le[j - 1]}`);
      assert.equal(s.buckets.at(-1), s.count, `scrape ${i}: +Inf != _count`);
      if (i === 0) continue;
      const prev = scrapes[i - 1] as ParsedHistogram;
      s.buckets.forEach((v, j) => assert.ok(v >= (prev.buckets[j] as number), `scrape ${i}: le=${s.le[j]} went down ${prev.buckets[j]} -> ${v}`));
      assert.ok(s.sum >= prev.sum && s.count >= prev.count, `scrape ${i}: _sum/_count went down`);
    }
    const [first, last] = [scrapes[0] as ParsedHistogram, scrapes.at(-1) as ParsedHistogram];
    assert.ok(last.count > first.count, 'no latencies recorded across the scrapes');
    t.diagnostic(`6 scrapes: _count ${first.count} -> ${last.count}, _sum ${first.sum} -> ${last.sum} s`);

    assert.equal(sampleValue(text, 'quietflame_bpf_map_entries{map="test_pc_table"}'), 7);
    assert.equal(sampleValue(text, 'quietflame_bpf_map_capacity{map="test_pc_table"}'), 4096);
    assert.doesNotMatch(text, /test_broken/);
    assert.equal(sampleValue(text, 'quietflame_profile_requests_total{endpoint="/debug/pprof/profile",code="200"}'), 2);
    assert.equal(sampleValue(text, 'quietflame_profile_requests_total{endpoint="/debug/pprof/offcpu",code="400"}'), 1);
    assert.equal(sampleValue(text, 'quietflame_runqueue_latency_drops_total{map="start"}'), 0);
    assert.equal(sampleValue(text, 'quietflame_samples_total{kind="offcpu"}'), 30);
    assert.equal(sampleValue(text, 'quietflame_samples_lost_total{kind="cpu",reason="ring_buffer_full"}'), 3);
    assert.equal(sampleValue(text, 'quietflame_go_processes'), 6);
    assert.equal(sampleValue(text, 'quietflame_go_binaries'), 4);
    assert.equal(sampleValue(text, 'quietflame_symbolization_seconds_total'), 0.25);
    assert.ok((sampleValue(text, 'quietflame_offcpu_seconds_total{state="runnable"}') ?? 0) > 0, 'the hogs waited to run');
    assert.ok((sampleValue(text, 'quietflame_offcpu_seconds_total{state="blocked"}') ?? 0) > 0, 'threads of the node slept');

    // Bounded label cardinality: endpoints past MAX_ENDPOINTS and odd codes fold into "other".
    for (let i = 0; i < MAX_ENDPOINTS + 10; i++) countProfileRequest(`/made/up/${i}`, i === 0 ? 'weird' : 404);
    const after = await registry.metrics();
    const series = after.split('\n').filter((l) => l.startsWith('quietflame_profile_requests_total{'));
    assert.ok(series.length <= MAX_ENDPOINTS + 2, `${series.length} series`);
    assert.ok(sampleValue(after, 'quietflame_profile_requests_total{endpoint="other",code="404"}') as number >= 10);
    assert.equal(sampleValue(after, 'quietflame_profile_requests_total{endpoint="/made/up/0",code="other"}'), 1);
    unregister();
    unregisterBroken();
    assert.doesNotMatch(await registry.metrics(), /test_pc_table/);

    registry.resetMetrics(); // must not (and cannot) touch the BPF-backed series
    assert.ok(parseHistogram(await registry.metrics(), name).count >= last.count, 'resetMetrics() cleared the BPF histogram');
  } finally {
    await hogs.stop();
    rq.close();
  }
});

rqTest('a real Prometheus server scrapes the registry and answers histogram_quantile', ['prometheus'], async (t) => {
  const rq = RunqueueLatency.start();
  const registry = createMetricsRegistry({ runqueueLatency: rq });
  const dir = mkdtempSync(join(tmpdir(), 'quietflame-prom-'));
  let server: Server | undefined;
  let prom: ChildProcess | undefined;
  let promLog = '';
  const hogs = spawnHogs(HOGS);
  try {
    server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      registry.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    });
    await new Promise<void>((resolve) => (server as Server).listen(0, '127.0.0.1', resolve));
    const target = `127.0.0.1:${(server.address() as AddressInfo).port}`;

    const port = await freePort();
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'scrape_configs:',
        '  - job_name: quietflame',
        '    static_configs:',
        `      - targets: ['${target}']`,
        '',
      ].join('\n'),
    );
    mkdirSync(join(dir, 'data'));
    prom = spawn(
      'prometheus',
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
      { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir },
    );
    prom.stdout?.on('data', (d: Buffer) => (promLog += d.toString()));
    prom.stderr?.on('data', (d: Buffer) => (promLog += d.toString()));
    const base = `http://127.0.0.1:${port}`;
    const query = async (q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> => {
      const r = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = (await r.json()) as { status: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
      assert.equal(body.status, 'success', JSON.stringify(body));
      return body.data.result;
    };

    const ready = await waitForAsync(async () => (await fetch(`${base}/-/ready`).catch(() => undefined))?.ok === true, 30_000);
    assert.ok(ready, `prometheus not ready on ${base} (exit ${prom.exitCode}):\n${promLog.slice(-3000)}`);

    const q = 'histogram_quantile(0.99, sum by (le) (rate(quietflame_runqueue_latency_seconds_bucket[15s])))';
    let p99: number | undefined;
    const answered = await waitForAsync(async () => {
      const r = await query(q);
      const v = r[0] === undefined ? NaN : Number(r[0].value[1]);
      if (Number.isFinite(v)) p99 = v;
      return p99 !== undefined;
    }, 40_000);
    assert.ok(answered, `no finite answer to ${q}:\n${promLog.slice(-3000)}`);
    const up = await query('up{job="quietflame"}');
    assert.equal(up[0]?.value[1], '1', 'target not up');
    const p50 = Number((await query(q.replace('0.99', '0.5')))[0]?.value[1]);
    t.diagnostic(`Prometheus ${base}: p99 ${((p99 as number) * 1e6).toFixed(0)} µs, p50 ${(p50 * 1e6).toFixed(0)} µs over rate[15s] with ${HOGS} hogs`);
    assert.ok((p99 as number) > 0 && (p99 as number) < 2147.483648);
    assert.ok(p50 > 0 && p50 <= (p99 as number));
  } finally {
    await hogs.stop();
    if (prom !== undefined) await stopChild(prom, 'SIGTERM');
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    rq.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

rqTest('per-cgroup histograms, exported by path and container; a full cgroup map drops, says so in metrics, and the agent keeps running; removed cgroups are forgotten', ['promtool'], async (t) => {
  const root = cgroup2Root();
  if (root === undefined) assert.fail('no cgroup2 mount in /proc/self/mounts: per-cgroup histograms need cgroup v2');
  // Named as a container runtime names a container's cgroup (systemd driver): its ID becomes container_id.
  const containerId = createHash('sha256').update(`quietflame-test-${process.pid}`).digest('hex');
  const cgroup = `/qftest-${containerId}.scope`;
  const dir = join(root, cgroup);
  const other = join(root, `quietflame-test-${process.pid}`); // keeps hogs off the root cgroup once dir is gone
  mkdirSync(dir);
  mkdirSync(other);
  const cgid = BigInt(statSync(dir).ino); // a cgroup v2 id is its directory's kernfs inode number
  const hogs = spawnHogs(3);
  let rq: RunqueueLatency | undefined;
  try {
    for (const pid of hogs.pids) writeFileSync(join(dir, 'cgroup.procs'), `${pid}\n`);
    assert.deepEqual(readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim().split('\n').map(Number).sort(), [...hogs.pids].sort());

    // Room for every cgroup: the hogs' cgroup gets its own histogram.
    rq = RunqueueLatency.start({ perCgroup: true });
    await sleep(1500);
    const cgroups = rq.readCgroups();
    const mine = cgroups.get(cgid);
    assert.ok(mine && mine.count > 0, `no histogram for cgroup ${cgid} (have ${[...cgroups.keys()].join(', ')})`);
    assert.equal(mine.count, mine.slots.reduce((x, y) => x + y, 0));
    const nodeWide = rq.read();
    assert.ok(nodeWide.count >= [...cgroups.values()].reduce((x, h) => x + h.count, 0) * 0.9, 'cgroups add up to more than the node');
    assert.equal(nodeWide.drops.cgroup_hists, 0);
    t.diagnostic(`cgroup ${cgid}: ${describe(mine)}; ${cgroups.size} cgroups tracked`);

    const perCgroup = await createMetricsRegistry({ runqueueLatency: rq, defaultMetrics: false, cgroupRoot: root }).metrics();
    const labels = `cgroup="${cgroup}",container_id="${containerId}"`;
    const count = sampleValue(perCgroup, `quietflame_cgroup_runqueue_latency_seconds_count{${labels}}`);
    assert.ok(count !== undefined && count >= mine.count, `no quietflame_cgroup_runqueue_latency_seconds_count{${labels}} >= ${mine.count}`);
    const lint = execFileSync('promtool', ['check', 'metrics'], { input: perCgroup, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    assert.equal(lint.trim(), '', `promtool: ${lint}`);

    // The cgroup goes away: its histogram is deleted from the BPF map once two scans of the tree miss it.
    for (const pid of hogs.pids) writeFileSync(join(other, 'cgroup.procs'), `${pid}\n`);
    rmdirSync(dir);
    const metric = cgroupRunqueueLatency(() => rq, new CgroupPaths(root, 0));
    for (let scrape = 0; scrape < 3 && rq.readCgroups().has(cgid); scrape++) await metric.get();
    assert.equal(rq.readCgroups().has(cgid), false, 'the removed cgroup is still in cgroup_hists');
    rq.close();

    // Room for one: every other cgroup's latencies are drops, counted; node-wide histogram unaffected.
    rq = RunqueueLatency.start({ perCgroup: true, maxCgroups: 1 });
    const registry = createMetricsRegistry({ runqueueLatency: rq, defaultMetrics: false });
    await sleep(1500);
    const s1 = rq.read();
    assert.equal(rq.readCgroups().size, 1);
    assert.ok(s1.drops.cgroup_hists > 0, 'a full cgroup map recorded no drops');
    assert.deepEqual(rq.mapStats(), { name: 'runqlat_cgroup_hists', entries: 1, capacity: 1 });
    await sleep(500);
    const s2 = rq.read();
    assert.ok(rq.attached, 'programs detached');
    assert.ok(s2.count > s1.count, 'node-wide histogram stopped growing with a full cgroup map');
    assert.ok(s2.drops.cgroup_hists > s1.drops.cgroup_hists);
    const text = await registry.metrics();
    const dropped = sampleValue(text, 'quietflame_runqueue_latency_drops_total{map="cgroup_hists"}');
    assert.ok(dropped !== undefined && dropped >= s2.drops.cgroup_hists, `drops metric: ${dropped}`);
    assert.equal(sampleValue(text, 'quietflame_runqueue_latency_drops_total{map="start"}'), 0);
    assert.equal(sampleValue(text, 'quietflame_bpf_map_entries{map="runqlat_cgroup_hists"}'), 1);
    assert.equal(sampleValue(text, 'quietflame_bpf_map_capacity{map="runqlat_cgroup_hists"}'), 1);
    t.diagnostic(`capacity 1: ${s2.drops.cgroup_hists} cgroup drops, node-wide count still growing (${s1.count} -> ${s2.count})`);
  } finally {
    rq?.close();
    await hogs.stop();
    for (const d of [dir, other].filter((d) => existsSync(d))) {
      await waitFor(() => readFileSync(join(d, 'cgroup.procs'), 'utf8').trim() === '', 5000);
      rmdirSync(d);
    }
  }
});

