// Sorting a batch of addresses: a stable LSD radix sort of 32-bit keys carrying their input indices. For
// 200,000 addresses it costs a few milliseconds where a comparison sort (even a packed numeric one) costs 20+.
// These loops run once per address in a process that lives a fraction of a second, mostly before the JIT has
// warmed up, so there are few of them (one pass counts the digits of every round) and each is alone in its
// function: an on-stack-replaced loop then never deoptimizes on the way out into code that has not run yet.

const MAX_DIGIT_BITS = 13; // 8192 counters a round: two rounds cover a 64 MiB .text

/**
 * Sorts keys[0, n) ascending (all ≤ maxKey < 2^32), moving idx[0, n) along with them. Returns the sorted pair,
 * which may be the arrays passed in or the spares (scratch of at least n each; allocated when not given).
 */
export function radixSortPairs(
  keys: Uint32Array,
  idx: Uint32Array,
  n: number,
  maxKey: number,
  spareKeys: Uint32Array = new Uint32Array(keys.length),
  spareIdx: Uint32Array = new Uint32Array(idx.length),
): { keys: Uint32Array; idx: Uint32Array } {
  const bits = maxKey > 0 ? 32 - Math.clz32(maxKey) : 1;
  const rounds = Math.ceil(bits / MAX_DIGIT_BITS);
  const digitBits = Math.ceil(bits / rounds);
  const starts = digitStarts(keys, n, rounds, digitBits);
  let srcK = keys;
  let srcI = idx;
  let dstK = spareKeys;
  let dstI = spareIdx;
  for (let r = 0; r < rounds; r++) {
    scatter(srcK, srcI, dstK, dstI, n, starts.subarray(r << digitBits, (r + 1) << digitBits), r * digitBits);
    [srcK, dstK] = [dstK, srcK];
    [srcI, dstI] = [dstI, srcI];
  }
  return { keys: srcK, idx: srcI };
}

/** For every round r and digit d: where the first key with digit d in round r goes (at [r << digitBits | d]). */
function digitStarts(keys: Uint32Array, n: number, rounds: number, digitBits: number): Int32Array {
  const counts = new Int32Array(rounds << digitBits);
  const mask = (1 << digitBits) - 1;
  for (let k = 0; k < n; k++) {
    const key = keys[k]!;
    for (let r = 0; r < rounds; r++) counts[(r << digitBits) | ((key >>> (r * digitBits)) & mask)]!++;
  }
  return exclusivePrefixSums(counts, 1 << digitBits);
}

/** Each run of `width` counters turned into the running sums before each. */
function exclusivePrefixSums(counts: Int32Array, width: number): Int32Array {
  let sum = 0;
  for (let d = 0; d < counts.length; d++) {
    if (d % width === 0) sum = 0;
    const c = counts[d]!;
    counts[d] = sum;
    sum += c;
  }
  return counts;
}

/** One round: each pair goes to the next free place of its digit. */
function scatter(srcK: Uint32Array, srcI: Uint32Array, dstK: Uint32Array, dstI: Uint32Array, n: number, next: Int32Array, shift: number): void {
  const mask = next.length - 1;
  for (let k = 0; k < n; k++) {
    const key = srcK[k]!;
    const at = next[(key >>> shift) & mask]!++;
    dstK[at] = key;
    dstI[at] = srcI[k]!;
  }
}
