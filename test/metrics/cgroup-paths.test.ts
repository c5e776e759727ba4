// CgroupPaths on an ordinary directory tree (ids are inode numbers either way): lookups, rescans only when an id is
// when the refresh time has passed, "gone" once a found cgroup is removed (the real tree: test/metrics/runqlat).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { CgroupPaths } from '../../src/metrics/cgroup-paths';

const ino = (p: string): bigint => statSync(p, { bigint: true }).ino;

test('CgroupPaths: paths by inode, rescanned at most every refreshMs, gone once removed, never for ids outside the view', () => {
  const root = mkdtempSync(join(tmpdir(), 'qf-cgroups-'));
  try {
    mkdirSync(join(root, 'kubepods', 'pod1'), { recursive: true });
    let now = 0;
    const paths = new CgroupPaths(root, 1000, () => now);
    assert.equal(paths.pathOf(ino(root)), '/');
    assert.equal(paths.pathOf(ino(join(root, 'kubepods', 'pod1'))), '/kubepods/pod1');

    // Created after the scan: not seen until refreshMs has passed; not "gone" either (no second scan yet).
    mkdirSync(join(root, 'late'));
    const late = ino(join(root, 'late'));
    assert.equal(paths.pathOf(late), undefined);
    assert.equal(paths.isGone(late), false);
    now = 1000;
    assert.equal(paths.pathOf(late), '/late');
    assert.equal(paths.isGone(late), false);

    // Removed after a scan found it: gone at the next scan that misses it.
    const pod1 = ino(join(root, 'kubepods', 'pod1'));
    rmdirSync(join(root, 'kubepods', 'pod1'));
    assert.equal(paths.isGone(pod1), false);
    now = 2000;
    assert.equal(paths.pathOf(pod1), undefined);
    assert.equal(paths.isGone(pod1), true);
    paths.forget([pod1]);
    assert.equal(paths.isGone(pod1), false);

    // Never found: this tree is not a cgroup root (inode 1), so the id may be a cgroup outside it: never gone.
    const elsewhere = 123456789n;
    for (now = 3000; now <= 6000; now += 1000) assert.equal(paths.pathOf(elsewhere), undefined);
    assert.equal(paths.isGone(elsewhere), false);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
