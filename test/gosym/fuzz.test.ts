// Fuzzing the Go symbol-table readers: 100,000 mutated and truncated real binaries (seeded, so a failure is
// reproducible from the seed and iteration printed). Every outcome must be a value or a FormatError: no other
// exception, no hang. A sample of the mutants also goes through the real CLI: exit 1 and one line, no stack.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BufferSource, FormatError } from '../../src/gosym/bytes';
import { ElfFile } from '../../src/gosym/elf';
import { GoBinary } from '../../src/gosym/binary';
import { goAddr2line } from '../../src/gosym/addr2line';
import { buildFixture, newestToolchain, requireToolchain } from '../support/go-toolchains';
import { Rng } from '../support/random';
import { runCli } from '../support/cli';

const ITERATIONS = Number(process.env.QF_FUZZ_ITERATIONS ?? 100_000);
const SEED = Number(process.env.QF_FUZZ_SEED ?? 0x5eed);

interface Target {
  name: string;
  bytes: Buffer;
  /** [offset, length] ranges where a flipped byte matters most: headers and the pclntab's own tables. */
  hot: Array<[number, number]>;
}

function target(name: string, file: string): Target {
  const bytes = fs.readFileSync(file);
  const bin = new GoBinary(new ElfFile(new BufferSource(bytes), name));
  const elf = bin.elf;
  const hot: Array<[number, number]> = [[0, 64]];
  const ph = bytes.readUInt32LE(32);
  hot.push([ph, 56 * bytes.readUInt16LE(56)]);
  const sh = Number(bytes.readBigUInt64LE(40));
  if (sh > 0) hot.push([sh, 64 * bytes.readUInt16LE(60)]);
  const seg = elf.segmentAt(bin.pclntabAddr)!;
  const pclnOff = seg.offset + (bin.pclntabAddr - seg.vaddr);
  hot.push([pclnOff, 128], [pclnOff, Math.min(1 << 20, bytes.length - pclnOff)]);
  return { name, bytes, hot };
}

/** Exercises a parsed binary the way the CLI and the agent do. */
function exercise(bin: GoBinary, rng: Rng): void {
  const lo = bin.pcln.minPc;
  const hi = bin.pcln.maxPc;
  const pcs = new Float64Array(8);
  for (let i = 0; i < pcs.length; i++) {
    const pc = hi > lo ? rng.int(lo, hi) : lo;
    pcs[i] = pc;
    bin.lineInfo(pc);
    bin.frames(pc);
    bin.spDelta(pc);
  }
  goAddr2line(bin, pcs, () => {}); // the CLI's batch path: its own table walk and byte copies
  void bin.version;
  void bin.buildId;
}

test(`fuzz: ${ITERATIONS} mutated/truncated Go binaries give values or FormatError (seed ${SEED})`, { timeout: 30 * 60_000 }, () => {
  const newest = newestToolchain();
  const targets = [
    target('newest-plain', buildFixture({ go: newest.version, fixture: 'inline', mode: 'plain' })),
    target('newest-stripped-pie', buildFixture({ go: newest.version, fixture: 'inline', mode: 'stripped-pie' })),
    target('go1.15-plain', buildFixture({ go: requireToolchain('1.15').version, fixture: 'inline', mode: 'plain' })),
    target('go1.19-stripped-pie', buildFixture({ go: requireToolchain('1.19').version, fixture: 'inline', mode: 'stripped-pie' })),
  ];
  const rng = new Rng(SEED);
  const outcomes = { parsed: 0, rejected: 0 };
  for (let it = 0; it < ITERATIONS; it++) {
    const t = targets[it % targets.length]!;
    const saved: Array<[number, number]> = [];
    let view = t.bytes;
    const kind = rng.int(0, 3);
    if (kind !== 1) {
      const flips = rng.int(1, 9);
      for (let k = 0; k < flips; k++) {
        const [start, len] = rng.next() < 0.8 ? rng.pick(t.hot) : [0, t.bytes.length];
        const at = Math.min(t.bytes.length - 1, start + rng.int(0, Math.max(1, len)));
        saved.push([at, t.bytes[at]!]);
        t.bytes[at] = rng.next() < 0.5 ? rng.int(0, 256) : t.bytes[at]! ^ (1 << rng.int(0, 8));
      }
    }
    if (kind !== 0) view = t.bytes.subarray(0, rng.next() < 0.5 ? rng.int(0, 4096) : rng.int(0, t.bytes.length));
    try {
      const bin = new GoBinary(new ElfFile(new BufferSource(view), t.name));
      exercise(bin, rng);
      outcomes.parsed++;
    } catch (e) {
      if (!(e instanceof FormatError)) {
        assert.fail(`iteration ${it} (seed ${SEED}, ${t.name}): ${(e as Error).stack}`);
      }
      assert.ok(!e.message.includes('\n'), `multi-line message: ${e.message}`);
      outcomes.rejected++;
    } finally {
      for (let k = saved.length - 1; k >= 0; k--) t.bytes[saved[k]![0]] = saved[k]![1];
    }
  }
  // Both kinds of outcome must occur, or the mutations are not reaching the parser.
  assert.ok(outcomes.parsed > ITERATIONS / 20, `only ${outcomes.parsed} mutants parsed`);
  assert.ok(outcomes.rejected > ITERATIONS / 20, `only ${outcomes.rejected} mutants rejected`);
});

test('fuzz through the CLI: corrupt binaries exit 1 with one line naming the file, never a stack trace', { timeout: 10 * 60_000 }, () => {
  const src = fs.readFileSync(buildFixture({ go: newestToolchain().version, fixture: 'inline', mode: 'stripped-pie' }));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-fuzz-cli-'));
  const rng = new Rng(SEED + 1);
  let failures = 0;
  try {
    for (let i = 0; i < 60; i++) {
      const bytes = Buffer.from(src.subarray(0, i % 2 ? rng.int(0, src.length) : src.length));
      for (let k = 0; k < 16 && bytes.length > 0; k++) bytes[rng.int(0, Math.min(bytes.length, 1 << 16))] = rng.int(0, 256);
      const file = path.join(dir, `mutant-${i}`);
      fs.writeFileSync(file, bytes);
      const r = runCli(['addr2line', file], '0x401000\n0x0\n', 60_000);
      if (r.status === 0) continue; // some mutants are still valid binaries
      failures++;
      assert.equal(r.status, 1, `mutant ${i}: exit ${r.status}, stderr ${r.stderr}`);
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `mutant ${i}: ${r.stderr}`);
      assert.ok(lines[0]!.includes(file), `mutant ${i}: message does not name the file: ${lines[0]}`);
      assert.ok(!/internal error|    at /.test(r.stderr), `mutant ${i}: ${r.stderr}`);
    }
    assert.ok(failures > 0, 'no mutant was rejected');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
