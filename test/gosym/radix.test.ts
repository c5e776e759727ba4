// radixSortPairs (the addr2line batch sort) against a stable comparison sort: keys of every width it splits
// differently (one, two and three rounds), duplicates, and lengths down to zero.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { radixSortPairs } from '../../src/gosym/radix';
import { Rng } from '../support/random';

test('radixSortPairs sorts like a stable comparison sort, keys of 1 to 32 bits', () => {
  const rng = new Rng(7);
  for (const bits of [1, 5, 13, 14, 26, 27, 32]) {
    const maxKey = 2 ** bits - 1;
    for (const n of [0, 1, 2, 5000]) {
      const keys = new Uint32Array(n + 2); // two slots past n: the sort must leave them out
      const idx = new Uint32Array(n + 2);
      for (let i = 0; i < n; i++) {
        keys[i] = rng.next() < 0.2 ? maxKey : rng.int(0, Math.min(maxKey + 1, 64 + i)); // plenty of duplicates
        idx[i] = i;
      }
      keys[n] = keys[n + 1] = 0;
      const want = Array.from({ length: n }, (_, i) => i).sort((a, b) => keys[a]! - keys[b]! || a - b);
      const got = radixSortPairs(keys.slice(), idx.slice(), n, maxKey);
      assert.deepEqual(Array.from(got.idx.subarray(0, n)), want, `${bits} bits, ${n} keys`);
      assert.deepEqual(Array.from(got.keys.subarray(0, n)), want.map((i) => keys[i]!), `${bits} bits, ${n} keys`);
    }
  }
});
