// A minimal DWARF reader: finds DW_TAG_structure_type entries by name and returns their members' byte offsets.
//
// Enough of DWARF 2–5 for what Go's linker (1.15…1.26) emits: compile/partial/type units, 32- and 64-bit unit
// formats, every attribute form of DWARF 5 (plus the GNU split/alt ones, which are skipped). Everything that is not
// a wanted struct is skipped by form without being decoded; abbreviation tables are decoded once per offset, and a
// unit is only walked at all if it can hold one of the wanted names (a cheap byte search rules most units out).
//
// Corrupt input raises FormatError with a one-line message; every loop consumes input, so nothing hangs.

import type { ElfFile } from './elf';
import { FormatError } from './bytes';
import { sectionPieces } from './section-pieces';

export interface DwarfSections {
  info: Buffer;
  abbrev: Buffer;
  str?: Buffer;
  lineStr?: Buffer;
  strOffsets?: Buffer;
}

export interface StructLayout {
  /** DW_AT_byte_size (-1 when the entry has none). */
  size: number;
  /** member name → DW_AT_data_member_location; the first member of a name wins (Go pads with several `_`). */
  members: Map<string, number>;
}

// Tags, attributes, forms and opcodes we look at.
const DW_TAG_member = 0x0d;
const DW_TAG_structure_type = 0x13;
const DW_AT_sibling = 0x01;
const DW_AT_name = 0x03;
const DW_AT_byte_size = 0x0b;
const DW_AT_data_member_location = 0x38;
const DW_AT_declaration = 0x3c;
const DW_AT_str_offsets_base = 0x72;
const DW_OP_plus_uconst = 0x23;
const DW_OP_constu = 0x10;

const F_addr = 0x01, F_block2 = 0x03, F_block4 = 0x04, F_data2 = 0x05, F_data4 = 0x06, F_data8 = 0x07;
const F_string = 0x08, F_block = 0x09, F_block1 = 0x0a, F_data1 = 0x0b, F_flag = 0x0c, F_sdata = 0x0d;
const F_strp = 0x0e, F_udata = 0x0f, F_ref_addr = 0x10, F_ref1 = 0x11, F_ref2 = 0x12, F_ref4 = 0x13;
const F_ref8 = 0x14, F_ref_udata = 0x15, F_indirect = 0x16, F_sec_offset = 0x17, F_exprloc = 0x18;
const F_flag_present = 0x19, F_strx = 0x1a, F_addrx = 0x1b, F_ref_sup4 = 0x1c, F_strp_sup = 0x1d;
const F_data16 = 0x1e, F_line_strp = 0x1f, F_ref_sig8 = 0x20, F_implicit_const = 0x21, F_loclistx = 0x22;
const F_rnglistx = 0x23, F_ref_sup8 = 0x24, F_strx1 = 0x25, F_strx2 = 0x26, F_strx3 = 0x27, F_strx4 = 0x28;
const F_addrx1 = 0x29, F_addrx2 = 0x2a, F_addrx3 = 0x2b, F_addrx4 = 0x2c;
const F_GNU_addr_index = 0x1f01, F_GNU_str_index = 0x1f02, F_GNU_ref_alt = 0x1f20, F_GNU_strp_alt = 0x1f21;

/** Size class of a form in a given unit: >= 0 fixed size, or one of these. */
const SZ_ULEB = -1, SZ_SLEB = -2, SZ_CSTR = -3, SZ_BLOCK1 = -4, SZ_BLOCK2 = -5, SZ_BLOCK4 = -6, SZ_BLOCK = -7;
const SZ_INDIRECT = -8;

interface Abbrev {
  tag: number;
  hasChildren: boolean;
  names: Int32Array; // attribute names
  forms: Int32Array; // attribute forms
  implicit: Float64Array; // DW_FORM_implicit_const values (0 elsewhere)
  /** Total size when every form has a fixed size in units of this (version, addrSize, offsetSize), else -1. */
  fixedSize: number;
  /** Per attribute size class for the unit shape it was last prepared for. */
  sizes: Int32Array;
  shapeKey: number;
}

