// A bpftrace script as an oracle: run it beside the code under test, read what it printed (JSON output).
// Windows are marked by syscalls the test makes: kill(MARK_ON, 0) and kill(MARK_OFF, 0) fail with ESRCH (no such
// pid) but still pass the sys_enter_kill tracepoint, so the script's window is exactly the one the test measures.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';

import { sleep, waitFor } from '../bpf/support';

export const MARK_ON = 2147483600;
export const MARK_OFF = 2147483601;

/**
 * Probes for a script: prints "ready" once attached, sets @on between the markers, prints "on", exits at MARK_OFF.
 * Only this process's markers count: another test run on the machine at the same time must not move the window.
 */
export const MARKER_PROBES = `
BEGIN { printf("ready\\n"); }
tracepoint:syscalls:sys_enter_kill /args->sig == 0 && args->pid == ${MARK_ON} && pid == ${process.pid}/ { @on = 1; printf("on\\n"); }
tracepoint:syscalls:sys_enter_kill /args->sig == 0 && args->pid == ${MARK_OFF} && pid == ${process.pid}/ { @on = 0; exit(); }
`;

/** Makes the marker syscall (see MARK_ON, MARK_OFF). */
export function mark(pid: typeof MARK_ON | typeof MARK_OFF): void {
  try {
    process.kill(pid, 0);
  } catch {
    // ESRCH: the syscall is the marker
  }
}

export function stopChild(p: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.once('exit', () => resolve());
    p.kill(signal);
  });
}

export class Bpftrace {
  private readonly proc: ChildProcess;
  private readonly lines: Array<{ type: string; data: unknown }> = [];
  private stderr = '';
  private readonly exited: Promise<number | null>;

  constructor(script: string) {
    this.proc = spawn('bpftrace', ['-B', 'line', '-f', 'json', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.proc.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line.startsWith('{')) this.lines.push(JSON.parse(line) as { type: string; data: unknown });
      }
    });
    this.proc.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
  }

  async waitPrintf(text: string, timeoutMs: number): Promise<void> {
    const seen = await waitFor(() => this.lines.some((l) => l.type === 'printf' && l.data === `${text}\n`), timeoutMs);
    assert.ok(seen, `bpftrace did not print '${text}' within ${timeoutMs} ms (exit ${this.proc.exitCode}); stderr:\n${this.stderr}`);
  }

  /** Waits for the script to exit (0), then returns what it printed of `type` (e.g. 'hist', 'map') for map `name`. */
  async printed(type: string, name: string, timeoutMs: number): Promise<unknown> {
    const code = await Promise.race([this.exited, sleep(timeoutMs).then(() => 'timeout' as const)]);
    assert.equal(code, 0, `bpftrace: exit ${code}; stderr:\n${this.stderr}`);
    const line = this.lines.find((l) => l.type === type && name in (l.data as Record<string, unknown>));
    assert.ok(line, `bpftrace printed no ${type} ${name}; stderr:\n${this.stderr}`);
    return (line.data as Record<string, unknown>)[name];
  }

  async kill(): Promise<void> {
    await stopChild(this.proc, 'SIGKILL');
  }
}
