// Process churn: RATE short-lived Go processes a second for SECONDS (each lives 150 ms and burns 2 ms of CPU in
// main.burn) while one node-wide profile covers them all. Reports the agent's RSS before, after and at its peak,
// its CPU, how long after the last exit proc_configs (the kernel's map, read with bpftool) and unwind_pages (the
// agent's count) are back to where they were, and how many of the churned processes' samples are symbolized.
//   npm run build && node dist/bench/churn.bench.js [RATE] [SECONDS]
// The processes are started by a Go driver (bench/fixtures/churn) so that starting them costs little and steadily.
// Prints numbers; asserts nothing.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { decodePprof, type Profile } from '../src/profile/pprof';
import { mapEntries, mapOfProcess } from '../test/support/bpf-objects';
import { buildFixture, newestToolchain } from '../test/support/go-toolchains';
import { startAgentProcess } from './support/agent';
import { buildBenchFixture } from './support/build';
import { cpuSeconds, memoryMiB } from './support/proc-stats';

const RATE = Number(process.argv[2] ?? 200);
const SECONDS = Number(process.argv[3] ?? 60);
const LIVE_MS = 150;
const COMM = 'qf-churnling';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface ChurnResult {
  started: number;
  failed: number;
  pids: number[];
  lastExitMs: number;
  startSeconds: number;
}

