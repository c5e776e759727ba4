// Builds a Go program under bench/fixtures/NAME with the newest toolchain into .cache/bench/NAME (again when a
// source file is newer or the toolchain changed).

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { goEnv, newestToolchain, repoRoot, toolchainGoVersion } from '../../test/support/go-toolchains';

export function buildBenchFixture(name: string): string {
  const tc = newestToolchain();
  const src = path.join(repoRoot(), 'bench', 'fixtures', name);
  const out = path.join(repoRoot(), '.cache', 'bench', name);
  const stamp = `${out}.stamp`;
  const want = toolchainGoVersion(tc);
  const newest = Math.max(...fs.readdirSync(src).map((f) => fs.statSync(path.join(src, f)).mtimeMs));
  const fresh = fs.existsSync(out) && fs.statSync(out).mtimeMs >= newest && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === want;
  if (!fresh) {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const r = spawnSync(tc.goBin, ['build', '-buildvcs=false', '-o', out, '.'], { cwd: src, env: goEnv(tc), encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`go build ${name}: ${r.stderr}`);
    fs.writeFileSync(stamp, want);
  }
  return out;
}
