// pprof labels read in BPF, checked against the program's own runtime/pprof CPU profile of the same time: the
// labels fixture (test/fixtures/go/labels) burns CPU in one function per label set, changing its goroutines' labels
// every millisecond or so, and profiles itself while the real agent (`quietflame agent`, over HTTP) profiles it.
// Its own profile says which labels each function runs under; the agent's samples in that function must carry
// exactly those (the program's label sets are Go maps up to 1.23, slices from 1.24; one set is a map left growing).
// `go tool pprof -tags` reads both profiles and must see the same shares of each label value.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { Profile } from '../../src/profile/pprof';
import { Sampler } from '../../src/sampler/sampler';
import { decodeSample, type LabelLimits, parseLabels, RecordKind, recordSize, SampleFlag, SampleRecord, type SampleWithFlags } from '../../src/sampler/records';
import type { RawSample } from '../../src/sampler/types';
import { goTool } from '../support/agent';
import { buildFixture, type FixtureMode } from '../support/go-toolchains';
import { fixtureLines, functionsOf, profileWithOwn, sameShare, type Sample } from '../support/own-profile';
import { collect, samplerTest, symbolizer, waitFor } from './support';

interface LabelSet {
  function: string;
  labels: Record<string, string>;
}

interface Startup {
  pid: number;
  goVersion: string;
  sets: LabelSet[];
  plain: string;
  sleeper: LabelSet;
}

/** The agent's own labels; every other label is the program's. */
const AGENT_LABELS = new Set(['pid', 'tid', 'goid', 'comm', 'state', 'container_id', 'namespace', 'pod', 'container']);

/**
 * The program's labels of a sample, as a canonical string (sorted key=value pairs). An empty value is string 0, as
 * runtime/pprof writes it (and `go tool pprof` then ignores the label).
 */
function programLabels(p: Profile, s: Sample): string {
  const pairs: string[] = [];
  for (const l of s.label) {
    const key = p.stringTable[l.key]!;
    if (AGENT_LABELS.has(key)) continue;
    pairs.push(JSON.stringify([key, p.stringTable[l.str]]));
  }
  return pairs.sort().join(',');
}

const canonical = (labels: Record<string, string>): string =>
  Object.entries(labels).map((kv) => JSON.stringify(kv)).sort().join(',');

/** Samples (by count) per program label set, of the samples whose stack holds fn. */
function labelsIn(p: Profile, fn: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of p.sample) {
    if (!functionsOf(p, s).has(fn)) continue;
    const k = programLabels(p, s);
    out.set(k, (out.get(k) ?? 0) + s.value[0]!);
  }
  return out;
}

const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

function mostCommon(m: Map<string, number>): [string, number] {
  return [...m].sort((a, b) => b[1] - a[1])[0] ?? ['', 0];
}

/** `go tool pprof -tags`: key → value → percent of the profile's total. */
function tags(file: string): Map<string, Map<string, number>> {
  const r = goTool(['pprof', '-tags', file]);
  assert.equal(r.status, 0, `go tool pprof -tags: ${r.stderr}`);
  const out = new Map<string, Map<string, number>>();
  let key: Map<string, number> | undefined;
  for (const line of r.stdout.split('\n')) {
    const k = /^ (\S+): Total /.exec(line);
    if (k) {
      key = new Map();
      out.set(k[1]!, key);
      continue;
    }
    const v = /^\s+\S+ \(\s*([\d.]+)%\): (.*)$/.exec(line);
    if (v && key) key.set(v[2]!, Number(v[1]));
  }
  return out;
}

const CASES: Array<[string, FixtureMode]> = [
  ['1.19', 'plain'], ['1.19', 'stripped-pie'],
  ['1.23', 'plain'], ['1.23', 'stripped-pie'],
  ['1.26', 'plain'], ['1.26', 'stripped-pie'],
];

