// The writers against what Go itself prints, for Go 1.15 … 1.26:
// - writeTracebackText of a parsed runtime.Stack(all) / debug=2 text gives back that text byte for byte (labels
//   in Go 1.26's GODEBUG=tracebacklabels=1 spelling included);
// - a snapshot read from outside, written as debug=2, debug=1 and debug=0, against the same program's own
//   runtime.Stack(all), /debug/pprof/goroutine?debug=1 and ?debug=0 taken right after: the goroutines the program
//   parked are printed identically (arguments aside, which Go reads from registers and we print as "(...)"),
//   their debug=1 records are identical (PCs, offsets, labels, tab alignment), and their debug=0 stacks agree;
// - go tool pprof reads our debug=0 without a word on stderr.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseGoroutineDump } from '../../src/goroutines/parse';
import { writeTracebackText } from '../../src/goroutines/traceback-text';
import { writeCountText } from '../../src/goroutines/count-text';
import { buildGoroutineProfile, goroutineProfile } from '../../src/goroutines/profile';
import { snapshotGoroutines } from '../../src/goroutines/reader';
import { TargetCache } from '../../src/goroutines/target';
import { Symbolizer } from '../../src/symbols/symbolizer';
import { decodePprof, Profile } from '../../src/profile/pprof';
import type { FixtureMode } from '../support/go-toolchains';
import { goEnv, newestToolchain } from '../support/go-toolchains';
import { startDumps } from './dumps-fixture';

const VERSIONS = ['1.15', '1.19', '1.21', '1.22', '1.23', '1.26'];

for (const go of VERSIONS) {
  const runs: Array<Record<string, string>> = go === '1.26' ? [{}, { GODEBUG: 'tracebacklabels=1' }] : [{}];
  for (const env of runs) {
    const labels = env['GODEBUG'] !== undefined;
    test(`go${go}${labels ? ' tracebacklabels=1' : ''}: runtime.Stack(all) and debug=2, parsed and written again, are Go's text byte for byte`, async () => {
      const p = await startDumps(go, { env });
      try {
        for (const text of [await p.ownStack(), (await p.ownGoroutineProfile(2)).toString('utf8')]) {
          const d = parseGoroutineDump(text);
          assert.deepEqual(d.warnings, []);
          assert.equal(writeTracebackText(d, { labels }), text);
          if (labels) assert.ok(/ labels:\{"odd key": "tab\\t\\"q\\" \\u00e9\\U0001f600\\x01\\u00a0end"\}\]:/.test(text), 'Go printed the odd labels');
        }
      } finally {
        p.stop();
      }
    });
  }
}

/** Blocks of a traceback text by goroutine id, each frame's arguments replaced by "(…)". */
function tracebackBlocks(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const b of text.replace(/^([^\t\n].*)\(.*\)$/gm, '$1(…)').split('\n\n')) {
    const m = /^goroutine (\d+) /.exec(b);
    if (m) out.set(Number(m[1]), b.trim());
  }
  return out;
}

/** Goroutines whose state is the program's own business at the moment of a dump: not comparable across reads. */
function transient(block: string): boolean {
  return /\[running\]|created by net\/http\.|main\.spin|runtime\/pprof\.write/.test(block);
}

/** debug=1 records ("N @ pcs", labels, frames) by their "@" line and labels. */
function countRecords(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of text.split('\n\n')) {
    const lines = r.split('\n').filter((l) => l !== '' && !l.startsWith('goroutine profile:'));
    if (lines.length === 0) continue;
    const key = lines[0]!.replace(/^\d+ /, '') + (lines[1]?.startsWith('# labels') ? `\n${lines[1]}` : '');
    out.set(key, lines.join('\n'));
  }
  return out;
}

/** Each sample's stack (function names, inlined calls included, innermost first) and pprof labels, counted. */
function profileStacks(p: Profile, keepLabel: (k: string) => boolean): Map<string, number> {
  const fn = new Map(p.function.map((f) => [f.id, p.stringTable[f.name]!]));
  const loc = new Map(p.location.map((l) => [l.id, l.line.map((x) => fn.get(x.functionId)!)]));
  const out = new Map<string, number>();
  for (const s of p.sample) {
    const names = s.locationId.flatMap((id) => loc.get(id)!);
    const labels = s.label
      .filter((l) => keepLabel(p.stringTable[l.key]!))
      .map((l) => `${p.stringTable[l.key]}=${p.stringTable[l.str]}`)
      .sort();
    const key = `${names.join(' < ')} | ${labels.join(',')}`;
    out.set(key, (out.get(key) ?? 0) + s.value[0]!);
  }
  return out;
}

const LIVE: Array<[string, FixtureMode]> = [
  ['1.15', 'plain'],
  ['1.19', 'plain'],
  ['1.21', 'plain'],
  ['1.23', 'plain'],
  ['1.26', 'plain'],
  ['1.26', 'stripped-pie'],
];

