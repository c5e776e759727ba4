// The pprof Profile model (perftools.profiles, see profile.proto beside this file), its protobuf encoding with
// protobufjs, and gzip. Pure: values in, Buffers out.
//
// 64-bit fields that can exceed 2^53 (addresses, offsets, time_nanos, duration_nanos) are bigints; ids, string
// indices, sample values and label numbers are numbers.

import * as zlib from 'node:zlib';
import * as protobuf from 'protobufjs';

export interface ValueType {
  /** strindex */
  type: number;
  /** strindex */
  unit: number;
}

export interface Label {
  /** strindex */
  key: number;
  /** strindex (0 = none) */
  str: number;
  num: number;
  /** strindex, only with num */
  numUnit: number;
}

export interface Sample {
  /** Leaf first. */
  locationId: number[];
  /** One per Profile.sampleType. */
  value: number[];
  label: Label[];
}

export interface Mapping {
  id: number;
  memoryStart: bigint;
  memoryLimit: bigint;
  fileOffset: bigint;
  /** strindex */
  filename: number;
  /** strindex */
  buildId: number;
  hasFunctions: boolean;
  hasFilenames: boolean;
  hasLineNumbers: boolean;
  hasInlineFrames: boolean;
}

export interface Line {
  functionId: number;
  line: number;
  column: number;
}

export interface Location {
  id: number;
  /** 0 = no mapping */
  mappingId: number;
  address: bigint;
  /** Innermost (inlined) function first, the physical caller last. */
  line: Line[];
  isFolded: boolean;
}

export interface ProfileFunction {
  id: number;
  /** strindex */
  name: number;
  /** strindex */
  systemName: number;
  /** strindex */
  filename: number;
  startLine: number;
}

export interface Profile {
  sampleType: ValueType[];
  sample: Sample[];
  mapping: Mapping[];
  location: Location[];
  function: ProfileFunction[];
  /** stringTable[0] is always ''. */
  stringTable: string[];
  dropFrames: number;
  keepFrames: number;
  timeNanos: bigint;
  durationNanos: bigint;
  periodType: ValueType | undefined;
  period: number;
  comment: number[];
  defaultSampleType: number;
  docUrl: number;
}

/**
 * profile.proto as a protobufjs descriptor (what protobufjs makes of src/profile/profile.proto; a test checks that
 * they agree, so the .proto file need not ship beside the compiled code).
 */
