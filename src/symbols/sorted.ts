// Lookups in sorted tables of symbol start addresses.

/** Index of the last element <= x in an ascending array, or -1 when every element is above x. */
export function lastAtOrBelow(sorted: Float64Array, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! > x) hi = mid;
    else lo = mid + 1;
  }
  return lo - 1;
}
