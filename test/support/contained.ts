// A minimal container for tests: a program run as /app in a new mount namespace whose root is a fresh tmpfs
// (unshare --mount, chroot), with its ELF interpreter copied in when it has one. Needs root.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { ElfFile } from '../../src/gosym/elf';

export interface Contained {
  pid: number;
  /** The process's root as the host reaches it. */
  root: string;
  kill(): Promise<void>;
}

/** Runs `binary` as /app (args: plain words), waits for its first line (JSON with its pid), in a new mount namespace whose root is a fresh tmpfs (a minimal container). */
export async function runContained(binary: string, args: string[] = ['-leaf', '1', '-framed', '0', '-sleeper', '0']): Promise<Contained> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-ctr-'));
  const interp = interpreterOf(binary); // a PIE needs its loader inside the container
  const withInterp = interp ? ` && mkdir -p "${dir}${path.dirname(interp)}" && cp -L "${interp}" "${dir}${interp}"` : '';
  const script = `mount -t tmpfs qf-ctr "${dir}"${withInterp} && cp "${binary}" "${dir}/app" && exec chroot "${dir}" /app ${args.join(' ')}`;
  const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const rl = readline.createInterface({ input: child.stdout! });
  const first = await Promise.race([rl[Symbol.asyncIterator]().next(), exited.then(() => undefined)]);
  if (first === undefined || first.done) throw new Error(`contained process exited: ${stderr}`);
  const pid = (JSON.parse(first.value as string) as { pid: number }).pid;
  assert.equal(pid, child.pid, 'unshare, sh and chroot exec into the program');
  return {
    pid,
    root: `/proc/${pid}/root`,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** PT_INTERP's path, if the binary has one. */
function interpreterOf(binary: string): string | undefined {
  const elf = ElfFile.open(binary);
  try {
    const p = elf.segments.find((x) => x.type === 3);
    return p && elf.source.read(p.offset, p.filesz).toString('latin1').replace(/\0+$/, '');
  } finally {
    elf.close();
  }
}

