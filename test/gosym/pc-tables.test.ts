// A Go binary whose pc-value tables are read from the file on demand (the agent's symbolizer) answers exactly as
// one that holds its whole pclntab (addr2line, the binary reader), for every function of every supported Go
// release and link mode, while holding a fraction of the bytes; a file that shrinks under it gives unknowns.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { GoBinary } from '../../src/gosym/binary';
import { ElfFile } from '../../src/gosym/elf';
import { ChangePoints, type FuncInfo, type Pclntab } from '../../src/gosym/pclntab';
import { build, fixtureMatrix } from '../support/matrix';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** A function's SP-delta change points as plain arrays, to compare two tables' answers. */
function spDeltaChangesOf(pcln: Pclntab, f: FuncInfo): { pcs: number[]; values: number[]; end: number } {
  const c = new ChangePoints();
  pcln.spDeltaChanges(f, c);
  return { pcs: [...c.pcs.subarray(0, c.count)], values: [...c.values.subarray(0, c.count)], end: c.end };
}

/** PCs of f to look at: its entry, its last byte and some in between. */
function pcsOf(entry: number, end: number): number[] {
  const out = new Set([entry, end - 1]);
  for (let i = 1; i < 8; i++) out.add(entry + Math.floor(((end - entry) * i) / 8));
  return [...out].filter((pc) => pc >= entry && pc < end);
}

for (const b of fixtureMatrix(['inline'])) {
  test(`pc-value tables on demand answer as the whole pclntab does: ${b.label}`, { timeout: 10 * 60_000 }, () => {
    const binary = build(b);
    const whole = GoBinary.open(binary);
    const lazy = new GoBinary(ElfFile.open(binary), { pcTablesOnDemand: true });
    try {
      if (whole.pcln.generation === 'go1.2') {
        assert.equal(lazy.pcln.data.length, whole.pcln.data.length, 'go1.2 keeps its tables among the records: held whole');
      } else {
        assert.ok(lazy.pcln.data.length < whole.pcln.data.length * 0.6, `holds ${lazy.pcln.data.length} of ${whole.pcln.data.length} bytes`);
      }
      let checked = 0;
      for (let i = 0; i < whole.pcln.nfunc; i++) {
        const f = whole.pcln.funcAt(i);
        const g = lazy.pcln.funcAt(i);
        assert.equal(g.entry, f.entry);
        assert.deepEqual(spDeltaChangesOf(lazy.pcln, g), spDeltaChangesOf(whole.pcln, f), `pcsp of ${whole.funcName(f)}`);
        for (const pc of pcsOf(f.entry, f.end)) {
          assert.deepEqual(lazy.lineInfo(pc), whole.lineInfo(pc), `0x${pc.toString(16)}`);
          assert.deepEqual(lazy.frames(pc), whole.frames(pc), `frames at 0x${pc.toString(16)}`);
          assert.equal(lazy.pcln.spDelta(g, pc), whole.pcln.spDelta(f, pc));
          for (let index = 0; index < 3; index++) assert.equal(lazy.pcln.pcdata(g, index, pc), whole.pcln.pcdata(f, index, pc));
          checked++;
        }
      }
      assert.ok(checked > 5000, `${checked} PCs`);
    } finally {
      whole.close();
      lazy.close();
    }
  });
}

test('pc-value tables on demand: tables that run past their chunk are read again whole; few chunks are kept', () => {
  const [b] = fixtureMatrix(['inline']).filter((x) => x.go === '1.26' && x.mode === 'plain' && x.goarch === 'amd64');
  const whole = GoBinary.open(build(b!));
  const reads: number[] = [];
  // Chunks of 64 bytes with 8 of overlap, 4 kept: most tables cross a chunk, and the chunks turn over all the time.
  const lazy = whole.pcln.withPcTablesOnDemand((off, length) => {
    reads.push(length);
    return whole.pcln.data.subarray(off, off + length);
  }, { chunkBytes: 64, overlapBytes: 8, maxChunks: 4 });
  try {
    for (let i = 0; i < whole.pcln.nfunc; i++) {
      const f = whole.pcln.funcAt(i);
      const g = lazy.funcAt(i);
      assert.deepEqual(spDeltaChangesOf(lazy, g), spDeltaChangesOf(whole.pcln, f));
      for (const pc of pcsOf(f.entry, f.end)) {
        assert.equal(lazy.line(g, pc), whole.pcln.line(f, pc));
        assert.equal(lazy.file(g, pc), whole.pcln.file(f, pc));
      }
    }
    const wholeReads = reads.filter((n) => n > 72).length;
    assert.ok(wholeReads > 1000, `${wholeReads} tables read again whole, of ${reads.length} reads`);
  } finally {
    whole.close();
  }
});

test('pc-value tables on demand: a file cut short under the table gives unknown lines, not an error', () => {
  const [b] = fixtureMatrix(['inline']).filter((x) => x.go === '1.26' && x.mode === 'plain' && x.goarch === 'amd64');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-pctab-'));
  try {
    const copy = path.join(dir, 'bin');
    fs.copyFileSync(build(b!), copy);
    const whole = GoBinary.open(copy);
    const lazy = new GoBinary(ElfFile.open(copy), { pcTablesOnDemand: true });
    try {
      const main = [...Array(whole.pcln.nfunc).keys()].map((i) => whole.pcln.funcAt(i)).find((f) => whole.funcName(f) === 'main.main')!;
      assert.ok(main);
      const known = whole.lineInfo(main.entry)!;
      assert.ok(known.line > 0);
      fs.truncateSync(copy, 4096); // the tables are gone from the file; the open descriptor sees it
      const cut = lazy.lineInfo(main.entry)!;
      assert.equal(cut.function, 'main.main', 'names are held');
      assert.equal(cut.line, -1, 'the line table could not be read');
      assert.equal(lazy.pcln.spDelta(lazy.pcln.funcAt(main.index), main.entry), -1);
    } finally {
      whole.close();
      lazy.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('pc-value tables on demand: the whole table the binary was opened from is let go', async () => {
  const [b] = fixtureMatrix(['inline']).filter((x) => x.go === '1.26' && x.mode === 'plain' && x.goarch === 'amd64');
  const file = build(b!);
  let whole: GoBinary | undefined = GoBinary.open(file);
  const table = new WeakRef(whole.pcln.data);
  const lazy = new GoBinary(ElfFile.open(file), { pcTablesOnDemand: true }); // opened from that same read (shared)
  try {
    const pc = lazy.pcln.funcAt(Math.floor(lazy.pcln.nfunc / 2)).entry;
    const answer = whole.lineInfo(pc);
    whole.close();
    whole = undefined;
    for (let i = 0; i < 10 && table.deref() !== undefined; i++) {
      await new Promise((r) => setImmediate(r)); // WeakRefs are cleared only after the job that made them
      gc();
    }
    assert.equal(table.deref(), undefined, 'the whole pclntab was collected while the binary lives on');
    assert.deepEqual(lazy.lineInfo(pc), answer);
  } finally {
    lazy.close();
  }
});
