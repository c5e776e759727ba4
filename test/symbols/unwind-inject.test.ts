// The injector against the real maps of profile.bpf.o (loaded, not attached): entries round-trip through the
// kernel, a table is shared by the processes of one binary and removed with the last of them, and full maps
// refuse cleanly.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';

import { u32 } from '../../src/bpf/codec';
import { bpfObjectPath } from '../../src/bpf/native';
import { BpfObject } from '../../src/bpf/object';
import { GoBinary } from '../../src/gosym/binary';
import { runtimeOffsets } from '../../src/gosym/runtime-offsets';
import { goBinaryInfo, LabelsKind, loadBias, ProcConfig, ProcFlag, SWITCH_FUNCS, UnwindInjector } from '../../src/symbols/injector';
import { findRange } from '../../src/symbols/unwind-table';
import { bpfTest } from '../bpf/support';
import { buildFixture, newestToolchain } from '../support/go-toolchains';

const PROFILE = bpfObjectPath('profile');

function open(maxEntries: Record<string, number> = {}): BpfObject {
  assert.ok(existsSync(PROFILE), `${PROFILE} is missing: run 'npm run build:bpf'`);
  return BpfObject.open(PROFILE, { maxEntries }).load();
}

function count(obj: BpfObject, name: string): number {
  let n = 0;
  for (const _ of obj.map(name).keys()) n++;
  return n;
}

const hot = () => buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' });

bpfTest('a table written to unwind_pages reads back from the kernel as GoBinary.spDelta, configs as written', () => {
  const obj = open();
  const bin = GoBinary.open(hot());
  try {
    const pages = obj.map('unwind_pages');
    const inj = new UnwindInjector(pages, obj.map('proc_configs', u32));
    const info = goBinaryInfo(bin, 'hot-key');
    const entries = info.tableStats.entries;
    const r = inj.addProcess(4_000_001, info, 0x1000);
    assert.deepEqual(r, { binaryId: 1 });
    assert.equal(count(obj, 'unwind_pages'), entries);
    assert.equal(inj.stats().unwindEntries, entries);

    let checked = 0;
    const get = (k: Buffer): Buffer | undefined => pages.lookup(k);
    for (let pc = info.minpc; pc < info.maxpc; pc += 37) {
      const got = findRange(get, 1, pc - info.minpc);
      assert.equal(got?.spdelta, bin.spDelta(pc), `0x${pc.toString(16)}`);
      checked++;
    }
    assert.ok(checked > 10000, `${checked} PCs`);

    const cfg = ProcConfig.decode(obj.map('proc_configs', u32).lookup(4_000_001)!);
    const off = runtimeOffsets(bin.elf, bin.version, bin.arch);
    assert.equal(cfg.binary_id, 1);
    assert.equal(cfg.bias, 0x1000n);
    assert.equal(cfg.minpc, BigInt(bin.pcln.minPc));
    assert.equal(cfg.maxpc, BigInt(bin.pcln.maxPc));
    assert.equal(cfg.flags, ProcFlag.R14_G | ProcFlag.TLS_G | ProcFlag.GOID | ProcFlag.SWITCH);
    assert.equal(cfg.tls_g_offset, -8);
    assert.deepEqual([cfg.g_goid, cfg.g_m, cfg.m_curg], [off.gGoid, off.gM, off.mCurg]);
    // Labels (a slice from Go 1.24) and stack switches: offsets from DWARF, function ranges as the symbol table says.
    assert.deepEqual([cfg.labels.g_labels, cfg.labels.kind], [off.gLabels, LabelsKind.SLICE]);
    assert.deepEqual([cfg.sw.g_sched_sp, cfg.sw.g_sched_pc, cfg.sw.g_sched_bp, cfg.sw.m_g0], [off.gSchedSp, off.gSchedPc, off.gSchedBp, off.mG0]);
    SWITCH_FUNCS.forEach((name, i) => {
      // The assembly body (Go ≥ 1.17 names it NAME.abi0 in the symbol table; NAME alone may be its ABI wrapper).
      const sym = (bin.elf.symbol(`runtime.${name}.abi0`) ?? bin.elf.symbol(`runtime.${name}`))!;
      assert.equal(cfg.sw.start[i], BigInt(sym.value), `runtime.${name}`);
      // The pclntab's end is the next function's entry: the symbol's size plus alignment padding.
      assert.ok(cfg.sw.end[i]! >= BigInt(sym.value + sym.size) && cfg.sw.end[i]! < BigInt(sym.value + sym.size + 64), `runtime.${name} end`);
    });
    assert.equal(cfg.top_start.filter((x) => x !== 0n).length, 4);
    for (let i = 0; i < 4; i++) assert.ok(cfg.top_end[i]! > cfg.top_start[i]!);
  } finally {
    bin.close();
    obj.close();
  }
});

