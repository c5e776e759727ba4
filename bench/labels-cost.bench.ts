// What reading pprof labels in BPF costs: two agents run side by side, one reading up to 32 labels per sample and
// one with --labels off, and both profile the labels fixture (test/fixtures/go/labels: CPU-bound goroutines
// under label sets of 2 to 27 labels, a labelled goroutine blocking in nanosleep) for the same windows, CPU and
// off-CPU at once. Per agent: its BPF programs' run time per record (kernel.bpf_stats_enabled) and its user+sys
// per record, medians over the windows; the ratios on/off are the cost of labels.
//   npm run build && node dist/bench/labels-cost.bench.js [WINDOW_SECONDS] [ROUNDS]
// Prints numbers; asserts nothing.

import { spawn } from 'node:child_process';
import { decodePprof } from '../src/profile/pprof';
import { bpfPrograms, median, startAgentProcess, type AgentProcess } from './support/agent';
import { countBpfRunTime, cpuSeconds } from './support/proc-stats';
import { buildFixture, newestToolchain } from '../test/support/go-toolchains';

const WINDOW = Number(process.argv[2] ?? 10);
const ROUNDS = Number(process.argv[3] ?? 3);

function bpfNs(agent: AgentProcess): Record<string, number> {
  const all = bpfPrograms();
  const out: Record<string, number> = {};
  for (const id of agent.programIds) {
    const p = all.get(id);
    if (p) out[p.name] = (out[p.name] ?? 0) + p.runTimeNs;
  }
  return out;
}

async function records(url: string, kind: 'profile' | 'offcpu', pid: number): Promise<{ records: number; labelled: number }> {
  const r = await fetch(`${url}/debug/pprof/${kind}?seconds=${WINDOW}&pid=${pid}`);
  if (r.status !== 200) throw new Error(`${kind}: HTTP ${r.status} ${await r.text()}`);
  const p = decodePprof(Buffer.from(await r.arrayBuffer()));
  const program = new Set(['endpoint', 'k01', 'user', 'role'].map((k) => p.stringTable.indexOf(k)));
  let n = 0;
  let labelled = 0;
  for (const s of p.sample) {
    n += Number(s.value[0]);
    if (s.label.some((l) => program.has(l.key))) labelled += Number(s.value[0]);
  }
  return { records: n, labelled };
}

interface Round {
  cpuPerRecordMs: number;
  bpfSample: number;
  bpfSwitch: number;
  cpuRecords: number;
  offRecords: number;
  labelled: number;
}

async function main(): Promise<void> {
  const stats = countBpfRunTime();
  const fixture = spawn(buildFixture({ go: newestToolchain().version, fixture: 'labels', mode: 'plain' }), ['-workers', '2'], { stdio: 'ignore' });
  const agents: Array<[string, AgentProcess]> = [];
  try {
    agents.push(['labels on (32)', await startAgentProcess(['--labels', '32'], { programIds: true })]);
    agents.push(['labels off', await startAgentProcess(['--labels', 'off'], { programIds: true })]);
    await new Promise((r) => setTimeout(r, 2000));
    const rounds = new Map<string, Round[]>(agents.map(([name]) => [name, []]));
    for (let i = 0; i < ROUNDS; i++) {
      const before = agents.map(([, a]) => ({ cpu: cpuSeconds(a.proc.pid!), bpf: bpfNs(a) }));
      const got = await Promise.all(agents.flatMap(([, a]) => [records(a.url, 'profile', fixture.pid!), records(a.url, 'offcpu', fixture.pid!)]));
      agents.forEach(([name, a], j) => {
        const bpf = bpfNs(a);
        const [cpu, off] = [got[2 * j]!, got[2 * j + 1]!];
        const n = cpu.records + off.records;
        rounds.get(name)!.push({
          cpuPerRecordMs: ((cpuSeconds(a.proc.pid!) - before[j]!.cpu) * 1000) / Math.max(n, 1),
          bpfSample: ((bpf['do_sample'] ?? 0) - (before[j]!.bpf['do_sample'] ?? 0)) / Math.max(cpu.records, 1),
          bpfSwitch: ((bpf['offcpu_switch'] ?? 0) - (before[j]!.bpf['offcpu_switch'] ?? 0)) / Math.max(off.records, 1),
          cpuRecords: cpu.records,
          offRecords: off.records,
          labelled: (cpu.labelled + off.labelled) / Math.max(n, 1),
        });
      });
    }
    console.log(`${ROUNDS} windows of ${WINDOW} s, both agents profiling the labels fixture at once (CPU at 99 Hz and off-CPU), medians:`);
    const m = (name: string, f: (r: Round) => number): number => median(rounds.get(name)!.map(f));
    for (const [name] of agents) {
      console.log(`  ${name}: ${m(name, (r) => r.cpuRecords)} CPU + ${m(name, (r) => r.offRecords)} off-CPU records (${(m(name, (r) => r.labelled) * 100).toFixed(0)}% with program labels); ` +
        `agent user+sys ${m(name, (r) => r.cpuPerRecordMs).toFixed(3)} ms per record; BPF ${(m(name, (r) => r.bpfSample) / 1000).toFixed(2)} µs per CPU sample, ` +
        `${(m(name, (r) => r.bpfSwitch) / 1000).toFixed(1)} µs of sched_switch program per off-CPU record`);
    }
    const [on, off] = [agents[0]![0], agents[1]![0]];
    const ratio = (f: (r: Round) => number): string => (m(on, f) / m(off, f)).toFixed(2);
    console.log(`  on/off: agent CPU per record ${ratio((r) => r.cpuPerRecordMs)}×, BPF per CPU sample ${ratio((r) => r.bpfSample)}×, sched_switch program per off-CPU record ${ratio((r) => r.bpfSwitch)}×`);
  } finally {
    for (const [, a] of agents) await a.stop();
    fixture.kill('SIGKILL');
    stats.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
