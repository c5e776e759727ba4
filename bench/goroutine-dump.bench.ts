// What reading and writing a big goroutine dump costs: the dumps fixture with COPIES goroutines of each kind
// (20 kinds: 5,000 copies ≈ 100,000 goroutines) prints its own runtime.Stack(all); then, timed: parseGoroutineDump,
// analyzeDump (+ analysisText), writeTracebackText of the parsed dump, and goroutineProfile. The baseline, in the
// same run, is splitting the text into lines (the least any reader does); ratios are against it.
//   npm run build && node dist/bench/goroutine-dump.bench.js [COPIES] [ROUNDS]
// Prints numbers; asserts nothing.

import { spawn } from 'node:child_process';
import * as readline from 'node:readline';
import { parseGoroutineDump } from '../src/goroutines/parse';
import { analysisText, analyzeDump } from '../src/goroutines/analyze';
import { writeTracebackText } from '../src/goroutines/traceback-text';
import { goroutineProfile } from '../src/goroutines/profile';
import { buildFixture } from '../test/support/go-toolchains';
import { median } from './support/agent';

const COPIES = Number(process.argv[2] ?? 5000);
const ROUNDS = Number(process.argv[3] ?? 5);

async function ownStack(): Promise<string> {
  const bin = buildFixture({ go: '1.26', fixture: 'dumps', mode: 'plain' });
  const child = spawn(bin, [String(COPIES)], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const lines = readline.createInterface({ input: child.stdout!, crlfDelay: Infinity });
    let text = '';
    let ready = false;
    for await (const l of lines) {
      if (!ready) {
        ready = true;
        child.stdin!.write('dump\n');
        continue;
      }
      if (l === 'END') break;
      text += l + '\n';
    }
    return text.slice(0, -1);
  } finally {
    child.kill('SIGKILL');
  }
}

function time(f: () => unknown): number {
  const t0 = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function main(): Promise<void> {
  const text = await ownStack();
  const mb = Buffer.byteLength(text) / (1 << 20);
  const dump = parseGoroutineDump(text);
  console.log(`dump: ${mb.toFixed(1)} MiB, ${dump.goroutines.length} goroutines, ${dump.warnings.length} warnings`);
  const rows: Array<[string, () => unknown]> = [
    ['split into lines (baseline)', () => text.split('\n').length],
    ['parseGoroutineDump', () => parseGoroutineDump(text)],
    ['analyzeDump + analysisText', () => analysisText(analyzeDump(dump))],
    ['writeTracebackText', () => writeTracebackText(dump)],
    ['goroutineProfile (gzipped pprof)', () => goroutineProfile(dump)],
  ];
  const medians = rows.map(([name, f]) => {
    f(); // warm up
    const ms = median(Array.from({ length: ROUNDS }, () => time(f)));
    return { name, ms };
  });
  const base = medians[0]!.ms;
  for (const { name, ms } of medians) {
    console.log(`${name.padEnd(34)} ${ms.toFixed(1).padStart(8)} ms  ${(mb / (ms / 1000)).toFixed(0).padStart(6)} MiB/s  ×${(ms / base).toFixed(1)} baseline`);
  }
  const heap = process.memoryUsage();
  console.log(`heap used after: ${(heap.heapUsed / (1 << 20)).toFixed(0)} MiB, rss ${(heap.rss / (1 << 20)).toFixed(0)} MiB`);
}

void main();
