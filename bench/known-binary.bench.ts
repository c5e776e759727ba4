// What a new process of an already-known Go binary costs the agent, after the last process of that binary exited:
// the injector's work (read the binary, build and write its unwind table, or reuse the idle one; write the config;
// on exit delete them), against the real maps of profile.bpf.o. Alternates keeping no idle binaries (the old way)
// with the default; CPU time of this process per start+exit, medians.
//   npm run build && node dist/bench/known-binary.bench.js [ROUNDS] [PER_ROUND]
// Prints numbers; asserts nothing.

import { u32 } from '../src/bpf/codec';
import { bpfObjectPath } from '../src/bpf/native';
import { BpfObject } from '../src/bpf/object';
import { GoBinary } from '../src/gosym/binary';
import { goBinaryInfo, UnwindInjector } from '../src/symbols/injector';
import { buildFixture, newestToolchain } from '../test/support/go-toolchains';
import { median } from './support/agent';

const ROUNDS = Number(process.argv[2] ?? 7);
const PER_ROUND = Number(process.argv[3] ?? 20);

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function main(): void {
  const file = buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' });
  const obj = BpfObject.open(bpfObjectPath('profile')).load();
  try {
    const results: Record<'none kept' | 'idle kept', number[]> = { 'none kept': [], 'idle kept': [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, idleBinaries] of [['none kept', 0], ['idle kept', 8]] as const) {
        const inj = new UnwindInjector(obj.map('unwind_pages'), obj.map('proc_configs', u32), { idleBinaries });
        const t0 = cpuMs();
        for (let i = 0; i < PER_ROUND; i++) {
          let info = inj.binaryInfo('hot');
          if (info === undefined) {
            const bin = GoBinary.open(file);
            info = goBinaryInfo(bin, 'hot');
            bin.close();
          }
          inj.addProcess(1000 + i, info, 0);
          inj.removeProcess(1000 + i);
        }
        results[name].push((cpuMs() - t0) / PER_ROUND);
        inj.clear();
      }
    }
    const none = median(results['none kept']);
    const kept = median(results['idle kept']);
    console.log(`new process of a known Go binary (${PER_ROUND} per round, ${ROUNDS} rounds alternated): ${none.toFixed(2)} ms of CPU with no idle binaries kept, ${kept.toFixed(3)} ms with them (the first process of the round included): ${(kept / none).toFixed(3)}×`);
  } finally {
    obj.close();
  }
}

main();