function fail(msg: string): never {
  throw new FormatError(`DWARF: ${msg}`);
}

/** Reads unsigned LEB128. Values that do not fit 2^53 are kept approximately (they only ever get skipped or are corrupt). */
function uleb(buf: Buffer, pos: number, end: number): number {
  // Fast path: one byte.
  if (pos < end) {
    const b = buf[pos]!;
    if (b < 0x80) {
      lebNext = pos + 1;
      return b;
    }
  }
  let value = 0;
  let mul = 1;
  for (let i = 0; ; i++) {
    if (pos >= end) fail(`LEB128 runs past the end of its unit at offset ${pos}`);
    const b = buf[pos++]!;
    if (i < 8) value += (b & 0x7f) * mul;
    if (b < 0x80) break;
    mul *= 128;
    if (i > 20) fail(`LEB128 too long at offset ${pos}`);
  }
  lebNext = pos;
  return value;
}

function sleb(buf: Buffer, pos: number, end: number): number {
  let value = 0;
  let mul = 1;
  let b = 0;
  for (let i = 0; ; i++) {
    if (pos >= end) fail(`LEB128 runs past the end of its unit at offset ${pos}`);
    b = buf[pos++]!;
    if (i < 8) value += (b & 0x7f) * mul;
    mul *= 128;
    if (b < 0x80) break;
    if (i > 20) fail(`LEB128 too long at offset ${pos}`);
  }
  if (b & 0x40 && mul <= 2 ** 56) value -= mul;
  lebNext = pos;
  return value;
}

/** Where the last uleb/sleb call ended (avoids allocating a tuple per varint on the hot path). */
let lebNext = 0;

function skipLeb(buf: Buffer, pos: number, end: number): number {
  for (let i = 0; ; i++) {
    if (pos >= end) fail(`LEB128 runs past the end of its unit at offset ${pos}`);
    if (buf[pos++]! < 0x80) return pos;
    if (i > 20) fail(`LEB128 too long at offset ${pos}`);
  }
}

/** Fixed size of a form, or a SZ_* class. */
function formSize(form: number, version: number, addrSize: number, offSize: number): number {
  switch (form) {
    case F_addr: return addrSize;
    case F_data1: case F_ref1: case F_flag: case F_strx1: case F_addrx1: return 1;
    case F_data2: case F_ref2: case F_strx2: case F_addrx2: return 2;
    case F_strx3: case F_addrx3: return 3;
    case F_data4: case F_ref4: case F_ref_sup4: case F_strx4: case F_addrx4: return 4;
    case F_data8: case F_ref8: case F_ref_sig8: case F_ref_sup8: return 8;
    case F_data16: return 16;
    case F_strp: case F_sec_offset: case F_line_strp: case F_strp_sup: case F_GNU_ref_alt: case F_GNU_strp_alt: return offSize;
    case F_ref_addr: return version <= 2 ? addrSize : offSize;
    case F_flag_present: case F_implicit_const: return 0;
    case F_udata: case F_ref_udata: case F_strx: case F_addrx: case F_loclistx: case F_rnglistx:
    case F_GNU_addr_index: case F_GNU_str_index: return SZ_ULEB;
    case F_sdata: return SZ_SLEB;
    case F_string: return SZ_CSTR;
    case F_block1: return SZ_BLOCK1;
    case F_block2: return SZ_BLOCK2;
    case F_block4: return SZ_BLOCK4;
    case F_block: case F_exprloc: return SZ_BLOCK;
    case F_indirect: return SZ_INDIRECT;
    default: return fail(`unknown attribute form 0x${form.toString(16)}`);
  }
}