export const PROFILE_DESCRIPTOR = {
  nested: {
    perftools: {
      nested: {
        profiles: {
          options: { java_package: 'com.google.perftools.profiles', java_outer_classname: 'ProfileProto' },
          nested: {
              Profile: {
                fields: {
                  sampleType: { rule: 'repeated', type: 'ValueType', id: 1, protoName: 'sample_type' },
                  sample: { rule: 'repeated', type: 'Sample', id: 2 },
                  mapping: { rule: 'repeated', type: 'Mapping', id: 3 },
                  location: { rule: 'repeated', type: 'Location', id: 4 },
                  function: { rule: 'repeated', type: 'Function', id: 5 },
                  stringTable: { rule: 'repeated', type: 'string', id: 6, protoName: 'string_table' },
                  dropFrames: { type: 'int64', id: 7, protoName: 'drop_frames' },
                  keepFrames: { type: 'int64', id: 8, protoName: 'keep_frames' },
                  timeNanos: { type: 'int64', id: 9, protoName: 'time_nanos' },
                  durationNanos: { type: 'int64', id: 10, protoName: 'duration_nanos' },
                  periodType: { type: 'ValueType', id: 11, protoName: 'period_type' },
                  period: { type: 'int64', id: 12 },
                  comment: { rule: 'repeated', type: 'int64', id: 13 },
                  defaultSampleType: { type: 'int64', id: 14, protoName: 'default_sample_type' },
                  docUrl: { type: 'int64', id: 15, protoName: 'doc_url' },
                },
              },
              ValueType: {
                fields: {
                  type: { type: 'int64', id: 1 },
                  unit: { type: 'int64', id: 2 },
                },
              },
              Sample: {
                fields: {
                  locationId: { rule: 'repeated', type: 'uint64', id: 1, protoName: 'location_id' },
                  value: { rule: 'repeated', type: 'int64', id: 2 },
                  label: { rule: 'repeated', type: 'Label', id: 3 },
                },
              },
              Label: {
                fields: {
                  key: { type: 'int64', id: 1 },
                  str: { type: 'int64', id: 2 },
                  num: { type: 'int64', id: 3 },
                  numUnit: { type: 'int64', id: 4, protoName: 'num_unit' },
                },
              },
              Mapping: {
                fields: {
                  id: { type: 'uint64', id: 1 },
                  memoryStart: { type: 'uint64', id: 2, protoName: 'memory_start' },
                  memoryLimit: { type: 'uint64', id: 3, protoName: 'memory_limit' },
                  fileOffset: { type: 'uint64', id: 4, protoName: 'file_offset' },
                  filename: { type: 'int64', id: 5 },
                  buildId: { type: 'int64', id: 6, protoName: 'build_id' },
                  hasFunctions: { type: 'bool', id: 7, protoName: 'has_functions' },
                  hasFilenames: { type: 'bool', id: 8, protoName: 'has_filenames' },
                  hasLineNumbers: { type: 'bool', id: 9, protoName: 'has_line_numbers' },
                  hasInlineFrames: { type: 'bool', id: 10, protoName: 'has_inline_frames' },
                },
              },
              Location: {
                fields: {
                  id: { type: 'uint64', id: 1 },
                  mappingId: { type: 'uint64', id: 2, protoName: 'mapping_id' },
                  address: { type: 'uint64', id: 3 },
                  line: { rule: 'repeated', type: 'Line', id: 4 },
                  isFolded: { type: 'bool', id: 5, protoName: 'is_folded' },
                },
              },
              Line: {
                fields: {
                  functionId: { type: 'uint64', id: 1, protoName: 'function_id' },
                  line: { type: 'int64', id: 2 },
                  column: { type: 'int64', id: 3 },
                },
              },
              Function: {
                fields: {
                  id: { type: 'uint64', id: 1 },
                  name: { type: 'int64', id: 2 },
                  systemName: { type: 'int64', id: 3, protoName: 'system_name' },
                  filename: { type: 'int64', id: 4 },
                  startLine: { type: 'int64', id: 5, protoName: 'start_line' },
                },
              },
          },
        },
      },
    },
  },
};

let profileType: protobuf.Type | undefined;

/** The protobufjs type of perftools.profiles.Profile. */
export function profileMessageType(): protobuf.Type {
  if (!profileType) {
    const root = protobuf.Root.fromJSON(PROFILE_DESCRIPTOR);
    root.resolveAll();
    profileType = root.lookupType('perftools.profiles.Profile');
  }
  return profileType;
}

interface LongBits {
  low: number;
  high: number;
}

/** A 64-bit value for protobufjs (two's complement for negatives), or undefined for 0 (proto3 leaves it out). */
function long(v: bigint | number): LongBits | number | undefined {
  if (typeof v === 'number') {
    if (v === 0) return undefined;
    if (Number.isSafeInteger(v)) return v;
    v = BigInt(Math.trunc(v));
  }
  if (v === 0n) return undefined;
  const u = BigInt.asUintN(64, v);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0 };
}

function nz(v: number): number | undefined {
  return v === 0 ? undefined : v;
}

function flag(v: boolean): boolean | undefined {
  return v ? true : undefined;
}

function valueType(v: ValueType): object {
  return { type: nz(v.type), unit: nz(v.unit) };
}

/** The profile as the plain object protobufjs encodes (zero values left out, as proto3 does). */
function toWire(p: Profile): object {
  if (p.stringTable[0] !== '') throw new Error(`string_table[0] must be '' (got ${JSON.stringify(p.stringTable[0])})`);
  return {
    sampleType: p.sampleType.map(valueType),
    sample: p.sample.map((s) => ({
      locationId: s.locationId,
      value: s.value.map((v) => long(v) ?? 0),
      label: s.label.map((l) => ({ key: nz(l.key), str: nz(l.str), num: long(l.num), numUnit: nz(l.numUnit) })),
    })),
    mapping: p.mapping.map((m) => ({
      id: nz(m.id),
      memoryStart: long(m.memoryStart),
      memoryLimit: long(m.memoryLimit),
      fileOffset: long(m.fileOffset),
      filename: nz(m.filename),
      buildId: nz(m.buildId),
      hasFunctions: flag(m.hasFunctions),
      hasFilenames: flag(m.hasFilenames),
      hasLineNumbers: flag(m.hasLineNumbers),
      hasInlineFrames: flag(m.hasInlineFrames),
    })),
    location: p.location.map((l) => ({
      id: nz(l.id),
      mappingId: nz(l.mappingId),
      address: long(l.address),
      line: l.line.map((x) => ({ functionId: nz(x.functionId), line: long(x.line), column: long(x.column) })),
      isFolded: flag(l.isFolded),
    })),
    function: p.function.map((f) => ({
      id: nz(f.id),
      name: nz(f.name),
      systemName: nz(f.systemName),
      filename: nz(f.filename),
      startLine: long(f.startLine),
    })),
    stringTable: p.stringTable,
    dropFrames: nz(p.dropFrames),
    keepFrames: nz(p.keepFrames),
    timeNanos: long(p.timeNanos),
    durationNanos: long(p.durationNanos),
    periodType: p.periodType ? valueType(p.periodType) : undefined,
    period: long(p.period),
    comment: p.comment,
    defaultSampleType: nz(p.defaultSampleType),
    docUrl: nz(p.docUrl),
  };
}

