// Unit tests of the DWARF struct-layout reader on DWARF built by hand (every version, both unit formats, every
// form Go or a C compiler uses for names and member offsets), and on what gcc emits when it is installed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FormatError } from '../../src/gosym/bytes';
import { DwarfSections, dwarfSectionsOf, readStructLayouts, readStructLayoutsOf } from '../../src/gosym/dwarf';
import { ElfFile } from '../../src/gosym/elf';

// --- a tiny DWARF writer -------------------------------------------------------------------------------------

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = ((n % 128) + 128) % 128;
    n = Math.floor(n / 128);
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function le(n: number, size: number): number[] {
  const out: number[] = [];
  let v = BigInt(n);
  for (let i = 0; i < size; i++) {
    out.push(Number(v & 0xffn));
    v >>= 8n;
  }
  return out;
}

const cstr = (s: string): number[] => [...Buffer.from(s + '\0')];

type Attr = [at: number, form: number, value: number[], implicit?: number];
interface Die { tag: number; attrs: Attr[]; children?: Die[] }

// Forms
const F = {
  addr: 0x01, block2: 0x03, block4: 0x04, data2: 0x05, data4: 0x06, data8: 0x07, string: 0x08, block: 0x09,
  block1: 0x0a, data1: 0x0b, flag: 0x0c, sdata: 0x0d, strp: 0x0e, udata: 0x0f, ref4: 0x13, indirect: 0x16,
  sec_offset: 0x17, exprloc: 0x18, flag_present: 0x19, strx: 0x1a, data16: 0x1e, line_strp: 0x1f,
  implicit_const: 0x21, strx1: 0x25, strx2: 0x26,
};
const AT = { sibling: 0x01, name: 0x03, byte_size: 0x0b, loc: 0x38, declaration: 0x3c, type: 0x49, str_offsets_base: 0x72, producer: 0x25, low_pc: 0x11, location: 0x02, const_value: 0x1c, encoding: 0x3e };
const TAG = { cu: 0x11, member: 0x0d, struct: 0x13, base: 0x24, variable: 0x34, subprogram: 0x2e };

interface Unit { version: number; dwarf64?: boolean; dies: Die[]; unitType?: number }

/** Lays out units into .debug_info/.debug_abbrev (one abbrev per DIE, one table per unit). */
function build(units: Unit[]): { info: Buffer; abbrev: Buffer } {
  const info: number[] = [];
  const abbrev: number[] = [];
  for (const u of units) {
    const abbrevOffset = abbrev.length;
    let code = 0;
    const body: number[] = [];
    const emit = (d: Die): void => {
      code++;
      abbrev.push(...uleb(code), ...uleb(d.tag), d.children ? 1 : 0);
      for (const [at, form, , implicit] of d.attrs) {
        abbrev.push(...uleb(at), ...uleb(form));
        if (form === F.implicit_const) abbrev.push(...sleb(implicit ?? 0));
      }
      abbrev.push(0, 0);
      body.push(...uleb(code));
      for (const [, , value] of d.attrs) body.push(...value);
      if (d.children) {
        d.children.forEach(emit);
        body.push(0);
      }
    };
    u.dies.forEach(emit);
    abbrev.push(0);
    const off = u.dwarf64 ? 8 : 4;
    const hdr: number[] = [...le(u.version, 2)];
    if (u.version >= 5) hdr.push(u.unitType ?? 1, 8, ...le(abbrevOffset, off));
    else hdr.push(...le(abbrevOffset, off), 8);
    if (u.unitType === 2) hdr.push(...le(0x1234, 8), ...le(0, off));
    const len = hdr.length + body.length;
    if (u.dwarf64) info.push(0xff, 0xff, 0xff, 0xff, ...le(len, 8));
    else info.push(...le(len, 4));
    info.push(...hdr, ...body);
  }
  return { info: Buffer.from(info), abbrev: Buffer.from(abbrev) };
}

const member = (name: string, form: number, value: number[], implicit?: number): Die => {
  const a: Attr = [AT.loc, form, value];
  if (implicit !== undefined) a[3] = implicit;
  return { tag: TAG.member, attrs: [[AT.name, F.string, cstr(name)], [AT.type, F.ref4, le(0, 4)], a] };
};