/** Decodes one abbreviation table (at `offset` of .debug_abbrev) into a code-indexed lookup. */
function parseAbbrevTable(abbrev: Buffer, offset: number): Map<number, Abbrev> | Abbrev[] {
  if (offset >= abbrev.length) fail(`abbreviation table offset ${offset} is outside .debug_abbrev (${abbrev.length} bytes)`);
  const end = abbrev.length;
  const byCode = new Map<number, Abbrev>();
  let pos = offset;
  let dense = true;
  for (;;) {
    const code = uleb(abbrev, pos, end);
    pos = lebNext;
    if (code === 0) break;
    const tag = uleb(abbrev, pos, end);
    pos = lebNext;
    if (pos >= end) fail('abbreviation table is truncated');
    const hasChildren = abbrev[pos++] !== 0;
    const names: number[] = [];
    const forms: number[] = [];
    const implicit: number[] = [];
    for (;;) {
      const name = uleb(abbrev, pos, end);
      pos = lebNext;
      const form = uleb(abbrev, pos, end);
      pos = lebNext;
      if (name === 0 && form === 0) break;
      let ic = 0;
      if (form === F_implicit_const) {
        ic = sleb(abbrev, pos, end);
        pos = lebNext;
      }
      names.push(name);
      forms.push(form);
      implicit.push(ic);
      if (names.length > 4096) fail(`abbreviation ${code} has implausibly many attributes`);
    }
    if (byCode.has(code)) fail(`abbreviation code ${code} defined twice`);
    if (code > 1 << 20) dense = false;
    byCode.set(code, {
      tag, hasChildren,
      names: Int32Array.from(names), forms: Int32Array.from(forms), implicit: Float64Array.from(implicit),
      fixedSize: -1, sizes: new Int32Array(forms.length), shapeKey: -1,
    });
  }
  if (!dense) return byCode;
  // Codes are almost always 1..n: an array lookup is faster than a Map on the hot path.
  let max = 0;
  for (const c of byCode.keys()) max = Math.max(max, c);
  const arr: Abbrev[] = new Array(max + 1);
  for (const [c, a] of byCode) arr[c] = a;
  return arr;
}

function prepare(a: Abbrev, version: number, addrSize: number, offSize: number): void {
  const key = version * 256 + addrSize * 16 + offSize;
  if (a.shapeKey === key) return;
  let fixed = 0;
  for (let i = 0; i < a.forms.length; i++) {
    const s = formSize(a.forms[i]!, version, addrSize, offSize);
    a.sizes[i] = s;
    if (s < 0 || fixed < 0) fixed = -1;
    else fixed += s;
  }
  a.fixedSize = fixed;
  a.shapeKey = key;
}

interface Unit {
  offset: number; // of the unit header
  dieStart: number;
  end: number;
  version: number;
  offSize: number;
  addrSize: number;
  abbrevOffset: number;
}

