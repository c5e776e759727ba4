// Smoke test of the Go toolchains and fixture builds every other Go-facing test stands on.
// A missing toolchain FAILS (never skips): run scripts/install-go-toolchains.sh.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import {
  EXPECTED_GO_TOOLCHAINS,
  buildFixture,
  goToolAddr2line,
  listToolchains,
  newestToolchain,
  requireToolchain,
  toolchainGoVersion,
} from './go-toolchains';

interface InlineFrame {
  function: string;
  file: string;
  line: number;
  entry: string;
}

interface InlinePc {
  site: string;
  index: number;
  pc: string;
  lookupPc: string;
  frames: InlineFrame[];
}

test('every expected Go toolchain is installed and runs', () => {
  const installed = listToolchains().map((t) => t.version);
  for (const v of EXPECTED_GO_TOOLCHAINS) {
    const tc = requireToolchain(v); // throws "Go 1.NN toolchain missing: run scripts/install-go-toolchains.sh"
    assert.ok(fs.existsSync(tc.goBin), tc.goBin);
    assert.match(toolchainGoVersion(tc), new RegExp(`^go${v.replace('.', '\\.')}(\\.\\d+)?$`));
  }
  assert.ok(installed.length >= EXPECTED_GO_TOOLCHAINS.length, `installed: ${installed.join(', ')}`);
  assert.equal(newestToolchain().version, installed[installed.length - 1]);
  assert.throws(() => requireToolchain('1.3'), /Go 1\.3 toolchain missing: run scripts\/install-go-toolchains\.sh/);
});

test('inline fixture builds with the newest toolchain and its output parses', { timeout: 10 * 60_000 }, () => {
  const tc = newestToolchain();
  const bin = buildFixture({ go: tc.version, fixture: 'inline', mode: 'plain' });
  assert.ok(fs.statSync(bin).size > 100_000, `${bin} is too small`);
  assert.equal(buildFixture({ go: tc.version, fixture: 'inline', mode: 'plain' }), bin, 'a second build is the cached one');

  const lines = execFileSync(bin, [], { encoding: 'utf8' }).trim().split('\n');
  const header = JSON.parse(lines[0]!) as { loadBias: string; goVersion: string; loadBiasCheck: string };
  assert.equal(header.loadBias, '0x0', 'a plain (non-PIE) build has no load bias');
  assert.equal(header.goVersion, toolchainGoVersion(tc));
  assert.equal(header.loadBiasCheck, 'symtab');

  const pcs = lines.slice(1).map((l) => JSON.parse(l) as InlinePc);
  assert.ok(pcs.length >= 30, `only ${pcs.length} PC lines`);
  for (const p of pcs) {
    assert.match(p.pc, /^0x[0-9a-f]+$/);
    assert.equal(BigInt(p.lookupPc), BigInt(p.pc) - 1n, 'lookupPc is the return address minus 1');
    assert.ok(p.frames.length >= 1);
  }
  const deep = pcs.find((p) => p.site === 'deepLeaf<deep2<deep3<deep4<outerP' && p.frames[0]!.function === 'main.deepLeaf');
  assert.ok(deep, 'the deep inline chain was recorded');
  assert.deepEqual(
    deep.frames.map((f) => f.function),
    ['main.deepLeaf', 'main.deep2', 'main.deep3', 'main.deep4', 'main.outerP'],
  );
  assert.ok(deep.frames.some((f) => f.file.endsWith('/more.go')), 'the chain crosses files');
  assert.equal(new Set(deep.frames.map((f) => f.entry)).size, 1, 'all frames of one PC share the physical entry');

  // Go's own addr2line agrees with the runtime on the physical function of that PC.
  const out = goToolAddr2line(tc.goBin, bin, [deep.lookupPc]).split('\n');
  assert.equal(out[0], 'main.outerP');
});