/** The uncompressed protobuf bytes of a profile. */
export function encodeProfile(p: Profile): Buffer {
  const bytes = profileMessageType().encode(toWire(p)).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Encodes a small profile with every message and field once, so that protobufjs generates its encoders (and zlib
 * loads) now rather than during the first profile someone asks for: ~15 ms of one-time work, done at start.
 * Returns the bytes (for tests).
 */
export function warmPprofEncoder(): Buffer {
  const vt = { type: 1, unit: 2 };
  return encodePprofSync({
    sampleType: [vt],
    sample: [{ locationId: [1], value: [1], label: [{ key: 3, str: 4, num: 1, numUnit: 2 }] }],
    mapping: [{ id: 1, memoryStart: 1n, memoryLimit: 2n, fileOffset: 1n, filename: 5, buildId: 5, hasFunctions: true, hasFilenames: true, hasLineNumbers: true, hasInlineFrames: true }],
    location: [{ id: 1, mappingId: 1, address: 1n, line: [{ functionId: 1, line: 1, column: 1 }], isFolded: true }],
    function: [{ id: 1, name: 6, systemName: 6, filename: 5, startLine: 1 }],
    stringTable: ['', 'samples', 'count', 'key', 'value', 'file', 'function'],
    dropFrames: 6,
    keepFrames: 6,
    timeNanos: 1n,
    durationNanos: 1n,
    periodType: vt,
    period: 1,
    comment: [1],
    defaultSampleType: 1,
    docUrl: 1,
  });
}

/** gzip level runtime/pprof uses (gzip.BestSpeed). */
const GZIP_LEVEL = 1;

/**
 * A profile as a pprof file: gzipped protobuf, what `go tool pprof` and /debug/pprof/profile serve. Compressed on
 * the calling thread (a few ms at this level): zlib's asynchronous form would start libuv's thread pool, four
 * threads the agent otherwise never needs, each with its own malloc arena.
 */
export function encodePprof(p: Profile): Promise<Buffer> {
  try {
    return Promise.resolve(encodePprofSync(p));
  } catch (err) {
    return Promise.reject(err);
  }
}

export function encodePprofSync(p: Profile): Buffer {
  return zlib.gzipSync(encodeProfile(p), { level: GZIP_LEVEL });
}

function big(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(v);
  if (typeof v === 'string') return BigInt(v);
  return 0n;
}

function num(v: unknown): number {
  return Number(big(v));
}

/** An object as protobufjs's toObject returns it (fields by name, 64-bit values as bigints). */
type Wire = any;

interface WireValueType {
  type?: unknown;
  unit?: unknown;
}

function fromWireValueType(v: WireValueType): ValueType {
  return { type: num(v.type), unit: num(v.unit) };
}

/** Parses a profile: gzipped (as files are) or raw protobuf. */
export function decodePprof(buf: Buffer | Uint8Array): Profile {
  let raw = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) raw = zlib.gunzipSync(raw);
  const T = profileMessageType();
  const o = T.toObject(T.decode(raw), { longs: BigInt, defaults: true, arrays: true }) as Wire;
  return {
    sampleType: (o.sampleType as WireValueType[]).map(fromWireValueType),
    sample: o.sample.map((s: Wire) => ({
      locationId: (s.locationId as unknown[]).map(num),
      value: (s.value as unknown[]).map(num),
      label: s.label.map((l: Wire) => ({ key: num(l.key), str: num(l.str), num: num(l.num), numUnit: num(l.numUnit) })),
    })),
    mapping: o.mapping.map((m: Wire) => ({
      id: num(m.id),
      memoryStart: BigInt.asUintN(64, big(m.memoryStart)),
      memoryLimit: BigInt.asUintN(64, big(m.memoryLimit)),
      fileOffset: BigInt.asUintN(64, big(m.fileOffset)),
      filename: num(m.filename),
      buildId: num(m.buildId),
      hasFunctions: Boolean(m.hasFunctions),
      hasFilenames: Boolean(m.hasFilenames),
      hasLineNumbers: Boolean(m.hasLineNumbers),
      hasInlineFrames: Boolean(m.hasInlineFrames),
    })),
    location: o.location.map((l: Wire) => ({
      id: num(l.id),
      mappingId: num(l.mappingId),
      address: BigInt.asUintN(64, big(l.address)),
      line: l.line.map((x: Wire) => ({ functionId: num(x.functionId), line: num(x.line), column: num(x.column) })),
      isFolded: Boolean(l.isFolded),
    })),
    function: o.function.map((f: Wire) => ({
      id: num(f.id),
      name: num(f.name),
      systemName: num(f.systemName),
      filename: num(f.filename),
      startLine: num(f.startLine),
    })),
    stringTable: o.stringTable as string[],
    dropFrames: num(o.dropFrames),
    keepFrames: num(o.keepFrames),
    timeNanos: big(o.timeNanos),
    durationNanos: big(o.durationNanos),
    periodType: o.periodType ? fromWireValueType(o.periodType as WireValueType) : undefined,
    period: num(o.period),
    comment: (o.comment as unknown[]).map(num),
    defaultSampleType: num(o.defaultSampleType),
    docUrl: num(o.docUrl),
  };
}