/** A unit with noise around a declaration of runtime.g and then the real runtime.g. */
function sampleUnit(version: number, dwarf64 = false): Unit {
  const off = dwarf64 ? 8 : 4;
  const members: Die[] = [
    member('stack', F.data1, [0]),
    member('m', F.data2, le(48, 2)),
    member('sched', F.data4, le(56, 4)),
    member('atomicstatus', F.data8, le(144, 8)),
    member('goid', F.udata, uleb(152)),
    member('waitreason', F.sdata, sleb(176)),
    member('_', F.udata, uleb(200)),
    member('_', F.udata, uleb(208)),
    member('viaexpr', F.exprloc, [1 + uleb(300).length, 0x23, ...uleb(300)]),
  ];
  if (version <= 3) members.push(member('viablock', F.block1, [1 + uleb(360).length, 0x23, ...uleb(360)]));
  if (version >= 5) members.push(member('viaimplicit', F.implicit_const, [], 400));
  const noise: Die[] = [
    { tag: TAG.base, attrs: [[AT.name, F.string, cstr('int')], [AT.byte_size, F.data1, [8]], [AT.encoding, F.data1, [5]]] },
    { tag: TAG.variable, attrs: [[AT.name, F.string, cstr('runtime.g')], [AT.location, F.block1, [9, 3, ...le(0x1000, 8)]], [AT.low_pc, F.addr, le(0x401000, 8)]] },
    { tag: TAG.variable, attrs: [[AT.const_value, F.block2, [3, 0, 1, 2, 3]], [AT.const_value, F.block4, [2, 0, 0, 0, 9, 9]], [AT.const_value, F.block, [2, 7, 7]], [AT.const_value, F.sdata, sleb(-5000)], [AT.declaration, F.flag, [1]], [AT.declaration, F.flag_present, []], [AT.type, F.indirect, [...uleb(F.string), ...cstr('indirect!')]]] },
    // A struct we do not want, with children, skipped either way.
    { tag: TAG.struct, attrs: [[AT.name, F.string, cstr('runtime.p')], [AT.byte_size, F.udata, uleb(9000)]], children: [member('id', F.data1, [0]), member('status', F.data1, [4])] },
    // A declaration of the wanted struct: ignored.
    { tag: TAG.struct, attrs: [[AT.name, F.string, cstr('runtime.g')], [AT.declaration, F.flag, [1]]] },
  ];
  if (version >= 4) noise.push({ tag: TAG.variable, attrs: [[AT.location, F.sec_offset, le(0, off)], [AT.location, F.exprloc, [1, 0x9c]]] });
  if (version >= 5) noise.push({ tag: TAG.variable, attrs: [[AT.const_value, F.data16, new Array(16).fill(0xee)], [AT.const_value, F.implicit_const, [], -7]] });
  const g: Die = {
    tag: TAG.struct,
    attrs: [[AT.name, F.string, cstr('runtime.g')], [AT.byte_size, F.udata, uleb(440)]],
    children: [
      ...members,
      // A nested DIE with children inside a member does not confuse the member depth.
      { tag: TAG.subprogram, attrs: [[AT.name, F.string, cstr('method')]], children: [member('inner', F.data1, [99])] },
    ],
  };
  return {
    version, dwarf64,
    dies: [{ tag: TAG.cu, attrs: [[AT.name, F.string, cstr('runtime')], [AT.producer, F.string, cstr('test')]], children: [...noise, g] }],
  };
}

const wantG = (version: number): Record<string, number> => {
  const r: Record<string, number> = { stack: 0, m: 48, sched: 56, atomicstatus: 144, goid: 152, waitreason: 176, _: 200, viaexpr: 300 };
  if (version <= 3) r['viablock'] = 360;
  if (version >= 5) r['viaimplicit'] = 400;
  return r;
};

