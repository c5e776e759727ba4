// The fuzzer of the binary readers, shared by test/gosym/fuzz.test.ts (CI's count) and bench/fuzz-readers.bench.ts
// (the 1,000,000-input run): mutated and truncated real Go binaries through the ELF, pclntab, build-info, DWARF
// and unwind-table readers the way the agent uses them, and mutated decompressed DWARF through the struct reader.
// Seeded: a failure is reproducible from the seed and iteration. Every outcome must be a value or a one-line
// FormatError: no other exception, no hang.

import * as fs from 'node:fs';
import { BufferSource, FormatError } from '../../src/gosym/bytes';
import { ElfFile } from '../../src/gosym/elf';
import { GoBinary } from '../../src/gosym/binary';
import { goAddr2line } from '../../src/gosym/addr2line';
import { dwarfSectionsOf, readStructLayouts, type DwarfSections } from '../../src/gosym/dwarf';
import { goBinaryInfo } from '../../src/symbols/injector';
import { buildFixture, newestToolchain, requireToolchain } from './go-toolchains';
import { Rng } from './random';

interface Target {
  name: string;
  bytes: Buffer;
  /** [offset, length] ranges where a flipped byte matters most: headers, the pclntab, build info, DWARF headers. */
  hot: Array<[number, number]>;
  /** Its DWARF, decompressed (for the struct reader's own mutations), when it has any. */
  dwarf: DwarfSections | undefined;
}

function target(name: string, file: string): Target {
  const bytes = fs.readFileSync(file);
  const bin = new GoBinary(new ElfFile(new BufferSource(bytes), name));
  const elf = bin.elf;
  const hot: Array<[number, number]> = [[0, 64]];
  const ph = bytes.readUInt32LE(32);
  hot.push([ph, 56 * bytes.readUInt16LE(56)]);
  const sh = Number(bytes.readBigUInt64LE(40));
  if (sh > 0) hot.push([sh, 64 * bytes.readUInt16LE(60)]);
  const seg = elf.segmentAt(bin.pclntabAddr)!;
  const pclnOff = seg.offset + (bin.pclntabAddr - seg.vaddr);
  hot.push([pclnOff, 128], [pclnOff, Math.min(1 << 20, bytes.length - pclnOff)]);
  for (const s of ['.go.buildinfo', '.note.go.buildid', '.debug_info', '.debug_abbrev']) {
    const sec = elf.section(s);
    if (sec) hot.push([sec.offset, Math.min(sec.size, 64)]); // build info headers; Elf64_Chdr sizes
  }
  const dwarf = dwarfSectionsOf(elf);
  return { name, bytes, hot, dwarf: dwarf && { ...dwarf, info: Buffer.from(dwarf.info), abbrev: Buffer.from(dwarf.abbrev) } };
}

/** Exercises a parsed binary the way the CLI and the agent do. */
function exercise(bin: GoBinary, rng: Rng): void {
  const lo = bin.pcln.minPc;
  const hi = bin.pcln.maxPc;
  const pcs = new Float64Array(8);
  for (let i = 0; i < pcs.length; i++) {
    const pc = hi > lo ? rng.int(lo, hi) : lo;
    pcs[i] = pc;
    bin.lineInfo(pc);
    bin.frames(pc);
    bin.spDelta(pc);
    bin.isWrapper(pc); // the name search behind it (Pclntab.funcIndexesNamed)
  }
  goAddr2line(bin, pcs, () => {}); // the CLI's batch path: its own table walk and byte copies
  void bin.version;
  void bin.buildId;
}

export function fuzzTargets(): Target[] {
  const newest = newestToolchain();
  return [
    target('newest-plain', buildFixture({ go: newest.version, fixture: 'inline', mode: 'plain' })),
    target('newest-stripped-pie', buildFixture({ go: newest.version, fixture: 'inline', mode: 'stripped-pie' })),
    target('go1.15-plain', buildFixture({ go: requireToolchain('1.15').version, fixture: 'inline', mode: 'plain' })),
    target('go1.19-stripped-pie', buildFixture({ go: requireToolchain('1.19').version, fixture: 'inline', mode: 'stripped-pie' })),
  ];
}

export interface FuzzOutcome {
  parsed: number;
  rejected: number;
  /** Iterations whose inputs went through the agent's full path (unwind table, runtime.g layout from DWARF). */
  agentPath: number;
  dwarfMutants: number;
  /** The first non-FormatError, multi-line message or the like: iteration, seed, target, stack. */
  failure: string | undefined;
}

/** One in `agentEvery` parsed mutants also builds what the agent does on discovering a process (costly). */
export function runFuzz(iterations: number, seed: number, targets = fuzzTargets(), agentEvery = 16): FuzzOutcome {
  const rng = new Rng(seed);
  const out: FuzzOutcome = { parsed: 0, rejected: 0, agentPath: 0, dwarfMutants: 0, failure: undefined };
  for (let it = 0; it < iterations && out.failure === undefined; it++) {
    const t = targets[it % targets.length]!;
    const saved: Array<[Buffer, number, number]> = [];
    const flip = (buf: Buffer, at: number) => {
      saved.push([buf, at, buf[at]!]);
      buf[at] = rng.next() < 0.5 ? rng.int(0, 256) : buf[at]! ^ (1 << rng.int(0, 8));
    };
    try {
      if (t.dwarf && it % 7 === 6) {
        // The DWARF struct reader on its own, over mutated decompressed sections.
        out.dwarfMutants++;
        for (let k = rng.int(1, 9); k > 0; k--) {
          const buf = rng.next() < 0.7 ? t.dwarf.info : t.dwarf.abbrev;
          flip(buf, rng.next() < 0.5 ? rng.int(0, Math.min(buf.length, 4096)) : rng.int(0, buf.length));
        }
        const cut = rng.next() < 0.3 ? rng.int(0, t.dwarf.info.length) : t.dwarf.info.length;
        readStructLayouts({ ...t.dwarf, info: t.dwarf.info.subarray(0, cut) }, ['runtime.g', 'runtime.m', 'runtime.gobuf', 'runtime.stack']);
        out.parsed++;
        continue;
      }
      let view = t.bytes;
      const kind = rng.int(0, 3);
      if (kind !== 1) {
        for (let k = rng.int(1, 9); k > 0; k--) {
          const [start, len] = rng.next() < 0.8 ? rng.pick(t.hot) : [0, t.bytes.length];
          flip(t.bytes, Math.min(t.bytes.length - 1, start + rng.int(0, Math.max(1, len))));
        }
      }
      if (kind !== 0) view = t.bytes.subarray(0, rng.next() < 0.5 ? rng.int(0, 4096) : rng.int(0, t.bytes.length));
      const bin = new GoBinary(new ElfFile(new BufferSource(view), t.name));
      exercise(bin, rng);
      if (it % agentEvery === 0) {
        goBinaryInfo(bin, t.name);
        out.agentPath++;
      }
      out.parsed++;
    } catch (e) {
      if (!(e instanceof FormatError)) out.failure = `iteration ${it} (seed ${seed}, ${t.name}): ${(e as Error).stack}`;
      else if (e.message.includes('\n')) out.failure = `iteration ${it} (seed ${seed}, ${t.name}): multi-line message: ${e.message}`;
      else out.rejected++;
    } finally {
      for (let k = saved.length - 1; k >= 0; k--) saved[k]![0][saved[k]![1]] = saved[k]![2];
    }
  }
  return out;
}
