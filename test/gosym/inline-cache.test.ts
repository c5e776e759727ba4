// The inline trees' chunk cache (src/gosym/inline.ts): bounded, as the agent's symbolizer uses it, it answers as the
// cache that keeps every chunk does, for every function of a binary with inlined calls, while holding no more than
// its bound (a bound far below the binary's trees, so that chunks are evicted and read again).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GoBinary } from '../../src/gosym/binary';
import { InlineExpander, inlineLayout, KEEP_ALL_CHUNKS } from '../../src/gosym/inline';
import { buildFixture, newestToolchain } from '../support/go-toolchains';

test('a bounded inline-tree cache answers as one that keeps every chunk', () => {
  const bin = GoBinary.open(buildFixture({ go: newestToolchain().version, fixture: 'inline', mode: 'plain' }));
  try {
    const layout = inlineLayout(bin.pcln, bin.version.exact ? bin.version.minor : undefined);
    const all = new InlineExpander(bin.pcln, bin.elf, layout, bin.gofunc, KEEP_ALL_CHUNKS);
    const few = new InlineExpander(bin.pcln, bin.elf, layout, bin.gofunc, { chunkBytes: 256, maxChunks: 4 });
    let inlined = 0;
    for (let i = 0; i < bin.pcln.nfunc; i++) {
      const f = bin.pcln.funcAt(i);
      for (const pc of [f.entry, f.entry + ((f.end - f.entry) >> 1), f.end - 1]) {
        const expected = all.frames(f, pc);
        assert.deepEqual(few.frames(f, pc), expected, `frames at 0x${pc.toString(16)}`);
        if (expected.length > 1) inlined++;
      }
      assert.ok(few.chunksHeld <= 4, `${few.chunksHeld} chunks held`);
    }
    assert.ok(inlined > 50, `${inlined} PCs with inlined calls: the trees were read`);
    assert.ok(all.chunksHeld > 1, 'the whole cache holds more than the bound would');
  } finally {
    bin.close();
  }
});