bpfTest('processes of one binary share its table; it goes with the last of them (no idle binaries kept)', () => {
  const obj = open();
  const bin = GoBinary.open(hot());
  try {
    const inj = new UnwindInjector(obj.map('unwind_pages'), obj.map('proc_configs', u32), { idleBinaries: 0 });
    const info = goBinaryInfo(bin, 'k');
    const n = info.tableStats.entries;
    inj.addProcess(11, info, 0);
    assert.equal(inj.binaryInfo('k'), info, 'a second process of the file reuses the info');
    inj.addProcess(12, inj.binaryInfo('k')!, 0x555500000000);
    assert.equal(count(obj, 'unwind_pages'), n, 'written once');
    assert.equal(count(obj, 'proc_configs'), 2);
    assert.equal(inj.binaryIdOf(12), inj.binaryIdOf(11));
    assert.equal(inj.removeProcess(11), true);
    assert.equal(count(obj, 'unwind_pages'), n, 'still used by pid 12');
    assert.equal(count(obj, 'proc_configs'), 1);
    assert.equal(inj.removeProcess(11), false, 'already gone');
    inj.removeProcess(12);
    assert.equal(count(obj, 'unwind_pages'), 0, 'the last user left: the table is gone');
    assert.equal(count(obj, 'proc_configs'), 0);
    assert.equal(inj.binaryInfo('k'), undefined);
    assert.deepEqual({ ...inj.stats(), unwindCapacity: 0, configCapacity: 0 }, {
      binaries: 0, idleBinaries: 0, processes: 0, unwindEntries: 0, unwindCapacity: 0, configEntries: 0, configCapacity: 0, tablesRefused: 0, processesRefused: 0,
    });
    // A new process of the file afterwards gets a fresh table under a new id.
    const again = goBinaryInfo(bin, 'k');
    assert.deepEqual(inj.addProcess(13, again, 0), { binaryId: 2 });
    assert.equal(count(obj, 'unwind_pages'), n);
    inj.clear();
    assert.equal(count(obj, 'unwind_pages'), 0);
  } finally {
    bin.close();
    obj.close();
  }
});

bpfTest('idle binaries: the table stays for the next process of the file; the least recently used go past the limit or for room', () => {
  const bin = GoBinary.open(hot());
  let obj = open();
  try {
    let inj = new UnwindInjector(obj.map('unwind_pages'), obj.map('proc_configs', u32), { idleBinaries: 1 });
    const a = goBinaryInfo(bin, 'a');
    const n = a.tableStats.entries;
    assert.deepEqual(inj.addProcess(41, a, 0), { binaryId: 1 });
    inj.removeProcess(41);
    assert.deepEqual([count(obj, 'unwind_pages'), count(obj, 'proc_configs')], [n, 0], 'the table stays, the config goes');
    assert.deepEqual([inj.stats().binaries, inj.stats().idleBinaries, inj.stats().unwindEntries], [1, 1, n]);
    assert.equal(inj.binaryInfo('a'), a, 'the next process of the file needs no read of it');
    assert.equal(a.table, undefined, 'the table itself was let go when written: a second write could not happen');
    assert.deepEqual(inj.addProcess(42, inj.binaryInfo('a')!, 0x1000), { binaryId: 1 }, 'the same table');
    assert.equal(ProcConfig.decode(obj.map('proc_configs', u32).lookup(42)!).binary_id, 1);
    assert.deepEqual([count(obj, 'unwind_pages'), inj.stats().idleBinaries], [n, 0]);
    inj.removeProcess(42);
    // A second idle binary is one too many: the least recently used one goes, with its table.
    assert.deepEqual(inj.addProcess(43, goBinaryInfo(bin, 'b'), 0), { binaryId: 2 });
    assert.equal(count(obj, 'unwind_pages'), 2 * n);
    inj.removeProcess(43);
    assert.deepEqual([count(obj, 'unwind_pages'), inj.binaryInfo('a'), inj.binaryInfo('b') !== undefined], [n, undefined, true]);
    inj.clear();
    assert.deepEqual([count(obj, 'unwind_pages'), inj.stats().binaries, inj.stats().unwindEntries], [0, 0, 0], 'clear takes idle tables too');
    obj.close();

    // Room for one table only: an idle binary's table makes room for a new binary's.
    obj = open({ unwind_pages: n + (n >> 1) });
    inj = new UnwindInjector(obj.map('unwind_pages'), obj.map('proc_configs', u32), { idleBinaries: 4 });
    inj.addProcess(51, goBinaryInfo(bin, 'a'), 0);
    inj.removeProcess(51);
    assert.deepEqual(inj.addProcess(52, goBinaryInfo(bin, 'b'), 0), { binaryId: 2 });
    assert.deepEqual([count(obj, 'unwind_pages'), inj.binaryInfo('a'), inj.stats().tablesRefused], [n, undefined, 0]);
    // A live binary's table is never taken: a third binary does not fit while b runs.
    assert.match(inj.addProcess(53, goBinaryInfo(bin, 'c'), 0)?.noTable ?? '', /did not fit/);
    inj.removeProcess(53);
    assert.equal(inj.binaryInfo('c'), undefined, 'a binary without its table is not kept idle');
  } finally {
    bin.close();
    obj.close();
  }
});

