// `quietflame diagnose FILE…` on what people have at hand: the program's own goroutine dumps (runtime.Stack(all)
// text) and its own runtime/pprof CPU profiles, and the agent's CPU and off-CPU profiles saved to files. Each
// from a real Go program with the shape; a healthy CPU-bound program fires nothing; bad files get one line.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { test, after } from 'node:test';
import type { Finding, RuleName } from '../../src/diagnose/types';
import { encodePprofSync, type Profile } from '../../src/profile/pprof';
import { bpfTest } from '../bpf/support';
import { startAgent } from '../support/agent';
import { runCli } from '../support/cli';
import { buildFixture, newestToolchain } from '../support/go-toolchains';
import { sleep, startShape } from './support';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-diagnose-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Output {
  inputs: { cpu?: string; offcpu?: string; dumps: string[] };
  findings: Finding[];
  notes: string[];
}

function diagnoseFiles(...files: string[]): Output {
  const r = runCli(['diagnose', ...files]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  return JSON.parse(r.stdout) as Output;
}

function fired(out: Output, rule: RuleName): Finding {
  const f = out.findings.find((x) => x.rule === rule);
  assert.ok(f, `${rule} did not fire: ${JSON.stringify(out, null, 1).slice(0, 3000)}`);
  return f;
}

const framesOf = (f: Finding): string[] => (f.evidence.stacks ?? []).flatMap((s) => s.frames);

/** The fixture's own runtime.Stack(all), saved as a file. */
async function dumpFile(fx: { dump(): Promise<string> }, name: string): Promise<string> {
  const file = path.join(dir, name);
  fs.writeFileSync(file, await fx.dump());
  return file;
}

test('goroutine-leak from two of the program\'s own dumps, oldest first', async () => {
  const fx = await startShape('goroutine-leak');
  try {
    await sleep(500);
    const first = await dumpFile(fx, 'leak-1.txt');
    await sleep(2000);
    const second = await dumpFile(fx, 'leak-2.txt');
    const out = diagnoseFiles(first, second);
    assert.deepEqual(out.inputs.dumps, [first, second]);
    const f = fired(out, 'goroutine-leak');
    assert.ok(Number(f.evidence.measures?.['growth']) >= 300, JSON.stringify(f.evidence.measures));
    assert.equal(f.evidence.stacks![0]!.state, 'chan send');
    assert.ok(framesOf(f).includes('main.fetch'), framesOf(f).join(', '));
    // The other way round the count shrinks: no leak.
    assert.equal(diagnoseFiles(second, first).findings.some((x) => x.rule === 'goroutine-leak'), false);
  } finally {
    fx.kill();
  }
});

test('lock-contention, netpoll-wait, idle-with-pileup and deep-servehttp from one dump each', async () => {
  const cases: Array<[string, RuleName, string]> = [
    ['lock-contention', 'lock-contention', 'main.critical'],
    ['netpoll-wait', 'netpoll-wait', 'internal/poll.runtime_pollWait'],
    ['idle-with-pileup', 'idle-with-pileup', 'main.callDependency'],
    ['deep-servehttp', 'deep-servehttp', 'main.(*middleware).ServeHTTP'],
  ];
  for (const [shape, rule, frame] of cases) {
    const fx = await startShape(shape);
    try {
      await sleep(500);
      // A dump is an instant: deep-servehttp's four requests can all be between their ServeHTTP chains at it (seen
      // once in CI). Up to five dumps, 300 ms apart; the rule must fire on one of them.
      let out = diagnoseFiles(await dumpFile(fx, `${shape}.txt`));
      for (let i = 1; i < 5 && !out.findings.some((x) => x.rule === rule); i++) {
        await sleep(300);
        out = diagnoseFiles(await dumpFile(fx, `${shape}.txt`));
      }
      const f = fired(out, rule);
      if (rule === 'deep-servehttp') assert.ok(Number(f.evidence.measures?.['depth']) >= 13, JSON.stringify(f.evidence));
      else assert.ok(framesOf(f).includes(frame), `${rule}: ${framesOf(f).join(', ')}`);
    } finally {
      fx.kill();
    }
  }
});

test('scheduler-thrash, gc-pressure and syscall-heavy from the program\'s own runtime/pprof CPU profile (no kernel frames)', async () => {
  for (const [shape, rule] of [
    ['scheduler-thrash', 'scheduler-thrash'],
    ['gc-pressure', 'gc-pressure'],
    ['syscall-heavy', 'syscall-heavy'],
  ] as const) {
    const fx = await startShape(shape);
    try {
      const file = path.join(dir, `${shape}.pb.gz`);
      await fx.cpuProfile(file, 5);
      const out = diagnoseFiles(file);
      assert.equal(out.inputs.cpu, file);
      const f = fired(out, rule);
      assert.equal(f.pid, undefined, 'Go\'s own profiles carry no pid label');
      if (rule === 'syscall-heavy') assert.ok(f.evidence.functions!.some((x) => x.function === 'main.readZeros'), JSON.stringify(f.evidence.functions));
    } finally {
      fx.kill();
    }
  }
});

test('a healthy CPU-bound program\'s own CPU profile fires nothing', async () => {
  const file = path.join(dir, 'hot.pb.gz');
  const proc = spawn(buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' }), ['-cpuprofile', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const lines = readline.createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
    await lines.next();
    proc.kill('SIGUSR1');
    await sleep(3000);
    proc.kill('SIGUSR2');
    assert.match((await lines.next()).value as string, /written/);
    const out = diagnoseFiles(file);
    assert.deepEqual(out.findings, []);
  } finally {
    proc.kill('SIGKILL');
  }
});

test('files that are not inputs end the command with one line and status 1; no files is a usage error', () => {
  const junk = path.join(dir, 'junk.txt');
  fs.writeFileSync(junk, 'hello\nworld\n');
  const garbage = path.join(dir, 'garbage.gz');
  fs.writeFileSync(garbage, Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad]));
  const heap = path.join(dir, 'heap.pb.gz');
  const heapProfile: Profile = {
    sampleType: [{ type: 1, unit: 2 }],
    sample: [],
    mapping: [],
    location: [],
    function: [],
    stringTable: ['', 'alloc_space', 'bytes'],
    dropFrames: 0,
    keepFrames: 0,
    timeNanos: 0n,
    durationNanos: 0n,
    periodType: undefined,
    period: 0,
    comment: [],
    defaultSampleType: 0,
    docUrl: 0,
  };
  fs.writeFileSync(heap, encodePprofSync(heapProfile));
  const cases: Array<[string[], RegExp]> = [
    [[path.join(dir, 'missing')], /: no such file$/],
    [[junk], /junk\.txt: neither a pprof profile nor a goroutine dump/],
    [[garbage], /garbage\.gz: not a pprof profile/],
    [[heap], /heap\.pb\.gz: a pprof profile of alloc_space\/bytes, not CPU/],
  ];
  for (const [args, pattern] of cases) {
    const r = runCli(['diagnose', ...args]);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr.trim(), new RegExp(`^quietflame diagnose: .*${pattern.source}`));
  }
  const usage = runCli(['diagnose']);
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /usage: quietflame diagnose FILE/);
});

