// Go version and build ID: from build info and the Go build-ID note, checked against the toolchain that built the
// binary and against `go tool buildid`; bounded from the pclntab layout when the build info is gone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { BufferSource } from '../../src/gosym/bytes';
import { ElfFile } from '../../src/gosym/elf';
import { GoBinary } from '../../src/gosym/binary';
import { newestToolchain, requireToolchain, toolchainGoVersion } from '../support/go-toolchains';
import { build, fixtureMatrix } from '../support/matrix';

for (const b of fixtureMatrix(['inline'])) {
  test(`version and build ID: ${b.label}`, { timeout: 10 * 60_000 }, () => {
    const binary = build(b);
    const bin = GoBinary.open(binary);
    try {
      assert.equal(bin.version.text, toolchainGoVersion(requireToolchain(b.go)));
      assert.equal(bin.version.exact, true);
      const goBuildId = execFileSync(newestToolchain().goBin, ['tool', 'buildid', binary], { encoding: 'utf8', env: { ...process.env, GOTOOLCHAIN: 'local', GOPROXY: 'off' } }).trim();
      assert.equal(bin.buildId, goBuildId);
      assert.equal(bin.arch, b.goarch);
      assert.equal(bin.isPie, b.mode === 'stripped-pie' || (b.mode === 'cgo-external' && bin.elf.type === 3));
    } finally {
      bin.close();
    }
  });
}

test('without build info the version is bounded from the pclntab layout', () => {
  const cases: Array<[string, string]> = [['1.15', 'go1.2-go1.15'], ['1.19', 'go1.18-go1.19'], ['1.23', 'go1.20+'], ['1.26', 'go1.26+']];
  for (const [go, expected] of cases) {
    const bytes = Buffer.from(fs.readFileSync(build({ go, fixture: 'inline', mode: 'stripped-pie', goarch: 'amd64', label: '' })));
    for (let i = bytes.indexOf('\xff Go buildinf:', 0, 'latin1'); i >= 0; i = bytes.indexOf('\xff Go buildinf:', i + 1, 'latin1')) bytes[i + 1] = 0x21;
    const bin = new GoBinary(new ElfFile(new BufferSource(bytes), `go${go} without build info`));
    assert.equal(bin.version.text, expected, `go${go}`);
    assert.equal(bin.version.exact, false);
  }
});