bpfTest('bounded: a table that does not fit is refused whole, the process still gets its config', () => {
  const obj = open({ unwind_pages: 100, proc_configs: 2 });
  const bin = GoBinary.open(hot());
  try {
    const inj = new UnwindInjector(obj.map('unwind_pages'), obj.map('proc_configs', u32));
    const info = goBinaryInfo(bin, 'big');
    assert.ok(info.tableStats.entries > 100);
    const r = inj.addProcess(21, info, 0);
    assert.equal(r?.binaryId, 0);
    assert.match(r?.noTable ?? '', /did not fit \(\d+ entries needed, 100 of 100 free\)/);
    assert.equal(count(obj, 'unwind_pages'), 0, 'nothing half-written');
    const cfg = ProcConfig.decode(obj.map('proc_configs', u32).lookup(21)!);
    assert.equal(cfg.binary_id, 0, 'frame pointers only');
    assert.equal(cfg.flags & ProcFlag.GOID, ProcFlag.GOID, 'goroutine IDs still work');
    inj.addProcess(22, info, 0);
    assert.equal(inj.addProcess(23, info, 0), undefined, 'proc_configs is full');
    const s = inj.stats();
    assert.deepEqual([s.tablesRefused, s.processesRefused, s.configEntries, s.configCapacity, s.unwindCapacity], [1, 1, 2, 2, 100]);
  } finally {
    bin.close();
    obj.close();
  }
});

bpfTest('tables disabled: configs only', () => {
  const obj = open();
  const bin = GoBinary.open(hot());
  try {
    const inj = new UnwindInjector(obj.map('unwind_pages'), obj.map('proc_configs', u32), { tables: false });
    const r = inj.addProcess(31, goBinaryInfo(bin, 'x'), 0);
    assert.deepEqual(r, { binaryId: 0, noTable: 'unwind tables disabled' });
    assert.equal(count(obj, 'unwind_pages'), 0);
    assert.equal(count(obj, 'proc_configs'), 1);
  } finally {
    bin.close();
    obj.close();
  }
});

bpfTest('loadBias: from the executable mapping that holds the Go text', () => {
  const bin = GoBinary.open(buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'stripped-pie' }));
  try {
    const info = goBinaryInfo(bin, 'pie');
    const x = info.segments.find((s) => (s.flags & 1) !== 0)!;
    const base = 0x5600_0000_0000;
    // How the kernel maps a PIE linked at 0x400000: each segment at base + (vaddr − 0x400000), page-aligned.
    const maps = info.segments.map((s) => {
      const start = base + (s.vaddr - 0x400000) - (s.vaddr % 4096);
      return { start, end: start + s.memsz + (s.vaddr % 4096), perms: (s.flags & 1 ? 'r-xp' : 'r--p'), offset: s.offset - (s.offset % 4096), dev: 'fe:01', inode: 7, path: '/x', deleted: false };
    });
    const bias = loadBias(info, maps);
    assert.equal(bias, base - 0x400000);
    assert.ok(info.minpc >= x.vaddr);
    assert.equal(loadBias(info, maps.filter((m) => m.perms !== 'r-xp')), undefined, 'text not mapped (yet)');
  } finally {
    bin.close();
  }
});
