// Helpers for the symbolization tests: run a fixture that would exit at once, but keep it alive (and its
// /proc/PID/maps readable) until the test has looked at it.
//
// The inline fixture prints its JSON when it is done and exits; it has no mode that waits. So its stdout is a
// FIFO whose buffer we fill before it starts: its final write blocks until we drain the FIFO, and the process
// stays alive, fully set up, for as long as we like. Nothing in the fixture changes.

import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export interface HeldProcess {
  pid: number;
  child: ChildProcess;
  /** True while the process has not exited. */
  alive(): boolean;
  /** Drains its stdout (letting it finish) and resolves with everything it wrote once it has exited 0. */
  finish(): Promise<string>;
  /** Kills it (if still running) and cleans up. */
  kill(): void;
}

export interface HoldOptions {
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** stdin of the child: 'ignore' (default) or 'pipe'. */
  stdin?: 'ignore' | 'pipe';
}

export function holdProcess(binary: string, opts: HoldOptions = {}): HeldProcess {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-hold-'));
  const fifo = path.join(dir, 'stdout');
  execFileSync('mkfifo', [fifo]);
  const rfd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  // Fill the pipe through a non-blocking descriptor of our own…
  const filler = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  let filled = 0;
  const chunk = Buffer.alloc(4096, 0x23); // writes of ≤ PIPE_BUF bytes are all-or-nothing
  for (;;) {
    try {
      filled += fs.writeSync(filler, chunk);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break;
      throw e;
    }
  }
  // …and give the child a blocking one, so its first write waits (a separate open file description).
  const wfd = fs.openSync(fifo, fs.constants.O_WRONLY);
  fs.closeSync(filler);
  const child = spawn(binary, opts.args ?? [], { stdio: [opts.stdin ?? 'ignore', wfd, 'pipe'], env: opts.env ?? process.env });
  fs.closeSync(wfd);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void exited.then((c) => (exitCode = c));
  if (child.pid === undefined) throw new Error(`could not start ${binary}`);
  let finished: Promise<string> | undefined;
  const cleanup = (): void => fs.rmSync(dir, { recursive: true, force: true });
  return {
    pid: child.pid,
    child,
    alive: () => exitCode === undefined,
    finish(): Promise<string> {
      finished ??= new Promise<string>((resolve, reject) => {
        const chunks: Buffer[] = [];
        const sock = new net.Socket({ fd: rfd, readable: true, writable: false });
        sock.on('data', (d: Buffer) => chunks.push(d));
        sock.on('error', reject);
        sock.on('end', () => {
          void exited.then((code) => {
            cleanup();
            const out = Buffer.concat(chunks).subarray(filled).toString('utf8');
            if (code !== 0) reject(new Error(`${binary} exited with ${code}: ${stderr}`));
            else resolve(out);
          });
        });
      });
      return finished;
    },
    kill(): void {
      if (exitCode === undefined) child.kill('SIGKILL');
      if (!finished) {
        try {
          fs.closeSync(rfd);
        } catch {
          // closed by the socket
        }
        cleanup();
      }
    },
  };
}

export interface InlineFrame {
  function: string;
  file: string;
  line: number;
}

export interface InlineLine {
  site: string;
  index: number;
  pc: string;
  lookupPc: string;
  frames: InlineFrame[];
}

export interface InlineOutput {
  loadBias: bigint;
  goVersion: string;
  lines: InlineLine[];
}

export function parseInlineOutput(out: string): InlineOutput {
  const rows = out.trim().split('\n');
  const head = JSON.parse(rows[0]!) as { loadBias: string; goVersion: string };
  const lines = rows.slice(1).map((l) => {
    const x = JSON.parse(l) as InlineLine;
    return { ...x, frames: x.frames.map(({ function: fn, file, line }) => ({ function: fn, file, line })) };
  });
  return { loadBias: BigInt(head.loadBias), goVersion: head.goVersion, lines };
}

/** The recordings of the inline fixture as stacks: physical frames innermost first, grouped by site. */
export function recordings(lines: readonly InlineLine[]): InlineLine[][] {
  const out: InlineLine[][] = [];
  for (const l of lines) {
    if (l.index === 0) out.push([]);
    out[out.length - 1]!.push(l);
  }
  return out;
}

/**
 * A recording as the sampler would report it: [0] the "sampled PC" (the fixture's lookupPc, looked up as is),
 * then return addresses (the fixture's pc; the symbolizer looks them up at pc − 1 = lookupPc).
 */
export function asUserStack(rec: readonly InlineLine[]): number[] {
  return rec.map((l, i) => Number(BigInt(i === 0 ? l.lookupPc : l.pc)));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until a thread of pid sleeps writing to a pipe (a held fixture has done all its work). */
export async function waitBlockedInWrite(pid: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let tasks: string[] = [];
    try {
      tasks = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      throw new Error(`process ${pid} is gone`);
    }
    for (const t of tasks) {
      try {
        if (/pipe_write/.test(fs.readFileSync(`/proc/${pid}/task/${t}/wchan`, 'utf8'))) return;
      } catch {
        // thread gone
      }
    }
    if (Date.now() > deadline) throw new Error(`process ${pid} never blocked writing its output`);
    await sleep(5);
  }
}
