// What the goroutine reader takes from a binary before it reads any memory, checked against the binary's own
// symbol table and DWARF for every supported toolchain (amd64 and arm64), stripped PIEs and external linking:
// runtime.allgs found in runtime.allgadd's code, runtime.waitReasonStrings found by its "GC assist marking" entry,
// and runtime.g's goroutine fields from the version table.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allgsFromCode, locateAllgs } from '../../src/gosym/allgs';
import { GoBinary } from '../../src/gosym/binary';
import { dwarfSectionsOf } from '../../src/gosym/dwarf';
import { ElfFile } from '../../src/gosym/elf';
import { goroutineLayout, tableGoroutineLayout } from '../../src/gosym/goroutine-layout';
import { readWaitReasons, waitReasonsByAnchor } from '../../src/gosym/wait-reasons';
import { buildFixture, FixtureMode } from '../support/go-toolchains';
import { SUPPORTED_GO } from '../support/matrix';

const minorOf = (v: string): number => Number(v.split('.')[1]);

function withBinary<T>(file: string, f: (bin: GoBinary) => T): T {
  const bin = GoBinary.open(file);
  try {
    return f(bin);
  } finally {
    bin.close();
  }
}

const layoutFields = (l: ReturnType<typeof tableGoroutineLayout>): Record<string, number> => {
  const { source: _s, detail: _d, ...rest } = l;
  return rest;
};

for (const go of SUPPORTED_GO) {
  for (const goarch of ['amd64', 'arm64'] as const) {
    test(`go${go} ${goarch}: allgs from runtime.allgadd's code and wait reasons by anchor equal the symbol table; g layout table equals DWARF`, () => {
      const plain = buildFixture({ go, fixture: 'hot', mode: 'plain', goarch });
      const reasons = withBinary(plain, (bin) => {
        const sym = bin.elf.symbol('runtime.allgs');
        assert.ok(sym, 'runtime.allgs in .symtab');
        assert.deepEqual(allgsFromCode(bin), { address: sym.value, source: 'code' });
        assert.deepEqual(locateAllgs(bin), { address: sym.value, source: 'symtab' });

        const bySymbol = readWaitReasons(bin.elf);
        assert.ok(Array.isArray(bySymbol) && bySymbol.length > 20, `wait reasons by symbol: ${String(bySymbol)}`);
        assert.deepEqual(waitReasonsByAnchor(bin.elf), bySymbol);
        assert.equal(bySymbol[1], 'GC assist marking');
        for (const w of ['chan receive', 'chan send', 'select', 'sleep', 'IO wait', 'select (no cases)']) assert.ok(bySymbol.includes(w), `has "${w}"`);

        assert.ok(dwarfSectionsOf(bin.elf), 'plain builds have DWARF');
        const fromDwarf = goroutineLayout(bin.elf, { major: 1, minor: minorOf(go) }, goarch);
        assert.equal(fromDwarf.source, 'dwarf');
        assert.deepEqual(layoutFields(tableGoroutineLayout({ major: 1, minor: minorOf(go) }, goarch)), layoutFields(fromDwarf));
        return bySymbol;
      });

      const stripped = buildFixture({ go, fixture: 'hot', mode: 'stripped-pie', goarch });
      withBinary(stripped, (bin) => {
        assert.equal(bin.elf.symbol('runtime.allgs'), undefined, 'stripped');
        const loc = locateAllgs(bin);
        assert.ok(typeof loc !== 'string' && loc.source === 'code', `stripped PIE: ${JSON.stringify(loc)}`);
        // The slice header lives in the PIE's bss: past the file-backed part of a writable segment.
        const seg = bin.elf.segments.find((s) => s.type === 1 && (s.flags & 2) !== 0 && loc.address >= s.vaddr && loc.address < s.vaddr + s.memsz);
        assert.ok(seg, 'allgs is in a writable segment');
        assert.deepEqual(readWaitReasons(bin.elf), reasons, 'the same toolchain has the same wait reasons');
        assert.equal(goroutineLayout(bin.elf, { major: 1, minor: minorOf(go) }, goarch).source, 'table');
      });
    });
  }
}

for (const [go, mode] of [['1.19', 'cgo-external'], ['1.26', 'cgo-external'], ['1.26', 'external-stripped-pie']] as Array<[string, FixtureMode]>) {
  test(`go${go} ${mode}: allgs and wait reasons are found in an externally linked binary`, () => {
    const file = buildFixture({ go, fixture: 'cgo', mode, goarch: 'amd64' });
    withBinary(file, (bin) => {
      const code = allgsFromCode(bin);
      assert.ok(typeof code !== 'string', String(code));
      const sym = bin.elf.symbol('runtime.allgs');
      if (mode === 'cgo-external') assert.equal(code.address, sym?.value, 'code agrees with the symbol table');
      const reasons = waitReasonsByAnchor(bin.elf);
      assert.ok(Array.isArray(reasons) && reasons[1] === 'GC assist marking' && reasons.length > 20, String(reasons));
    });
  });
}

test('allgsFromCode and waitReasonsByAnchor on a binary without them say why, in one line', () => {
  const file = buildFixture({ go: '1.26', fixture: 'hot', mode: 'plain', goarch: 'amd64' });
  withBinary(file, (bin) => {
    // A copy whose allgadd code is zeroed: nothing to decode.
    const f = bin.funcAt(bin.elf.symbol('runtime.allgadd')!.value)!;
    const orig = bin.elf.readAt.bind(bin.elf);
    bin.elf.readAt = (vaddr: number, len: number) => (vaddr === f.entry ? Buffer.alloc(len) : orig(vaddr, len));
    assert.equal(allgsFromCode(bin), 'runtime.allgadd does not reference a slice header (array, len, cap)');
  });
  const c = ElfFile.open('/bin/true');
  try {
    assert.equal(waitReasonsByAnchor(c), 'no "GC assist marking" string in the binary (not a Go runtime this reader knows)');
  } finally {
    c.close();
  }
});