function* units(info: Buffer): Generator<Unit> {
  let pos = 0;
  while (pos < info.length) {
    const offset = pos;
    if (pos + 4 > info.length) fail(`truncated unit header at offset ${offset}`);
    let length = info.readUInt32LE(pos);
    pos += 4;
    let offSize = 4;
    if (length === 0xffffffff) {
      if (pos + 8 > info.length) fail(`truncated 64-bit unit header at offset ${offset}`);
      const big = info.readBigUInt64LE(pos);
      pos += 8;
      if (big > BigInt(info.length)) fail(`unit at offset ${offset} claims ${big} bytes, more than .debug_info holds`);
      length = Number(big);
      offSize = 8;
    } else if (length >= 0xfffffff0) {
      fail(`reserved unit length 0x${length.toString(16)} at offset ${offset}`);
    }
    const end = pos + length;
    if (end > info.length) fail(`unit at offset ${offset} claims ${length} bytes but only ${info.length - pos} remain`);
    if (pos + 2 > end) fail(`truncated unit header at offset ${offset}`);
    const version = info.readUInt16LE(pos);
    pos += 2;
    if (version < 2 || version > 5) fail(`unsupported DWARF version ${version} in unit at offset ${offset}`);
    let addrSize: number;
    let abbrevOffset: number;
    const readOff = (): number => {
      if (pos + offSize > end) fail(`truncated unit header at offset ${offset}`);
      const v = offSize === 4 ? info.readUInt32LE(pos) : Number(info.readBigUInt64LE(pos));
      pos += offSize;
      return v;
    };
    if (version >= 5) {
      if (pos + 2 > end) fail(`truncated unit header at offset ${offset}`);
      const unitType = info[pos]!;
      addrSize = info[pos + 1]!;
      pos += 2;
      abbrevOffset = readOff();
      switch (unitType) {
        case 1: case 3: break; // DW_UT_compile, DW_UT_partial
        case 4: case 5: pos += 8; break; // skeleton, split_compile: dwo_id
        case 2: case 6: pos += 8; readOff(); break; // type, split_type: signature, type_offset
        default: fail(`unknown unit type ${unitType} at offset ${offset}`);
      }
    } else {
      abbrevOffset = readOff();
      if (pos + 1 > end) fail(`truncated unit header at offset ${offset}`);
      addrSize = info[pos++]!;
    }
    if (addrSize !== 4 && addrSize !== 8) fail(`unsupported address size ${addrSize} in unit at offset ${offset}`);
    if (pos > end) fail(`truncated unit header at offset ${offset}`);
    yield { offset, dieStart: pos, end, version, offSize, addrSize, abbrevOffset };
    pos = end;
  }
}

/** Per-unit string context for the non-inline name forms. */
interface StrCtx {
  sections: DwarfSections;
  offSize: number;
  strOffsetsBase: number;
}

function strAt(sec: Buffer | undefined, off: number, what: string): string {
  if (!sec) fail(`name refers to ${what}, which the binary does not have`);
  if (off < 0 || off >= sec.length) fail(`string offset ${off} is outside ${what} (${sec.length} bytes)`);
  const end = sec.indexOf(0, off);
  if (end < 0) fail(`unterminated string at offset ${off} of ${what}`);
  return sec.toString('utf8', off, end);
}

function strIndex(ctx: StrCtx, index: number): string {
  const so = ctx.sections.strOffsets;
  if (!so) fail('name uses DW_FORM_strx but there is no .debug_str_offsets');
  const at = ctx.strOffsetsBase + index * ctx.offSize;
  if (at + ctx.offSize > so.length) fail(`string index ${index} is outside .debug_str_offsets`);
  const off = ctx.offSize === 4 ? so.readUInt32LE(at) : Number(so.readBigUInt64LE(at));
  return strAt(ctx.sections.str, off, '.debug_str');
}

/** Reads a uint of `n` (1..8) little-endian bytes at pos. */
function readUint(buf: Buffer, pos: number, n: number): number {
  switch (n) {
    case 1: return buf[pos]!;
    case 2: return buf.readUInt16LE(pos);
    case 3: return buf.readUIntLE(pos, 3);
    case 4: return buf.readUInt32LE(pos);
    default: {
      const v = buf.readBigUInt64LE(pos);
      return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
    }
  }
}

/**
 * Decoded view of one attribute value, for the few attributes of wanted DIEs we look at.
 * Returns a string (names), a number (constants, offsets) or undefined (forms we do not interpret).
 */
