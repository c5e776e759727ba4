// The CPU sampler end to end: real perf events, real BPF unwinding, real Go processes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { GoBinary } from '../../src/gosym/binary';
import { findMapping, readMaps } from '../../src/proc/maps';
import { OffCpuRecord, SampleFlag, SampleRecord, type SampleWithFlags } from '../../src/sampler/records';
import { Sampler, type ProcessEvent } from '../../src/sampler/sampler';
import { buildUnwindTable, UnwindChunk } from '../../src/symbols/unwind-table';
import { ProcConfig } from '../../src/symbols/injector';
import { Symbolizer } from '../../src/symbols/symbolizer';
import { buildFixture, newestToolchain } from '../support/go-toolchains';
import { spawnWithPid } from '../proc/support';
import { userSystemTicks } from '../support/schedstat';
import { collect, expandCounts, isolatedProc, privateCopy, run, samplerTest, share, sleep, symbolizer, waitFor } from './support';

const NEWEST = newestToolchain().version;
const SAMPLE_MS = 3000;

interface LeafRun {
  leafSamples: number;
  withCaller: number;
  samples: SampleWithFlags[];
  names: string[][];
}

/** Samples the hot fixture for SAMPLE_MS and sorts out the samples whose leaf is main.leafSpin. */
async function sampleLeaf(binary: string, unwindTables: boolean, extra: (r: LeafRun, startup: NonNullable<Awaited<ReturnType<typeof run>>['startup']>, bias: number) => void): Promise<LeafRun> {
  const fx = await run(binary);
  const sampler = Sampler.start({ hz: 99, unwindTables });
  await sampler.ready();
  try {
    const proc = sampler.goProcesses().find((p) => p.pid === fx.pid);
    assert.ok(proc, 'the running fixture was configured by the start-up scan');
    assert.equal(proc.binaryId > 0, unwindTables);
    const samples = (await collect(sampler, { pid: fx.pid }, SAMPLE_MS)) as SampleWithFlags[];
    const sym = symbolizer(binary, proc.bias);
    try {
      const names = samples.map((s) => sym.names(s.userStack));
      const leaf = names.filter((n) => n[0] === 'main.leafSpin');
      const r: LeafRun = { leafSamples: leaf.length, withCaller: leaf.filter((n) => n[1] === 'main.leafCaller').length, samples, names };
      extra(r, fx.startup!, proc.bias);
      return r;
    } finally {
      sym.close();
    }
  } finally {
    await sampler.close();
    await fx.stop();
  }
}