async function metric(url: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function profileBytes(url: string, seconds: number): Promise<Buffer> {
  const r = await fetch(`${url}/debug/pprof/profile?seconds=${seconds}`);
  const body = Buffer.from(await r.arrayBuffer());
  if (r.status !== 200) throw new Error(`profile: ${r.status} ${body.toString('utf8', 0, 200)}`);
  return body;
}

/** Samples of the churned processes after their exec (comm), and how many of those name main.burn. */
function churnedSamples(p: Profile, binary: string): { total: number; withUser: number; burn: number; unnamed: number; allUnnamed: number; processes: number; unnamedIn: Map<string, number> } {
  const str = (i: number): string => p.stringTable[i] ?? '';
  const loc = new Map(p.location.map((l) => [l.id, l]));
  const fileOf = new Map(p.mapping.map((m) => [m.id, str(m.filename)]));
  const fn = new Map(p.function.map((f) => [f.id, str(f.name)]));
  let total = 0;
  let withUser = 0;
  let burn = 0;
  let unnamed = 0;
  let allUnnamed = 0;
  const pids = new Set<number>();
  const unnamedIn = new Map<string, number>();
  for (const s of p.sample) {
    if (str(s.label.find((l) => str(l.key) === 'comm')?.str ?? 0) !== COMM) continue;
    const n = s.value[0] ?? 0;
    total += n;
    pids.add(s.label.find((l) => str(l.key) === 'pid')?.num ?? 0);
    const user = s.locationId.map((id) => loc.get(id)!).filter((l) => fileOf.get(l.mappingId) !== '[kernel.kallsyms]');
    if (user.length === 0) continue;
    withUser += n;
    const nameless = user.filter((l) => l.line.length === 0 || l.line.every((x) => (fn.get(x.functionId) ?? '') === ''));
    if (nameless.length > 0) unnamed += n;
    if (nameless.length === user.length) allUnnamed += n;
    for (const l of nameless) {
      const where = fileOf.get(l.mappingId) || '(no mapping)';
      unnamedIn.set(where, (unnamedIn.get(where) ?? 0) + 1);
    }
    if (user.some((l) => fileOf.get(l.mappingId) === binary && l.line.some((x) => fn.get(x.functionId) === 'main.burn'))) burn += n;
  }
  return { total, withUser, burn, unnamed, allUnnamed, processes: pids.size, unnamedIn };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-churn-'));
  const binary = path.join(dir, COMM);
  fs.copyFileSync(buildFixture({ go: newestToolchain().version, fixture: 'lifetime', mode: 'plain' }), binary);
  fs.chmodSync(binary, 0o755);
  const driver = buildBenchFixture('churn');
  const agent = await startAgentProcess(['--keep-idle-binaries', '0'], { nodeFlags: process.env.AGENT_NODE_FLAGS?.split(' ').filter(Boolean) ?? [] });
  const pid = agent.proc.pid!;
  try {
    await profileBytes(agent.url, 3); // warm-up: every binary already on the node read, hot paths compiled
    await sleep(1000);
    const configsOf = (): Map<number, number> => new Map(mapEntries(mapOfProcess(pid, 'proc_configs')).map((e) => [e.key.readUInt32LE(0), e.value.readUInt32LE(0)]));
    const configs0 = configsOf().size;
    const pages0 = await metric(agent.url, 'quietflame_bpf_map_entries', '{map="unwind_pages"}');
    const mem0 = memoryMiB(pid);
    const cpu0 = cpuSeconds(pid);

    const profile = profileBytes(agent.url, SECONDS + 5);
    await sleep(300);
    const child = spawn(driver, ['-bin', binary, '-rate', String(RATE), '-seconds', String(SECONDS), '--', '-spin', '2', '-live', String(LIVE_MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const rssDuring: number[] = [];
    const sampler = setInterval(() => rssDuring.push(memoryMiB(pid).rss), 1000);
    const result = await new Promise<ChurnResult>((resolve, reject) => {
      readline.createInterface({ input: child.stdout! }).once('line', (l) => resolve(JSON.parse(l) as ChurnResult));
      child.once('exit', (c) => (c === 0 ? undefined : reject(new Error(`churn driver exited with ${c}`))));
    });
    clearInterval(sampler);
    const churned = new Set(result.pids);
    let configsClean: number | undefined;
    let pagesClean: number | undefined;
    while (Date.now() - result.lastExitMs < 10_000 && (configsClean === undefined || pagesClean === undefined)) {
      const left = [...configsOf().keys()].filter((p) => churned.has(p)).length;
      if (configsClean === undefined && left === 0) configsClean = Date.now() - result.lastExitMs;
      const pages = await metric(agent.url, 'quietflame_bpf_map_entries', '{map="unwind_pages"}');
      if (pagesClean === undefined && pages <= pages0) pagesClean = Date.now() - result.lastExitMs;
      await sleep(20);
    }
    const cpu1 = cpuSeconds(pid);
    const mem1 = memoryMiB(pid);
    const bytes = await profile;
    if (process.env.CHURN_PROFILE_OUT) fs.writeFileSync(process.env.CHURN_PROFILE_OUT, bytes);
    const s = churnedSamples(decodePprof(bytes), binary);
    await sleep(2000);
    const mem2 = memoryMiB(pid);
    const pct = (a: number, b: number): string => `${((100 * a) / Math.max(b, 1)).toFixed(1)}%`;
    console.log(JSON.stringify({ rate: RATE, seconds: SECONDS, started: result.started, failed: result.failed, startSeconds: +result.startSeconds.toFixed(1) }));
    console.log(`${result.started} processes in ${result.startSeconds.toFixed(1)} s (${(result.started / result.startSeconds).toFixed(0)}/s, ${result.failed} failed to start), each living ${LIVE_MS} ms`);
    console.log(`proc_configs back to ${configs0} entries ${configsClean ?? '>10000'} ms after the last exit; unwind_pages back to ${pages0} ${pagesClean ?? '>10000'} ms after`);
    console.log(`agent RSS ${mem0.rss.toFixed(1)} MiB before, ${mem1.rss.toFixed(1)} right after (${(mem1.rss - mem0.rss >= 0 ? '+' : '')}${(mem1.rss - mem0.rss).toFixed(1)}), ${mem2.rss.toFixed(1)} 2 s later (${(mem2.rss - mem0.rss >= 0 ? '+' : '')}${(mem2.rss - mem0.rss).toFixed(1)}); during: max ${Math.max(...rssDuring).toFixed(1)}; peak (VmHWM) ${mem2.hwm.toFixed(1)} MiB`);
    console.log(`agent CPU ${(cpu1 - cpu0).toFixed(2)} s over the churn (${pct(cpu1 - cpu0, (SECONDS + 5) * os.cpus().length)} of the node)`);
    console.log(`churned samples after exec: ${s.total} from ${s.processes} processes; with a user stack ${s.withUser}, ${s.burn} (${pct(s.burn, s.withUser)}) in main.burn, ${s.unnamed} (${pct(s.unnamed, s.withUser)}) with an unnamed user frame, ${s.allUnnamed} with no user frame named (unnamed frames by mapping: ${[...s.unnamedIn].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([f, n]) => `${f === binary ? 'the binary' : f} ${n}`).join(', ')})`);
  } finally {
    await agent.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
