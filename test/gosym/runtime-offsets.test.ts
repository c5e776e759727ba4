// runtime.g / runtime.m offsets: the version table against the DWARF of binaries built by every installed Go
// toolchain (amd64 and arm64), stripped binaries falling back to the table, a live check of the table against a
// running Go process's memory, an objdump cross-check of the DWARF reader, and fuzzing of a real .debug_info.
//
// Toolchains come from test/support/go-toolchains.ts: a missing expected toolchain fails the test (never skips).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { BufferSource, FormatError } from '../../src/gosym/bytes';
import { DwarfSections, dwarfSectionsOf, readStructLayouts, StructLayout } from '../../src/gosym/dwarf';
import { ElfFile } from '../../src/gosym/elf';
import {
  GoArch, offsetsFromLayouts, RuntimeOffsets, runtimeOffsets, TABLE_PROVENANCE, tableOffsets,
} from '../../src/gosym/runtime-offsets';
import { buildFixture, EXPECTED_GO_TOOLCHAINS, listToolchains, newestToolchain, requireToolchain } from '../support/go-toolchains';
import { Rng } from '../support/random';

const ARCHES: GoArch[] = ['amd64', 'arm64'];
const STRUCTS = ['runtime.g', 'runtime.m', 'runtime.gobuf', 'runtime.stack'];

/** Expected toolchains plus whatever else is installed, oldest first. */
function versionsUnderTest(): string[] {
  const all = new Set<string>([...EXPECTED_GO_TOOLCHAINS, ...listToolchains().map((t) => t.version)]);
  return [...all].sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
}

const minorOf = (v: string): number => Number(v.split('.')[1]);

function fieldsOf(o: RuntimeOffsets): Omit<RuntimeOffsets, 'source' | 'detail'> {
  const { source: _s, detail: _d, ...rest } = o;
  return rest;
}

function withElf<T>(file: string, f: (elf: ElfFile) => T): T {
  const elf = ElfFile.open(file);
  try {
    return f(elf);
  } finally {
    elf.close();
  }
}

// --- the table on its own ----------------------------------------------------------------------------------------

test('table: an entry for every Go release 1.15…1.26 (and 1.27), same on amd64 and arm64', () => {
  for (let minor = 15; minor <= 27; minor++) {
    const a = tableOffsets({ major: 1, minor }, 'amd64');
    const b = tableOffsets({ major: 1, minor }, 'arm64');
    assert.equal(a.source, 'table', `go1.${minor}`);
    assert.equal(a.detail, `go1.${minor}`);
    assert.deepEqual(a, b, `go1.${minor}: amd64 vs arm64`);
    assert.ok(TABLE_PROVENANCE.has(minor), `go1.${minor} has a provenance`);
  }
  assert.deepEqual([...TABLE_PROVENANCE.keys()].sort((x, y) => x - y), Array.from({ length: 13 }, (_, i) => 15 + i));
});

test('table: the layout changes at 1.23 (g.syscallbp) and 1.25 (gobuf.ret removed); g.labels moves more often', () => {
  const t = (minor: number): RuntimeOffsets => tableOffsets({ major: 1, minor }, 'amd64');
  assert.deepEqual(fieldsOf(t(22)), {
    gStackLo: 0, gStackHi: 8, gM: 48, gSched: 56, gSchedSp: 56, gSchedPc: 64, gSchedBp: 104,
    gAtomicStatus: 144, gGoid: 152, mCurg: 192, mG0: 0, mProcid: 72, gLabels: 344,
  });
  assert.deepEqual(fieldsOf(t(23)), { ...fieldsOf(t(22)), gAtomicStatus: 152, gGoid: 160, gLabels: 352 });
  assert.deepEqual(fieldsOf(t(25)), { ...fieldsOf(t(22)), gSchedBp: 96, mCurg: 184, mProcid: 64 });
  const labels = Array.from({ length: 13 }, (_, i) => t(15 + i).gLabels);
  assert.deepEqual(labels, [344, 344, 360, 360, 360, 360, 344, 344, 352, 352, 344, 352, -1], 'g.labels, go1.15…go1.27');
});

