// The BPF unwind table against the binaries' own pcsp tables: what find_range() in profile.bpf.c would answer
// (simulated on the encoded map entries) must be GoBinary.spDelta(pc) for every PC tried.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { GoBinary } from '../../src/gosym/binary';
import { FUNC_FLAG_ASM, FUNC_FLAG_TOPFRAME } from '../../src/gosym/pclntab';
import {
  buildUnwindTable,
  findRange,
  findTlsGOffset,
  UNWIND_CHUNK_RANGES,
  UNWIND_CHUNK_SHIFT,
  UNWIND_PAGE_SIZE,
  UnwindChunk,
  UnwindFlag,
  UnwindKey,
  unwindKeys,
  type UnwindTable,
} from '../../src/symbols/unwind-table';
import { buildFixture, newestToolchain, type FixtureMode } from '../support/go-toolchains';

const NEWEST = newestToolchain().version;

const CASES: Array<{ go: string; fixture: string; mode: FixtureMode }> = [
  { go: NEWEST, fixture: 'hot', mode: 'plain' },
  { go: NEWEST, fixture: 'hot', mode: 'stripped-pie' },
  { go: NEWEST, fixture: 'inline', mode: 'external-stripped-pie' },
  { go: '1.19', fixture: 'cgo', mode: 'cgo-external' },
  { go: '1.21', fixture: 'hot', mode: 'plain' },
  { go: '1.15', fixture: 'hot', mode: 'plain' },
];

/** A deterministic PRNG (tests must not change from run to run). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function encoded(table: UnwindTable, binaryId: number): Map<string, Buffer> {
  const m = new Map<string, Buffer>();
  for (const [k, v] of table.entries(binaryId)) m.set(k.toString('hex'), v);
  return m;
}

/** PCs to try: the first 16 KiB byte by byte, 5000 random ones, every function entry and every range edge. */
function probePcs(bin: GoBinary, table: UnwindTable): number[] {
  const pcs = new Set<number>();
  for (let pc = table.minpc; pc < Math.min(table.maxpc, table.minpc + 16384); pc++) pcs.add(pc);
  const r = rng(42);
  for (let i = 0; i < 5000; i++) pcs.add(table.minpc + Math.floor(r() * (table.maxpc - table.minpc)));
  for (let i = 0; i < bin.pcln.nfunc; i++) pcs.add(bin.pcln.pcAt(i));
  for (const s of table.starts) {
    pcs.add(s);
    if (s - 1 >= table.minpc) pcs.add(s - 1);
  }
  pcs.add(table.maxpc - 1);
  return [...pcs].sort((a, b) => a - b);
}

test('unwind map layouts match bpf/profile.h', () => {
  assert.equal(UnwindKey.size, 8);
  assert.equal(UnwindChunk.size, 508, 'struct unwind_chunk: 4 + 72*2 + 72*4 + 72');
  assert.deepEqual(UnwindChunk.offsets, { count: 0, end: 2, start: 4, spdelta: 148, flags: 436 });
  assert.ok(UnwindChunk.size <= 512);
});

