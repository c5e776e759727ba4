// The real agent as a child process, for benchmarks: started from dist/, its URL read from its first log line.

import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';

export const CLI = path.resolve(__dirname, '../../src/cli.js');

export interface AgentProcess {
  proc: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

export async function startAgentProcess(extraArgs: string[] = []): Promise<AgentProcess> {
  const proc = spawn(process.execPath, [CLI, 'agent', '--listen', '127.0.0.1:0', ...extraArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
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
  const stop = async (): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    });
  };
  return { proc, url, stop };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