test('table: versions outside it and unknown versions are guesses the caller can warn about', () => {
  const newest = tableOffsets({ major: 1, minor: 27 }, 'amd64');
  const oldest = tableOffsets({ major: 1, minor: 15 }, 'amd64');
  const future = tableOffsets({ major: 1, minor: 40 }, 'arm64');
  assert.equal(future.source, 'table-guess');
  assert.match(future.detail!, /go1\.40 is outside the offset table .*using go1\.27/);
  assert.deepEqual(fieldsOf(future), fieldsOf(newest));
  const old = tableOffsets({ major: 1, minor: 12 }, 'amd64');
  assert.equal(old.source, 'table-guess');
  assert.deepEqual(fieldsOf(old), fieldsOf(oldest));
  const unknown = tableOffsets(undefined, 'amd64');
  assert.equal(unknown.source, 'table-guess');
  assert.deepEqual(fieldsOf(unknown), fieldsOf(newest));
  assert.equal(tableOffsets({ major: 2, minor: 0 }, 'amd64').source, 'table-guess');
});

test('offsetsFromLayouts names what DWARF lacks', () => {
  const layout = (members: Record<string, number>): StructLayout => ({ size: 8, members: new Map(Object.entries(members)) });
  assert.equal(offsetsFromLayouts(new Map([['runtime.g', layout({})]])), 'DWARF lacks runtime.m, runtime.gobuf, runtime.stack');
  const r = offsetsFromLayouts(new Map([
    ['runtime.g', layout({ stack: 0, m: 48, sched: 56, atomicstatus: 144 })],
    ['runtime.m', layout({ g0: 0, curg: 192, procid: 72 })],
    ['runtime.gobuf', layout({ sp: 0, pc: 8, bp: 48 })],
    ['runtime.stack', layout({ lo: 0, hi: 8 })],
  ]));
  assert.equal(r, 'DWARF lacks runtime.g.goid');
});

// --- every installed toolchain: DWARF == table -------------------------------------------------------------------

for (const version of versionsUnderTest()) {
  const minor = minorOf(version);
  for (const arch of ARCHES) {
    test(`go${version} ${arch}: the table equals the binary's DWARF; a stripped PIE uses the table`, () => {
      requireToolchain(version); // fails (never skips) when an expected toolchain is missing
      const plain = buildFixture({ go: version, fixture: 'hot', mode: 'plain', goarch: arch });
      const fromDwarf = withElf(plain, (elf) => {
        const secs = dwarfSectionsOf(elf);
        assert.ok(secs, `${plain}: no DWARF`);
        const layouts = readStructLayouts(secs, STRUCTS);
        // The fields really are inside their structs, and the nested structs are the sizes we assume.
        const g = layouts.get('runtime.g')!;
        const m = layouts.get('runtime.m')!;
        assert.equal(layouts.get('runtime.stack')!.size, 16);
        assert.equal(layouts.get('runtime.gobuf')!.size, minor >= 25 ? 48 : 56);
        assert.ok(g.size > 300 && g.size < 1024 && m.size > 900 && m.size < 4096, `sizes g=${g.size} m=${m.size}`);
        return runtimeOffsets(elf, { major: 1, minor }, arch);
      });
      assert.equal(fromDwarf.source, 'dwarf');
      assert.deepEqual(fieldsOf(tableOffsets({ major: 1, minor }, arch)), fieldsOf(fromDwarf), `go${version} ${arch}: table vs DWARF`);

      const stripped = buildFixture({ go: version, fixture: 'hot', mode: 'stripped-pie', goarch: arch });
      const fromTable = withElf(stripped, (elf) => {
        assert.equal(dwarfSectionsOf(elf), undefined, 'a -s -w build has no DWARF');
        return runtimeOffsets(elf, { major: 1, minor }, arch);
      });
      assert.equal(fromTable.source, 'table');
      assert.match(fromTable.detail!, new RegExp(`^no DWARF; go${version.replace('.', '\\.')}$`));
      assert.deepEqual(fieldsOf(fromTable), fieldsOf(fromDwarf));
    });
  }
}

