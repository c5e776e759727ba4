// One pclntab read per file while someone holds it (the agent's unwind-table builder and its symbolizer open the
// same binaries), and none kept once no one does.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { GoBinary } from '../../src/gosym/binary';
import { buildFixture, newestToolchain } from '../support/go-toolchains';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Opens, takes the table, closes: what the sampler does with a binary. */
function tableOf(file: string): Buffer {
  const bin = GoBinary.open(file);
  try {
    return bin.pcln.data;
  } finally {
    bin.close();
  }
}

test('two opens of one file share its pclntab; another file (a copy) gets its own', () => {
  const file = buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' });
  const a = GoBinary.open(file);
  const b = GoBinary.open(file);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-shared-'));
  try {
    assert.equal(a.pcln.data, b.pcln.data);
    const copy = path.join(dir, 'hot');
    fs.copyFileSync(file, copy);
    const c = tableOf(copy);
    assert.notEqual(c, a.pcln.data);
    assert.ok(c.equals(a.pcln.data));
  } finally {
    a.close();
    b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a table no one holds any more is let go, and read again when asked for', async () => {
  const file = buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' });
  let first: WeakRef<Buffer> | undefined = new WeakRef(tableOf(file));
  for (let i = 0; i < 10 && first.deref() !== undefined; i++) {
    await new Promise((r) => setImmediate(r)); // WeakRefs are cleared only after the job that made them
    gc();
  }
  assert.equal(first.deref(), undefined, 'the table was collected');
  first = undefined;
  const again = tableOf(file);
  assert.ok(again.length > 0);
});
