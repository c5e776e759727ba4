// Binaries a tenant controls, run in a container the test makes (a private mount namespace, a tmpfs root, chroot):
// the path swapped for a symlink to a host file, for a FIFO, for another binary; and binaries whose tables lie
// (a compressed section claiming 4 GiB, a zip-bomb .debug_info, a pclntab cut mid-table, billions of functions).
// For each, with the real agent: it stays up (/healthz) and under the DaemonSet's memory limit, never reads the
// host file, the process's samples appear (symbolized only from the file it really runs, or not at all), and a
// corrupt table is named in one log line with the pid.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { bpfTest } from '../bpf/support';
import { readPprof, startAgent, type AgentProcess } from '../support/agent';
import { buildFixture, newestToolchain, type FixtureMode } from '../support/go-toolchains';
import { runContained, type Contained } from '../support/contained';
import { appendToFile, patchSectionHeader, sectionHeader, zlibBomb } from '../support/hostile-elf';
import { GoBinary } from '../../src/gosym/binary';
import type { Profile } from '../../src/profile/pprof';

const GO = newestToolchain().version;
/** deploy/daemonset.yaml's memory limit. */
const LIMIT_BYTES = 256 << 20;

function copyOf(src: string, dir: string, name: string): string {
  const file = path.join(dir, name);
  fs.copyFileSync(src, file);
  fs.chmodSync(file, 0o755);
  return file;
}

/** Function names of the locations of the process's own executable (mapping file ending in /app). */
function appFunctions(p: Profile): { samples: number; named: Set<string>; unnamed: number } {
  const app = new Set(p.mapping.filter((m) => p.stringTable[m.filename]?.endsWith('/app')).map((m) => m.id));
  const locs = new Map(p.location.map((l) => [l.id, l]));
  const named = new Set<string>();
  let unnamed = 0;
  let samples = 0;
  for (const s of p.sample) {
    samples += s.value[0] ?? 0;
    for (const id of s.locationId) {
      const l = locs.get(id)!;
      if (!app.has(l.mappingId)) continue;
      if (l.line.length === 0) unnamed++;
      for (const line of l.line) named.add(p.stringTable[p.function.find((f) => f.id === line.functionId)!.name]!);
    }
  }
  return { samples, named, unnamed };
}

function vmHwm(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m);
  return Number(m[1]) * 1024;
}

/** Warn lines the agent logged that name `pid`. */
function linesNaming(logs: string[], pid: number): string[] {
  return logs.filter((l) => new RegExp(`pid ${pid}\\b`).test(l));
}

interface HostileCase {
  name: string;
  mode: FixtureMode;
  /** Makes the binary hostile before it runs (a copy under `dir`); returns the file to run. */
  prepare?: (binary: string, dir: string) => string;
  /** Done to the running process's file through its root. */
  afterStart?: (c: Contained, decoy: string) => void;
  /** The samples carry the program's own Go functions (true), or no symbols at all from its file (false). */
  symbolized: boolean;
  /** The one log line that names the pid must say this (undefined: the agent has nothing to complain about). */
  logged?: RegExp;
}

const CASES: HostileCase[] = [
  {
    name: 'its path swapped for a symlink to a host file',
    mode: 'plain',
    afterStart: (c, decoy) => {
      fs.rmSync(`${c.root}/app`);
      fs.symlinkSync(decoy, `${c.root}/app`); // absolute: through /proc/PID/root it would lead to the host's file
    },
    symbolized: true,
  },
  {
    name: 'its path swapped for a FIFO',
    mode: 'plain',
    afterStart: (c) => {
      fs.rmSync(`${c.root}/app`);
      assert.equal(spawnSync('mkfifo', [`${c.root}/app`]).status, 0);
    },
    symbolized: true,
  },
  {
    name: 'its binary replaced after start',
    mode: 'plain',
    afterStart: (c, decoy) => {
      fs.copyFileSync(decoy, `${c.root}/app.new`);
      fs.renameSync(`${c.root}/app.new`, `${c.root}/app`);
    },
    symbolized: true,
  },
  {
    name: 'a compressed .debug_info claiming 4 GiB',
    mode: 'plain',
    prepare: (binary, dir) => {
      const file = copyOf(binary, dir, 'claims-4g');
      const s = sectionHeader(file, '.debug_info');
      const size = Buffer.alloc(8);
      size.writeBigUInt64LE(4n << 30n);
      const fd = fs.openSync(file, 'r+');
      fs.writeSync(fd, size, 0, 8, s.offset + 8); // Elf64_Chdr.ch_size
      fs.closeSync(fd);
      return file;
    },
    symbolized: true, // the Go table is intact: only the DWARF is given up
    logged: /\.debug_info.*4294967296 bytes is more than the \d+-byte cap/,
  },
  {
    name: 'a zip-bomb .debug_info (claims 4 MiB, inflates to 1 GiB)',
    mode: 'plain',
    prepare: (binary, dir) => {
      const file = copyOf(binary, dir, 'zip-bomb');
      const chdr = Buffer.alloc(24);
      chdr.writeUInt32LE(1, 0); // ELFCOMPRESS_ZLIB
      chdr.writeBigUInt64LE(4n << 20n, 8);
      chdr.writeBigUInt64LE(1n, 16);
      const body = Buffer.concat([chdr, zlibBomb(1 << 30)]);
      patchSectionHeader(file, '.debug_info', { offset: appendToFile(file, body), size: body.length });
      return file;
    },
    symbolized: true,
    logged: /\.debug_info: inflates to more than the 4194304 bytes its header says/,
  },
  {
    name: 'a pclntab truncated mid-table',
    mode: 'stripped-pie',
    prepare: (binary, dir) => {
      const file = copyOf(binary, dir, 'short-pclntab');
      patchSectionHeader(file, '.gopclntab', { size: 0x2000 }); // the runtime reads its table from memory, not this header
      return file;
    },
    symbolized: false,
    logged: /not a usable Go binary: .*outside the table/,
  },
  {
    name: 'a pclntab claiming 3 billion functions',
    mode: 'stripped-pie',
    prepare: (binary, dir) => {
      const file = copyOf(binary, dir, 'billions');
      const s = sectionHeader(file, '.gopclntab');
      const table = Buffer.alloc(s.size);
      const fd = fs.openSync(file, 'r');
      fs.readSync(fd, table, 0, s.size, s.offset);
      fs.closeSync(fd);
      table.writeBigUInt64LE(3_000_000_000n, 8); // nfunc; a copy, so the running program's own table is untouched
      patchSectionHeader(file, '.gopclntab', { offset: appendToFile(file, table) });
      return file;
    },
    symbolized: false,
    logged: /not a usable Go binary: implausible function count 3000000000/,
  },
];

