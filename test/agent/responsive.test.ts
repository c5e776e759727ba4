// A new big binary is read off the agent's event loop: while Debian's prometheus (50 MB, 342k unwind ranges) is read
// for the first time, /healthz keeps answering (and counts it) and /api/processes names it; then it is tracked.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bpfTest, sleep } from '../bpf/support';
import { readPprof, startAgent } from '../support/agent';
import { PROMETHEUS } from '../support/prometheus';

interface Health {
  status: string;
  binariesBeingRead: number;
}

interface Processes {
  processes: Array<{ pid: number }>;
  readingBinaries: string[];
}

bpfTest('/healthz answers while a new 50 MB Go binary is read for the first time; /api/processes names it', async (t) => {
  assert.ok(fs.existsSync(PROMETHEUS), `${PROMETHEUS} is missing: run scripts/install-system-deps.sh`);
  const agent = await startAgent();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-resp-'));
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), 'global:\n  scrape_interval: 1m\n');
  let prom: ReturnType<typeof spawn> | undefined;
  try {
    const health = async (): Promise<Health> => (await fetch(`${agent.url}/healthz`)).json() as Promise<Health>;
    const processes = async (): Promise<Processes> => (await fetch(`${agent.url}/api/processes`)).json() as Promise<Processes>;
    assert.equal((await health()).binariesBeingRead, 0, 'nothing read at rest');

    prom = spawn(PROMETHEUS, [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, '--web.listen-address=127.0.0.1:0'], { stdio: 'ignore' });
    const pid = prom.pid!;
    const seen: Array<{ health: Health; reading: string[] }> = [];
    const deadline = Date.now() + 60_000;
    for (;;) {
      const health0 = await health();
      const now = await processes();
      if (now.processes.some((p) => p.pid === pid)) break;
      seen.push({ health: health0, reading: now.readingBinaries });
      assert.ok(Date.now() < deadline, 'prometheus not tracked within 60 s');
      assert.equal(prom.exitCode, null, 'prometheus exited');
      await sleep(2);
    }
    // /healthz answered, counting one binary being read, and right after it prometheus was still being read.
    const during = seen.filter((s) => s.health.binariesBeingRead >= 1 && s.reading.includes(PROMETHEUS));
    t.diagnostic(`${seen.length} /healthz answers before prometheus was tracked, ${during.length} of them while its binary was read`);
    assert.ok(seen.every((s) => s.health.status === 'ok'));
    assert.ok(during.length >= 1, `no /healthz answer came while ${PROMETHEUS} was read: ${JSON.stringify(seen.slice(-3))}`);
    assert.equal((await health()).binariesBeingRead, 0, 'nothing left being read');
    assert.deepEqual((await processes()).readingBinaries, []);
  } finally {
    prom?.kill('SIGKILL');
    assert.equal(await agent.stop(), 0, agent.stderr());
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

bpfTest("a profile names a big native binary's frames, its symbol table built on the reader thread", async (t) => {
  // A copy of node (another inode: nothing the agent read at start): ~80k ELF symbols, read when the profile first
  // meets the copy; the profile's answer waits for the table, the event loop does not.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-native-'));
  const copy = path.join(dir, 'node-copy');
  fs.copyFileSync(fs.realpathSync(process.execPath), copy);
  fs.chmodSync(copy, 0o755);
  const agent = await startAgent();
  const busy = spawn(copy, ['-e', 'for (;;) JSON.parse(JSON.stringify({ a: [1, 2, 3], b: "x".repeat(100) }))'], { stdio: 'ignore' });
  try {
    const r = await fetch(`${agent.url}/debug/pprof/profile?seconds=2&pid=${busy.pid}`);
    const { profile: p } = await readPprof(r, 'profile of the node copy');
    const copyMapping = p.mapping.filter((m) => p.stringTable[m.filename] === copy).map((m) => m.id);
    assert.ok(copyMapping.length > 0, `no mapping of ${copy} in the profile`);
    const inCopy = p.location.filter((l) => copyMapping.includes(l.mappingId));
    const named = inCopy.filter((l) => l.line.length > 0);
    t.diagnostic(`${named.length} of ${inCopy.length} locations in the copy named`);
    assert.ok(inCopy.length >= 10, `only ${inCopy.length} locations in the copy`);
    assert.ok(named.length >= 0.9 * inCopy.length, `${named.length} of ${inCopy.length} locations in the copy named`);
    const names = new Set(named.flatMap((l) => l.line.map((ln) => p.stringTable[p.function.find((f) => f.id === ln.functionId)!.name]!)));
    assert.ok([...names].some((n) => /JSON|Json|json/.test(n)), `no JSON function among ${[...names].slice(0, 20).join(', ')}`);
  } finally {
    busy.kill('SIGKILL');
    assert.equal(await agent.stop(), 0, agent.stderr());
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