for (const [go, mode] of LIVE) {
  test(`go${go} ${mode}: a snapshot from outside, written as debug=2, debug=1 and debug=0, matches the program's own`, async () => {
    const labels = go === '1.26';
    const p = await startDumps(go, { mode, env: labels ? { GODEBUG: 'tracebacklabels=1' } : {} });
    const targets = new TargetCache();
    const symbolizer = new Symbolizer();
    try {
      const snap = snapshotGoroutines(p.pid, targets, { resolver: symbolizer });
      const ownStack = await p.ownStack();
      const own1 = (await p.ownGoroutineProfile(1)).toString('utf8');
      const own0 = decodePprof(await p.ownGoroutineProfile(0));

      // debug=2: the same text for every parked goroutine.
      const ours2 = tracebackBlocks(writeTracebackText(snap, { labels }));
      let compared = 0;
      const diffs: string[] = [];
      for (const [id, block] of tracebackBlocks(ownStack)) {
        if (transient(block)) continue;
        compared++;
        if (ours2.get(id) !== block) diffs.push(`--- own\n${block}\n--- ours\n${ours2.get(id) ?? '(missing)'}`);
      }
      assert.ok(compared >= 45, `${compared} goroutines compared`);
      assert.ok(diffs.length <= compared * 0.01, `${diffs.length} of ${compared} differ:\n${diffs.slice(0, 3).join('\n')}`);

      // debug=1: the same records (count, PCs, labels, frames, tabs) for the parked goroutines.
      const ours1 = writeCountText(snap);
      const oursRecords = countRecords(ours1);
      let records = 0;
      const recordDiffs: string[] = [];
      for (const [key, rec] of countRecords(own1)) {
        // The pprof handler, its connections, a goroutine that just exited (only runtime.goexit left): not parked.
        if (transient(rec) || /net\/http\./.test(rec) || key.split('\n')[0]!.split(' ').length < 3) continue;
        records++;
        if (oursRecords.get(key) !== rec) recordDiffs.push(`--- own\n${rec}\n--- ours\n${oursRecords.get(key) ?? '(missing)'}`);
      }
      assert.ok(records >= 15, `${records} records compared`);
      assert.deepEqual(recordDiffs, []);
      assert.ok(ours1.startsWith(`goroutine profile: total ${snap.goroutines.filter((g) => !g.system).length}\n`));
      if (go === '1.26') assert.ok(ours1.includes('# labels: {"odd key":"tab\\t\\"q\\" é😀\\x01\\u00a0end"}\n'), "odd labels quoted as Go's %q");

      // debug=0: the program's stacks (at most 32/128 frames deep) begin ours; the same pprof labels.
      const ours0 = buildGoroutineProfile(snap, { grouped: true });
      const ourStacks = profileStacks(ours0, (k) => k !== 'state' && k !== 'wait_reason');
      const ownStacks = [...profileStacks(own0, () => true)].filter(([k]) => !/runtime\/pprof\.write|net\/http\.|main\.spin|asyncPreempt/.test(k));
      assert.ok(ownStacks.length >= 20, `${ownStacks.length} debug=0 stacks`);
      for (const [key, count] of ownStacks) {
        // Go records 32 PCs (128 from Go 1.23): a stack that long may be the beginning of ours.
        const [stack, lbls] = key.split(' | ');
        const cut = stack!.split(' < ').length >= 32;
        const matches = [...ourStacks].filter(([k]) => (cut ? k.startsWith(`${stack} < `) || k.startsWith(`${stack} |`) : k.startsWith(`${stack} |`)) && k.endsWith(` | ${lbls}`));
        assert.equal(matches.reduce((n, [, c]) => n + c, 0), count, `debug=0 stack ${key.slice(0, 300)}`);
      }
    } finally {
      symbolizer.close();
      targets.close();
      p.stop();
    }
  });
}

test('go tool pprof reads our debug=0 (live and parsed) without a word on stderr', async () => {
  const p = await startDumps('1.26');
  const targets = new TargetCache();
  const symbolizer = new Symbolizer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-goroutine-pprof-'));
  try {
    const snap = snapshotGoroutines(p.pid, targets, { resolver: symbolizer });
    const files: Record<string, Buffer> = {
      live: goroutineProfile(snap, { labels: { container_id: 'abc' } }),
      grouped: goroutineProfile(snap, { grouped: true }),
      parsed: goroutineProfile(parseGoroutineDump(await p.ownStack())),
      quit: goroutineProfile(parseGoroutineDump(await p.quit()), { system: true }),
    };
    const tc = newestToolchain();
    for (const [name, buf] of Object.entries(files)) {
      const file = path.join(dir, `${name}.pb.gz`);
      fs.writeFileSync(file, buf);
      for (const flag of ['-raw', '-top']) {
        const r = spawnSync(tc.goBin, ['tool', 'pprof', flag, file], { env: goEnv(tc), encoding: 'utf8', timeout: 120_000 });
        assert.equal(r.status, 0, `${name} ${flag}: ${r.stderr}`);
        assert.equal(r.stderr, '', `${name} ${flag}: nothing on stderr`);
        if (flag === '-top') assert.match(r.stdout, /^Type: goroutine$/m);
        if (flag === '-raw') {
          assert.match(r.stdout, /state:\[waiting\] wait_reason:\[chan receive\]/);
          if (name === 'live' || name === 'parsed') assert.match(r.stdout, /goid:\[\d+\]/);
          if (name === 'live') assert.match(r.stdout, /container_id:\[abc\]/);
        }
      }
    }
    const top = spawnSync(tc.goBin, ['tool', 'pprof', '-top', '-tagfocus=worker=w1', path.join(dir, 'live.pb.gz')], { env: goEnv(tc), encoding: 'utf8' });
    assert.match(top.stdout, /Showing nodes accounting for 1, [\d.]+% of \d+ total/, 'one goroutine labelled worker=w1');
    assert.match(top.stdout, /main\.labelledWait$/m);
  } finally {
    symbolizer.close();
    targets.close();
    p.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
