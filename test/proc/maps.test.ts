import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { test } from 'node:test';

import { devString, findMapping, isExecutable, isFileBacked, mapFilesPath, mappingsOfFile, parseMaps, readMaps } from '../../src/proc/maps';

const TEXT = [
  '00400000-00452000 r-xp 00000000 fe:01 1234                               /usr/bin/prog',
  '00651000-00652000 rw-p 00051000 fe:01 1234                               /usr/bin/prog',
  '7f0000000000-7f0000021000 rw-p 00000000 00:00 0 ',
  '7f1000000000-7f1000002000 r-xp 00002000 08:02 99                         /opt/my app/lib x.so (deleted)',
  'this is not a mapping line',
  '7ffd1234a000-7ffd1234c000 r-xp 00000000 00:00 0                          [vdso]',
  'ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]',
  '',
].join('\n');

test('parseMaps reads every field, paths with spaces, deleted files, anonymous and special mappings', () => {
  const maps = parseMaps(TEXT);
  assert.equal(maps.length, 6, 'the garbage line is skipped');
  assert.deepEqual(maps[0], { start: 0x400000, end: 0x452000, perms: 'r-xp', offset: 0, dev: 'fe:01', inode: 1234, path: '/usr/bin/prog', deleted: false });
  assert.equal(maps[1]!.offset, 0x51000);
  assert.deepEqual([maps[2]!.path, maps[2]!.inode, isFileBacked(maps[2]!)], ['', 0, false]);
  assert.deepEqual([maps[3]!.path, maps[3]!.deleted, maps[3]!.offset], ['/opt/my app/lib x.so', true, 0x2000]);
  assert.equal(maps[4]!.path, '[vdso]');
  assert.equal(isFileBacked(maps[4]!), false);
  assert.equal(maps[5]!.start, 0xffffffffff600000, 'above 2^53 loses low bits but still parses');
  assert.deepEqual(maps.filter(isExecutable).length, 4);
  assert.deepEqual(mappingsOfFile(maps, { inode: 1234 }).map((m) => m.start), [0x400000]);
  assert.deepEqual(mappingsOfFile(maps, { inode: 1234 }, true).map((m) => m.start), [0x400000, 0x651000]);
  assert.deepEqual(mappingsOfFile(maps, { inode: 1234, dev: 0xfe01 }).map((m) => m.start), [0x400000], 'dev fe:01');
  assert.deepEqual(mappingsOfFile(maps, { inode: 1234, dev: 0x0801 }), [], 'same inode, other device');
  assert.deepEqual(mappingsOfFile(maps, { inode: 5, path: '/opt/my app/lib x.so' }).map((m) => m.start), [0x7f1000000000], 'by path');
  assert.equal(devString(0xfe01), 'fe:01');
  assert.equal(devString(0x803), '08:03');
  assert.equal(devString(0x12310345), '103:12345', 'major 259, minor 0x12345 (new_encode_dev)');
  assert.equal(mapFilesPath(77, maps[0]!), '/proc/77/map_files/400000-452000');
});

test('findMapping: the mapping holding an address, none in gaps or past the end', () => {
  const maps = parseMaps(TEXT);
  assert.equal(findMapping(maps, 0x400000), maps[0]);
  assert.equal(findMapping(maps, 0x451fff), maps[0]);
  assert.equal(findMapping(maps, 0x452000), undefined);
  assert.equal(findMapping(maps, 0x651800), maps[1]);
  assert.equal(findMapping(maps, 0x7f1000001000), maps[3]);
  assert.equal(findMapping(maps, 0x3fffff), undefined);
  assert.equal(findMapping([], 0x400000), undefined);
});

test('readMaps of this process: the node executable is mapped executable, and every mapping finds itself', () => {
  const maps = readMaps(process.pid);
  assert.ok(maps && maps.length > 10);
  const exe = fs.realpathSync(process.execPath);
  const st = fs.statSync(exe);
  const text = mappingsOfFile(maps, { inode: st.ino, dev: st.dev });
  assert.ok(text.length >= 1, `no executable mapping of ${exe} with inode ${st.ino} on ${devString(st.dev)}`);
  assert.ok(text.every((m) => m.path === exe));
  for (const m of maps) {
    if (m.start > Number.MAX_SAFE_INTEGER) continue; // [vsyscall]
    assert.equal(findMapping(maps, m.start), m);
    assert.equal(findMapping(maps, m.end - 1), m);
  }
  assert.equal(readMaps(0x7ffffff0), undefined, 'a PID that does not exist');
});