function attrValue(buf: Buffer, pos: number, end: number, form: number, size: number, implicit: number, ctx: StrCtx): string | number | undefined {
  switch (form) {
    case F_string: {
      const z = buf.indexOf(0, pos);
      if (z < 0 || z >= end) fail(`unterminated string at offset ${pos}`);
      return buf.toString('utf8', pos, z);
    }
    case F_strp: return strAt(ctx.sections.str, readUint(buf, pos, size), '.debug_str');
    case F_line_strp: return strAt(ctx.sections.lineStr, readUint(buf, pos, size), '.debug_line_str');
    case F_strx1: case F_strx2: case F_strx3: case F_strx4: return strIndex(ctx, readUint(buf, pos, size));
    case F_strx: case F_GNU_str_index: return strIndex(ctx, uleb(buf, pos, end));
    case F_data1: case F_data2: case F_data4: case F_data8: case F_sec_offset:
    case F_ref1: case F_ref2: case F_ref4: case F_ref8:
      return readUint(buf, pos, size);
    case F_udata: case F_ref_udata: return uleb(buf, pos, end);
    case F_sdata: return sleb(buf, pos, end);
    case F_implicit_const: return implicit;
    case F_flag: return buf[pos]!;
    case F_flag_present: return 1;
    case F_exprloc: case F_block: case F_block1: case F_block2: case F_block4: {
      // A location expression: Go (and DWARF 2 producers) write member offsets as DW_OP_plus_uconst N.
      let len: number;
      let p: number;
      const hdr = form === F_block1 ? 1 : form === F_block2 ? 2 : form === F_block4 ? 4 : 1;
      if (pos + hdr > end) fail(`attribute runs past the end of its unit at offset ${pos}`);
      if (form === F_block1) { len = buf[pos]!; p = pos + 1; }
      else if (form === F_block2) { len = buf.readUInt16LE(pos); p = pos + 2; }
      else if (form === F_block4) { len = buf.readUInt32LE(pos); p = pos + 4; }
      else { len = uleb(buf, pos, end); p = lebNext; }
      const e = p + len;
      if (len < 2 || e > end) return undefined;
      const op = buf[p]!;
      if (op !== DW_OP_plus_uconst && op !== DW_OP_constu) return undefined;
      const v = uleb(buf, p + 1, e);
      return lebNext === e ? v : undefined;
    }
    default: return undefined;
  }
}

/** Skips one attribute value of a variable-size class; returns the position after it. */
function skipVar(buf: Buffer, pos: number, end: number, cls: number, version: number, addrSize: number, offSize: number): number {
  switch (cls) {
    case SZ_ULEB: case SZ_SLEB: return skipLeb(buf, pos, end);
    case SZ_CSTR: {
      const z = buf.indexOf(0, pos);
      if (z < 0 || z >= end) fail(`unterminated string at offset ${pos}`);
      return z + 1;
    }
    case SZ_BLOCK1: if (pos + 1 > end) break; return pos + 1 + buf[pos]!;
    case SZ_BLOCK2: if (pos + 2 > end) break; return pos + 2 + buf.readUInt16LE(pos);
    case SZ_BLOCK4: if (pos + 4 > end) break; return pos + 4 + buf.readUInt32LE(pos);
    case SZ_BLOCK: { const n = uleb(buf, pos, end); return lebNext + n; }
    case SZ_INDIRECT: {
      const form = uleb(buf, pos, end);
      const p = lebNext;
      if (form === F_indirect) fail(`DW_FORM_indirect names itself at offset ${pos}`);
      if (form === F_implicit_const) fail(`DW_FORM_indirect to implicit_const at offset ${pos}`);
      const s = formSize(form, version, addrSize, offSize);
      return s >= 0 ? p + s : skipVar(buf, p, end, s, version, addrSize, offSize);
    }
    default: break;
  }
  return fail(`attribute runs past the end of its unit at offset ${pos}`);
}

/** The name bytes as Go's linker writes them inline (DW_FORM_string), NUL included. */
function inlineNeedles(names: Iterable<string>): Buffer[] {
  return [...names].map((n) => Buffer.from(n + '\0', 'utf8'));
}

/** Whether a unit's struct DIEs may carry their name out of line (strp, strx, ...): then the unit must be walked. */
function structNamesOutOfLine(table: Map<number, Abbrev> | Abbrev[]): boolean {
  const it = table instanceof Map ? table.values() : table;
  for (const a of it) {
    if (!a || a.tag !== DW_TAG_structure_type) continue;
    for (let i = 0; i < a.names.length; i++) {
      if (a.names[i] === DW_AT_name && a.forms[i] !== F_string) return true;
    }
  }
  return false;
}

