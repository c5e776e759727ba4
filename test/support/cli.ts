// Runs the compiled CLI the way a user does (`node dist/src/cli.js …`), returning what it printed.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const CLI = path.resolve(__dirname, '../../src/cli.js');

/** The node flags in the CLI's shebang (`#!/usr/bin/env -S node FLAGS`), which `npx quietflame` runs with. */
export function cliNodeFlags(cli = CLI): string[] {
  const first = fs.readFileSync(cli, 'utf8').split('\n', 1)[0]!;
  const m = /^#!\/usr\/bin\/env (?:-S )?node((?: \S+)*)$/.exec(first);
  if (!m) throw new Error(`${cli}: unexpected first line ${first}`);
  return m[1]!.split(' ').filter((f) => f !== '');
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], input = '', timeoutMs = 120_000): CliResult {
  return spawnCli(args, { input, timeout: timeoutMs });
}

function spawnCli(args: string[], opts: { input?: string; stdio?: Array<number | 'pipe'>; timeout: number }): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { ...opts, encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** runCli with stdin redirected from a file holding `input` (`cli … <file`), not a pipe. */
export function runCliWithInputFile(args: string[], input: string | Buffer, timeoutMs = 120_000): CliResult {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-cli-input-'));
  const file = path.join(dir, 'input');
  fs.writeFileSync(file, input);
  const fd = fs.openSync(file, 'r');
  try {
    return spawnCli(args, { stdio: [fd, 'pipe', 'pipe'], timeout: timeoutMs });
  } finally {
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true });
  }
}