bpfTest('the agent\'s CPU and off-CPU profiles saved as files, with a dump: netpoll-wait with the threads\' netpoll time; two CPU profiles are refused', async () => {
  const agent = await startAgent();
  const fx = await startShape('netpoll-wait');
  try {
    await sleep(500);
    const save = async (endpoint: string, name: string): Promise<string> => {
      const r = await fetch(`${agent.url}/debug/pprof/${endpoint}?seconds=3&pid=${fx.pid}`);
      assert.equal(r.status, 200);
      const file = path.join(dir, name);
      fs.writeFileSync(file, Buffer.from(await r.arrayBuffer()));
      return file;
    };
    const [cpu, off] = await Promise.all([save('profile', 'np-cpu.pb.gz'), save('offcpu', 'np-off.pb.gz')]);
    const dump = await dumpFile(fx, 'np.txt');
    const out = diagnoseFiles(off, dump, cpu);
    assert.deepEqual(out.inputs, { cpu, offcpu: off, dumps: [dump] });
    const f = fired(out, 'netpoll-wait');
    assert.equal(f.pid, fx.pid, 'the dump goes with the one process the profiles show');
    assert.ok(Number(f.evidence.measures?.['offCpuNetpollShare']) > 0, JSON.stringify(f.evidence.measures));
    const twice = runCli(['diagnose', cpu, cpu]);
    assert.equal(twice.status, 1);
    assert.match(twice.stderr, /a second CPU profile/);
  } finally {
    fx.kill();
    await agent.stop();
  }
});