/**
 * Finds the structure types called `names` (e.g. "runtime.g") and returns their layouts. Names that are not
 * found are absent from the result. The first complete definition of a name wins (not a declaration).
 */
export function readStructLayouts(sections: DwarfSections, names: string[]): Map<string, StructLayout> {
  const search = new StructSearch(sections, names);
  search.scan(sections.info);
  return search.out;
}

/** Bytes of .debug_info inflated at a time by readStructLayoutsOf (a unit that is longer is read whole). */
const INFO_WINDOW = 1 << 20;

/**
 * readStructLayouts over an ELF file's DWARF, its .debug_info read a window of whole units at a time and no
 * further than the last name found (runtime.g is halfway into a big Go binary's 19 MiB). Undefined without DWARF.
 */
export function readStructLayoutsOf(elf: ElfFile, names: string[]): Map<string, StructLayout> | undefined {
  const infoSection = elf.section('.debug_info') ?? elf.section('.zdebug_info');
  const rest = dwarfSectionsOf(elf, false);
  if (!infoSection || !rest) return undefined;
  const pieces = sectionPieces(elf, infoSection);
  try {
    if (pieces.size === 0) return undefined;
    const search = new StructSearch(rest, names);
    let window = Buffer.allocUnsafe(Math.min(INFO_WINDOW, pieces.size));
    let have = 0;
    while (!search.done) {
      if (have === window.length) {
        // One unit longer than the window: a bigger one (bounded by the section's size, itself capped).
        const bigger = Buffer.allocUnsafe(Math.min(window.length * 2, pieces.size));
        window.copy(bigger, 0, 0, have);
        window = bigger;
      }
      const n = pieces.readInto(window.subarray(have));
      have += n;
      const whole = n === 0 ? have : wholeUnits(window.subarray(0, have));
      try {
        if (whole > 0) search.scan(window.subarray(0, whole));
      } catch (e) {
        // Units that make no sense in a stream that lies (a zip bomb, corrupt data): the stream's fault is the one
        // to name, so it is read out (no further than its header's size) before the units' is reported.
        if (e instanceof FormatError) while (pieces.readInto(window) > 0);
        throw e;
      }
      window.copyWithin(0, whole, have);
      have -= whole;
      if (n === 0) break;
    }
    return search.out;
  } finally {
    pieces.close();
  }
}

/** Bytes at the start of `buf` taken by whole units (a reserved length: all of it, for units() to refuse). */
function wholeUnits(buf: Buffer): number {
  let pos = 0;
  while (pos + 4 <= buf.length) {
    let length = buf.readUInt32LE(pos);
    let header = 4;
    if (length === 0xffffffff) {
      if (pos + 12 > buf.length) break;
      length = Number(buf.readBigUInt64LE(pos + 4));
      header = 12;
    } else if (length >= 0xfffffff0) {
      return buf.length;
    }
    if (pos + header + length > buf.length) break;
    pos += header + length;
  }
  return pos;
}

/** The search of readStructLayouts, over one or more runs of whole units of .debug_info. */
class StructSearch {
  readonly out = new Map<string, StructLayout>();
  private readonly wanted: Set<string>;
  private readonly tables = new Map<number, Map<number, Abbrev> | Abbrev[]>();
  private readonly outOfLine = new Map<number, boolean>();

  constructor(private readonly sections: Omit<DwarfSections, 'info'>, names: string[]) {
    this.wanted = new Set(names);
  }

  get done(): boolean {
    return this.out.size === this.wanted.size;
  }