for (const version of [2, 3, 4, 5]) {
  for (const dwarf64 of [false, true]) {
    test(`DWARF ${version}${dwarf64 ? ' (64-bit format)' : ''}: finds runtime.g among noise`, () => {
      const secs = build([
        { version, dwarf64, dies: [{ tag: TAG.cu, attrs: [[AT.name, F.string, cstr('main')]], children: [{ tag: TAG.base, attrs: [[AT.name, F.string, cstr('x')]] }] }] },
        sampleUnit(version, dwarf64),
      ]);
      const r = readStructLayouts(secs, ['runtime.g', 'runtime.m']);
      assert.deepEqual([...r.keys()], ['runtime.g']);
      const g = r.get('runtime.g')!;
      assert.equal(g.size, 440);
      assert.deepEqual(Object.fromEntries(g.members), wantG(version));
    });
  }
}

test('out-of-line names: strp, line_strp, strx with str_offsets_base', () => {
  const str = Buffer.from('\0runtime.m\0curg\0');
  const lineStr = Buffer.from('xx\0runtime.gobuf\0');
  // str_offsets: 8-byte header then entries (offsets into .debug_str); the base points past the header.
  const strOffsets = Buffer.from([...le(12, 4), 5, 0, 0, 0, ...le(1, 4), ...le(11, 4)]);
  const secs = build([
    {
      version: 5,
      dies: [{
        tag: TAG.cu,
        attrs: [[AT.str_offsets_base, F.sec_offset, le(8, 4)]],
        children: [
          { tag: TAG.struct, attrs: [[AT.name, F.strx1, [0]], [AT.byte_size, F.data2, le(400, 2)]], children: [{ tag: TAG.member, attrs: [[AT.name, F.strx, uleb(1)], [AT.loc, F.data1, [192]]] }] },
          { tag: TAG.struct, attrs: [[AT.name, F.line_strp, le(3, 4)], [AT.byte_size, F.data1, [56]]], children: [{ tag: TAG.member, attrs: [[AT.name, F.strp, le(11, 4)], [AT.loc, F.data1, [8]]] }] },
        ],
      }],
    },
  ]);
  const r = readStructLayouts({ ...secs, str, lineStr, strOffsets }, ['runtime.m', 'runtime.gobuf']);
  assert.deepEqual(Object.fromEntries(r.get('runtime.m')!.members), { curg: 192 });
  assert.equal(r.get('runtime.m')!.size, 400);
  assert.deepEqual(Object.fromEntries(r.get('runtime.gobuf')!.members), { curg: 8 });
  assert.equal(r.get('runtime.gobuf')!.size, 56);
});

test('DWARF 5 type units are walked too; a struct without children has no members', () => {
  const secs = build([
    { version: 5, unitType: 2, dies: [{ tag: TAG.struct, attrs: [[AT.name, F.string, cstr('runtime.stack')], [AT.byte_size, F.data1, [16]]] }] },
  ]);
  const r = readStructLayouts(secs, ['runtime.stack']);
  assert.equal(r.get('runtime.stack')!.size, 16);
  assert.equal(r.get('runtime.stack')!.members.size, 0);
});

test('no names, no units, nothing found', () => {
  assert.equal(readStructLayouts({ info: Buffer.alloc(0), abbrev: Buffer.alloc(0) }, ['runtime.g']).size, 0);
  const secs = build([sampleUnit(4)]);
  assert.equal(readStructLayouts(secs, []).size, 0);
  assert.equal(readStructLayouts(secs, ['runtime.nope']).size, 0);
});

test('corrupt input: one-line FormatErrors', () => {
  const good = build([sampleUnit(4)]);
  const cases: Array<[string, DwarfSections]> = [
    ['unit longer than the section', { ...good, info: good.info.subarray(0, good.info.length - 3) }],
    ['version 7', { ...good, info: Buffer.from([...le(7, 4), 7, 0, 0, 0, 0, 0, 8]) }],
    ['address size 3', { ...good, info: Buffer.from([...le(7, 4), 4, 0, 0, 0, 0, 0, 3]) }],
    ['abbrev offset outside', { ...good, info: Buffer.from([...le(8, 4), 4, 0, 0xff, 0, 0, 0, 8, 1]) }],
    // (a unit is only walked when it can hold a wanted name, so this one carries the name after the bad code)
    ['unknown abbrev code', { ...good, info: Buffer.from([...le(18, 4), 4, 0, 0, 0, 0, 0, 8, 0x7f, ...cstr('runtime.g')]) }],
    ['truncated abbrev', { ...good, abbrev: good.abbrev.subarray(0, 5) }],
    ['reserved length', { ...good, info: Buffer.from([0xf0, 0xff, 0xff, 0xff, 4, 0]) }],
    ['strp without .debug_str', build([{ version: 4, dies: [{ tag: TAG.struct, attrs: [[AT.name, F.strp, le(0, 4)]] }] }])],
  ];
  for (const [what, secs] of cases) {
    assert.throws(() => readStructLayouts(secs, ['runtime.g', 'runtime.x']), (e: unknown) => {
      assert.ok(e instanceof FormatError, `${what}: ${String(e)}`);
      assert.ok(!e.message.includes('\n'), what);
      return true;
    }, what);
  }
});

