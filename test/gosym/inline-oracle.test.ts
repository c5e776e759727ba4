// Oracle 2, the Go runtime: the inline fixture records call-site PCs inside inlined code and prints what
// runtime.CallersFrames reports for each physical PC; `quietflame addr2line --inline` must give the same chain
// (function, file, line; innermost first) for the same link-time PC, stripped PIE builds included.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fixtureMatrix, build, FixtureBuild } from '../support/matrix';
import { runCli } from '../support/cli';
import { goToolAddr2line, newestToolchain } from '../support/go-toolchains';

interface FixtureFrame {
  function: string;
  file: string;
  line: number;
}
interface FixtureLine {
  site: string;
  index: number;
  lookupPc: string;
  frames: FixtureFrame[];
}

function runFixture(binary: string): { loadBias: bigint; lines: FixtureLine[] } {
  const out = execFileSync(binary, [], { encoding: 'utf8', timeout: 60_000 }).trim().split('\n');
  const head = JSON.parse(out[0]!) as { loadBias: string };
  return { loadBias: BigInt(head.loadBias), lines: out.slice(1).map((l) => JSON.parse(l) as FixtureLine) };
}

// The C linker, PIE and -s: Go's own tool answers "?" or wrong functions here (see below).
const externalStrippedPie = (go: string): FixtureBuild => ({
  go, fixture: 'inline', mode: 'external-stripped-pie', goarch: 'amd64', label: `go${go} inline external-stripped-pie amd64`,
});

const builds = [
  ...fixtureMatrix(['inline']).filter((x) => x.goarch === 'amd64' && x.fixture === 'inline'),
  externalStrippedPie('1.19'),
  externalStrippedPie(newestToolchain().version),
];

for (const b of builds) {
  test(`addr2line --inline matches runtime.CallersFrames: ${b.label}`, { timeout: 10 * 60_000 }, () => {
    const binary = build(b);
    const { loadBias, lines } = runFixture(binary);
    assert.ok(lines.length >= 30, `fixture printed only ${lines.length} frames`);
    const addrs = lines.map((l) => '0x' + (BigInt(l.lookupPc) - loadBias).toString(16));
    const input = addrs.join('\n') + '\n';
    if (b.mode === 'external-stripped-pie') {
      // Go's tool cannot find the table (go1.19 layout: "?") or takes .text as the text start, which the C linker
      // put below runtime.text (go1.26 layout: wrong functions). Either way it disagrees with the runtime.
      const goLines = goToolAddr2line(newestToolchain().goBin, binary, addrs).split('\n');
      const wrong = lines.filter((l, i) => goLines[2 * i] !== l.frames[l.frames.length - 1]!.function).length;
      assert.ok(wrong > 0, `Go's addr2line got ${lines.length - wrong} of ${lines.length} right; this build no longer shows its blind spot`);
    }
    const r = runCli(['addr2line', '--inline', binary], input);
    assert.equal(r.status, 0, r.stderr);
    const ours = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { frames: FixtureFrame[] });
    assert.equal(ours.length, lines.length);
    let inlinedChains = 0;
    lines.forEach((want, i) => {
      const expected = want.frames.map(({ function: fn, file, line }) => ({ function: fn, file, line }));
      assert.deepEqual(ours[i]!.frames, expected, `${want.site} #${want.index} at ${want.lookupPc}`);
      if (expected.length > 1) inlinedChains++;
    });
    // The fixture's chains hold up to five frames at one PC: make sure inlining really happened.
    assert.ok(inlinedChains >= 5, `only ${inlinedChains} PCs had inlined frames`);
    assert.ok(lines.some((l) => l.frames.length >= 5), 'no PC carried the five-deep inline chain');
  });
}
