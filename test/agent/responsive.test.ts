// A new big binary is read off the agent's event loop: while Debian's prometheus (50 MB, 342k unwind ranges) is read
// for the first time, /healthz keeps answering and says which binary is being read; then the process is tracked.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bpfTest, sleep } from '../bpf/support';
import { startAgent } from '../support/agent';
import { PROMETHEUS } from '../support/prometheus';

interface Health {
  status: string;
  readingBinaries: string[];
}

bpfTest('/healthz answers while a new 50 MB Go binary is read for the first time, and names it', async (t) => {
  assert.ok(fs.existsSync(PROMETHEUS), `${PROMETHEUS} is missing: run scripts/install-system-deps.sh`);
  const agent = await startAgent();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-resp-'));
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), 'global:\n  scrape_interval: 1m\n');
  let prom: ReturnType<typeof spawn> | undefined;
  try {
    const health = async (): Promise<Health> => (await fetch(`${agent.url}/healthz`)).json() as Promise<Health>;
    assert.deepEqual((await health()).readingBinaries, [], 'nothing read at rest');
    const tracked = async (pid: number): Promise<boolean> =>
      ((await (await fetch(`${agent.url}/api/processes`)).json()) as { processes: Array<{ pid: number }> }).processes.some((p) => p.pid === pid);

    prom = spawn(PROMETHEUS, [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, '--web.listen-address=127.0.0.1:0'], { stdio: 'ignore' });
    const pid = prom.pid!;
    const answers: Health[] = [];
    const deadline = Date.now() + 60_000;
    while (!(await tracked(pid))) {
      assert.ok(Date.now() < deadline, 'prometheus not tracked within 60 s');
      assert.equal(prom.exitCode, null, 'prometheus exited');
      answers.push(await health());
      await sleep(2);
    }
    const during = answers.filter((h) => h.readingBinaries.includes(PROMETHEUS));
    t.diagnostic(`${answers.length} /healthz answers before prometheus was tracked, ${during.length} of them while its binary was read`);
    assert.ok(answers.every((h) => h.status === 'ok'));
    assert.ok(during.length >= 1, `no /healthz answer came while ${PROMETHEUS} was read: ${JSON.stringify(answers.slice(-3))}`);
    assert.deepEqual((await health()).readingBinaries, [], 'nothing left being read');
  } finally {
    prom?.kill('SIGKILL');
    assert.equal(await agent.stop(), 0, agent.stderr());
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
