// tracefs/bpffs helpers, run in a private mount namespace (unshare -m) where both are unmounted first.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { bpfTest } from './support';

bpfTest('ensureTracefs/ensureBpffs mount what is missing, and only that', () => {
  const mountJs = join(__dirname, '..', '..', 'src', 'bpf', 'mount.js');
  const script = `
    const m = require(${JSON.stringify(mountJs)});
    const before = [m.isMounted(m.TRACEFS, 'tracefs'), m.isMounted(m.BPFFS, 'bpf')];
    const first = [m.ensureTracefs(), m.ensureBpffs()];
    const second = [m.ensureTracefs(), m.ensureBpffs()];
    const after = [m.isMounted(m.TRACEFS, 'tracefs'), m.isMounted(m.BPFFS, 'bpf')];
    console.log(JSON.stringify({ before, first, second, after }));`;
  const r = spawnSync(
    'unshare',
    ['-m', '--propagation', 'private', 'sh', '-c', 'umount /sys/kernel/tracing 2>/dev/null; umount /sys/fs/bpf 2>/dev/null; exec "$0" -e "$1"', process.execPath, script],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, `unshare failed: ${r.stderr}`);
  assert.deepEqual(JSON.parse(r.stdout), {
    before: [false, false],
    first: [true, true],
    second: [false, false],
    after: [true, true],
  });
});
