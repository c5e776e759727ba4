// Native and kernel symbolization against independent tools on live processes:
//   - gdb attached to the cgo fixture (spinning in C under Go): `info symbol ADDR` for addresses all over every
//     executable mapping — the binary's Go and C code, libc, ld.so and the vDSO — against the symbolizer's
//     answer for the same runtime address (so load biases of PIE libraries are checked too);
//   - perf record -g on a process busy in write(2): the kernel frames perf symbolizes against ours.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Symbolizer } from '../../src/symbols/symbolizer';
import { kernelAddress } from '../../src/symbols/kallsyms';
import { parseMaps as parseProcMaps } from '../../src/proc/maps';
import { buildFixture, newestToolchain } from '../support/go-toolchains';
import { sleep } from './symbolize-support';

interface GdbAnswer {
  addr: number;
  name: string | undefined;
  off: number;
  section: string;
  file: string | undefined;
}

/** `info symbol` for each address, in one gdb session attached to pid. */
function gdbInfoSymbol(pid: number, addrs: number[]): GdbAnswer[] {
  // Raw ELF names (gdb otherwise prints Go names its own way: runtime[munmap]).
  const args = ['-p', String(pid), '-batch', '-nx', '-ex', 'set print demangle off'];
  for (const a of addrs) args.push('-ex', `echo @@0x${a.toString(16)}\\n`, '-ex', `info symbol 0x${a.toString(16)}`);
  const r = spawnSync('gdb', args, { encoding: 'utf8', timeout: 120_000, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`gdb failed (${r.status}): ${r.stderr}`);
  const out: GdbAnswer[] = [];
  let cur: number | undefined;
  for (const line of r.stdout.split('\n')) {
    const mk = /^@@0x([0-9a-f]+)$/.exec(line);
    if (mk) {
      cur = parseInt(mk[1]!, 16);
      continue;
    }
    if (cur === undefined) continue;
    if (line.startsWith('No symbol matches')) {
      out.push({ addr: cur, name: undefined, off: 0, section: '', file: undefined });
      cur = undefined;
      continue;
    }
    const m = /^(.+?)(?: \+ (\d+))? in section (\S+)(?: of (.+))?$/.exec(line);
    if (m) {
      // Go's ELF symbols of assembly functions carry an ABI suffix the Go table does not (runtime.call32.abi0).
      out.push({ addr: cur, name: m[1]!.replace(/\.abi0$/, ''), off: Number(m[2] ?? 0), section: m[3]!, file: m[4] });
      cur = undefined;
    }
  }
  assert.equal(out.length, addrs.length, `gdb answered ${out.length} of ${addrs.length} addresses:\n${r.stdout.slice(0, 2000)}`);
  return out;
}

/** name → link-time addresses, from nm (both tables, and the separate debug file's when there is one). */
function nmAddresses(file: string): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  const runs: Array<[string[], string]> = [[['--defined-only'], file], [['-D', '--defined-only'], file]];
  const id = /Build ID: ([0-9a-f]+)/.exec(spawnSync('readelf', ['-n', file], { encoding: 'utf8' }).stdout)?.[1];
  const debug = id && `/usr/lib/debug/.build-id/${id.slice(0, 2)}/${id.slice(2)}.debug`;
  if (debug && fs.existsSync(debug)) runs.push([['--defined-only'], debug]);
  for (const [flags, f] of runs) {
    const r = spawnSync('nm', [...flags, f], { encoding: 'utf8', maxBuffer: 1 << 28 });
    for (const line of r.stdout.split('\n')) {
      const m = /^([0-9a-f]+) \S (.+)$/.exec(line);
      if (!m) continue;
      const name = m[2]!.replace(/@.*$/, '');
      let s = out.get(name);
      if (!s) out.set(name, (s = new Set()));
      s.add(parseInt(m[1]!, 16));
    }
  }
  return out;
}