samplerTest('frameless leaf: its caller is in the stack with the unwind table; without it the frame pointers lose it and the word at SP, kept by the resolver only for a leaf with no frame, gives it back', async (t) => {
  const binary = buildFixture({ go: NEWEST, fixture: 'hot', mode: 'plain' });
  const withTable = await sampleLeaf(binary, true, (r, startup) => {
    const n = r.leafSamples;
    t.diagnostic(`with the table: ${r.withCaller}/${n} leafSpin samples have main.leafCaller as userStack[1] (${r.samples.length} samples in all)`);
    assert.ok(n >= 50, `only ${n} samples in main.leafSpin in ${SAMPLE_MS} ms at 99 Hz`);
    assert.ok(r.withCaller / n >= 0.95, `caller present in ${r.withCaller} of ${n} leaf samples`);
    const leafIdx = r.names.map((names, i) => (names[0] === 'main.leafSpin' ? i : -1)).filter((i) => i >= 0);
    const full = leafIdx.filter((i) => r.names[i]!.slice(0, 3).join(' ') === 'main.leafSpin main.leafCaller main.leafWorker');
    assert.ok(full.length / n >= 0.95, `leafSpin ← leafCaller ← leafWorker in ${full.length} of ${n}`);
    const fixups = leafIdx.filter((i) => (r.samples[i]!.flags & SampleFlag.LEAF_FIXUP) !== 0).length;
    assert.ok(fixups / n >= 0.95, `the caller came from [SP + spdelta] in ${fixups} of ${n}`);
    // Goroutine IDs: every sample in a worker's own functions carries that worker's goid (from runtime.Stack).
    const byRole = new Map(startup.workers.map((w) => [w.role, w]));
    const printed = new Set(startup.workers.map((w) => w.goid));
    const seen = new Set<number>();
    let workerSamples = 0;
    r.names.forEach((names, i) => {
      const s = r.samples[i]!;
      const role = names.includes('main.leafWorker') ? 'leaf' : names.includes('main.framedWorker') ? 'framed' : names.includes('main.sleeperWorker') ? 'sleeper' : undefined;
      if (role === undefined) return;
      workerSamples++;
      const w = byRole.get(role)!;
      assert.ok(s.goid !== undefined, `a ${role} worker sample without goid: ${names.slice(0, 4).join(' ← ')}`);
      assert.ok(printed.has(s.goid), `goid ${s.goid} is not one of the fixture's ${[...printed]}`);
      assert.equal(s.goid, w.goid, `${role} worker: goid ${s.goid}, runtime.Stack said ${w.goid}`);
      assert.equal(s.tid, w.tid, `${role} worker runs locked to tid ${w.tid}`);
      seen.add(s.goid);
    });
    t.diagnostic(`goids on ${workerSamples} worker samples: ${[...seen].join(', ')} (printed: ${startup.workers.map((w) => `${w.role}=${w.goid}`).join(' ')})`);
    assert.ok(workerSamples >= 100);
    assert.ok(seen.size >= 2, `distinct goids: ${[...seen]}`);
    const viaR14 = share(r.samples, (s) => (s.flags & SampleFlag.G_R14) !== 0);
    assert.ok(viaR14 > 0.5, `g from R14 in ${viaR14 * 100}% (Go code, Go ≥ 1.17)`);
  });
  const withoutTable = await sampleLeaf(binary, false, (r) => {
    const leaf = r.samples.filter((_, i) => r.names[i]![0] === 'main.leafSpin');
    const spCaller = leaf.filter((s) => (s.flags & SampleFlag.SP_CALLER) !== 0);
    t.diagnostic(`without the table: ${spCaller.length}/${leaf.length} leafSpin samples carry the word at SP`);
    assert.ok(leaf.length >= 50);
    assert.ok(spCaller.length / leaf.length >= 0.95, `the word at SP in ${spCaller.length} of ${leaf.length}`);
    assert.ok(spCaller.every((s) => s.spCaller === true && (s.flags & SampleFlag.LEAF_FIXUP) === 0));
    // The frame-pointer walk after the word skips leafCaller (the check that the word is needed).
    const fpOnly = r.names.filter((n, i) => n[0] === 'main.leafSpin' && r.samples[i]!.spCaller && n[2] === 'main.leafWorker').length;
    assert.ok(fpOnly / leaf.length >= 0.9, `frame pointers alone go leafSpin → leafWorker in ${fpOnly} of ${leaf.length}`);
    // The agent's resolver keeps the word under leafSpin (SP delta 0 there) and drops it under framedHash, which
    // has its frame: both stacks come out whole, with nothing between a function and its caller.
    const sym = new Symbolizer();
    try {
      const resolved = r.samples.map((s) => sym.resolveUser(s.pid, s.userStack, s.timeNs, s.spCaller).map((l) => l.frames.at(-1)?.function ?? '?'));
      const chain = (names: string[], fns: string[]): boolean => names.slice(0, fns.length).join(' ') === fns.join(' ');
      const leafWhole = resolved.filter((n) => chain(n, ['main.leafSpin', 'main.leafCaller', 'main.leafWorker'])).length;
      assert.ok(leafWhole / leaf.length >= 0.95, `leafSpin ← leafCaller ← leafWorker in ${leafWhole} of ${leaf.length} resolved`);
      const framedChain = ['main.framedHash', 'main.framedCaller', 'main.framedWorker'];
      const framed = resolved.filter((n) => n[0] === 'main.framedHash');
      assert.ok(framed.length >= 20, `only ${framed.length} samples in main.framedHash`);
      const framedWhole = framed.filter((n) => chain(n, framedChain)).length;
      assert.ok(framedWhole / framed.length >= 0.95, `framedHash ← framedCaller ← framedWorker in ${framedWhole} of ${framed.length} resolved`);
      // framedHash's word at SP is one of its hash values, seldom a plausible address, so the BPF side seldom sends
      // one: give a framedHash stack a word that is a return address (into leafCaller) and see it dropped.
      const inFramed = r.samples.find((_, i) => r.names[i]![0] === 'main.framedHash' && chain(r.names[i]!, framedChain))!;
      const word = spCaller[0]!.userStack[1]!;
      const planted = sym.resolveUser(inFramed.pid, [inFramed.userStack[0]!, word, ...inFramed.userStack.slice(1)], inFramed.timeNs, true);
      assert.deepEqual(planted.map((l) => l.frames.at(-1)?.function).slice(0, 3), framedChain);
      assert.equal(planted.length, inFramed.userStack.length);
      r.withCaller = leafWhole;
    } finally {
      sym.close();
    }
  });
  assert.ok(withoutTable.withCaller / withoutTable.leafSamples >= 0.95);
  assert.ok(withTable.withCaller / withTable.leafSamples >= 0.95);
});