  scan(info: Buffer): void {
    if (this.done) return;
    // Every place a wanted name occurs as an inline string (a superset of where such a struct can be named inline).
    const hits: number[] = [];
    for (const n of inlineNeedles(this.wanted)) {
      for (let at = info.indexOf(n); at >= 0; at = info.indexOf(n, at + 1)) hits.push(at);
    }
    hits.sort((x, y) => x - y);
    let h = 0;
    const sections: DwarfSections = { ...this.sections, info };
    for (const u of units(info)) {
      let table = this.tables.get(u.abbrevOffset);
      if (!table) {
        table = parseAbbrevTable(this.sections.abbrev, u.abbrevOffset);
        this.tables.set(u.abbrevOffset, table);
        this.outOfLine.set(u.abbrevOffset, structNamesOutOfLine(table));
      }
      while (h < hits.length && hits[h]! < u.dieStart) h++;
      if (!this.outOfLine.get(u.abbrevOffset) && !(h < hits.length && hits[h]! < u.end)) {
        // All struct names in this unit are inline strings and none of the wanted ones occurs in it.
        continue;
      }
      walkUnit(sections, u, table, this.wanted, this.out);
      if (this.done) break;
    }
  }
}

function lookup(table: Map<number, Abbrev> | Abbrev[], code: number): Abbrev | undefined {
  return table instanceof Map ? table.get(code) : table[code];
}

function walkUnit(sections: DwarfSections, u: Unit, table: Map<number, Abbrev> | Abbrev[], wanted: Set<string>, out: Map<string, StructLayout>): void {
  const buf = sections.info;
  const { end, version, addrSize, offSize } = u;
  const ctx: StrCtx = { sections, offSize, strOffsetsBase: version >= 5 ? 8 : 0 };
  if (offSize === 8 && version >= 5) ctx.strOffsetsBase = 16;
  let pos = u.dieStart;
  let depth = 0;
  let first = true;
  // The struct being collected, and the depth of its members.
  let cur: StructLayout | undefined;
  let curName = '';
  let curDepth = -1;

  while (pos < end) {
    const dieOffset = pos;
    let code: number;
    const b0 = buf[pos]!;
    if (b0 < 0x80) { code = b0; pos++; } else { code = uleb(buf, pos, end); pos = lebNext; }
    if (code === 0) {
      // End of a sibling chain.
      if (depth === 0) continue; // padding after the unit's DIE tree
      depth--;
      if (cur && depth < curDepth) {
        finish();
      }
      continue;
    }
    const a = lookup(table, code);
    if (!a) fail(`unknown abbreviation code ${code} at offset ${dieOffset}`);
    if (a.shapeKey !== version * 256 + addrSize * 16 + offSize) prepare(a, version, addrSize, offSize);

    const isStruct = a.tag === DW_TAG_structure_type;
    const isMember = cur !== undefined && depth === curDepth && a.tag === DW_TAG_member;
    if (!isStruct && !isMember && !first) {
      // Fast path: skip the attributes without decoding them.
      if (a.fixedSize >= 0) {
        pos += a.fixedSize;
      } else {
        const sizes = a.sizes;
        for (let i = 0; i < sizes.length; i++) {
          const s = sizes[i]!;
          if (s >= 0) pos += s;
          else if (s === SZ_ULEB) {
            // inline skipLeb
            for (let k = 0; ; k++) {
              if (pos >= end) fail(`LEB128 runs past the end of its unit at offset ${pos}`);
              if (buf[pos++]! < 0x80) break;
              if (k > 20) fail(`LEB128 too long at offset ${pos}`);
            }
          } else if (s === SZ_CSTR) {
            const z = buf.indexOf(0, pos);
            if (z < 0 || z >= end) fail(`unterminated string at offset ${pos}`);
            pos = z + 1;
          } else pos = skipVar(buf, pos, end, s, version, addrSize, offSize);
        }
      }
      if (pos > end) fail(`entry at offset ${dieOffset} runs past the end of its unit`);
      if (a.hasChildren) depth++;
      continue;
    }

    // Decode the attributes we care about.
    let name: string | undefined;
    let byteSize = -1;
    let loc: number | undefined;
    let declaration = false;
    let sibling = -1;
    const names = a.names, forms = a.forms, sizes = a.sizes;
    for (let i = 0; i < sizes.length; i++) {
      const at = names[i]!;
      let form = forms[i]!;
      let s = sizes[i]!;
      if (s === SZ_INDIRECT) {
        form = uleb(buf, pos, end);
        pos = lebNext;
        if (form === F_indirect || form === F_implicit_const) fail(`bad DW_FORM_indirect at offset ${pos}`);
        s = formSize(form, version, addrSize, offSize);
      }
      const interesting = at === DW_AT_name || at === DW_AT_byte_size || at === DW_AT_data_member_location ||
        at === DW_AT_declaration || at === DW_AT_sibling || (first && at === DW_AT_str_offsets_base);
      if (interesting) {
        if (s >= 0 && pos + s > end) fail(`entry at offset ${dieOffset} runs past the end of its unit`);
        const v = attrValue(buf, pos, end, form, s, a.implicit[i]!, ctx);
        switch (at) {
          case DW_AT_name: if (typeof v === 'string') name = v; break;
          case DW_AT_byte_size: if (typeof v === 'number') byteSize = v; break;
          case DW_AT_data_member_location: if (typeof v === 'number') loc = v; break;
          case DW_AT_declaration: declaration = v !== 0 && v !== undefined; break;
          case DW_AT_sibling: if (typeof v === 'number') sibling = v; break;
          case DW_AT_str_offsets_base: if (typeof v === 'number') ctx.strOffsetsBase = v; break;
        }
      }
      pos = s >= 0 ? pos + s : skipVar(buf, pos, end, s, version, addrSize, offSize);
      if (pos > end) fail(`entry at offset ${dieOffset} runs past the end of its unit`);
    }
    const wasFirst = first;
    first = false;

    if (isMember) {
      if (name !== undefined && loc !== undefined && !cur!.members.has(name)) cur!.members.set(name, loc);
    } else if (isStruct && !cur && name !== undefined && wanted.has(name) && !out.has(name) && !declaration) {
      if (a.hasChildren) {
        cur = { size: byteSize, members: new Map() };
        curName = name;
        curDepth = depth + 1;
      } else {
        out.set(name, { size: byteSize, members: new Map() });
        if (out.size === wanted.size) return;
      }
    } else if (a.hasChildren && sibling > dieOffset - u.offset && u.offset + sibling <= end && !wasFirst) {
      // A struct we do not want that tells us where its children end: jump there.
      pos = u.offset + sibling;
      continue;
    }
    if (a.hasChildren) depth++;
  }
  if (cur) finish();

  function finish(): void {
    out.set(curName, cur!);
    if (out.size === wanted.size) pos = end; // done with this unit (the caller stops too)
    cur = undefined;
    curDepth = -1;
  }
}

