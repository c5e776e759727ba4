// Big native symbol tables are built on the reader thread, not on the agent's event loop: node's own executable
// (~80k symbols) and libc with its separate debug file (two files, read through the agent's descriptors). The
// thread's answers are checked against the same table built here, and the symbolizer and profile builder against a
// symbolizer without a reader thread, on this very process.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { ElfFile } from '../../src/gosym/elf';
import { NativeSymbols } from '../../src/symbols/native-elf';
import { ReaderThread } from '../../src/symbols/reader-thread';
import { Symbolizer } from '../../src/symbols/symbolizer';
import { ProfileBuilder, type ResolvedLocation } from '../../src/profile/builder';
import { readMaps } from '../../src/proc/maps';
import type { RawSample } from '../../src/sampler/types';

const LIBC = '/lib/x86_64-linux-gnu/libc.so.6';

/** Addresses spread over a table: each symbol's start and a byte inside it, and gaps. */
function probes(elf: ElfFile, n: number): number[] {
  const text = elf.section('.text')!;
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(text.addr + Math.floor((i / n) * text.size));
  return out;
}

function namesAt(table: NativeSymbols, addrs: number[]): Array<string | undefined> {
  return addrs.map((a) => table.lookup(a)?.name);
}

function debugFileOf(elf: ElfFile): string {
  const id = elf.gnuBuildId()!;
  return `/usr/lib/debug/.build-id/${id.slice(0, 2)}/${id.slice(2)}.debug`;
}

test('a table built on the reader thread answers as the one built here (node; libc with its debug file)', async () => {
  const reader = new ReaderThread({ idleMs: 1000 });
  const libc = ElfFile.open(LIBC);
  const debugPath = debugFileOf(libc);
  assert.ok(fs.existsSync(debugPath), `${debugPath} is missing: run scripts/install-system-deps.sh (libc6-dbg)`);
  const debug = ElfFile.open(debugPath);
  const node = ElfFile.open(fs.realpathSync(process.execPath));
  try {
    for (const [elf, dbg] of [[node, undefined], [libc, debug]] as const) {
      const here = NativeSymbols.bestOf(elf, dbg);
      assert.ok(NativeSymbols.entriesIn(elf, dbg) > 8192, `${elf.path}: a table worth a thread`);
      const there = await reader.nativeSymbols(elf, dbg);
      assert.equal(there.size, here.size, elf.path);
      const addrs = probes(elf, 20_000);
      const expected = namesAt(here, addrs);
      assert.ok(expected.filter((n) => n !== undefined).length > 10_000, `${elf.path}: most probes named`);
      assert.deepEqual(namesAt(there, addrs), expected, elf.path);
    }
    // libc's static functions are only in the debug file: the thread read its names through the second descriptor.
    const withDebug = await reader.nativeSymbols(libc, debug);
    const withoutDebug = NativeSymbols.bestOf(libc);
    assert.ok(withDebug.size > withoutDebug.size + 1000, `${withDebug.size} symbols with the debug file, ${withoutDebug.size} without`);
  } finally {
    await reader.close();
    for (const f of [libc, debug, node]) f.close();
  }
});

test('a file already closed is refused, never opened again by its path', async () => {
  const reader = new ReaderThread({ idleMs: 1000 });
  const node = ElfFile.open(fs.realpathSync(process.execPath));
  node.close();
  try {
    assert.equal(ReaderThread.canRead([node]), false);
    await assert.rejects(reader.nativeSymbols(node), /is not open/);
  } finally {
    await reader.close();
  }
});

/** Runtime addresses in node's executable mapping of this process, spread over its text. */
function nodeAddresses(n: number): number[] {
  const exe = fs.realpathSync(process.execPath);
  const text = readMaps(process.pid)!.filter((m) => m.path === exe && m.perms[2] === 'x');
  assert.ok(text.length > 0, `no executable mapping of ${exe} in /proc/self/maps`);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const m = text[i % text.length]!;
    out.push(m.start + Math.floor(((i + 0.5) / n) * (m.end - m.start)));
  }
  return out;
}

