// The Go processes the agent's memory is measured with (agent-overhead, agent-memory): the CPU-bound fixture on
// every core, and five more across Go releases and link modes, one of them ≥ 50 MB (bigbin), so that a node-wide
// profile holds a little of each binary.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { buildBigBinary, buildFixture, newestToolchain } from '../../test/support/go-toolchains';

/** The `hot` fixture spinning on every CPU (half in frameless leaves, half in framed functions). */
export function startHotFixture(cpus: number): ChildProcess {
  const binary = buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' });
  return spawn(binary, ['-leaf', String(Math.ceil(cpus / 2)), '-framed', String(Math.floor(cpus / 2)), '-sleeper', '0'], { stdio: 'ignore' });
}

/** The five others, given 3 s to start; `bigBytes`: the big binary's size. */
export async function startFiveMoreGoProcesses(): Promise<{ procs: ChildProcess[]; bigBytes: number }> {
  const go = newestToolchain().version;
  const idle = ['-leaf', '0', '-framed', '0', '-sleeper', '1'];
  const big = buildBigBinary();
  const procs = ([
    [big, ['spin']],
    [buildFixture({ go: '1.19', fixture: 'hot', mode: 'plain' }), idle],
    [buildFixture({ go: '1.15', fixture: 'hot', mode: 'stripped-pie' }), idle],
    [buildFixture({ go: '1.23', fixture: 'hot', mode: 'stripped-pie' }), idle],
    [buildFixture({ go, fixture: 'cgo', mode: 'cgo-external' }), ['spin']],
  ] as Array<[string, string[]]>).map(([binary, args]) => spawn(binary, args, { stdio: 'ignore' }));
  await new Promise((r) => setTimeout(r, 3000));
  return { procs, bigBytes: fs.statSync(big).size };
}
