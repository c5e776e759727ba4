// A section's bytes a piece at a time, inflated as they are read when the section is compressed. A Go binary's
// .debug_info inflates to tens of MiB (19 MiB for a 56 MiB binary) of which the agent wants the few units that
// define runtime.g: read whole, it was the biggest allocation of a new binary's read and most of its CPU. The
// pieces go into the caller's buffer and the compressed input through one of ours, so streaming allocates nothing
// per piece (Buffers freed only by V8's next collection would pile up as they did whole).
//
//   const p = sectionPieces(elf, elf.section('.debug_info')!);
//   for (let n = p.readInto(buf); n > 0; n = p.readInto(buf)) …buf.subarray(0, n)…;   p.close();

import { native, type NativeInflater } from '../bpf/native';
import { FormatError } from './bytes';
import { SHT_NOBITS, type ElfFile, type Section } from './elf';
import { checkTableSize } from './limits';

export interface SectionPieces {
  /** Bytes in all (inflated). */
  readonly size: number;
  /** Fills `out` with the next bytes as far as they go: how many (0 at the end). */
  readInto(out: Buffer): number;
  /** Frees the inflater at once (else the garbage collector does). */
  close(): void;
}

/** Compressed bytes read from the file at a time. */
const INPUT_CHUNK = 256 << 10;

export function sectionPieces(elf: ElfFile, s: Section): SectionPieces {
  const z = elf.compression(s);
  return z ? inflated(elf, s, z.dataOffset, z.size) : asStored(elf, s, s.type === SHT_NOBITS ? 0 : s.size);
}

function asStored(elf: ElfFile, s: Section, size: number): SectionPieces {
  let pos = 0;
  return {
    size,
    readInto(out) {
      const n = Math.min(out.length, size - pos);
      if (n <= 0) return 0;
      elf.source.readInto(out.subarray(0, n), s.offset + pos);
      pos += n;
      return n;
    },
    close() {},
  };
}

function inflated(elf: ElfFile, s: Section, dataOffset: number, size: number): SectionPieces {
  checkTableSize(size, `${s.name} (uncompressed)`);
  let z: NativeInflater | undefined;
  let inPos = s.offset + dataOffset;
  const inEnd = s.offset + s.size;
  let inBuf: Buffer | undefined;
  let input: Buffer = Buffer.alloc(0);
  let produced = 0;
  let ended = false;
  return {
    size,
    readInto(target) {
      z ??= new (native().Inflater)();
      // One byte more than the header allows, so that a stream that runs over it is caught (a zip bomb).
      const out = target.subarray(0, Math.max(0, Math.min(target.length, size + 1 - produced)));
      let filled = 0;
      while (!ended && filled < out.length) {
        if (input.length === 0) {
          if (inPos >= inEnd) throw new FormatError(`${s.name}: compressed data ends after ${produced + filled} of ${size} bytes`);
          inBuf ??= Buffer.allocUnsafe(Math.min(INPUT_CHUNK, inEnd - inPos));
          input = inBuf.subarray(0, Math.min(inBuf.length, inEnd - inPos));
          elf.source.readInto(input, inPos);
          inPos += input.length;
        }
        let step: [number, number, boolean];
        try {
          step = z.inflate(input, out.subarray(filled));
        } catch (e) {
          throw new FormatError(`${s.name}: ${(e as Error).message}`);
        }
        const [consumed, made, end] = step;
        if (consumed === 0 && made === 0 && !end) throw new FormatError(`${s.name}: corrupt compressed data (no progress)`);
        input = input.subarray(consumed);
        filled += made;
        ended = end;
      }
      produced += filled;
      if (produced > size) throw new FormatError(`${s.name}: inflates to more than the ${size} bytes its header says (a zip bomb?)`);
      if (ended) {
        z.close();
        if (produced !== size) throw new FormatError(`${s.name}: decompressed to ${produced} bytes, header says ${size}`);
      }
      return filled;
    },
    close() {
      z?.close();
    },
  };
}
