// addr2line speed and table load cost on a big Go binary (>= 50 MB), against Go's own tool in the same script.
//   npm run bench -- [BINARY]      (default: the generated bigbin fixture, built on first use)
//   BASE_CLI=/other/checkout/dist/src/cli.js: that build's addr2line is timed too, in the same alternation.
// Prints medians over alternating runs; nothing here is asserted.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GoBinary } from '../src/gosym/binary';
import { CLI, cliNodeFlags } from '../test/support/cli';
import { buildBigBinary, newestToolchain } from '../test/support/go-toolchains';
import { Rng } from '../test/support/random';

const ADDRESSES = 200_000;
const RUNS = Number(process.env.QF_BENCH_RUNS ?? 11); // a shared 2-core machine: 5 runs left the median at the mercy of one load spike

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/**
 * Input from a file and output to a file, as `cmd <in >out` in a shell: collecting 13 MB of answers through a pipe
 * into this process put this process's reading in the timing (it added ~150 ms to both tools' wall time on a
 * 2-core machine: 0.51x through pipes against 0.41x through files in the same hour).
 */
function timeRun(cmd: string, args: string[], inputPath: string, outputPath: string): { ms: number; out: Buffer } {
  const input = fs.openSync(inputPath, 'r');
  const output = fs.openSync(outputPath, 'w');
  try {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { stdio: [input, output, 'pipe'] });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString()}`);
    return { ms, out: fs.readFileSync(outputPath) };
  } finally {
    fs.closeSync(input);
    fs.closeSync(output);
  }
}

function main(): void {
  const binary = process.argv[2] ?? buildBigBinary();
  const size = fs.statSync(binary).size;
  const goBin = newestToolchain().goBin;

  // Load cost, in this process: a fresh child per measurement so caches and heap start empty.
  const loads: number[] = [];
  const heaps: number[] = [];
  let pclntabSize = 0;
  let tablesRead = 0;
  for (let i = 0; i < RUNS; i++) {
    const r = spawnSync(process.execPath, ['--expose-gc', __filename, '--load-only', binary], { encoding: 'utf8' });
    const m = JSON.parse(r.stdout) as { ms: number; heapDelta: number; pclntab: number; tables: number };
    loads.push(m.ms);
    heaps.push(m.heapDelta);
    pclntabSize = m.pclntab;
    tablesRead = m.tables;
  }

  const bin = GoBinary.open(binary);
  const text = bin.elf.section('.text')!;
  bin.close();
  const rng = new Rng(42);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-addr2line-bench-'));
  const input = path.join(dir, 'addresses');
  fs.writeFileSync(input, Array.from({ length: ADDRESSES }, () => '0x' + rng.int(text.addr, text.addr + text.size).toString(16)).join('\n') + '\n');

  const baseCli = process.env.BASE_CLI;
  const ours: number[] = [];
  const bases: number[] = [];
  const gos: number[] = [];
  const nodes: number[] = [];
  let same = true;
  for (let i = 0; i < RUNS; i++) {
    const g = timeRun(goBin, ['tool', 'addr2line', binary], input, path.join(dir, 'go'));
    const q = timeRun(process.execPath, [...cliNodeFlags(), CLI, 'addr2line', binary], input, path.join(dir, 'quietflame'));
    if (baseCli !== undefined) {
      const b = timeRun(process.execPath, [...cliNodeFlags(baseCli), baseCli, 'addr2line', binary], input, path.join(dir, 'base'));
      bases.push(b.ms);
      same &&= g.out.equals(b.out);
    }
    nodes.push(timeRun(process.execPath, ['-e', '0'], '/dev/null', '/dev/null').ms);
    gos.push(g.ms);
    ours.push(q.ms);
    same &&= g.out.equals(q.out);
  }
  fs.rmSync(dir, { recursive: true });
  const mb = (n: number): string => (n / 2 ** 20).toFixed(1) + ' MiB';
  console.log(`binary: ${binary} (${mb(size)}, ${bin.pcln.nfunc} functions, .gopclntab ${mb(pclntabSize)}), ${os.cpus().length} CPUs, ${RUNS} alternating runs`);
  console.log(`addr2line ${ADDRESSES} random .text addresses, whole process:`);
  console.log(`  go tool addr2line (${spawnSync(goBin, ['version'], { encoding: 'utf8' }).stdout.trim()}): median ${median(gos).toFixed(0)} ms`);
  console.log(`  quietflame addr2line:            median ${median(ours).toFixed(0)} ms   ratio ${(median(ours) / median(gos)).toFixed(2)}x   identical output: ${same}`);
  if (baseCli !== undefined) {
    console.log(`  base ${baseCli}: median ${median(bases).toFixed(0)} ms   ratio ${(median(bases) / median(gos)).toFixed(2)}x   this/base ${(median(ours) / median(bases)).toFixed(2)}x`);
  }
  console.log(`  (of which Node's own start-up, node -e 0: median ${median(nodes).toFixed(0)} ms)`);
  console.log(`table load (GoBinary.open, warm page cache): median ${median(loads).toFixed(1)} ms, reads ${mb(tablesRead)} of the ${mb(pclntabSize)} .gopclntab; heap+external growth median ${mb(median(heaps))} = ${(median(heaps) / pclntabSize).toFixed(2)}x the .gopclntab`);
  elfyComparison(binary);
}

/** The design card's ELF package needs the whole file as one Buffer; measured here to justify our own reader. */
function elfyComparison(binary: string): void {
  let elfy: { parse(b: Buffer): { body: { sections: Array<{ name: string }> } } };
  try {
    elfy = require('elfy');
  } catch {
    console.log('elfy: not installed (devDependency), skipped');
    return;
  }
  const r = spawnSync(process.execPath, ['--expose-gc', __filename, '--elfy-only', binary], { encoding: 'utf8' });
  console.log(`elfy 1.0.0 on the same file: ${r.stdout.trim()}`);
  void elfy;
}

function memNow(): number {
  (global as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.external; // external already includes arrayBuffers (Buffers)
}

if (process.argv[2] === '--load-only') {
  const before = memNow();
  const t0 = process.hrtime.bigint();
  const bin = GoBinary.open(process.argv[3]!);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const heapDelta = memNow() - before;
  const section = bin.elf.section('.gopclntab') ?? bin.elf.section('.data.rel.ro.gopclntab');
  process.stdout.write(JSON.stringify({ ms, heapDelta, pclntab: section?.size ?? bin.pcln.data.length, tables: bin.pcln.data.length }));
} else if (process.argv[2] === '--elfy-only') {
  const elfy = require('elfy') as { parse(b: Buffer): { body: { sections: Array<{ name: string; data: Buffer }> } } };
  const before = memNow();
  const t0 = process.hrtime.bigint();
  const parsed = elfy.parse(fs.readFileSync(process.argv[3]!));
  const pcln = parsed.body.sections.find((s) => s.name === '.gopclntab');
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(`read + parse ${ms.toFixed(1)} ms, heap+external growth ${((memNow() - before) / 2 ** 20).toFixed(1)} MiB (the whole file), .gopclntab ${pcln ? 'found' : 'not found'}`);
} else {
  main();
}
