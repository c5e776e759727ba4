import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';

import { readProcText } from '../../src/proc/read';

test('readProcText reads /proc files whole (they report size 0), bigger than its buffer too', () => {
  for (const f of ['/proc/self/stat', '/proc/self/maps', '/proc/self/status']) {
    const text = readProcText(f);
    assert.ok(text !== undefined && text.length > 0, f);
    assert.equal(text.split('\n')[0]!.split(' ')[0], fs.readFileSync(f, 'latin1').split('\n')[0]!.split(' ')[0], f);
  }
  // kallsyms is megabytes long; its first line does not change between reads.
  const k = readProcText('/proc/kallsyms')!;
  assert.ok(k.length > 1 << 20, `/proc/kallsyms read as ${k.length} bytes`);
  assert.equal(k.slice(0, k.indexOf('\n')), fs.readFileSync('/proc/kallsyms', 'latin1').split('\n')[0]);
});

test('readProcText: bytes as latin1, and undefined for what cannot be read', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-read-'));
  try {
    const f = path.join(dir, 'f');
    const bytes = Buffer.from([0x61, 0xe9, 0x00, 0xff, 0x0a]);
    fs.writeFileSync(f, Buffer.concat(Array.from({ length: 40_000 }, () => bytes)));
    assert.equal(readProcText(f), fs.readFileSync(f, 'latin1'));
    assert.equal(readProcText(path.join(dir, 'missing')), undefined);
    assert.equal(readProcText(dir), undefined, 'a directory');
    assert.equal(readProcText(f), fs.readFileSync(f, 'latin1'), 'the same again after a failure');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
