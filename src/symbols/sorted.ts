// Lookups in sorted tables of symbol start addresses, and the sort that makes them.

/** Index of the last element <= x in an ascending array, or -1 when every element is above x. */
export function lastAtOrBelow(sorted: Float64Array | Uint32Array, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! > x) hi = mid;
    else lo = mid + 1;
  }
  return lo - 1;
}

/**
 * Indexes 0..n-1 ordered by value (non-negative integers below 2^53), equal values in index order: an LSD radix
 * sort on 16-bit digits of value − min, as many passes as the range needs (two for most symbol tables), which is
 * several times faster than sorting with a comparator.
 */
export function sortedOrder(value: Float64Array, n: number): Uint32Array {
  let order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (n < 2) return order;
  let min = Infinity;
  let max = -Infinity;
  let sorted = true;
  for (let i = 0; i < n; i++) {
    const v = value[i]!;
    if (i > 0 && v < value[i - 1]!) sorted = false;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (sorted) return order;
  // Digits of value − min: straight from the values below 2^32 (the usual case), else from 32-bit halves.
  const range = max - min;
  let lo: Float64Array | Uint32Array = value;
  let hi: Uint32Array | undefined;
  let base = min;
  if (range >= 2 ** 32) {
    const l = new Uint32Array(n);
    hi = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const d = value[i]! - min;
      const h = Math.floor(d / 4294967296);
      hi[i] = h;
      l[i] = d - h * 4294967296;
    }
    lo = l;
    base = 0;
  }
  let next = new Uint32Array(n);
  const count = new Uint32Array(65536);
  for (let pass = 0; pass < 4 && range >= 2 ** (16 * pass); pass++) {
    const word = pass < 2 ? lo : hi!;
    const wbase = pass < 2 ? base : 0;
    const shift = (pass & 1) * 16;
    count.fill(0);
    for (let i = 0; i < n; i++) count[((word[i]! - wbase) >>> shift) & 0xffff]!++;
    let sum = 0;
    for (let d = 0; d < 65536; d++) {
      const c = count[d]!;
      count[d] = sum;
      sum += c;
    }
    for (let k = 0; k < n; k++) {
      const i = order[k]!;
      next[count[((word[i]! - wbase) >>> shift) & 0xffff]!++] = i;
    }
    [order, next] = [next, order];
  }
  return order;
}