test('every truncation and many byte flips of a synthetic unit give a result or a FormatError', () => {
  const good = build([sampleUnit(5), sampleUnit(4, true)]);
  const check = (secs: DwarfSections): void => {
    try {
      readStructLayouts(secs, ['runtime.g', 'runtime.p', 'runtime.m']);
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
    }
  };
  for (let n = 0; n < good.info.length; n++) check({ ...good, info: good.info.subarray(0, n) });
  for (let n = 0; n < good.abbrev.length; n++) check({ ...good, abbrev: good.abbrev.subarray(0, n) });
  let seed = 12345;
  const rnd = (k: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % k;
  };
  for (let i = 0; i < 3000; i++) {
    const info = Buffer.from(good.info);
    const abbrev = Buffer.from(good.abbrev);
    const target = rnd(4) === 0 ? abbrev : info;
    for (let k = 1 + rnd(3); k > 0; k--) target[rnd(target.length)] = rnd(256);
    check({ info, abbrev });
  }
});

// --- what a real compiler writes -----------------------------------------------------------------------------

function haveGcc(): boolean {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('gcc -g binaries (DWARF 2, 4, 5, 5 with 64-bit units, compressed): C structs', { skip: !haveGcc() && process.env['CI'] !== 'true' && 'gcc is not installed' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-dwarf-'));
  try {
    const src = path.join(dir, 's.c');
    fs.writeFileSync(src, `#include <stdint.h>
struct gobuf { uint64_t sp, pc; void *g; };
struct g { struct { uint64_t lo, hi; } stack; uint64_t guard0; struct gobuf sched; uint32_t atomicstatus; uint64_t goid; char pad[3]; int64_t last; };
struct g G; struct gobuf B;
int main(void) { return 0; }
`);
    const variants: Array<[string, string[]]> = [
      ['dwarf2', ['-gdwarf-2']], ['dwarf4', ['-gdwarf-4']], ['dwarf5', ['-gdwarf-5']],
      ['dwarf64', ['-gdwarf-5', '-gdwarf64']], ['zlib', ['-gdwarf-4', '-gz=zlib']],
    ];
    for (const [name, flags] of variants) {
      const out = path.join(dir, name);
      try {
        execFileSync('gcc', ['-g', ...flags, src, '-o', out], { stdio: 'ignore' });
      } catch {
        continue; // an older gcc without that flag
      }
      const elf = ElfFile.open(out);
      try {
        const secs = dwarfSectionsOf(elf);
        assert.ok(secs, name);
        const r = readStructLayouts(secs, ['g', 'gobuf']);
        assert.equal(r.get('g')!.size, 80, name);
        assert.deepEqual(Object.fromEntries(r.get('g')!.members), { stack: 0, guard0: 16, sched: 24, atomicstatus: 48, goid: 56, pad: 64, last: 72 }, name);
        assert.deepEqual(Object.fromEntries(r.get('gobuf')!.members), { sp: 0, pc: 8, g: 16 }, name);
        assert.deepEqual(readStructLayoutsOf(elf, ['g', 'gobuf']), r, `${name}: read a window of units at a time, the same`);
      } finally {
        elf.close();
      }
    }
    execFileSync('gcc', [src, '-o', path.join(dir, 'nodebug')], { stdio: 'ignore' });
    const elf = ElfFile.open(path.join(dir, 'nodebug'));
    try {
      assert.equal(dwarfSectionsOf(elf), undefined);
      assert.equal(readStructLayoutsOf(elf, ['g']), undefined);
    } finally {
      elf.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