for (const go of [newestToolchain().version, '1.19']) {
  test(`native symbols match gdb on a live cgo process (go${go} cgo-external: Go, C, libc, ld.so, vDSO)`, { timeout: 10 * 60_000 }, async () => {
    const binary = buildFixture({ go, fixture: 'cgo', mode: 'cgo-external' });
    const child = spawn(binary, ['spin'], { stdio: 'ignore' });
    const pid = child.pid!;
    const sym = new Symbolizer();
    try {
      await sleep(200);
      sym.observeProcess(pid);
      const maps = parseProcMaps(fs.readFileSync(`/proc/${pid}/maps`, 'utf8')).filter((m) => m.perms[2] === 'x' && (m.path.startsWith('/') || m.path === '[vdso]'));
      const files = new Set(maps.map((m) => m.path));
      assert.ok([...files].some((f) => /libc\.so/.test(f)), 'no libc mapping: is the fixture dynamically linked?');
      assert.ok(files.has('[vdso]'));
      // 64 addresses spread over each executable mapping, plus one inside C code of the Go binary.
      const addrs: number[] = [];
      for (const m of maps) {
        const n = 64;
        for (let i = 0; i < n; i++) addrs.push(m.start + Math.floor(((m.end - m.start) * (i + 0.5)) / n));
      }
      // c_spin is static and inlined by the C compiler into cgo's C wrapper _cgo_<hash>_Cfunc_c_spin (C code).
      const cName = [...nmAddresses(binary).keys()].find((n) => /^_cgo_[0-9a-f]+_Cfunc_c_spin$/.test(n));
      assert.ok(cName, 'the C wrapper of c_spin is missing from the binary\'s symbol table');
      const cSpin = nmAddresses(binary).get(cName)!;
      const exeMap = maps.find((m) => fs.realpathSync(m.path === '[vdso]' ? '/' : m.path) === fs.realpathSync(binary))!;
      // The cgo fixture is not PIE (checked: ET_EXEC), so c_spin's runtime address is its link-time address.
      assert.equal(fs.readFileSync(binary).readUInt16LE(16), 2, 'expected an ET_EXEC binary');
      addrs.push([...cSpin][0]! + 4);
      assert.ok(exeMap.start <= addrs[addrs.length - 1]! && addrs[addrs.length - 1]! < exeMap.end);

      const answers = gdbInfoSymbol(pid, addrs);
      const nmCache = new Map<string, Map<string, Set<number>>>();
      const nmOf = (f: string): Map<string, Set<number>> => {
        let m = nmCache.get(f);
        if (!m) nmCache.set(f, (m = nmAddresses(f)));
        return m;
      };
      let compared = 0;
      const problems: string[] = [];
      const byKind = new Map<string, number>();
      for (const a of answers) {
        const loc = sym.resolveUserAddress(pid, a.addr);
        const ours = loc.frames.length ? loc.frames[loc.frames.length - 1]!.function : undefined;
        const where = `0x${a.addr.toString(16)} (${loc.mapping?.file ?? 'no mapping'})`;
        if (!loc.mapping) problems.push(`${where}: no mapping`);
        if (a.name === undefined) {
          // Neither may we: no function is made up for padding or stripped code.
          if (ours !== undefined) problems.push(`${where}: gdb knows no symbol, we say ${ours}`);
          continue;
        }
        if (a.name.endsWith('@plt') || a.section === '.plt' || a.section === '.plt.got' || a.section === '.plt.sec') {
          continue; // a PLT stub: gdb makes up a name, we do not
        }
        compared++;
        const kind = loc.mapping?.file === '[vdso]' ? 'vdso' : path.basename(loc.mapping?.file ?? '?');
        byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
        if (ours === undefined) {
          problems.push(`${where}: gdb says ${a.name}+${a.off}, we say nothing`);
          continue;
        }
        if (ours === a.name) continue;
        // Aliases (write / __write / __libc_write): the same start address in the file's symbol tables.
        const file = loc.mapping!.file;
        if (file.startsWith('/')) {
          const table = nmOf(file);
          const oursAt = table.get(ours);
          const theirsAt = table.get(a.name);
          if (oursAt && theirsAt && [...oursAt].some((x) => theirsAt.has(x))) continue;
        } else if (ours.replace(/^__vdso_/, '') === a.name.replace(/^__vdso_/, '')) {
          continue;
        }
        problems.push(`${where}: gdb says ${a.name}+${a.off}, we say ${ours}`);
      }
      assert.deepEqual(problems, []);
      assert.ok(compared >= 150, `only ${compared} addresses compared`);
      for (const kind of ['libc.so.6', 'vdso', 'cgo']) assert.ok((byKind.get(kind) ?? 0) >= 3, `too few ${kind} addresses compared: ${JSON.stringify([...byKind])}`);
      assert.ok([...byKind.keys()].some((k) => k.startsWith('ld-linux')), `no ld.so addresses compared: ${JSON.stringify([...byKind])}`);

      // The C function inside the Go binary: found through .symtab, not the Go table; the mapping still claims
      // functions, file names, lines and inline frames (it is a Go binary), truthfully for its Go code.
      const c = sym.resolveUserAddress(pid, addrs[addrs.length - 1]!);
      assert.deepEqual(c.frames, [{ function: cName, file: '', line: 0 }]);
      const libc = sym.resolveUserAddress(pid, maps.find((m) => /libc\.so/.test(m.path))!.start + 0x100);
      assert.deepEqual([libc.mapping!.hasFunctions, libc.mapping!.hasFilenames, libc.mapping!.hasLineNumbers, libc.mapping!.hasInlineFrames], [true, false, false, false]);
    } finally {
      child.kill('SIGKILL');
      sym.close();
    }
  });
}