bpfTest('hostile binaries in a container: the agent stays up, bounded, reads only what the process runs, and says what it refused', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-hostile-'));
  // The decoy: a host file of another Go program. Reading it would put its functions in the profile and move its atime.
  const decoy = copyOf(buildFixture({ go: GO, fixture: 'parked', mode: 'plain' }), dir, 'decoy');
  const hot = GoBinary.open(buildFixture({ go: GO, fixture: 'hot', mode: 'plain' }));
  const decoyBin = GoBinary.open(decoy);
  const hotNames = new Set<string>();
  for (let i = 0; i < hot.pcln.nfunc; i++) hotNames.add(hot.funcName(hot.pcln.funcAt(i)));
  const decoyOnly = new Set<string>();
  for (let i = 0; i < decoyBin.pcln.nfunc; i++) {
    const n = decoyBin.funcName(decoyBin.pcln.funcAt(i));
    if (n.startsWith('main.') && !hotNames.has(n)) decoyOnly.add(n);
  }
  hot.close();
  decoyBin.close();
  assert.ok(decoyOnly.size >= 5, `the decoy has functions of its own: ${[...decoyOnly].join(' ')}`);
  const old = new Date('2001-01-01T00:00:00Z');
  fs.utimesSync(decoy, old, fs.statSync(decoy).mtime); // atime before mtime: any read of it moves atime (relatime)

  const agent: AgentProcess = await startAgent();
  const logs: string[] = [];
  readline.createInterface({ input: agent.proc.stdout! }).on('line', (l) => logs.push(l));
  try {
    for (const c of CASES) {
      const base = buildFixture({ go: GO, fixture: 'hot', mode: c.mode });
      const binary = c.prepare ? c.prepare(base, dir) : base;
      const proc = await runContained(binary);
      try {
        c.afterStart?.(proc, decoy);
        fs.utimesSync(decoy, old, fs.statSync(decoy).mtime); // the test's own copy of it read it
        const r = await fetch(`${agent.url}/debug/pprof/profile?seconds=3&pid=${proc.pid}`);
        const { profile } = await readPprof(r, c.name);
        const health = await fetch(`${agent.url}/healthz`);
        assert.equal(health.status, 200, `${c.name}: /healthz after the profile`);
        assert.equal(agent.proc.exitCode, null, `${c.name}: the agent is running`);
        const f = appFunctions(profile);
        assert.ok(f.samples > 0, `${c.name}: the process's samples appear`);
        const stolen = [...f.named].filter((n) => decoyOnly.has(n));
        assert.deepEqual(stolen, [], `${c.name}: no frame is named from the host's decoy`);
        if (c.symbolized) {
          assert.ok(f.named.has('main.leafSpin'), `${c.name}: symbolized from the file it runs: ${[...f.named].slice(0, 20).join(' ')}`);
        } else {
          assert.deepEqual([...f.named], [], `${c.name}: its file's frames carry no symbols`);
          assert.ok(f.unnamed > 0, `${c.name}: its frames are there, unnamed`);
        }
        assert.equal(fs.statSync(decoy).atimeMs, old.getTime(), `${c.name}: the host's decoy was never read`);
        const named = linesNaming(logs, proc.pid);
        if (c.logged) {
          assert.equal(named.length, 1, `${c.name}: one line names pid ${proc.pid}:\n${named.join('\n')}`);
          assert.match(named[0]!, c.logged, `${c.name}: the line says what was wrong`);
        } else {
          assert.deepEqual(named, [], `${c.name}: nothing to complain about`);
        }
      } finally {
        await proc.kill();
      }
    }
    const hwm = vmHwm(agent.proc.pid!);
    assert.ok(hwm < LIMIT_BYTES, `agent peak RSS ${(hwm / 2 ** 20).toFixed(0)} MiB stays under the DaemonSet's ${LIMIT_BYTES >> 20} MiB`);
  } finally {
    assert.equal(await agent.stop(), 0, agent.stderr());
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
