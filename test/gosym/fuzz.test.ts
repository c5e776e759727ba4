// Fuzzing the binary readers (test/support/fuzz-readers.ts): 100,000 mutated and truncated real binaries here
// (QF_FUZZ_ITERATIONS; bench/fuzz-readers.bench.ts runs 1,000,000). Every outcome must be a value or a
// FormatError: no other exception, no hang. A sample of the mutants also goes through the real CLI: exit 1 and
// one line, no stack.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildFixture, newestToolchain } from '../support/go-toolchains';
import { runFuzz } from '../support/fuzz-readers';
import { Rng } from '../support/random';
import { runCli } from '../support/cli';

const ITERATIONS = Number(process.env.QF_FUZZ_ITERATIONS ?? 100_000);
const SEED = Number(process.env.QF_FUZZ_SEED ?? 0x5eed);

test(`fuzz: ${ITERATIONS} mutated/truncated Go binaries (ELF, pclntab, build info, DWARF, unwind tables) give values or FormatError (seed ${SEED})`, { timeout: 30 * 60_000 }, () => {
  const outcomes = runFuzz(ITERATIONS, SEED);
  assert.equal(outcomes.failure, undefined, outcomes.failure);
  // Both kinds of outcome must occur, and every reader must be reached, or the mutations are not doing their job.
  assert.ok(outcomes.parsed > ITERATIONS / 20, `only ${outcomes.parsed} mutants parsed`);
  assert.ok(outcomes.rejected > ITERATIONS / 20, `only ${outcomes.rejected} mutants rejected`);
  assert.ok(outcomes.agentPath > ITERATIONS / 400, `only ${outcomes.agentPath} mutants went through the agent's path`);
  assert.ok(outcomes.dwarfMutants > ITERATIONS / 30, `only ${outcomes.dwarfMutants} DWARF mutants`);
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