// --- the table against a live process ----------------------------------------------------------------------------

interface Worker { role: string; goid: number; tid: number }

/**
 * Runs the hot fixture and walks runtime.allgs in its memory (/proc/PID/mem) with the table's offsets: every
 * worker's goid must be found at g.goid, and whenever a worker's g.m is set (it is running), m.procid must be the
 * worker's thread ID (each worker is locked to its thread) and, at least once, m.curg must point back at the g.
 */
async function liveCheck(version: string): Promise<void> {
  const minor = minorOf(version);
  const bin = buildFixture({ go: version, fixture: 'hot', mode: 'plain', goarch: 'amd64' });
  const off = tableOffsets({ major: 1, minor }, 'amd64');
  const allgs = withElf(bin, (elf) => elf.symbol('runtime.allgs'));
  assert.ok(allgs, 'runtime.allgs symbol');
  const child = spawn(bin, ['-leaf', '1', '-framed', '1', '-sleeper', '1'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const first = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('hot fixture printed nothing in 20 s')), 20_000);
      child.once('error', reject);
      readline.createInterface({ input: child.stdout! }).once('line', (l) => {
        clearTimeout(t);
        resolve(l);
      });
    });
    const workers = (JSON.parse(first) as { workers: Worker[] }).workers;
    const fd = fs.openSync(`/proc/${child.pid}/mem`, 'r');
    try {
      const read = (addr: bigint, n: number): Buffer => {
        const b = Buffer.alloc(n);
        const got = fs.readSync(fd, b, 0, n, addr);
        assert.equal(got, n, `short read at 0x${addr.toString(16)}`);
        return b;
      };
      const u64 = (addr: bigint): bigint => read(addr, 8).readBigUInt64LE(0);
      let curgMatches = 0;
      let running = 0;
      for (let round = 0; round < 40 && (curgMatches === 0 || running < 2); round++) {
        await new Promise((r) => setTimeout(r, 25));
        const base = u64(BigInt(allgs.value));
        const len = Number(u64(BigInt(allgs.value) + 8n));
        assert.ok(len > 0 && len < 100_000, `allglen ${len}`);
        const seen = new Set<number>();
        for (let i = 0; i < len; i++) {
          const g = u64(base + BigInt(8 * i));
          if (g === 0n) continue;
          const goid = Number(u64(g + BigInt(off.gGoid)));
          const w = workers.find((x) => x.goid === goid);
          if (!w) continue;
          seen.add(goid);
          const status = read(g + BigInt(off.gAtomicStatus), 4).readUInt32LE(0) & ~0x1000;
          assert.ok(status >= 1 && status <= 9, `goroutine ${goid}: status ${status}`);
          const lo = u64(g + BigInt(off.gStackLo));
          const hi = u64(g + BigInt(off.gStackHi));
          assert.ok(hi > lo && hi - lo >= 2048n && hi - lo <= 1n << 30n, `goroutine ${goid}: stack [0x${lo.toString(16)}, 0x${hi.toString(16)})`);
          const m = u64(g + BigInt(off.gM));
          if (m === 0n) continue;
          running++;
          assert.equal(Number(u64(m + BigInt(off.mProcid))), w.tid, `goroutine ${goid} (${w.role}): m.procid`);
          if (u64(m + BigInt(off.mCurg)) === g) curgMatches++;
        }
        assert.deepEqual([...seen].sort(), workers.map((w) => w.goid).sort(), 'every worker goroutine found by goid');
      }
      assert.ok(running > 0, 'saw a running worker (g.m set)');
      assert.ok(curgMatches > 0, 'm.curg pointed back at the running g');
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    child.kill('SIGKILL');
  }
}