samplerTest('a Go process not configured yet sends the word at its SP while young (< spCallerAgeMs), and not once older', async (t) => {
  const binary = buildFixture({ go: NEWEST, fixture: 'hot', mode: 'plain' });
  const noProcesses = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-noproc-')); // a /proc with nothing to configure
  const fx = await run(binary);
  const sym = symbolizer(binary, 0);
  try {
    for (const ageMs of [30_000, 1]) {
      const sampler = Sampler.start({ hz: 99, procRoot: noProcesses, spCallerAgeMs: ageMs });
      await sampler.ready();
      try {
        assert.equal(sampler.goProcesses().length, 0);
        const samples = (await collect(sampler, { pid: fx.pid }, 2000)) as SampleWithFlags[];
        const leaf = samples.filter((s) => sym.names(s.userStack)[0] === 'main.leafSpin');
        const words = leaf.filter((s) => (s.flags & SampleFlag.SP_CALLER) !== 0);
        const callers = words.filter((s) => sym.names(s.userStack).slice(1, 3).join(' ') === 'main.leafCaller main.leafWorker');
        t.diagnostic(`spCallerAgeMs ${ageMs}: ${words.length} of ${leaf.length} leafSpin samples with the word at SP, ${callers.length} of them leafCaller`);
        assert.ok(leaf.length >= 30, `only ${leaf.length} samples in main.leafSpin`);
        assert.ok(samples.every((s) => (s.flags & SampleFlag.CONFIG) === 0), 'no sample of a configured process');
        if (ageMs > 1) {
          assert.ok(callers.length / leaf.length >= 0.95, `leafSpin ← [SP] leafCaller ← leafWorker in ${callers.length} of ${leaf.length}`);
        } else {
          assert.equal(words.length, 0, 'a process older than spCallerAgeMs sends no word');
          const skipped = leaf.filter((s) => sym.names(s.userStack)[1] === 'main.leafWorker').length;
          assert.ok(skipped / leaf.length >= 0.9, `frame pointers alone go leafSpin → leafWorker in ${skipped} of ${leaf.length}`);
        }
      } finally {
        await sampler.close();
      }
    }
  } finally {
    sym.close();
    await fx.stop();
    fs.rmSync(noProcesses, { recursive: true, force: true });
  }
});

samplerTest('repeats of a sample in one read arrive once with a count, and the counts add up to every sample sent', async (t) => {
  // leaf and framed workers spin in small loops: the same few stacks come again and again within a read.
  const fx = await run(buildFixture({ go: NEWEST, fixture: 'hot', mode: 'plain' }), ['-leaf', '1', '-framed', '1', '-sleeper', '0']);
  const sampler = Sampler.start({ hz: 99 });
  await sampler.ready();
  try {
    assert.ok(await waitFor(() => sampler.goProcesses().some((p) => p.pid === fx.pid), 2000), 'configured');
    const records: SampleWithFlags[] = [];
    const sent0 = sampler.stats().counters.sent; // none of it before: no subscriber, FILTER_NONE
    const stop = sampler.subscribe({ pid: fx.pid }, (b) => records.push(...(b as SampleWithFlags[])));
    await sleep(1500);
    fx.child.kill('SIGSTOP'); // a stopped process is not sampled: what was sent is all there is
    await sleep(50);
    const sent = sampler.stats().counters.sent - sent0;
    sampler.readNow();
    await sleep(300);
    stop();
    const samples = expandCounts(records).length;
    t.diagnostic(`${sent} samples sent, ${records.length} records delivered for them (largest count ${Math.max(...records.map((r) => r.count ?? 1))})`);
    assert.ok(sent >= 100, `${sent} samples sent`);
    assert.equal(samples, sent, 'every sample sent is counted once');
    assert.ok(records.length < sent * 0.8, `repeats merged: ${records.length} records for ${sent} samples`);
    assert.ok(records.every((r) => r.count === undefined || r.count > 1), 'a count only where samples were merged');
    const st = sampler.stats();
    assert.equal(st.samples.lost, 0);
    assert.ok(st.samples.received >= sent, 'received counts samples, not records');
  } finally {
    await sampler.close();
    await fx.stop();
  }
});