/**
 * The checks pprof's CheckValid makes (plus string indices in range): returns a list of problems, [] when valid.
 */
export function profileProblems(p: Profile): string[] {
  const out: string[] = [];
  const strOk = (i: number, what: string): void => {
    if (!Number.isInteger(i) || i < 0 || i >= p.stringTable.length) out.push(`${what}: string index ${i} out of range`);
  };
  if (p.stringTable[0] !== '') out.push("string_table[0] must be ''");
  if (p.sampleType.length === 0) out.push('no sample types');
  p.sampleType.forEach((t, i) => {
    strOk(t.type, `sample_type[${i}].type`);
    strOk(t.unit, `sample_type[${i}].unit`);
  });
  const ids = (what: string, list: Array<{ id: number }>): Set<number> => {
    const seen = new Set<number>();
    for (const x of list) {
      if (x.id === 0) out.push(`${what} with id 0`);
      if (seen.has(x.id)) out.push(`duplicate ${what} id ${x.id}`);
      seen.add(x.id);
    }
    return seen;
  };
  const mappings = ids('mapping', p.mapping);
  const functions = ids('function', p.function);
  const locations = ids('location', p.location);
  p.mapping.forEach((m) => {
    strOk(m.filename, `mapping ${m.id} filename`);
    strOk(m.buildId, `mapping ${m.id} build_id`);
  });
  p.function.forEach((f) => {
    strOk(f.name, `function ${f.id} name`);
    strOk(f.systemName, `function ${f.id} system_name`);
    strOk(f.filename, `function ${f.id} filename`);
  });
  p.location.forEach((l) => {
    if (l.mappingId !== 0 && !mappings.has(l.mappingId)) out.push(`location ${l.id}: no mapping ${l.mappingId}`);
    l.line.forEach((x) => {
      if (!functions.has(x.functionId)) out.push(`location ${l.id}: a line without a function (${x.functionId})`);
    });
  });
  p.sample.forEach((s, i) => {
    if (s.value.length !== p.sampleType.length) out.push(`sample ${i}: ${s.value.length} values for ${p.sampleType.length} sample types`);
    s.locationId.forEach((id) => {
      if (!locations.has(id)) out.push(`sample ${i}: no location ${id}`);
    });
    s.label.forEach((l) => {
      strOk(l.key, `sample ${i} label key`);
      strOk(l.str, `sample ${i} label str`);
      strOk(l.numUnit, `sample ${i} label num_unit`);
    });
  });
  if (p.periodType) {
    strOk(p.periodType.type, 'period_type.type');
    strOk(p.periodType.unit, 'period_type.unit');
  }
  return out;
}