/**
 * The DWARF sections of an ELF file (decompressed), or undefined when it has none (e.g. linked with -w). Without
 * `withInfo`, all but .debug_info (readStructLayoutsOf reads that one a piece at a time).
 */
export function dwarfSectionsOf(elf: ElfFile): DwarfSections | undefined;
export function dwarfSectionsOf(elf: ElfFile, withInfo: false): Omit<DwarfSections, 'info'> | undefined;
export function dwarfSectionsOf(elf: ElfFile, withInfo = true): Omit<DwarfSections, 'info'> | undefined {
  const get = (name: string): Buffer | undefined => {
    const s = elf.section(`.debug_${name}`) ?? elf.section(`.zdebug_${name}`);
    return s ? elf.sectionData(s) : undefined;
  };
  const abbrev = get('abbrev');
  if (!abbrev) return undefined;
  const out: Omit<DwarfSections, 'info'> & { info?: Buffer } = { abbrev };
  if (withInfo) {
    const info = get('info');
    if (!info || info.length === 0) return undefined;
    out.info = info;
  }
  const str = get('str');
  if (str) out.str = str;
  const lineStr = get('line_str');
  if (lineStr) out.lineStr = lineStr;
  const strOffsets = get('str_offsets');
  if (strOffsets) out.strOffsets = strOffsets;
  return out;
}