for (const c of CASES) {
  test(`go${c.go} ${c.fixture} ${c.mode}: the encoded table gives GoBinary.spDelta(pc) at every PC tried`, () => {
    const bin = GoBinary.open(buildFixture(c));
    try {
      const table = buildUnwindTable(bin);
      assert.equal(table.minpc, bin.pcln.minPc);
      assert.equal(table.maxpc, bin.pcln.maxPc);
      assert.equal(table.stats.droppedRanges, 0);
      const map = encoded(table, 3);
      assert.equal(map.size, table.stats.entries);
      assert.equal([...unwindKeys(3, table.chunkCounts)].length, table.stats.entries, 'removal finds every key');
      // Reusing two Buffers for every entry (how the injector writes): the same bytes, entry by entry.
      const reused: string[] = [];
      for (const [k, v] of table.entries(3, true)) reused.push(k.toString('hex') + v.toString('hex'));
      assert.deepEqual(reused, [...map].map(([k, v]) => k + v.toString('hex')));
      const keys: string[] = [];
      for (const k of unwindKeys(3, table.chunkCounts, true)) keys.push(k.toString('hex'));
      assert.deepEqual(keys, [...map.keys()]);
      const get = (k: Buffer): Buffer | undefined => map.get(k.toString('hex'));

      const pcs = probePcs(bin, table);
      assert.ok(pcs.length > 20000, `${pcs.length} PCs`);
      let checked = 0;
      for (const pc of pcs) {
        const want = bin.spDelta(pc);
        const got = findRange(get, 3, pc - table.minpc);
        assert.ok(got, `no range for 0x${pc.toString(16)}`);
        assert.equal(got.spdelta, want, `spdelta at 0x${pc.toString(16)}`);
        assert.deepEqual(table.lookup(pc), got, 'the flat ranges and the page entries agree');
        assert.equal((got.flags & UnwindFlag.NO_INFO) !== 0, want < 0, `NO_INFO at 0x${pc.toString(16)}`);
        const f = bin.funcAt(pc)!;
        const flag = bin.pcln.funcFlag(f);
        if (table.stats.asmFrom === 'flag') assert.equal((got.flags & UnwindFlag.GO) !== 0, (flag & FUNC_FLAG_ASM) === 0, bin.funcName(f));
        if (table.stats.topFrameFrom === 'flag') assert.equal((got.flags & UnwindFlag.TOP_FRAME) !== 0, (flag & FUNC_FLAG_TOPFRAME) !== 0, bin.funcName(f));
        checked++;
      }
      assert.ok(checked > 20000);
      assert.equal(findRange(get, 4, 0), undefined, 'another binary id has no entries');
      assert.equal(findRange(get, 3, table.maxpc - table.minpc + UNWIND_PAGE_SIZE), undefined, 'past the text');
    } finally {
      bin.close();
    }
  });
}

test('chunks: each page covers [0, 4096) without gaps, continuation chunks start where the previous ended', () => {
  const bin = GoBinary.open(buildFixture({ go: NEWEST, fixture: 'hot', mode: 'plain' }));
  try {
    const table = buildUnwindTable(bin);
    const byPage = new Map<number, Array<{ chunk: number; v: ReturnType<typeof UnwindChunk.decode> }>>();
    for (const [k, v] of table.entries(1)) {
      const key = UnwindKey.decode(k);
      const page = key.page & ((1 << UNWIND_CHUNK_SHIFT) - 1);
      const list = byPage.get(page) ?? [];
      list.push({ chunk: key.page >>> UNWIND_CHUNK_SHIFT, v: UnwindChunk.decode(v) });
      byPage.set(page, list);
    }
    assert.equal(byPage.size, table.pageCount);
    let continued = 0;
    for (const [page, chunks] of byPage) {
      assert.deepEqual(chunks.map((c) => c.chunk), chunks.map((_, i) => i));
      let from = 0;
      for (const { v } of chunks) {
        assert.ok(v.count >= 1 && v.count <= UNWIND_CHUNK_RANGES);
        assert.equal(v.start[0], from, `page ${page}: a chunk starts where the previous one ended`);
        for (let i = 1; i < v.count; i++) assert.ok(v.start[i]! > v.start[i - 1]!, 'ascending starts');
        assert.ok(v.end > v.start[v.count - 1]!);
        from = v.end;
      }
      const pageBase = table.minpc + page * UNWIND_PAGE_SIZE;
      assert.equal(from, Math.min(UNWIND_PAGE_SIZE, table.maxpc - pageBase), `page ${page} is covered to its end`);
      if (chunks.length > 1) continued++;
    }
    assert.ok(continued > 0, 'this binary has pages with more than one chunk: continuation is exercised');
  } finally {
    bin.close();
  }
});