test('kernel frames match perf (perf record -g on a process in write(2))', { timeout: 5 * 60_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-perf-'));
  const devnull = fs.openSync('/dev/null', 'w');
  const busy = spawn('yes', [], { stdio: ['ignore', devnull, 'ignore'] });
  fs.closeSync(devnull);
  try {
    await sleep(100);
    const data = path.join(dir, 'perf.data');
    execFileSync('perf', ['record', '-q', '-g', '-e', 'cpu-clock', '-o', data, '-p', String(busy.pid), '--', 'sleep', '1'], { stdio: 'ignore', timeout: 60_000 });
    const script = execFileSync('perf', ['script', '-i', data, '-F', 'ip,sym,symoff'], { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] });

    const kallsyms = new Map<string, Set<bigint>>();
    for (const line of fs.readFileSync('/proc/kallsyms', 'utf8').split('\n')) {
      const m = /^([0-9a-f]{16}) \S (\S+)/.exec(line);
      if (!m) continue;
      let s = kallsyms.get(m[2]!);
      if (!s) kallsyms.set(m[2]!, (s = new Set()));
      s.add(BigInt('0x' + m[1]));
    }
    const sym = new Symbolizer();
    let compared = 0;
    const problems: string[] = [];
    const seen = new Set<string>();
    for (const line of script.split('\n')) {
      const m = /^\s*(ffff[0-9a-f]{12})\s+(\S+)\+0x([0-9a-f]+)$/.exec(line);
      if (!m || seen.has(m[1]!)) continue;
      seen.add(m[1]!);
      const ip = BigInt('0x' + m[1]);
      const start = ip - BigInt('0x' + m[3]);
      const [loc] = sym.resolveKernel([ip]);
      compared++;
      assert.equal(loc!.mapping!.file, '[kernel.kallsyms]');
      assert.equal(loc!.address, ip);
      const ours = loc!.frames[0]?.function;
      if (ours === m[2]) continue;
      if (ours !== undefined && kallsyms.get(ours)?.has(start)) continue; // an alias at the same address
      problems.push(`${m[1]}: perf says ${m[2]}+0x${m[3]}, we say ${ours}`);
      // The same address as the sampler may hand it over: a negative number (the signed 64-bit view).
    }
    assert.deepEqual(problems, []);
    assert.ok(compared >= 5, `only ${compared} distinct kernel addresses in perf's output`);
    const sample = [...seen][0]!;
    const signed = Number(BigInt.asIntN(64, BigInt('0x' + sample)));
    assert.equal(kernelAddress(signed), BigInt('0x' + sample));
    assert.deepEqual(sym.resolveKernel([signed])[0]!.frames, sym.resolveKernel([BigInt('0x' + sample)])[0]!.frames);
    // Return addresses (every entry after the first) are looked up at address − 1.
    assert.equal(sym.resolveKernel([BigInt('0x' + sample), BigInt('0x' + sample)])[1]!.address, BigInt('0x' + sample) - 1n);
  } finally {
    busy.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('JIT code (executable memory with no file) of a live process: no mapping, no frames, and its maps not read again for it', async () => {
  const maps = parseProcMaps(fs.readFileSync('/proc/self/maps', 'utf8'));
  const jit = maps.find((m) => m.perms[2] === 'x' && m.inode === 0 && !m.path.startsWith('['));
  assert.ok(jit, 'this node process has no anonymous executable mapping (V8 code space)');
  const sym = new Symbolizer();
  try {
    const first = sym.resolveUser(process.pid, [jit.start + 16])[0]!;
    assert.equal(first.mapping, undefined);
    assert.deepEqual(first.frames, []);
    const reads = sym.stats().mapReads;
    await sleep(1100); // an address outside every known mapping reads the maps again, at most once a second
    const second = sym.resolveUser(process.pid, [jit.start + 32])[0]!;
    assert.equal(second.mapping, undefined);
    assert.equal(sym.stats().mapReads, reads, 'a JIT address sent the maps to be read again');
  } finally {
    sym.close();
  }
});

test('maps read again and found the same (an address outside them): the answers given are kept, the epoch too', async () => {
  const go = spawn(buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' }), ['-sleeper', '1', '-leaf', '0', '-framed', '0'], { stdio: 'ignore' });
  const sym = new Symbolizer();
  try {
    await sleep(300);
    const epoch = sym.userEpoch(go.pid!);
    const reads = sym.stats().mapReads;
    await sleep(1100); // an address outside every known mapping reads the maps again, at most once a second
    sym.resolveUser(go.pid!, [0x1000]);
    assert.equal(sym.stats().mapReads, reads + 1);
    assert.equal(sym.userEpoch(go.pid!), epoch, 'the answers for this process were thrown away');
  } finally {
    sym.close();
    go.kill('SIGKILL');
  }
});