/** Descriptors of this process open on node's executable. */
function nodeFds(): number {
  const exe = fs.realpathSync(process.execPath);
  return fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`) === exe;
    } catch {
      return false;
    }
  }).length;
}

test("the symbolizer answers node's frames later while its table is read elsewhere, then at once", async () => {
  const reader = new ReaderThread({ idleMs: 1000 });
  const withThread = new Symbolizer({ reader });
  const here = new Symbolizer();
  try {
    const addrs = nodeAddresses(2000);
    const expected = here.resolveUser(process.pid, addrs).map((l) => l.frames.map((f) => f.function));
    assert.ok(expected.filter((f) => f.length > 0).length > 1000, 'the oracle names most addresses');

    const epoch = withThread.userEpoch(process.pid);
    const first = withThread.resolveUser(process.pid, addrs);
    assert.ok(first.every((l) => l.later !== undefined && l.frames.length === 0), 'nothing named before the table is built');
    assert.ok(first[0]!.mapping?.hasFunctions, 'the mapping says it has functions');
    await withThread.settled();
    assert.deepEqual(first.map((l) => l.later!().map((f) => f.function)), expected, 'later() names as the oracle does');
    assert.notEqual(withThread.userEpoch(process.pid), epoch, 'the process answers differently once the table is in');
    const again = withThread.resolveUser(process.pid, addrs);
    assert.ok(again.every((l) => l.later === undefined), 'answered at once now');
    assert.deepEqual(again.map((l) => l.frames.map((f) => f.function)), expected);
  } finally {
    withThread.close();
    here.close();
    await reader.close();
  }
});

test('closing the symbolizer while a table is read waits for the thread before closing the files', async () => {
  const reader = new ReaderThread({ idleMs: 1000 });
  const sym = new Symbolizer({ reader });
  const before = nodeFds();
  try {
    const locs = sym.resolveUser(process.pid, nodeAddresses(10));
    assert.ok(locs.some((l) => l.later));
    sym.close(); // the read is in flight: its descriptor stays open for the thread
    assert.equal(nodeFds(), before + 1, 'the file being read stays open');
    await sym.settled();
    assert.equal(nodeFds(), before, 'closed once the thread answered');
  } finally {
    await reader.close();
  }
});

test('the profile builder names locations whose table came later (settle before build)', async () => {
  const reader = new ReaderThread({ idleMs: 1000 });
  const sym = new Symbolizer({ reader });
  const oracle = new Symbolizer();
  try {
    const stack = nodeAddresses(8);
    const builder = new ProfileBuilder({ resolver: sym, hz: 99 });
    const sample: RawSample = { pid: process.pid, tid: process.pid, cpu: 0, comm: 'node', goid: undefined, userStack: stack, kernelStack: [], timeNs: process.hrtime.bigint() };
    builder.add([sample]);
    await builder.settle();
    builder.add([sample]); // resolved at once now: the same locations
    const p = builder.build();
    assert.equal(p.sample.length, 1, 'one stack, one sample');
    assert.equal(p.sample[0]!.value[0], 2);
    const names = (ls: ResolvedLocation[]): string[] => ls.map((l) => l.frames.map((f) => f.function).join('|'));
    const expected = names(oracle.resolveUser(process.pid, stack));
    const got = p.sample[0]!.locationId.map((id) => {
      const loc = p.location.find((l) => l.id === id)!;
      return loc.line.map((ln) => p.stringTable[p.function.find((f) => f.id === ln.functionId)!.name]).join('|');
    });
    assert.deepEqual(got, expected);
    assert.ok(got.filter((n) => n !== '').length >= 4, `named: ${got.join(', ')}`);
  } finally {
    sym.close();
    oracle.close();
    await reader.close();
  }
});