test('the frameless leaf and its caller, as the BPF side will see them', () => {
  const bin = GoBinary.open(buildFixture({ go: NEWEST, fixture: 'hot', mode: 'plain' }));
  try {
    const table = buildUnwindTable(bin);
    const fn = (name: string) => {
      for (let i = 0; i < bin.pcln.nfunc; i++) {
        const f = bin.pcln.funcAt(i);
        if (bin.funcName(f) === name) return f;
      }
      throw new Error(`${name} not found`);
    };
    const leaf = fn('main.leafSpin');
    for (let pc = leaf.entry; pc < leaf.end; pc++) {
      const r = table.lookup(pc)!;
      if (r.flags & UnwindFlag.NO_INFO) continue; // alignment padding after RET
      assert.equal(r.spdelta, 0, 'leafSpin never moves SP: its return address is always at [SP]');
      assert.equal(r.flags, UnwindFlag.GO);
    }
    const caller = fn('main.leafCaller');
    const deltas = new Set<number>();
    for (let pc = caller.entry; pc < caller.end; pc++) deltas.add(table.lookup(pc)!.spdelta);
    assert.ok(deltas.has(0) && deltas.has(8) && [...deltas].some((d) => d > 8), `leafCaller pushes BP and has a frame: ${[...deltas]}`);
    const names = table.topFrames.map(([s]) => bin.funcName(bin.funcAt(s)!)).sort();
    assert.deepEqual(names, ['runtime.goexit', 'runtime.mstart', 'runtime.rt0_go', 'runtime.sigtramp']);
    const injected = table.injectedCalls.map(([s, e]) => {
      const f = bin.funcAt(s)!;
      assert.equal(f.entry, s);
      assert.equal(f.end, e);
      return bin.funcName(f);
    });
    assert.deepEqual(injected, ['runtime.asyncPreempt', 'runtime.sigpanic', 'runtime.sigpanic0', 'runtime.debugCallV2']);
  } finally {
    bin.close();
  }
});

test('go1.15 (no Asm/TopFrame flags in the pclntab): assembly by file name, top frames by name', () => {
  const bin = GoBinary.open(buildFixture({ go: '1.15', fixture: 'hot', mode: 'plain' }));
  try {
    const table = buildUnwindTable(bin);
    assert.equal(table.stats.asmFrom, 'file');
    assert.equal(table.stats.topFrameFrom, 'name');
    assert.ok(table.stats.asmFunctions > 50, `${table.stats.asmFunctions} assembly functions`);
    assert.equal(table.topFrames.length, 4);
    const injected = table.injectedCalls.map(([s]) => bin.funcName(bin.funcAt(s)!));
    assert.deepEqual(injected, ['runtime.asyncPreempt', 'runtime.sigpanic', 'runtime.debugCallV1'], 'no sigpanic0 before Go 1.17');
    let memmove = false;
    for (let i = 0; i < bin.pcln.nfunc; i++) {
      const f = bin.pcln.funcAt(i);
      if (bin.funcName(f) !== 'runtime.memmove') continue;
      memmove = true;
      assert.equal(table.lookup(f.entry)!.flags & UnwindFlag.GO, 0, 'runtime.memmove is assembly');
    }
    assert.ok(memmove);
  } finally {
    bin.close();
  }
});

/** p_align of the PT_TLS segment, read from the program headers (ElfFile does not keep it). */
function tlsSegment(bin: GoBinary): { memsz: number; align: number } | undefined {
  const h = bin.elf.source.read(0, 64);
  const phoff = Number(h.readBigUInt64LE(32));
  const phentsize = h.readUInt16LE(54);
  const phnum = h.readUInt16LE(56);
  const ph = bin.elf.source.read(phoff, phnum * phentsize);
  for (let i = 0; i < phnum; i++) {
    if (ph.readUInt32LE(i * phentsize) === 7 /* PT_TLS */) {
      return { memsz: Number(ph.readBigUInt64LE(i * phentsize + 40)), align: Number(ph.readBigUInt64LE(i * phentsize + 48)) };
    }
  }
  return undefined;
}

test("g's TLS slot from the code: -8 in internally and externally linked binaries, PIE or not", () => {
  for (const c of CASES) {
    const bin = GoBinary.open(buildFixture(c));
    try {
      assert.equal(findTlsGOffset(bin), -8, `go${c.go} ${c.fixture} ${c.mode}`);
    } finally {
      bin.close();
    }
  }
  // Cross-check with the linker's view where symbols survive: runtime.tlsg in the executable's TLS block,
  // which on x86-64 (TLS variant II) ends at the thread pointer: offset = st_value − round_up(memsz, align).
  const bin = GoBinary.open(buildFixture({ go: '1.19', fixture: 'cgo', mode: 'cgo-external' }));
  try {
    const tlsg = bin.elf.symbol('runtime.tlsg');
    const seg = tlsSegment(bin);
    assert.ok(tlsg && seg, 'an externally linked binary has runtime.tlsg and PT_TLS');
    const blockSize = Math.ceil(seg.memsz / seg.align) * seg.align;
    assert.equal(tlsg.value - blockSize, findTlsGOffset(bin));
  } finally {
    bin.close();
  }
});
