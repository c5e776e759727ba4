// The profile as the real `go tool pprof` (newest toolchain) reads it. The samples carry real addresses of a real
// running process: the inline fixture's recorded PCs (held alive while its maps are read), real kernel
// addresses from /proc/kallsyms, its vDSO and (for the PIE) its dynamic loader. Checked: function names with the
// inlined frames, labels, values, period, the mapping flags — and that pprof prints no symbolization warnings
// (with a control showing that it does when the flags lie).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { RawSample } from '../../src/sampler/types';
import { Symbolizer } from '../../src/symbols/symbolizer';
import { ProfileBuilder } from '../../src/profile/builder';
import { decodePprof, encodePprof, encodePprofSync, Profile, profileProblems } from '../../src/profile/pprof';
import { buildFixture, FixtureMode, goEnv, newestToolchain } from '../support/go-toolchains';
import { asUserStack, holdProcess, InlineLine, parseInlineOutput, recordings } from '../symbols/symbolize-support';

const WARNINGS = /symboliz|unsymbolizable|binary filename|PPROF_BINARY_PATH|warning|failed|error/i;

function pprof(args: string[]): { stdout: string; stderr: string } {
  const tc = newestToolchain();
  const r = spawnSync(tc.goBin, ['tool', 'pprof', ...args], { env: goEnv(tc), encoding: 'utf8', timeout: 10 * 60_000, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`go tool pprof ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

/** A kernel text symbol's address + off, as the sampler may hand it over: the signed 64-bit view (exact in a double). */
function kernelPc(kallsyms: string, name: string, off: number): { pc: number; address: bigint } {
  const m = new RegExp(`^([0-9a-f]{16}) [tT] ${name}$`, 'm').exec(kallsyms);
  assert.ok(m, `${name} not in /proc/kallsyms`);
  const address = BigInt('0x' + m[1]) + BigInt(off);
  return { pc: Number(BigInt.asIntN(64, address)), address };
}

interface RawLocation {
  address: bigint;
  mapping: number;
  functions: string[];
}
interface RawSampleRow {
  values: number[];
  locations: number[];
  labels: Record<string, string>;
}

/** Parses `go tool pprof -raw`: header, samples with their labels, locations with their lines, mappings. */
function parseRaw(text: string): { header: string; samples: RawSampleRow[]; locations: Map<number, RawLocation>; mappings: string[] } {
  const [head, rest] = text.split(/^Samples:$/m) as [string, string];
  const [samplesPart, afterSamples] = rest.split(/^Locations$/m) as [string, string];
  const [locPart, mapPart] = afterSamples.split(/^Mappings$/m) as [string, string];
  const samples: RawSampleRow[] = [];
  for (const line of samplesPart.split('\n').slice(2)) {
    const m = /^\s+(\d+)\s+(\d+): ([\d ]+)\s*$/.exec(line);
    if (m) {
      samples.push({ values: [Number(m[1]), Number(m[2])], locations: m[3]!.trim().split(/\s+/).map(Number), labels: {} });
      continue;
    }
    for (const l of line.matchAll(/(\w+):\[([^\]]*)\]/g)) samples[samples.length - 1]!.labels[l[1]!] = l[2]!;
  }
  const locations = new Map<number, RawLocation>();
  let cur: RawLocation | undefined;
  for (const line of locPart.split('\n')) {
    const m = /^\s+(\d+): 0x([0-9a-f]+)(?: M=(\d+))?(?: (\S+))?/.exec(line); // no M= for a location without mapping
    if (m) {
      cur = { address: BigInt('0x' + m[2]), mapping: Number(m[3] ?? 0), functions: m[4] ? [m[4]] : [] };
      locations.set(Number(m[1]), cur);
      continue;
    }
    const c = /^\s{10,}(\S+) \S*:\d+:\d+ s=\d+$/.exec(line);
    if (c && cur) cur.functions.push(c[1]!);
  }
  return { header: head, samples, locations, mappings: mapPart.trim().split('\n') };
}

const flatten = (rec: readonly InlineLine[]): string[] => rec.flatMap((l) => l.frames.map((f) => f.function));

const builds: Array<{ go: string; mode: FixtureMode }> = [
  { go: newestToolchain().version, mode: 'stripped-pie' },
  { go: '1.19', mode: 'plain' },
];

for (const b of builds) {
  test(`go tool pprof reads our profile of a live process without re-symbolizing (go${b.go} inline ${b.mode})`, { timeout: 15 * 60_000 }, async () => {
    const binary = buildFixture({ go: b.go, fixture: 'inline', mode: b.mode });
    const held = holdProcess(binary);
    const sym = new Symbolizer();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-pprof-'));
    try {
      const pid = held.pid;
      sym.observeProcess(pid);
      const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
      const { lines } = parseInlineOutput(await held.finish());
      const recs = recordings(lines);
      const hz = 99;
      const period = Math.round(1e9 / hz);
      const kallsyms = fs.readFileSync('/proc/kallsyms', 'utf8');
      const kstack = [kernelPc(kallsyms, 'ksys_write', 0x10), kernelPc(kallsyms, 'do_syscall_64', 0x41)];

      const builder = new ProfileBuilder({ resolver: sym, hz });
      const samples: RawSample[] = [];
      // Stamped now (CLOCK_MONOTONIC, as BPF stamps them): a stack from before the process started gets no symbols.
      const now = process.hrtime.bigint();
      recs.forEach((rec, i) => {
        for (let n = 0; n <= i; n++) {
          samples.push({
            pid, tid: pid + i, cpu: i % 2, comm: 'inline', goid: i % 2 === 0 ? 100 + i : undefined, timeNs: now + BigInt(n),
            userStack: asUserStack(rec), kernelStack: i === 0 ? kstack.map((k) => k.pc) : [],
          });
        }
      });
      // The vDSO (every process has one), and a PC no mapping holds.
      const vdso = /^([0-9a-f]+)-([0-9a-f]+) r-xp .*\[vdso\]$/m.exec(maps);
      assert.ok(vdso, 'no [vdso] in the fixture\'s maps');
      // Its clock_gettime, found with nm in a copy of the image (the vDSO is linked at 0).
      const vdsoStart = parseInt(vdso[1]!, 16);
      const image = Buffer.alloc(parseInt(vdso[2]!, 16) - vdsoStart);
      const memFd = fs.openSync('/proc/self/mem', 'r'); // every process of this kernel maps the same vDSO image
      const selfVdso = /^([0-9a-f]+)-([0-9a-f]+) r-xp .*\[vdso\]$/m.exec(fs.readFileSync('/proc/self/maps', 'utf8'))!;
      fs.readSync(memFd, image, 0, image.length, parseInt(selfVdso[1]!, 16));
      fs.closeSync(memFd);
      fs.writeFileSync(path.join(dir, 'vdso.so'), image);
      const nm = spawnSync('nm', ['-D', path.join(dir, 'vdso.so')], { encoding: 'utf8' }).stdout;
      const cg = /^([0-9a-f]+) T (__vdso_clock_gettime|clock_gettime)(@\S+)?$/m.exec(nm);
      assert.ok(cg, `no clock_gettime in the vDSO:\n${nm}`);
      const vdsoPc = vdsoStart + parseInt(cg[1]!, 16) + 4;
      const main = recs[0]![recs[0]!.length - 1]!; // runtime.goexit's return address: a caller for the extra samples
      samples.push({ pid, tid: pid, cpu: 0, comm: 'inline', goid: 1, timeNs: now, userStack: [vdsoPc, Number(BigInt(main.pc))], kernelStack: [] });
      samples.push({ pid, tid: pid, cpu: 0, comm: 'inline', goid: 1, timeNs: now, userStack: [0x10, Number(BigInt(main.pc))], kernelStack: [] });
      // The PIE is dynamically linked: a PC in ld.so (native code, .dynsym/.symtab names).
      const ld = /^([0-9a-f]+)-[0-9a-f]+ r-xp \S+ \S+ \d+\s+(\S*ld-linux\S*)$/m.exec(maps);
      if (b.mode === 'stripped-pie') assert.ok(ld, 'the PIE has no dynamic loader mapped');
      const ldPc = ld ? parseInt(ld[1]!, 16) + 0x200 : undefined;
      if (ldPc !== undefined) samples.push({ pid, tid: pid, cpu: 0, comm: 'inline', goid: 1, timeNs: now, userStack: [ldPc, Number(BigInt(main.pc))], kernelStack: [] });
      for (let i = 0; i < samples.length; i += 3) builder.add(samples.slice(i, i + 3));

      const profile = builder.build();
      assert.deepEqual(profileProblems(profile), []);
      const file = path.join(dir, 'cpu.pb.gz');
      fs.writeFileSync(file, await encodePprof(profile));

      // ---- -raw: the profile as pprof decoded it
      const raw = pprof(['-raw', file]);
      assert.doesNotMatch(raw.stderr, WARNINGS);
      assert.match(raw.stdout, /^PeriodType: cpu nanoseconds$/m);
      assert.match(raw.stdout, new RegExp(`^Period: ${period}$`, 'm'));
      assert.match(raw.stdout, /^samples\/count cpu\/nanoseconds$/m);
      const parsed = parseRaw(raw.stdout);
      const names = (row: RawSampleRow): string[] => row.locations.flatMap((id) => parsed.locations.get(id)!.functions);
      recs.forEach((rec, i) => {
        const row = parsed.samples.find((s) => s.labels['tid'] === String(pid + i));
        assert.ok(row, `no sample for recording ${i}`);
        assert.deepEqual(row.values, [i + 1, (i + 1) * period], `recording ${i}: values`);
        const want = [...(i === 0 ? ['ksys_write', 'do_syscall_64'] : []), ...flatten(rec)];
        assert.deepEqual(names(row), want, `recording ${i} (${rec[0]!.site}): frames`);
        // One location per physical frame: inlined calls are Lines of one Location.
        assert.equal(row.locations.length, rec.length + (i === 0 ? 2 : 0));
        const expectLabels: Record<string, string> = { pid: String(pid), tid: String(pid + i), comm: 'inline' };
        if (i % 2 === 0) expectLabels['goid'] = String(100 + i);
        assert.deepEqual(row.labels, expectLabels);
      });
      const k0 = parsed.locations.get(parsed.samples.find((s) => s.labels['tid'] === String(pid))!.locations[0]!)!;
      assert.equal(k0.address, kstack[0]!.address, 'kernel address kept exactly (64 bits)');
      const extra = (pc: number): RawLocation => {
        const row = parsed.samples.find((s) => parsed.locations.get(s.locations[0]!)!.address === BigInt(pc));
        assert.ok(row, `no sample at 0x${pc.toString(16)}`);
        return parsed.locations.get(row.locations[0]!)!;
      };
      const v = extra(vdsoPc);
      assert.equal(v.functions.length, 1);
      assert.match(v.functions[0]!, /^(__vdso_)?clock_gettime$/);
      const unknown = extra(0x10);
      assert.deepEqual([unknown.mapping, unknown.functions], [0, []]);
      if (ldPc !== undefined) {
        const l = extra(ldPc);
        assert.deepEqual(l.functions, sym.resolveUserAddress(pid, ldPc).frames.map((f) => f.function));
        assert.equal(l.functions.length, 1, 'no name for an ld.so address');
      }
      // Mapping flags: the Go binary all four, the kernel, vDSO and ld.so functions only. The binary comes first.
      const mapLines = parsed.mappings;
      assert.match(mapLines[0]!, new RegExp(`${path.basename(path.dirname(binary))}/inline .*\\[FN\\]\\[FL\\]\\[LN\\]\\[IN\\]$`));
      assert.match(mapLines.find((l) => /\[kernel\.kallsyms\]/.test(l))!, /\[FN\]$/);
      assert.match(mapLines.find((l) => /\[vdso\]/.test(l))!, /\[FN\]$/);
      if (ldPc !== undefined) assert.match(mapLines.find((l) => /ld-linux/.test(l))!, /\[FN\]$/);

      // ---- -traces: labels and the (inline) marks
      const traces = pprof(['-traces', file]);
      assert.doesNotMatch(traces.stderr, WARNINGS);
      assert.match(traces.stdout, /^\s+comm:\s+inline$/m);
      assert.match(traces.stdout, new RegExp(`^\\s+pid:\\s+${pid}$`, 'm'));
      assert.match(traces.stdout, new RegExp(`^\\s+goid:\\s+100$`, 'm'));
      for (const fn of ['main.deepLeaf', 'main.deep2', 'main.deep3', 'main.deep4', 'main.leafA', 'main.midB']) {
        assert.match(traces.stdout, new RegExp(`^\\s+${fn.replace('.', '\\.')} \\(inline\\)$`, 'm'), `${fn} not shown as inlined`);
      }

      // ---- -top: totals and the functions
      const top = pprof(['-top', '-nodecount=200', file]);
      assert.doesNotMatch(top.stderr, WARNINGS);
      const total = samples.length * period;
      assert.match(top.stdout, new RegExp(`Total samples = ${(total / 1e6).toFixed(2)}ms`));
      for (const fn of new Set(recs.flatMap(flatten))) assert.match(top.stdout, new RegExp(`\\s${fn.replace(/[.*()[\]]/g, '\\$&')}( \\(inline\\))?$`, 'm'), `${fn} missing from -top`);

      // ---- -proto: pprof's own encoding of what it read, decoded by us
      const out = path.join(dir, 'roundtrip.pb.gz');
      const proto = pprof(['-proto', '-output', out, file]);
      assert.doesNotMatch(proto.stderr, WARNINGS);
      const back = decodePprof(fs.readFileSync(out));
      const sum = (p: Profile, i: number): number => p.sample.reduce((a, s) => a + s.value[i]!, 0);
      assert.equal(sum(back, 0), samples.length);
      assert.equal(sum(back, 1), total);
      assert.equal(back.period, period);
      const fnNames = (p: Profile): string[] => [...new Set(p.function.map((f) => p.stringTable[f.name]!))].sort();
      assert.deepEqual(fnNames(back), fnNames(profile));

      // ---- control: when the flags say "not symbolized" and the binary is not where the mapping says, pprof
      // does try to symbolize and says so — the checks above would have caught it.
      const lie = structuredClone(profile);
      const exeMap = lie.mapping[0]!;
      Object.assign(exeMap, { hasFunctions: false, hasFilenames: false, hasLineNumbers: false, hasInlineFrames: false });
      exeMap.filename = lie.stringTable.push('/nonexistent/quietflame/inline') - 1;
      const lieFile = path.join(dir, 'lie.pb.gz');
      fs.writeFileSync(lieFile, encodePprofSync(lie));
      assert.match(pprof(['-top', lieFile]).stderr, /Local symbolization failed/);
    } finally {
      held.kill();
      sym.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