for (const [go, mode] of CASES) {
  samplerTest(`go${go} ${mode}: the agent's CPU and off-CPU samples carry the labels the program's own CPU profile gives them`, async (t) => {
    const binary = buildFixture({ go, fixture: 'labels', mode });
    // set C has 27 labels
    const run = await profileWithOwn<Startup>({ binary, agentArgs: ['--labels', '32'], kinds: ['profile', 'offcpu'] });
    try {
      const { startup, mine } = run;
      const [cpu, offcpu] = [run.ours.profile!, run.ours.offcpu!];
      const ours = cpu.profile;

      // The program's own profile: each function runs under its set (the oracle checked against what the fixture
      // says it set), burnPlain under none.
      let agree = 0;
      let labelled = 0;
      for (const set of startup.sets) {
        const theirs = labelsIn(mine, set.function);
        const [expected, n] = mostCommon(theirs);
        assert.equal(expected, canonical(set.labels), `${set.function}: the program's own profile shows its labels`);
        assert.ok(n >= 0.95 * total(theirs), `${set.function}: own profile consistent (${n}/${total(theirs)})`);

        const got = labelsIn(ours, set.function);
        const ok = got.get(expected) ?? 0;
        t.diagnostic(`go${go} ${mode} ${set.function}: ${ok}/${total(got)} agent samples with the program's labels (own profile: ${n}/${total(theirs)})`);
        assert.ok(total(got) >= 10, `${set.function}: ${total(got)} agent samples`);
        agree += ok;
        labelled += total(got);
      }
      assert.ok(agree >= 0.95 * labelled, `${agree}/${labelled} samples of labelled goroutines carry the program's labels`);
      const plainOurs = labelsIn(ours, startup.plain);
      const plainMine = labelsIn(mine, startup.plain);
      assert.ok((plainMine.get('') ?? 0) >= 0.95 * total(plainMine), 'own profile: burnPlain has no labels');
      assert.ok((plainOurs.get('') ?? 0) >= 0.95 * total(plainOurs) && total(plainOurs) >= 10, `agent: ${plainOurs.get('')}/${total(plainOurs)} burnPlain samples without labels`);

      // go tool pprof -tags reads both, and each label value has the same share in both (within sampling noise).
      const oursFile = path.join(run.dir, 'ours.pb.gz');
      fs.writeFileSync(oursFile, cpu.bytes);
      const [tagsOurs, tagsMine] = [tags(oursFile), tags(run.mineFile)];
      const [nOurs, nMine] = [ours, mine].map((p) => p.sample.reduce((n, s) => n + s.value[0]!, 0)) as [number, number];
      for (const key of ['endpoint', 'tenant', 'stage', 'user', 'k01', 'k27']) {
        const a = tagsOurs.get(key);
        const b = tagsMine.get(key);
        assert.ok(a && b, `-tags shows ${key} in both profiles`);
        for (const value of new Set([...a.keys(), ...b.keys()])) {
          const [pa, pb] = [a.get(value) ?? 0, b.get(value) ?? 0];
          t.diagnostic(`-tags ${key}=${value}: ${pa}% of the agent's ${nOurs} samples, ${pb}% of the program's ${nMine}`);
          assert.ok(sameShare(pa, nOurs, pb, nMine), `${key}=${value}: ${pa}% of the agent's ${nOurs} samples, ${pb}% of the program's ${nMine}`);
        }
      }

      // Off-CPU: the sleeper blocks in nanosleep under its labels.
      const off = labelsIn(offcpu.profile, startup.sleeper.function);
      const want = canonical(startup.sleeper.labels);
      t.diagnostic(`go${go} ${mode} off-CPU ${startup.sleeper.function}: ${off.get(want) ?? 0}/${total(off)} with its labels`);
      assert.ok(total(off) >= 10 && (off.get(want) ?? 0) >= 0.95 * total(off), `off-CPU: ${off.get(want)}/${total(off)} sleeper records with its labels`);
    } finally {
      await run.close();
    }
  });
}

/** The fixture (go1.X, plain) sampled by a Sampler with these label limits for ms milliseconds. */
async function sampleFixture(go: string, labels: LabelLimits, ms: number, check: (samples: RawSample[], startup: Startup, sampler: Sampler, binary: string) => void): Promise<void> {
  const binary = buildFixture({ go, fixture: 'labels', mode: 'plain' });
  const child = spawn(binary, [], { stdio: ['ignore', 'pipe', 'inherit'] });
  const sampler = Sampler.start({ hz: 99, labels });
  await sampler.ready();
  try {
    const startup = (await fixtureLines(child).next((o) => 'pid' in o, 30_000)) as unknown as Startup;
    assert.ok(await waitFor(() => sampler.goProcesses().some((p) => p.pid === startup.pid), 10_000), 'the sampler tracks the fixture');
    check(await collect(sampler, { pid: startup.pid }, ms), startup, sampler, binary);
  } finally {
    child.kill('SIGKILL');
    await sampler.close();
  }
}

