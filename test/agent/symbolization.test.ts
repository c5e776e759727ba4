// Every Go frame the real agent reports for a real process is symbolized, and symbolized as Go's own tools say:
// a Go 1.26 stripped PIE (no ELF symbols, loaded at a random address) and cgo binaries (Go 1.19 and the newest)
// linked by the C linker (C and Go code side by side in .text). Profiles come over HTTP from `quietflame agent`
// (real BPF).
//
// Which locations are Go frames is decided here, independently of the agent: the location's address minus the
// load bias (from /proc/PID/maps and the ELF program headers) lies in the pclntab's [minpc, maxpc). Oracles:
// `go tool addr2line` (newest toolchain) for Go frames, `nm -S` (binutils) for the C frames of the cgo binary.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { bpfTest } from '../bpf/support';
import { run } from '../sampler/support';
import { readPprof, sampleCount, startAgent } from '../support/agent';
import { buildFixture, goToolAddr2line, newestToolchain, type FixtureMode } from '../support/go-toolchains';
import { GoBinary } from '../../src/gosym/binary';
import { ElfFile, PF_X, PT_LOAD } from '../../src/gosym/elf';
import { readMaps } from '../../src/proc/maps';
import type { Location, Profile } from '../../src/profile/pprof';

interface Case {
  go: string;
  fixture: string;
  mode: FixtureMode;
  /** Functions the workload spends its time in: each must show up (by name, from its Go frames). */
  goFunctions: string[];
  /** C functions that must show up, resolved through the ELF symbol table (cgo only). */
  cFunctions: RegExp[];
}

const CASES: Case[] = [
  { go: '1.26', fixture: 'hot', mode: 'stripped-pie', goFunctions: ['main.leafSpin', 'main.leafCaller', 'main.framedHash', 'main.framedCaller'], cFunctions: [] },
  // cgomix: Go work, C work, and Go called back from C (see its main.go); 1.19 and the newest, which use different
  // pclntab generations.
  ...['1.19', newestToolchain().version].map((go) => ({
    go,
    fixture: 'cgomix',
    mode: 'cgo-external' as const,
    goFunctions: ['main.goSpin', 'main.goCaller', 'main.callbackSpin', 'runtime.cgocallback'],
    cFunctions: [/_Cfunc_c_spin$|^c_spin$/],
  })),
];

/** The executable mapping of `binary` in pid, and its load bias (runtime − link-time address) from the ELF program headers. */
function textMapping(pid: number, binary: string): { start: number; end: number; offset: number; bias: number } {
  const maps = readMaps(pid);
  assert.ok(maps, `process ${pid} is gone`);
  const text = maps.filter((m) => m.path === binary && m.perms[2] === 'x');
  assert.equal(text.length, 1, `executable mappings of ${binary}: ${JSON.stringify(text)}`);
  const m = text[0]!;
  const elf = ElfFile.open(binary);
  try {
    const seg = elf.segments.find((s) => s.type === PT_LOAD && (s.flags & PF_X) !== 0 && s.offset <= m.offset && m.offset < s.offset + s.filesz);
    assert.ok(seg, `no executable PT_LOAD holds file offset 0x${m.offset.toString(16)} of ${binary}`);
    // File offset o is mapped at m.start + (o − m.offset) and linked at seg.vaddr + (o − seg.offset).
    return { start: m.start, end: m.end, offset: m.offset, bias: m.start - m.offset - (seg.vaddr - seg.offset) };
  } finally {
    elf.close();
  }
}