for (const version of versionsUnderTest()) {
  test(`go${version} amd64: the table's offsets find the goroutines of a running program`, { skip: process.arch !== 'x64' && process.env['CI'] !== 'true' && 'needs an amd64 host' }, async () => {
    requireToolchain(version);
    await liveCheck(version);
  });
}

// --- the DWARF reader against objdump ----------------------------------------------------------------------------

function haveObjdump(): boolean {
  try {
    execFileSync('objdump', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Struct layouts parsed from `objdump --dwarf=info` text (binutils), the same shape readStructLayouts returns. */
function objdumpLayouts(file: string, names: string[]): Map<string, StructLayout> {
  const text = execFileSync('objdump', ['--dwarf=info', file], { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] });
  interface Die { level: number; tag: string; attrs: Map<string, string> }
  const dies: Die[] = [];
  for (const line of text.split('\n')) {
    const d = /^\s*<(\d+)><[0-9a-f]+>: Abbrev Number: \d+(?: \((DW_TAG_\w+)\))?/.exec(line);
    if (d) {
      dies.push({ level: Number(d[1]), tag: d[2] ?? '', attrs: new Map() });
      continue;
    }
    const a = /^\s*<[0-9a-f]+>\s+(DW_AT_\w+)\s*:\s*(.*)$/.exec(line);
    const cur = dies[dies.length - 1];
    if (a && cur && !cur.attrs.has(a[1]!)) cur.attrs.set(a[1]!, a[2]!.trim());
  }
  const want = new Set(names);
  const out = new Map<string, StructLayout>();
  dies.forEach((d, i) => {
    const name = d.attrs.get('DW_AT_name') ?? '';
    if (d.tag !== 'DW_TAG_structure_type' || !want.has(name) || out.has(name) || d.attrs.has('DW_AT_declaration')) return;
    const members = new Map<string, number>();
    for (let j = i + 1; j < dies.length && dies[j]!.level > d.level; j++) {
      const c = dies[j]!;
      if (c.level !== d.level + 1 || c.tag !== 'DW_TAG_member') continue;
      const loc = c.attrs.get('DW_AT_data_member_location') ?? '';
      const v = /^(\d+)/.exec(loc) ?? /DW_OP_plus_uconst: (\d+)/.exec(loc);
      const n = c.attrs.get('DW_AT_name');
      if (v && n !== undefined && !members.has(n)) members.set(n, Number(v[1]));
    }
    out.set(name, { size: Number(d.attrs.get('DW_AT_byte_size') ?? -1), members });
  });
  return out;
}

test('readStructLayouts agrees with objdump --dwarf=info on every member of runtime.g/m/gobuf/stack', { skip: !haveObjdump() && !process.env['CI'] && 'objdump (binutils) is not installed' }, () => {
  // The oldest (.zdebug_*, DWARF 4), and the newest (SHF_COMPRESSED, DWARF 5) on arm64.
  const tcs = listToolchains();
  assert.ok(tcs.length > 0, 'no Go toolchain installed');
  const builds = [
    buildFixture({ go: tcs[0]!.version, fixture: 'hot', mode: 'plain', goarch: 'amd64' }),
    buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain', goarch: 'arm64' }),
  ];
  for (const bin of builds) {
    const ours = withElf(bin, (elf) => readStructLayouts(dwarfSectionsOf(elf)!, STRUCTS));
    const theirs = objdumpLayouts(bin, STRUCTS);
    assert.equal(theirs.size, STRUCTS.length, `objdump found ${[...theirs.keys()].join(', ')}`);
    for (const name of STRUCTS) {
      assert.deepEqual(ours.get(name), theirs.get(name), `${bin}: ${name}`);
    }
    assert.ok(ours.get('runtime.g')!.members.size > 40);
  }
});

// --- corrupt input -----------------------------------------------------------------------------------------------

function realSections(): { secs: DwarfSections; file: string } {
  const file = buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain', goarch: 'amd64' });
  const secs = withElf(file, (elf) => dwarfSectionsOf(elf));
  assert.ok(secs);
  return { secs, file };
}

test('fuzz: truncated and bit-flipped real .debug_info/.debug_abbrev give a result or a FormatError, never hang', { timeout: 300_000 }, () => {
  const { secs } = realSections();
  const rng = new Rng(Number(process.env['QF_FUZZ_SEED'] ?? 20240611));
  const names = ['runtime.g', 'runtime.m', 'runtime.gobuf', 'runtime.stack', 'runtime.p'];
  const clean = readStructLayouts(secs, names);
  assert.equal(clean.size, names.length);
  // Most units are skipped unless they can hold a wanted name; aim most damage at the unit that holds runtime.g.
  const hot = secs.info.indexOf(Buffer.from('runtime.g\0'));
  assert.ok(hot > 0);
  let formatErrors = 0;
  let slowest = 0;
  const attempt = (s: DwarfSections, what: string): void => {
    const t0 = process.hrtime.bigint();
    try {
      const r = readStructLayouts(s, names);
      for (const l of r.values()) for (const v of l.members.values()) assert.ok(Number.isFinite(v), what);
    } catch (e) {
      if (!(e instanceof FormatError)) throw new Error(`${what}: ${String((e as Error).stack ?? e)}`);
      assert.ok(!e.message.includes('\n'), `${what}: multi-line message`);
      formatErrors++;
    }
    slowest = Math.max(slowest, Number(process.hrtime.bigint() - t0) / 1e6);
  };
  for (let i = 0; i < 150; i++) {
    const n = i < 75 ? rng.int(0, secs.info.length) : rng.int(Math.max(0, hot - 200_000), Math.min(secs.info.length, hot + 200_000));
    attempt({ ...secs, info: secs.info.subarray(0, n) }, `info truncated to ${n}`);
  }
  for (let n = 0; n < secs.abbrev.length; n += Math.max(1, secs.abbrev.length >> 7)) {
    attempt({ ...secs, abbrev: secs.abbrev.subarray(0, n) }, `abbrev truncated to ${n}`);
  }
  const info = Buffer.from(secs.info);
  const abbrev = Buffer.from(secs.abbrev);
  for (let i = 0; i < 600; i++) {
    const target = i % 5 === 0 ? abbrev : info;
    const flips: Array<[number, number]> = [];
    for (let k = rng.int(1, 5); k > 0; k--) {
      const at = target === info && rng.next() < 0.8
        ? Math.min(info.length - 1, Math.max(0, hot + rng.int(-50_000, 50_000)))
        : rng.int(0, target.length);
      flips.push([at, target[at]!]);
      target[at] = rng.next() < 0.5 ? rng.int(0, 256) : target[at]! ^ (1 << rng.int(0, 8));
    }
    attempt({ ...secs, info, abbrev }, `flips ${JSON.stringify(flips)}`);
    for (const [at, old] of flips.reverse()) target[at] = old;
  }
  assert.ok(formatErrors > 0, 'some damage was detected');
  assert.ok(slowest < 5_000, `slowest parse ${slowest} ms`);
});

test('runtimeOffsets: corrupt compressed DWARF falls back to the table and says why', () => {
  const { file } = realSections();
  const bytes = fs.readFileSync(file);
  const elf0 = ElfFile.open(file);
  const info = elf0.section('.debug_info') ?? elf0.section('.zdebug_info');
  elf0.close();
  assert.ok(info);
  const damaged = Buffer.from(bytes);
  for (let i = 0; i < 64; i++) damaged[info.offset + Math.floor(info.size / 2) + i] ^= 0x5a;
  const elf = new ElfFile(new BufferSource(damaged), `${file} (damaged)`);
  const minor = minorOf(newestToolchain().version);
  const r = runtimeOffsets(elf, { major: 1, minor }, 'amd64');
  assert.equal(r.source, 'table');
  assert.match(r.detail!, /^unreadable DWARF \(.+\); go1\.\d+$/);
  assert.deepEqual(fieldsOf(r), fieldsOf(tableOffsets({ major: 1, minor }, 'amd64')));
});