samplerTest('label limits: at most N labels (the first by key from Go 1.24), keys and values cut to their byte limits, cuts counted', async () => {
  await sampleFixture('1.26', { maxLabels: 2, keyBytes: 3, valueBytes: 3 }, 2000, (samples, startup, sampler, binary) => {
    const proc = sampler.goProcesses().find((p) => p.pid === startup.pid)!;
    const sym = symbolizer(binary, proc.bias);
    try {
      const bySet = new Map(startup.sets.map((s) => [s.function, s.labels]));
      let checked = 0;
      for (const s of samples) {
        const set = sym.names(s.userStack).map((f) => bySet.get(f)).find((l) => l !== undefined);
        if (!set) continue;
        const cut = Object.entries(set).sort(([a], [b]) => (a < b ? -1 : 1)).slice(0, 2)
          .map(([k, v]) => [Buffer.from(k).subarray(0, 3).toString(), Buffer.from(v).subarray(0, 3).toString()]);
        assert.deepEqual(s.labels?.pairs, cut.sort(([a], [b]) => (a! < b! ? -1 : 1)));
        assert.ok((s as SampleWithFlags).flags & SampleFlag.LABELS_CUT);
        checked++;
      }
      assert.ok(checked >= 20, `${checked} labelled samples`);
      assert.ok(sampler.stats().counters.labelsCut >= checked);
    } finally {
      sym.close();
    }
  });
});

samplerTest('labels off: no labels, nothing read', async () => {
  await sampleFixture('1.23', { maxLabels: 0, keyBytes: 64, valueBytes: 128 }, 1500, (samples, _startup, sampler) => {
    assert.ok(samples.filter((s) => s.goid !== undefined).length >= 20, 'goroutine IDs still come');
    assert.ok(samples.every((s) => s.labels === undefined));
    assert.equal(sampler.stats().counters.labeled, 0);
  });
});

test('the labels after a record: sorted by key, UTF-8, a torn tail ignored; records sized by their labels', () => {
  const label = (k: string, v: string): Buffer => {
    const [kb, vb] = [Buffer.from(k), Buffer.from(v)];
    const h = Buffer.alloc(4);
    h.writeUInt16LE(kb.length, 0);
    h.writeUInt16LE(vb.length, 2);
    return Buffer.concat([h, kb, vb]);
  };
  const blob = Buffer.concat([label('tenant', 't1'), label('user', 'Zoë ☃'), label('empty', ''), label('endpoint', '/a')]);
  const set = parseLabels(Buffer.concat([blob, Buffer.from([9, 0, 9])]));
  assert.deepEqual(set.pairs, [['empty', ''], ['endpoint', '/a'], ['tenant', 't1'], ['user', 'Zoë ☃']]);
  assert.equal(parseLabels(Buffer.concat([label('a', '1'), label('b', '2')])).id, parseLabels(Buffer.concat([label('b', '2'), label('a', '1')])).id);

  const rec = Buffer.alloc(SampleRecord.size + blob.length);
  rec.writeUInt32LE(RecordKind.SAMPLE, 0);
  rec.writeUInt16LE(blob.length, SampleRecord.offsets.labels_len);
  blob.copy(rec, SampleRecord.size);
  assert.equal(recordSize(rec), rec.length);
  assert.equal(recordSize(rec.subarray(0, rec.length - 1)), rec.length, 'a short record is not its size');
  const a = decodeSample(rec);
  const b = decodeSample(Buffer.from(rec));
  assert.deepEqual(a.labels?.pairs, set.pairs);
  assert.equal(a.labels, b.labels, 'the same labels decode to one shared object');
  rec.writeUInt16LE(0, SampleRecord.offsets.labels_len);
  assert.equal(decodeSample(rec.subarray(0, SampleRecord.size)).labels, undefined);
});
