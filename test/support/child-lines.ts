// A child process's stdout line by line, for fixtures that answer requests on stdin with lines on stdout.

import type { ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';

/**
 * Returns `next()`, which resolves to the child's next stdout line (every byte of it, tabs included) and throws
 * once the child has exited with no line left; `exitDetail` adds to that message (e.g. what it printed on stderr).
 */
export function childLines(child: ChildProcess, name: string, exitDetail: () => string = () => ''): () => Promise<string> {
  const lines = readline.createInterface({ input: child.stdout!, crlfDelay: Infinity });
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  lines.on('line', (l) => {
    queue.push(l);
    wake?.();
  });
  return async () => {
    while (queue.length === 0) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${name} exited (${child.exitCode ?? child.signalCode})${exitDetail() ? `: ${exitDetail()}` : ''}`);
      }
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 200);
      });
    }
    return queue.shift()!;
  };
}
