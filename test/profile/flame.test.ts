// The page's flame model against folded stacks (tested against pprof in folded.test.ts and pprof-go-tool.test.ts):
// on a real profile — a Go program's own runtime/pprof CPU profile — the model's stacks, folded the same way,
// are the same text and its sample counts add up to the profile's.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { test } from 'node:test';
import { flameModel } from '../../src/profile/flame';
import { foldedStacks } from '../../src/profile/folded';
import { decodePprof } from '../../src/profile/pprof';
import { buildFixture, newestToolchain } from '../support/go-toolchains';

test('the flame model of a real profile folds to the same stacks and totals as foldedStacks', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-flame-'));
  const file = path.join(dir, 'cpu.pb.gz');
  const proc = spawn(buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' }), ['-cpuprofile', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const lines = readline.createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
    await lines.next();
    proc.kill('SIGUSR1');
    await new Promise((r) => setTimeout(r, 1500));
    proc.kill('SIGUSR2');
    assert.match((await lines.next()).value as string, /written/);
    const p = decodePprof(fs.readFileSync(file));
    const m = flameModel(p);
    assert.deepEqual(m.valueType, { type: 'cpu', unit: 'nanoseconds' });
    const sums = new Map<string, number>();
    for (const s of m.samples) {
      const key = m.stacks[s[0]!]!.map((f) => m.frames[f]!.name.replace(/;/g, ':')).join(';');
      sums.set(key, (sums.get(key) ?? 0) + s[2]!);
    }
    const folded = [...sums].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k} ${v}\n`).join('');
    assert.equal(folded, foldedStacks(p, { valueIndex: 1 }));
    assert.ok(m.frames.some((f) => f.name === 'main.leafSpin' && f.kind === 'user'));
    // Go's own profiles label nothing but what the program set: none here.
    assert.deepEqual(m.labels, []);
    assert.equal(m.samples.reduce((n, s) => n + s[1]!, 0), p.sample.reduce((n, s) => n + s.value[0]!, 0));
  } finally {
    proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