/** Function symbols by `nm -S --defined-only`: the names covering a link-time address (aliases included; [] for none). */
function nmLookup(binary: string): (addr: number) => string[] {
  const r = spawnSync('nm', ['-S', '--defined-only', binary], { encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, `nm ${binary}: ${r.stderr}`);
  const syms: Array<{ start: number; size: number | undefined; name: string }> = [];
  for (const line of r.stdout.split('\n')) {
    const m = /^([0-9a-f]+)(?: ([0-9a-f]+))? [tTwWi] (\S+)$/.exec(line);
    if (m) syms.push({ start: parseInt(m[1]!, 16), size: m[2] === undefined ? undefined : parseInt(m[2], 16), name: m[3]! });
  }
  return (addr) => {
    const sized = syms.filter((s) => s.size !== undefined && s.start <= addr && addr < s.start + s.size).map((s) => s.name);
    if (sized.length > 0) return sized;
    // Otherwise only a symbol without a size can cover it, up to the next symbol.
    const top = Math.max(...syms.filter((s) => s.start <= addr).map((s) => s.start));
    return syms.filter((s) => s.start === top && s.size === undefined).map((s) => s.name);
  };
}

function names(p: Profile): { fn(id: number): string; file(id: number): string } {
  const byId = new Map(p.function.map((f) => [f.id, f]));
  return { fn: (id) => p.stringTable[byId.get(id)!.name]!, file: (id) => p.stringTable[byId.get(id)!.filename]! };
}

for (const c of CASES) {
  bpfTest(`go${c.go} ${c.fixture} ${c.mode}: every Go frame of a live profile is symbolized, as go tool addr2line says${c.cFunctions.length ? '; C frames as nm says' : ''}`, async (t) => {
    const binary = buildFixture({ go: c.go, fixture: c.fixture, mode: c.mode });
    const gobin = GoBinary.open(binary);
    const [minPc, maxPc] = [gobin.pcln.minPc, gobin.pcln.maxPc];
    gobin.close();
    const agent = await startAgent();
    const proc = await run(binary);
    try {
      const { profile: p } = await readPprof(await fetch(`${agent.url}/debug/pprof/profile?seconds=3&pid=${proc.pid}`), `${c.fixture} profile`);
      const text = textMapping(proc.pid, binary);

      // The binary's mapping in the profile is the process's own.
      const exe = p.mapping.filter((m) => p.stringTable[m.filename] === binary);
      assert.equal(exe.length, 1, `mappings of ${binary} in the profile: ${exe.length}`);
      const [mapping] = exe as [Profile['mapping'][number]];
      assert.deepEqual([mapping.memoryStart, mapping.memoryLimit, mapping.fileOffset], [BigInt(text.start), BigInt(text.end), BigInt(text.offset)]);
      assert.ok(mapping.hasFunctions && mapping.hasLineNumbers && mapping.hasInlineFrames, 'the Go binary\'s mapping must claim functions, lines and inlines');

      const link = (l: Location): number => Number(l.address) - text.bias;
      const ours = p.location.filter((l) => l.mappingId === mapping.id);
      const goLocs = ours.filter((l) => link(l) >= minPc && link(l) < maxPc);
      const otherLocs = ours.filter((l) => !goLocs.includes(l));
      const goIds = new Set(goLocs.map((l) => l.id));
      const withGo = sampleCount(p, (s) => s.locationId.some((id) => goIds.has(id)));
      assert.ok(withGo >= 50, `only ${withGo} samples (of ${sampleCount(p)}) have a Go frame: too few to mean anything`);

      t.diagnostic(`${sampleCount(p)} samples, ${withGo} with Go frames; ${goLocs.length} Go locations, ${otherLocs.length} others in the binary`);

      // 100% of the Go frames have a function name.
      const n = names(p);
      const unnamed = goLocs.filter((l) => l.line.length === 0 || l.line.some((ln) => n.fn(ln.functionId) === ''));
      assert.deepEqual(unnamed.map((l) => `0x${link(l).toString(16)}`), [], `${unnamed.length} of ${goLocs.length} Go locations without a function name`);

      // …and the names and positions Go's own tool gives for the same link-time addresses: the physical function
      // (the outermost frame) and the file:line of the instruction (the innermost frame).
      const addrs = goLocs.map((l) => `0x${link(l).toString(16)}`);
      const out = goToolAddr2line(newestToolchain().goBin, binary, addrs).split('\n');
      const mismatches: string[] = [];
      goLocs.forEach((l, i) => {
        const want = `${out[2 * i]} ${out[2 * i + 1]}`;
        const inner = l.line[0]!;
        const got = `${n.fn(l.line[l.line.length - 1]!.functionId)} ${n.file(inner.functionId)}:${inner.line}`;
        if (got !== want) mismatches.push(`${addrs[i]}: agent ${got}, go tool addr2line ${want}`);
      });
      assert.deepEqual(mismatches, [], `${mismatches.length} of ${goLocs.length} Go locations disagree with go tool addr2line`);

      const goNames = new Set(goLocs.flatMap((l) => l.line.map((ln) => n.fn(ln.functionId))));
      for (const fn of c.goFunctions) assert.ok(goNames.has(fn), `${fn} is missing; Go functions seen: ${[...goNames].sort().join(', ')}`);

      // Outside the Go table: a pure Go binary has nothing sampled there; a cgo binary's C code resolves through
      // its ELF symbols (the stacks stop at the C frame: gcc code does not keep frame pointers).
      if (c.cFunctions.length === 0) {
        assert.deepEqual(otherLocs.map((l) => `0x${link(l).toString(16)}`), [], 'locations in the binary outside its Go text');
      } else {
        const nm = nmLookup(binary);
        const wrong: string[] = [];
        for (const l of otherLocs) {
          const want = nm(link(l));
          const got = l.line.map((ln) => n.fn(ln.functionId));
          const agrees = want.length === 0 ? got.length === 0 : got.length === 1 && want.includes(got[0]!);
          if (!agrees) wrong.push(`0x${link(l).toString(16)}: agent [${got.join(', ')}], nm [${want.join(', ')}]`);
        }
        assert.deepEqual(wrong, [], `${wrong.length} of ${otherLocs.length} C locations disagree with nm`);
        const cNames = otherLocs.flatMap((l) => l.line.map((ln) => n.fn(ln.functionId)));
        for (const re of c.cFunctions) assert.ok(cNames.some((name) => re.test(name)), `no C frame matching ${re}; C frames: ${[...new Set(cNames)].join(', ')}`);
      }
      // No user frame is an address outside every mapping (a garbage return address from the unwinder).
      const stray = new Set(p.location.filter((l) => l.mappingId === 0).map((l) => l.id));
      const byId = new Map(p.location.map((l) => [l.id, l]));
      const show = (id: number): string => {
        const l = byId.get(id)!;
        return stray.has(id) ? `[0x${l.address.toString(16)}: no mapping]` : (l.line.length ? n.fn(l.line[l.line.length - 1]!.functionId) : `0x${l.address.toString(16)}`);
      };
      const strayStacks = p.sample.filter((s) => s.locationId.some((id) => stray.has(id))).map((s) => s.locationId.map(show).join(' <- '));
      assert.deepEqual(strayStacks.slice(0, 5), [], `${strayStacks.length} of ${p.sample.length} stacks hold addresses outside any mapping`);
      await proc.stop();
      assert.equal(await agent.stop(), 0, agent.stderr());
    } finally {
      await proc.stop();
      await agent.stop();
    }
  });
}