/** Every PC of every user stack lies in a mapping of the process (read while it still runs). */
async function stacksInsideMappings(t: { diagnostic(m: string): void }, binary: string, args: string[], waitForLine: boolean): Promise<{ samples: SampleWithFlags[]; bias: number }> {
  const fx = await run(binary, args, waitForLine);
  const sampler = Sampler.start({ hz: 99 });
  await sampler.ready();
  try {
    await waitFor(() => sampler.goProcesses().some((p) => p.pid === fx.pid), 2000);
    const proc = sampler.goProcesses().find((p) => p.pid === fx.pid);
    assert.ok(proc, 'configured as a Go process');
    const samples = (await collect(sampler, { pid: fx.pid }, SAMPLE_MS)) as SampleWithFlags[];
    const maps = readMaps(fx.pid);
    assert.ok(maps, 'still running');
    assert.ok(samples.length >= 100, `${samples.length} samples`);
    let pcs = 0;
    for (const s of samples) {
      assert.ok(s.userStack.length > 0, `an empty user stack (flags 0x${s.flags.toString(16)})`);
      for (const pc of s.userStack) {
        pcs++;
        const m = findMapping(maps, pc);
        assert.ok(m && m.perms[2] === 'x', `0x${pc.toString(16)} is not in an executable mapping of pid ${fx.pid}`);
      }
    }
    const depth = samples.reduce((a, s) => a + s.userStack.length, 0) / samples.length;
    t.diagnostic(`${samples.length} samples, ${pcs} PCs all inside executable mappings; mean depth ${depth.toFixed(1)}; bias 0x${proc.bias.toString(16)}; goid on ${(share(samples, (s) => s.goid !== undefined) * 100).toFixed(0)}%`);
    return { samples, bias: proc.bias };
  } finally {
    await sampler.close();
    await fx.stop();
  }
}

samplerTest(`go${NEWEST} stripped PIE: non-empty stacks inside the mappings, and the leaf's caller still found`, async (t) => {
  const binary = buildFixture({ go: NEWEST, fixture: 'hot', mode: 'stripped-pie' });
  const { samples, bias } = await stacksInsideMappings(t, binary, [], true);
  assert.ok(bias > 0, 'a PIE is loaded away from its link address');
  const sym = symbolizer(binary, bias);
  try {
    const names = samples.map((s) => sym.names(s.userStack));
    const leaf = names.filter((n) => n[0] === 'main.leafSpin');
    assert.ok(leaf.length >= 50);
    assert.ok(share(leaf, (n) => n[1] === 'main.leafCaller') >= 0.95);
  } finally {
    sym.close();
  }
});

samplerTest('go1.19 cgo, externally linked: non-empty stacks inside the mappings, goroutine IDs through TLS', async (t) => {
  const binary = buildFixture({ go: '1.19', fixture: 'cgo', mode: 'cgo-external' });
  const { samples, bias } = await stacksInsideMappings(t, binary, ['spin'], false);
  assert.equal(bias, 0);
  // Most samples are in C (c_spin), called from Go on the g0 stack: g is read from TLS, then g0.m.curg.
  const viaTls = samples.filter((s) => (s.flags & SampleFlag.G_TLS) !== 0 && (s.flags & SampleFlag.CURG) !== 0);
  assert.ok(viaTls.length / samples.length > 0.5, `g via TLS and m.curg in ${viaTls.length} of ${samples.length}`);
  assert.ok(viaTls.every((s) => s.goid === 1), 'the spinning goroutine is main (goid 1)');
  const bin = GoBinary.open(binary);
  try {
    const sym = bin.elf.symbols().find((s) => /^_cgo_[0-9a-f]+_Cfunc_c_spin$/.test(s.name)); // the C function, not Go's main._cgo_… stub
    assert.ok(sym);
    const inC = share(samples, (s) => s.userStack[0]! >= sym.value && s.userStack[0]! < sym.value + sym.size);
    t.diagnostic(`${(inC * 100).toFixed(0)}% of the samples are in C (${sym.name})`);
    assert.ok(inC > 0.5);
  } finally {
    bin.close();
  }
});

