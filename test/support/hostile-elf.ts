// Edits that make a real ELF binary lie to a reader while it still runs: the Go runtime finds its tables through
// moduledata in loaded memory and never reads section headers, so a section header can point anywhere, and bytes
// appended past the last segment are never loaded.

import { deflateRawSync, constants as zc } from 'node:zlib';
import * as fs from 'node:fs';
import { ElfFile, type Section } from '../../src/gosym/elf';

export function sectionHeader(file: string, name: string): Section {
  const elf = ElfFile.open(file);
  try {
    const s = elf.section(name);
    if (!s) throw new Error(`${file} has no ${name}`);
    return s;
  } finally {
    elf.close();
  }
}

/** Rewrites sh_offset and/or sh_size of a section. */
export function patchSectionHeader(file: string, name: string, patch: { offset?: number; size?: number }): void {
  const s = sectionHeader(file, name);
  const fd = fs.openSync(file, 'r+');
  try {
    const ehdr = Buffer.alloc(64);
    fs.readSync(fd, ehdr, 0, 64, 0);
    const at = Number(ehdr.readBigUInt64LE(40)) + s.index * ehdr.readUInt16LE(58);
    const word = Buffer.alloc(8);
    if (patch.offset !== undefined) {
      word.writeBigUInt64LE(BigInt(patch.offset));
      fs.writeSync(fd, word, 0, 8, at + 24);
    }
    if (patch.size !== undefined) {
      word.writeBigUInt64LE(BigInt(patch.size));
      fs.writeSync(fd, word, 0, 8, at + 32);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Appends bytes (8-aligned) at the end of the file; returns their offset. */
export function appendToFile(file: string, bytes: Buffer): number {
  const size = fs.statSync(file).size;
  const offset = Math.ceil(size / 8) * 8;
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    fs.closeSync(fd);
  }
  return offset;
}

/**
 * A zlib stream that inflates to `bytes` zero bytes (a multiple of 1 MiB), built without holding them: one
 * compressed MiB, sync-flushed so copies can follow each other, then an empty final block and the Adler-32 of
 * the zeros (a stays 1, b grows by 1 per byte).
 */
export function zlibBomb(bytes: number): Buffer {
  const mib = deflateRawSync(Buffer.alloc(1 << 20), { level: 9, finishFlush: zc.Z_SYNC_FLUSH });
  const parts: Buffer[] = [Buffer.from([0x78, 0xda])];
  for (let i = 0; i < bytes / (1 << 20); i++) parts.push(mib);
  parts.push(Buffer.from([0x03, 0x00])); // final, fixed-Huffman, end of block
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE((((bytes % 65521) << 16) | 1) >>> 0);
  parts.push(adler);
  return Buffer.concat(parts);
}
