// sectionPieces (src/gosym/section-pieces.ts): a section read a piece at a time is the section, inflated or stored,
// whatever the pieces' size; corrupt or mis-sized compressed data is a FormatError; and the DWARF search over
// pieces finds what the search over the whole .debug_info finds, in real Go binaries.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { BufferSource, FormatError } from '../../src/gosym/bytes';
import { dwarfSectionsOf, readStructLayouts, readStructLayoutsOf } from '../../src/gosym/dwarf';
import { ElfFile, SHF_COMPRESSED, type Section } from '../../src/gosym/elf';
import { sectionPieces } from '../../src/gosym/section-pieces';
import { buildFixture, newestToolchain } from '../support/go-toolchains';

function readAll(elf: ElfFile, s: Section, pieceBytes: number): Buffer {
  const p = sectionPieces(elf, s);
  const buf = Buffer.alloc(pieceBytes);
  const parts: Buffer[] = [];
  try {
    for (let n = p.readInto(buf); n > 0; n = p.readInto(buf)) parts.push(Buffer.from(buf.subarray(0, n)));
  } finally {
    p.close();
  }
  return Buffer.concat(parts);
}

function hotBinary(): Buffer {
  return fs.readFileSync(buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' }));
}

test('a compressed and a stored section read in pieces of any size are the section', () => {
  const elf = new ElfFile(new BufferSource(hotBinary()), 'hot');
  const info = elf.section('.debug_info')!;
  assert.ok((info.flags & BigInt(SHF_COMPRESSED)) !== 0n, 'Go compresses its DWARF: the inflated case is tested');
  const whole = elf.sectionData(info);
  for (const size of [1, 4093, 1 << 20]) {
    assert.ok(readAll(elf, info, size).equals(whole), `.debug_info in pieces of ${size}`);
  }
  const stored = elf.section('.gopclntab')!;
  assert.ok(readAll(elf, stored, 65536).equals(elf.sectionData(stored)), '.gopclntab, stored as it is');
});

test('corrupt or mis-sized compressed data: a FormatError naming the section', () => {
  const bytes = hotBinary();
  const info = new ElfFile(new BufferSource(bytes), 'hot').section('.debug_info')!;
  const corrupt = (mutate: (b: Buffer) => void): ElfFile => {
    const b = Buffer.from(bytes);
    mutate(b);
    return new ElfFile(new BufferSource(b), 'hot');
  };
  const cases: Array<[string, (b: Buffer) => void, RegExp]> = [
    ['flipped stream bytes', (b) => b.fill(0xa5, info.offset + 24 + 100, info.offset + 24 + 400), /\.debug_info: corrupt compressed data/],
    ['a header size too small', (b) => b.writeBigUInt64LE(1000n, info.offset + 8), /\.debug_info: inflates to more than the 1000 bytes/],
    ['a header size too large', (b) => b.writeBigUInt64LE(BigInt(info.size * 40), info.offset + 8), /\.debug_info: decompressed to \d+ bytes, header says/],
  ];
  for (const [what, mutate, message] of cases) {
    const elf = corrupt(mutate);
    assert.throws(() => readAll(elf, elf.section('.debug_info')!, 1 << 16), (e: Error) => e instanceof FormatError && message.test(e.message), what);
    // The DWARF search stops early, but a lying stream is still what it reports, not the units it garbled.
    assert.throws(() => readStructLayoutsOf(elf, ['runtime.g']), (e: Error) => e instanceof FormatError && message.test(e.message), `${what}: the DWARF search`);
  }
});

test("runtime.g's layout found in pieces is the one found in the whole .debug_info", () => {
  const elf = new ElfFile(new BufferSource(hotBinary()), 'hot');
  const names = ['runtime.g', 'runtime.m', 'runtime.gobuf', 'runtime.stack'];
  const whole = readStructLayouts(dwarfSectionsOf(elf)!, names);
  assert.equal(whole.size, names.length, 'the whole search finds them all');
  assert.deepEqual(readStructLayoutsOf(elf, names), whole);
});
