// The real agent as a child process, for benchmarks: started from dist/ with the node flags `npx quietflame` runs
// it with, its URL read from its first log line.

import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as readline from 'node:readline';
import { CLI, cliNodeFlags } from '../../test/support/cli';

export interface AgentProcess {
  proc: ChildProcess;
  url: string;
  /** BPF programs the agent loaded ([] unless asked for with `programIds`). */
  programIds: number[];
  stop(): Promise<void>;
}

export interface AgentStartOptions {
  /**
   * Find the ids of the BPF programs the agent loads (those `bpftool prog show` lists after it listens and not
   * before), e.g. to read their run time. Assumes no other program is loaded meanwhile (benches hold a lock).
   */
  programIds?: boolean;
  /** Another build's CLI (e.g. a baseline's dist/src/cli.js), run with its own shebang flags. */
  cli?: string;
  /** More node flags (e.g. --cpu-prof for diagnosis). */
  nodeFlags?: string[];
}

/** Every BPF program loaded on the node: id → name, run time and runs (counted while run-time stats are on). */
export function bpfPrograms(): Map<number, { name: string; runTimeNs: number; runCount: number }> {
  const r = spawnSync('bpftool', ['prog', 'show', '--json'], { encoding: 'utf8' });
  const out = new Map<number, { name: string; runTimeNs: number; runCount: number }>();
  for (const p of JSON.parse(r.stdout || '[]') as Array<{ id: number; name?: string; run_time_ns?: number; run_cnt?: number }>) {
    out.set(p.id, { name: p.name ?? '?', runTimeNs: p.run_time_ns ?? 0, runCount: p.run_cnt ?? 0 });
  }
  return out;
}

export async function startAgentProcess(extraArgs: string[] = [], opts: AgentStartOptions = {}): Promise<AgentProcess> {
  const before = opts.programIds ? bpfPrograms() : undefined;
  const cli = opts.cli ?? CLI;
  const proc = spawn(process.execPath, [...cliNodeFlags(cli), ...(opts.nodeFlags ?? []), cli, 'agent', '--listen', '127.0.0.1:0', ...extraArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: proc.stdout! }).on('line', (l) => {
      try {
        const o = JSON.parse(l) as { msg?: string; url?: string };
        if (o.msg === 'quietflame agent listening' && o.url) resolve(o.url);
      } catch {
        // not a log line
      }
    });
    proc.once('exit', (c) => reject(new Error(`agent exited with ${c} before listening`)));
  });
  proc.stdout!.resume();
  const programIds = before ? [...bpfPrograms().keys()].filter((id) => !before.has(id)) : [];
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    });
  };
  return { proc, url, programIds, stop };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