samplerTest('a deleted binary and a process in another mount namespace are unwound like any other', async (t) => {
  const fixture = buildFixture({ go: NEWEST, fixture: 'hot', mode: 'plain' });
  const copy = privateCopy(fixture);
  const deleted = await run(copy.file, ['-sleeper', '0']);
  copy.remove(); // the running program's file is gone
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-ns-'));
  fs.mkdirSync(path.join(dir, 'mnt'));
  const inner = path.join(dir, 'mnt', 'hot');
  const script = `mount -t tmpfs qf-test "${path.dirname(inner)}" && cp "${fixture}" "${inner}" && exec "${inner}" -sleeper 0`;
  let other: Awaited<ReturnType<typeof run>> | undefined;
  let sampler: Sampler | undefined;
  try {
    other = await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script]);
    assert.equal(fs.existsSync(inner), false, 'the binary exists only in the other mount namespace');
    sampler = Sampler.start({ hz: 99 });
    await sampler.ready();
    const sym = symbolizer(fixture, 0);
    try {
      for (const fx of [deleted, other]) {
        const p = sampler.goProcesses().find((x) => x.pid === fx.pid);
        assert.ok(p, `pid ${fx.pid} configured`);
        assert.ok(p.binaryId > 0, `with its unwind table (${p.noTable ?? ''})`);
        const samples = await collect(sampler, { pid: fx.pid }, 1500);
        const leaf = samples.map((s) => sym.names(s.userStack)).filter((n) => n[0] === 'main.leafSpin');
        const ok = share(leaf, (n) => n[1] === 'main.leafCaller');
        t.diagnostic(`${p.exe}${p.deleted ? ' (deleted)' : ''}${p.otherMountNamespace ? ' (other mount namespace)' : ''}: caller in ${(ok * 100).toFixed(0)}% of ${leaf.length} leaf samples`);
        assert.ok(leaf.length >= 20 && ok >= 0.95);
        const leafWorker = fx.startup!.workers.find((w) => w.role === 'leaf')!;
        assert.ok(share(samples.filter((s) => s.tid === leafWorker.tid), (s) => s.goid === leafWorker.goid) >= 0.95, 'goroutine IDs');
      }
      const d = sampler.goProcesses().find((x) => x.pid === deleted.pid)!;
      const o = sampler.goProcesses().find((x) => x.pid === other!.pid)!;
      assert.deepEqual([d.deleted, d.otherMountNamespace], [true, false]);
      assert.deepEqual([o.deleted, o.otherMountNamespace, o.exe], [false, true, inner]);
      assert.notEqual(d.binaryId, o.binaryId, 'different files, different tables');
    } finally {
      sym.close();
    }
  } finally {
    await sampler?.close();
    await deleted.stop();
    await other?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

samplerTest('process exit (no idle binaries kept): the binary\'s table and the process config leave the maps; counts return to before', async (t) => {
  const proc = isolatedProc();
  const copy = privateCopy(buildFixture({ go: NEWEST, fixture: 'hot', mode: 'plain' }));
  const events: ProcessEvent[] = [];
  const sampler = Sampler.start({ procRoot: proc.root, scanIntervalMs: 200, execEvents: false, idleBinaries: 0, onProcess: (e) => events.push(e) });
  await sampler.ready();
  try {
    const before = { pages: sampler.countEntries('unwind_pages'), configs: sampler.countEntries('proc_configs') };
    assert.deepEqual(before, { pages: 0, configs: 0 });
    const bin = GoBinary.open(copy.file);
    const table = buildUnwindTable(bin);
    bin.close();
    const entries = table.stats.entries;

    const a = await run(copy.file, ['-sleeper', '0']);
    const b = await run(copy.file, ['-sleeper', '0']);
    proc.add(a.pid);
    proc.add(b.pid);
    assert.ok(await waitFor(() => sampler.goProcesses().length === 2, 2000), 'both found by the scan');
    const [pa, pb] = sampler.goProcesses();
    assert.equal(pa!.binaryId, pb!.binaryId, 'one table for the two processes of one file');
    assert.equal(sampler.countEntries('unwind_pages'), entries);
    assert.equal(sampler.countEntries('proc_configs'), 2);
    const st = sampler.stats();
    assert.deepEqual(st.maps.unwind_pages, { entries, capacity: 65536 });
    assert.deepEqual(st.maps.proc_configs, { entries: 2, capacity: 8192 });
    t.diagnostic(`table: ${entries} entries of ${UnwindChunk.size} bytes for ${table.pageCount} pages`);

    await a.stop();
    assert.ok(await waitFor(() => events.some((e) => e.type === 'removed' && e.pid === a.pid), 2000), 'exit noticed');
    assert.deepEqual(events.find((e) => e.type === 'removed'), { type: 'removed', pid: a.pid, reason: 'exited' });
    assert.equal(sampler.countEntries('unwind_pages'), entries, 'the other process still uses the table');
    assert.equal(sampler.countEntries('proc_configs'), 1);

    await b.stop();
    assert.ok(await waitFor(() => sampler.goProcesses().length === 0, 2000));
    assert.deepEqual({ pages: sampler.countEntries('unwind_pages'), configs: sampler.countEntries('proc_configs') }, before);
    assert.deepEqual(sampler.stats().maps.unwind_pages, { entries: 0, capacity: 65536 });
  } finally {
    await sampler.close();
    proc.remove();
    copy.remove();
  }
});

samplerTest('a new process of a binary whose processes all exited reuses its table: no read, no table write', async () => {
  const proc = isolatedProc();
  const copy = privateCopy(buildFixture({ go: NEWEST, fixture: 'hot', mode: 'stripped-pie' }));
  const sampler = Sampler.start({ procRoot: proc.root, scanIntervalMs: 200, execEvents: false });
  await sampler.ready();
  try {
    const a = await run(copy.file, ['-sleeper', '0']);
    proc.add(a.pid);
    assert.ok(await waitFor(() => sampler.goProcesses().length === 1, 2000));
    const first = sampler.goProcesses()[0]!;
    const entries = sampler.countEntries('unwind_pages');
    assert.ok(entries > 0);
    await a.stop();
    assert.ok(await waitFor(() => sampler.goProcesses().length === 0, 2000));
    assert.deepEqual([sampler.countEntries('unwind_pages'), sampler.countEntries('proc_configs')], [entries, 0], 'the table waits for the next process');
    assert.deepEqual([sampler.stats().goBinaries, sampler.stats().maps.unwind_pages.entries], [1, entries]);

    const b = await run(copy.file, ['-sleeper', '0']);
    try {
      proc.add(b.pid);
      assert.ok(await waitFor(() => sampler.goProcesses().length === 1, 2000));
      const second = sampler.goProcesses()[0]!;
      assert.equal(second.pid, b.pid);
      assert.equal(second.binaryId, first.binaryId, 'the same table');
      assert.equal(second.noTable, undefined);
      assert.deepEqual([sampler.countEntries('unwind_pages'), sampler.countEntries('proc_configs')], [entries, 1]);
    } finally {
      await b.stop();
    }
  } finally {
    await sampler.close();
    proc.remove();
    copy.remove();
  }
});

samplerTest('PID reuse: a new process under a known PID is told apart by its start time and configured afresh', async (t) => {
  const proc = isolatedProc();
  const copy = privateCopy(buildFixture({ go: NEWEST, fixture: 'hot', mode: 'plain' }));
  const events: ProcessEvent[] = [];
  // No exec or exit events and no timer: only the explicit scans below look at /proc.
  const sampler = Sampler.start({ procRoot: proc.root, scanIntervalMs: 3_600_000, execEvents: false, exitEvents: false, onProcess: (e) => events.push(e) });
  await sampler.ready();
  try {
    const first = await run(copy.file, ['-sleeper', '0']);
    proc.add(first.pid);
    await sampler.scan();
    const old = sampler.goProcesses()[0];
    assert.ok(old && old.pid === first.pid);
    await first.stop();
    await sleep(30); // start times count clock ticks (10 ms)
    const child = await spawnWithPid(first.pid, () => spawn(copy.file, ['-sleeper', '0'], { stdio: 'ignore' }));
    assert.ok(child, `could not start a process with PID ${first.pid} again`);
    try {
      await sleep(300); // let the Go runtime map itself
      await sampler.scan(); // the same PID, the same executable: only the start time differs
      const now = sampler.goProcesses()[0];
      assert.ok(now && now.pid === first.pid);
      assert.ok(now.startTime > old.startTime, `${now.startTime} after ${old.startTime}`);
      assert.deepEqual(events.map((e) => (e.type === 'added' ? `added ${e.process.startTime}` : `removed ${e.reason}`)), [
        `added ${old.startTime}`,
        'removed pid-reused',
        `added ${now.startTime}`,
      ]);
      t.diagnostic(`pid ${first.pid}: start time ${old.startTime} → ${now.startTime}`);
      assert.equal(sampler.countEntries('proc_configs'), 1);
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
  } finally {
    await sampler.close();
    proc.remove();
    copy.remove();
  }
});

samplerTest('a Go process started after the sampler is configured within 1 s of exec (sched_process_exec)', async (t) => {
  const copy = privateCopy(buildFixture({ go: NEWEST, fixture: 'hot', mode: 'plain' }));
  const added = new Map<number, number>();
  const sampler = Sampler.start({ scanIntervalMs: 3_600_000, onProcess: (e) => e.type === 'added' && added.set(e.process.pid, Date.now()) });
  await sampler.ready();
  try {
    const t0 = Date.now();
    const fx = await run(copy.file, ['-sleeper', '0'], false);
    try {
      assert.ok(await waitFor(() => added.has(fx.pid), 1000), 'not configured within 1 s (the periodic scan was off)');
      t.diagnostic(`new process: configured ${added.get(fx.pid)! - t0} ms after spawn`);
    } finally {
      await fx.stop();
    }
    // A process the sampler already knows as not Go (a shell) that then execs a Go program.
    const sh = spawn('sh', ['-c', `read line; exec "${copy.file}" -sleeper 0`], { stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      await sleep(100);
      await sampler.scan();
      assert.equal(added.has(sh.pid!), false, 'the shell is not a Go process');
      const t1 = Date.now();
      sh.stdin!.end('go\n');
      assert.ok(await waitFor(() => added.has(sh.pid!), 1000), 'the exec into Go was not noticed within 1 s');
      t.diagnostic(`shell exec'ing Go: configured ${added.get(sh.pid!)! - t1} ms after the exec`);
      assert.equal(sampler.goProcesses().find((p) => p.pid === sh.pid)?.exe, copy.file);
    } finally {
      const exited = new Promise((resolve) => sh.once('exit', resolve));
      sh.kill('SIGKILL');
      await exited;
    }
  } finally {
    await sampler.close();
    copy.remove();
  }
});

samplerTest('Go programs that live 150 ms are configured while they run: an exec wakes the reader (samples wait for its timer)', async (t) => {
  const copy = privateCopy(buildFixture({ go: NEWEST, fixture: 'hot', mode: 'plain' }));
  const added = new Map<number, number>();
  const sampler = Sampler.start({ onProcess: (e) => e.type === 'added' && added.set(e.process.pid, Date.now()) });
  await sampler.ready();
  try {
    // Its binary is read once, on the first process (a thread's start and a cold read: not what is measured).
    const first = await run(copy.file, ['-sleeper', '0'], false);
    assert.ok(await waitFor(() => added.has(first.pid), 10_000), 'the first process was not configured');
    await first.stop();
    const lags: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const fx = await run(copy.file, ['-sleeper', '0'], false);
      await sleep(150 - (Date.now() - t0));
      const alive = added.get(fx.pid);
      // For the message only: was it late (and by how much), or never configured (no exec record)?
      const late = alive === undefined && (await waitFor(() => added.has(fx.pid), 2000)) ? `configured ${added.get(fx.pid)! - t0} ms after spawn` : 'not configured in 2 s more';
      await fx.stop();
      assert.ok(alive !== undefined, `process ${i + 1} (pid ${fx.pid}) was not configured in the 150 ms it lived (${late}; the ones before: ${lags.join(', ')} ms)`);
      lags.push(alive - t0);
      await sleep([70, 130, 20, 190, 90][i]!); // uneven: no lock-step with the reader's timer
    }
    t.diagnostic(`configured ${lags.join(', ')} ms after spawn`);
  } finally {
    await sampler.close();
    copy.remove();
  }
});

samplerTest('with exec and exit records complete the timer lists /proc only every 10th tick, and still finds what only a listing shows; an unresolved executable is looked at again next tick', async () => {
  const copy = privateCopy(buildFixture({ go: NEWEST, fixture: 'hot', mode: 'plain' }));
  const proc = isolatedProc();
  // The process exec'd where the sampler's /proc did not show it: only a listing can find it once it appears.
  const fx = await run(copy.file, ['-sleeper', '0']);
  let sampler = Sampler.start({ procRoot: proc.root, scanIntervalMs: 50 });
  try {
    await sampler.ready();
    proc.add(fx.pid);
    assert.ok(await waitFor(() => sampler.goProcesses().some((p) => p.pid === fx.pid), 5000), 'not found by the safety listing');
    await sleep(600);
    const { ticks, listings } = sampler.stats().scans;
    assert.ok(ticks >= 20, `${ticks} ticks`);
    // One listing at start, one every 10th tick (each tick listed /proc before).
    assert.ok(listings <= Math.floor(ticks / 10) + 1, `${listings} listings in ${ticks} ticks`);
    await sampler.close();

    // A PID whose executable cannot be resolved (here: a directory with its stat and no exe link) is looked at
    // again at the next tick, without a listing (none after the first here).
    const other = isolatedProc();
    const fake = path.join(other.root, String(fx.pid));
    fs.mkdirSync(fake);
    fs.writeFileSync(path.join(fake, 'stat'), fs.readFileSync(`/proc/${fx.pid}/stat`));
    sampler = Sampler.start({ procRoot: other.root, scanIntervalMs: 50, fullScanEvery: 1_000_000 });
    await sampler.ready();
    await sleep(200);
    assert.equal(sampler.goProcesses().length, 0, 'no executable, not configured');
    fs.rmSync(fake, { recursive: true });
    other.add(fx.pid);
    assert.ok(await waitFor(() => sampler.goProcesses().some((p) => p.pid === fx.pid), 3000), 'not looked at again');
    assert.equal(sampler.stats().scans.listings, 1, 'found without listing /proc');
    other.remove();
  } finally {
    await sampler.close();
    await fx.stop();
    proc.remove();
    copy.remove();
  }
});

samplerTest('filters: a pid subscriber gets only its process; nobody subscribed, nothing sampled; kernel stacks', async () => {
  const busy = spawn('dd', ['if=/dev/zero', 'of=/dev/null', 'bs=1'], { stdio: 'ignore' });
  const spin = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
  const sampler = Sampler.start({ hz: 99 });
  await sampler.ready();
  try {
    await sleep(300);
    const c0 = sampler.stats().counters.samples;
    await sleep(300);
    assert.equal(sampler.stats().counters.samples, c0, 'FILTER_NONE: the program returns before counting');

    const all: SampleWithFlags[] = [];
    const stopAll = sampler.subscribe({}, (b) => all.push(...expandCounts(b as SampleWithFlags[])));
    const ticks0 = userSystemTicks(busy.pid!);
    let ticks1 = ticks0;
    const mine = (await collect(sampler, { pid: busy.pid! }, 1500, () => (ticks1 = userSystemTicks(busy.pid!)))) as SampleWithFlags[];
    stopAll();
    // As many samples as dd had CPU time in the window by the kernel's own account (the machine may be busy).
    const ticks = ticks1.user + ticks1.system - ticks0.user - ticks0.system;
    const expected = (ticks / 100) * 99; // /proc counts in USER_HZ = 100 ticks a second; the sampler runs at 99 Hz
    assert.ok(mine.length >= 10 && Math.abs(mine.length - expected) <= Math.max(8, 0.35 * expected), `${mine.length} samples of dd; its CPU time says ${expected.toFixed(0)}`);
    assert.ok(mine.every((s) => s.pid === busy.pid));
    assert.ok(new Set(all.map((s) => s.pid)).has(spin.pid!), 'the node-wide subscriber also sees the shell loop');
    assert.ok(!all.some((s) => s.pid === 0), 'no idle samples');
    // dd bs=1 lives in read/write syscalls: kernel stacks with kernel addresses (negative as int64), user stacks too.
    // The share of samples in the kernel is the kernel's own account of dd's system time over the same window.
    const inKernel = mine.filter((s) => s.kernelStack.length > 0);
    const system = ticks1.system - ticks0.system;
    const systemShare = system / (system + ticks1.user - ticks0.user);
    const sampledShare = inKernel.length / mine.length;
    assert.ok(
      // Two estimates from samples (ours and the tick-based account): their difference shrinks with the count.
      inKernel.length > 0 && Math.abs(sampledShare - systemShare) < 0.1 + 2.5 * Math.sqrt(0.25 / mine.length),
      `${inKernel.length} of ${mine.length} dd samples in the kernel; the kernel accounts ${(100 * systemShare).toFixed(0)}% of dd's time as system`,
    );
    assert.ok(inKernel.every((s) => s.kernelStack.every((a) => a < 0)));
    assert.ok(inKernel.every((s) => s.userStack.length > 0), 'the user stack of a sample taken in a syscall');
    assert.ok(mine.every((s) => s.comm === 'dd' && s.goid === undefined));
    const st = sampler.stats();
    assert.equal(st.samples.lost, 0);
    assert.equal(st.samples.malformed, 0, 'every record has the layout of bpf/profile.h');
    assert.ok(st.samples.received >= mine.length);
  } finally {
    await sampler.close();
    busy.kill('SIGKILL');
    spin.kill('SIGKILL');
  }
});

samplerTest('record and config layouts match bpf/profile.h', () => {
  assert.equal(SampleRecord.size, 2088);
  assert.deepEqual([SampleRecord.offsets.comm, SampleRecord.offsets.user_stack, SampleRecord.offsets.kernel_stack], [40, 56, 56 + 127 * 8]);
  assert.deepEqual([SampleRecord.offsets.flags, SampleRecord.offsets.labels_len], [32, 34]);
  assert.equal(OffCpuRecord.size, 2112);
  assert.equal(ProcConfig.size, 320);
  assert.equal(ProcConfig.offsets.labels, 176);
});

samplerTest('close() detaches everything; subscribe after close throws', async () => {
  const sampler = Sampler.start({ hz: 49 });
  await sampler.ready();
  assert.equal(sampler.attached, true);
  assert.equal(sampler.hz, 49);
  await sampler.close();
  assert.equal(sampler.attached, false);
  assert.throws(() => sampler.subscribe({}, () => {}), /closed/);
  await sampler.close();
  assert.throws(() => Sampler.start({ hz: 0 }), /hz must be/);
});
