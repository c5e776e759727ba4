// src/profile/profile.proto against the field numbers of the reference (reference/pprof-prometheus-fastify.md §1,
// google/pprof upstream HEAD: doc_url = 15, Line.column = 3, no tick_unit/label_set/breakdown), and the
// protobufjs descriptor the encoder uses against the .proto file.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as protobuf from 'protobufjs';
import { decodePprof, encodeProfile, Profile, PROFILE_DESCRIPTOR, profileMessageType, profileProblems, warmPprofEncoder } from '../../src/profile/pprof';
import { repoRoot } from '../support/go-toolchains';

/** §1 of the reference, transcribed: message → field → [number, type, repeated]. */
const REFERENCE: Record<string, Record<string, [number, string, boolean]>> = {
  Profile: {
    sample_type: [1, 'ValueType', true],
    sample: [2, 'Sample', true],
    mapping: [3, 'Mapping', true],
    location: [4, 'Location', true],
    function: [5, 'Function', true],
    string_table: [6, 'string', true],
    drop_frames: [7, 'int64', false],
    keep_frames: [8, 'int64', false],
    time_nanos: [9, 'int64', false],
    duration_nanos: [10, 'int64', false],
    period_type: [11, 'ValueType', false],
    period: [12, 'int64', false],
    comment: [13, 'int64', true],
    default_sample_type: [14, 'int64', false],
    doc_url: [15, 'int64', false],
  },
  ValueType: { type: [1, 'int64', false], unit: [2, 'int64', false] },
  Sample: { location_id: [1, 'uint64', true], value: [2, 'int64', true], label: [3, 'Label', true] },
  Label: { key: [1, 'int64', false], str: [2, 'int64', false], num: [3, 'int64', false], num_unit: [4, 'int64', false] },
  Mapping: {
    id: [1, 'uint64', false],
    memory_start: [2, 'uint64', false],
    memory_limit: [3, 'uint64', false],
    file_offset: [4, 'uint64', false],
    filename: [5, 'int64', false],
    build_id: [6, 'int64', false],
    has_functions: [7, 'bool', false],
    has_filenames: [8, 'bool', false],
    has_line_numbers: [9, 'bool', false],
    has_inline_frames: [10, 'bool', false],
  },
  Location: {
    id: [1, 'uint64', false],
    mapping_id: [2, 'uint64', false],
    address: [3, 'uint64', false],
    line: [4, 'Line', true],
    is_folded: [5, 'bool', false],
  },
  Line: { function_id: [1, 'uint64', false], line: [2, 'int64', false], column: [3, 'int64', false] },
  Function: {
    id: [1, 'uint64', false],
    name: [2, 'int64', false],
    system_name: [3, 'int64', false],
    filename: [4, 'int64', false],
    start_line: [5, 'int64', false],
  },
};

function parseRepoProto(): protobuf.Root {
  const text = fs.readFileSync(path.join(repoRoot(), 'src', 'profile', 'profile.proto'), 'utf8');
  const parsed = protobuf.parse(text, { keepCase: true });
  assert.equal(parsed.package, 'perftools.profiles');
  assert.match(text, /^syntax = "proto3";$/m);
  return parsed.root;
}

test('profile.proto has exactly the reference messages and field numbers (upstream HEAD, doc_url = 15)', () => {
  const root = parseRepoProto();
  const ns = root.lookup('perftools.profiles') as protobuf.Namespace;
  const messages = ns.nestedArray.filter((x): x is protobuf.Type => x instanceof protobuf.Type);
  assert.deepEqual(messages.map((m) => m.name).sort(), Object.keys(REFERENCE).sort(), 'no LabelSet/Breakdown, nothing missing');
  for (const m of messages) {
    const want = REFERENCE[m.name]!;
    const got: Record<string, [number, string, boolean]> = {};
    for (const f of m.fieldsArray) got[f.name] = [f.id, f.type, f.repeated];
    assert.deepEqual(got, want, `message ${m.name}`);
  }
  assert.equal((root.lookupType('perftools.profiles.Profile').fields['doc_url'])!.id, 15);
  assert.equal(root.lookupType('perftools.profiles.Profile').fields['tick_unit'], undefined);
});

test('the encoder\'s descriptor is what protobufjs makes of profile.proto', () => {
  const text = fs.readFileSync(path.join(repoRoot(), 'src', 'profile', 'profile.proto'), 'utf8');
  const fromProto = protobuf.parse(text).root.toJSON();
  assert.deepEqual(JSON.parse(JSON.stringify(PROFILE_DESCRIPTOR)), JSON.parse(JSON.stringify(fromProto)));
  // And it encodes repeated scalars packed, as proto3 (and Go's encoder) do.
  const T = profileMessageType();
  assert.equal(T.lookupType('Sample').fields['locationId']!.packed, true);
});

test('the encoder warm-up sets every field of every message once, and profileProblems finds none', () => {
  const bytes = warmPprofEncoder();
  const T = profileMessageType();
  const raw = T.decode(zlib.gunzipSync(bytes));
  const missing: string[] = [];
  const visit = (type: protobuf.Type, msg: Record<string, unknown>): void => {
    for (const f of type.fieldsArray) {
      const v = msg[f.name]; // a decoded message's own properties are the fields on the wire
      if (!Object.prototype.hasOwnProperty.call(msg, f.name) || (Array.isArray(v) && v.length === 0)) {
        missing.push(`${type.name}.${f.name}`);
        continue;
      }
      if (f.resolvedType instanceof protobuf.Type) {
        for (const m of Array.isArray(v) ? v : [v]) visit(f.resolvedType, m as Record<string, unknown>);
      }
    }
  };
  visit(T, raw as unknown as Record<string, unknown>);
  assert.deepEqual(missing, []);
  assert.deepEqual(profileProblems(decodePprof(bytes)), []);
});

function tiny(strings: string[]): Profile {
  return {
    sampleType: [{ type: 1, unit: 2 }],
    sample: [{ locationId: [1], value: [3], label: [] }],
    mapping: [],
    location: [{ id: 1, mappingId: 0, address: 0xffffffff81000010n, line: [], isFolded: false }],
    function: [],
    stringTable: strings,
    dropFrames: 0,
    keepFrames: 0,
    timeNanos: 1_700_000_000_123_456_789n,
    durationNanos: 0n,
    periodType: undefined,
    period: 0,
    comment: [],
    defaultSampleType: 0,
    docUrl: 0,
  };
}

test('string_table[0] is "": enforced on encode, and 64-bit values survive a round trip', () => {
  const p = tiny(['', 'samples', 'count']);
  assert.deepEqual(profileProblems(p), []);
  const back = decodePprof(encodeProfile(p));
  assert.equal(back.stringTable[0], '');
  assert.equal(back.location[0]!.address, 0xffffffff81000010n, 'a kernel address, beyond 2^53');
  assert.equal(back.timeNanos, 1_700_000_000_123_456_789n);
  assert.throws(() => encodeProfile(tiny(['samples', 'count', ''])), /string_table\[0\] must be ''/);
  assert.deepEqual(profileProblems(tiny(['x', 'samples', 'count'])), ["string_table[0] must be ''"]);
});
