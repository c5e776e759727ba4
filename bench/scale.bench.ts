// A node with many Go processes: PROCESSES of them from BINARIES distinct files (copies of the lifetime fixture,
// each its own unwind table), 2% burning CPU and the rest asleep. Reports how long the agent takes to configure
// them all, the BPF map fill, its RSS, and for node-wide 10 s profiles their latency (answer time beyond the
// window), samples, samples lost and the agent's CPU share; then that the maps empty when the processes go.
//   npm run build && node dist/bench/scale.bench.js [PROCESSES] [BINARIES]
// Prints numbers; asserts nothing.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { decodePprof } from '../src/profile/pprof';
import { buildFixture, newestToolchain } from '../test/support/go-toolchains';
import { median, startAgentProcess } from './support/agent';
import { cpuSeconds, memoryMiB } from './support/proc-stats';

const PROCESSES = Number(process.argv[2] ?? 1000);
const BINARIES = Number(process.argv[3] ?? 20);
const START_RATE = 100; // processes a second
const WINDOW = 10;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function metrics(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

const lost = (m: Map<string, number>): number => [...m].filter(([k]) => k.startsWith('quietflame_samples_lost_total')).reduce((n, [, v]) => n + v, 0);

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-scale-'));
  const fixture = buildFixture({ go: newestToolchain().version, fixture: 'lifetime', mode: 'plain' });
  const files = Array.from({ length: BINARIES }, (_, i) => {
    const f = path.join(dir, `qf-scale-${i}`);
    fs.copyFileSync(fixture, f);
    fs.chmodSync(f, 0o755);
    return f;
  });
  const children: ChildProcess[] = [];
  const agent = await startAgentProcess();
  const pid = agent.proc.pid!;
  try {
    await sleep(2000);
    const before = await metrics(agent.url);
    const goBefore = before.get('quietflame_go_processes') ?? 0;
    const cpu0 = cpuSeconds(pid);
    const t0 = Date.now();
    const burners = Math.max(1, Math.round(PROCESSES / 50));
    for (let i = 0; i < PROCESSES; i++) {
      const due = t0 + (i * 1000) / START_RATE;
      if (due > Date.now()) await sleep(due - Date.now());
      const args = i < burners ? ['-live', '0'] : ['-spin', '0', '-live', '3600000'];
      children.push(spawn(files[i % BINARIES]!, args, { stdio: 'ignore' }));
    }
    const startedMs = Date.now() - t0;
    let configuredMs: number | undefined;
    while (Date.now() - t0 < startedMs + 60_000) {
      const m = await metrics(agent.url);
      if ((m.get('quietflame_go_processes') ?? 0) >= goBefore + PROCESSES) {
        configuredMs = Date.now() - t0;
        break;
      }
      await sleep(100);
    }
    const cpuStart = cpuSeconds(pid) - cpu0;
    const m1 = await metrics(agent.url);
    const fill = (map: string): string => `${m1.get(`quietflame_bpf_map_entries{map="${map}"}`)}/${m1.get(`quietflame_bpf_map_capacity{map="${map}"}`)}`;
    console.log(`${PROCESSES} Go processes (${burners} burning CPU) from ${BINARIES} binaries started in ${(startedMs / 1000).toFixed(1)} s; all configured ${configuredMs === undefined ? 'not within 60 s' : `${((configuredMs - startedMs) / 1000).toFixed(2)} s after the last start`} (go_processes ${m1.get('quietflame_go_processes')}, go_binaries ${m1.get('quietflame_go_binaries')}); agent CPU ${cpuStart.toFixed(2)} s for them (${((cpuStart * 1000) / PROCESSES).toFixed(2)} ms a process)`);
    console.log(`maps: proc_configs ${fill('proc_configs')}, unwind_pages ${fill('unwind_pages')}; agent RSS ${memoryMiB(pid).rss.toFixed(1)} MiB`);

    const rows: Array<{ latencyMs: number; samples: number; lost: number; share: number }> = [];
    for (let r = 0; r < 3; r++) {
      const lost0 = lost(await metrics(agent.url));
      const c0 = cpuSeconds(pid);
      const w0 = Date.now();
      const res = await fetch(`${agent.url}/debug/pprof/profile?seconds=${WINDOW}`);
      const bytes = Buffer.from(await res.arrayBuffer());
      const wall = Date.now() - w0;
      const c1 = cpuSeconds(pid);
      if (res.status !== 200) throw new Error(`profile: ${res.status} ${bytes.toString('utf8', 0, 200)}`);
      const p = decodePprof(bytes);
      rows.push({ latencyMs: wall - WINDOW * 1000, samples: p.sample.reduce((n, s) => n + (s.value[0] ?? 0), 0), lost: lost(await metrics(agent.url)) - lost0, share: (c1 - c0) / (WINDOW * os.cpus().length) });
    }
    for (const [i, r] of rows.entries()) {
      console.log(`  profile ${i + 1}: answered ${r.latencyMs} ms after its ${WINDOW} s window, ${r.samples} samples, ${r.lost} lost, agent ${(r.share * 100).toFixed(2)}% of the node's CPU`);
    }
    const mem = memoryMiB(pid);
    console.log(`after the profiles: agent RSS ${mem.rss.toFixed(1)} MiB, peak ${mem.hwm.toFixed(1)} MiB; median latency ${median(rows.map((r) => r.latencyMs))} ms`);

    const k0 = Date.now();
    for (const c of children) c.kill('SIGKILL');
    let emptyMs: number | undefined;
    while (Date.now() - k0 < 30_000) {
      const m = await metrics(agent.url);
      if ((m.get('quietflame_go_processes') ?? 0) <= goBefore) {
        emptyMs = Date.now() - k0;
        break;
      }
      await sleep(50);
    }
    const m2 = await metrics(agent.url);
    console.log(`killed all: go_processes back to ${goBefore} ${emptyMs ?? '>30000'} ms later; proc_configs ${m2.get('quietflame_bpf_map_entries{map="proc_configs"}')}, unwind_pages ${m2.get('quietflame_bpf_map_entries{map="unwind_pages"}')} entries (idle binaries kept: at most 8)`);
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await agent.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
