// The 1,000,000-input fuzz run of the binary readers (test/support/fuzz-readers.ts; CI runs 100,000 in
// test/gosym/fuzz.test.ts). Prints the count, the time, the outcomes and the peak RSS; exits 1 on the first
// crash (an exception other than a one-line FormatError).
//   node dist/bench/fuzz-readers.bench.js [ITERATIONS] [SEED]

import { runFuzz, fuzzTargets } from '../test/support/fuzz-readers';

function main(): void {
  const iterations = Number(process.argv[2] ?? 1_000_000);
  const seed = Number(process.argv[3] ?? 0x5eed);
  const targets = fuzzTargets();
  const t0 = process.hrtime.bigint();
  const chunk = 50_000;
  let done = 0;
  const total = { parsed: 0, rejected: 0, agentPath: 0, dwarfMutants: 0 };
  while (done < iterations) {
    const n = Math.min(chunk, iterations - done);
    const r = runFuzz(n, seed + done, targets); // one seed per chunk: a failure names the chunk's seed and iteration
    if (r.failure !== undefined) {
      console.error(`FAILED after ${done} inputs: ${r.failure}`);
      process.exit(1);
    }
    for (const k of Object.keys(total) as Array<keyof typeof total>) total[k] += r[k];
    done += n;
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(`${done} inputs, ${s.toFixed(0)} s, peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(
    JSON.stringify({ inputs: iterations, seconds: Math.round(s), crashes: 0, ...total, peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024) }),
  );
}

main();
