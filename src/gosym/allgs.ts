// Where a Go binary keeps runtime.allgs (the []*g of every goroutine ever created, dead ones included): from the
// symbol table when it has one, else from the code of runtime.allgadd, which every release 1.15…1.26 has and which
// appends to allgs — so it reads and writes the slice's three words (array, len, cap) at A, A+8 and A+16.
// Stripped binaries keep .gopclntab, so the function is found by name and its data references decoded: RIP-relative
// operands on amd64, ADRP + ADD/LDR/STR pairs on arm64.
//
// The answer is a link-time address; the caller adds the load bias and checks what it reads (a live process is the
// final word: see src/goroutines/).

import type { GoBinary } from './binary';
import { PF_W, PT_LOAD } from './elf';
import type { FuncInfo } from './pclntab';

export interface AllgsLocation {
  /** Link-time address of the slice header {array, len, cap}. */
  address: number;
  source: 'symtab' | 'code';
}

/** A function's record by exact name, or undefined (a search of the name bytes: no strings made). */
export function findFuncByName(bin: GoBinary, name: string): FuncInfo | undefined {
  const [i] = bin.pcln.funcIndexesNamed(name, true);
  return i === undefined ? undefined : bin.pcln.funcAt(i);
}

/** Largest runtime.allgadd seen is under 1 KiB; anything far larger is not the function we think. */
const MAX_FUNC_BYTES = 16 << 10;

/** The link-time address of runtime.allgs, or a one-line reason it cannot be found. */
export function locateAllgs(bin: GoBinary): AllgsLocation | string {
  const sym = bin.elf.symbol('runtime.allgs');
  if (sym && sym.value !== 0) return { address: sym.value, source: 'symtab' };
  return allgsFromCode(bin);
}

/** The address of allgs read off runtime.allgadd's code (what a stripped binary leaves). */
export function allgsFromCode(bin: GoBinary): AllgsLocation | string {
  const f = findFuncByName(bin, 'runtime.allgadd');
  if (!f) return 'runtime.allgadd is not in the function table';
  const size = f.end - f.entry;
  if (size <= 0 || size > MAX_FUNC_BYTES) return `runtime.allgadd has an implausible size (${size} bytes)`;
  let code: Buffer;
  try {
    code = bin.elf.readAt(f.entry, size);
  } catch (e) {
    return `cannot read runtime.allgadd: ${(e as Error).message}`;
  }
  // Data and bss alike: allgs lives in .bss, past the segment's file-backed part.
  const writable = (a: number): boolean =>
    bin.elf.segments.some((p) => p.type === PT_LOAD && (p.flags & PF_W) !== 0 && a >= p.vaddr && a + 24 <= p.vaddr + p.memsz);
  const refs = new Set((bin.arch === 'amd64' ? ripRelativeTargets(code, f.entry) : adrpTargets(code, f.entry)).filter(writable));
  const candidates = [...refs].filter((a) => a % 8 === 0 && refs.has(a + 8) && refs.has(a + 16));
  if (candidates.length === 0) return 'runtime.allgadd does not reference a slice header (array, len, cap)';
  if (candidates.length > 1) return `runtime.allgadd references ${candidates.length} slice headers; cannot tell which is allgs`;
  return { address: candidates[0]!, source: 'code' };
}

// --- amd64 --------------------------------------------------------------------------------------------------------

/** Opcodes (after an optional REX prefix) whose ModRM operand Go's compiler uses for globals, and immediate sizes. */
const RIP_OPCODES: ReadonlyMap<number, number> = new Map([
  [0x8b, 0], [0x89, 0], [0x8d, 0], [0x87, 0], [0x39, 0], [0x3b, 0], [0x03, 0], [0x2b, 0], [0x85, 0], [0x01, 0],
  [0x29, 0], [0x31, 0], [0x33, 0], [0x83, 1], [0x80, 1], [0xc6, 1], [0x81, 4], [0xc7, 4],
]);

/**
 * Targets of RIP-relative memory operands (ModRM mod=00 rm=101). A byte-wise scan, not a disassembler: a hit inside
 * another instruction's bytes can produce a stray target, which the caller's filters (a writable segment, three
 * words of one slice) and the live read rule out.
 */
export function ripRelativeTargets(code: Buffer, entry: number): number[] {
  const out: number[] = [];
  for (let i = 0; i + 5 < code.length; i++) {
    const imm = RIP_OPCODES.get(code[i]!);
    if (imm === undefined || (code[i + 1]! & 0xc7) !== 0x05) continue;
    const end = i + 2 + 4 + imm; // opcode, ModRM, disp32, immediate
    if (end > code.length) continue;
    out.push(entry + end + code.readInt32LE(i + 2));
  }
  return out;
}

// --- arm64 --------------------------------------------------------------------------------------------------------

/**
 * Targets of ADRP Xn, page followed (within a few instructions) by ADD Xd, Xn, #imm12 or a 64-bit LDR/STR
 * [Xn, #imm12*8]: the way arm64 Go code addresses a global.
 */
export function adrpTargets(code: Buffer, entry: number): number[] {
  const out: number[] = [];
  const n = code.length >> 2;
  for (let i = 0; i < n; i++) {
    const ins = code.readUInt32LE(i * 4);
    if ((ins & 0x9f000000) >>> 0 !== 0x90000000) continue; // ADRP (>>> 0: JS bit operations are signed)
    const rd = ins & 31;
    const immlo = (ins >>> 29) & 3;
    const immhi = (ins >>> 5) & 0x7ffff;
    let imm = (immhi << 2) | immlo;
    if (imm & (1 << 20)) imm -= 1 << 21;
    const pc = entry + i * 4;
    const page = Math.floor(pc / 4096) * 4096 + imm * 4096;
    for (let j = i + 1; j < Math.min(n, i + 4); j++) {
      const next = code.readUInt32LE(j * 4);
      const rn = (next >>> 5) & 31;
      if (rn !== rd) continue;
      const op = (next & 0xffc00000) >>> 0;
      if (op === 0x91000000) out.push(page + ((next >>> 10) & 0xfff)); // ADD Xd, Xn, #imm12
      else if (op === 0xf9400000 || op === 0xf9000000) out.push(page + ((next >>> 10) & 0xfff) * 8); // LDR/STR Xt, [Xn, #imm]
      else continue;
      break;
    }
  }
  return out;
}
