// Shared by test/proc: a gate for tests that need root (other processes' /proc entries, mount namespaces,
// ns_last_pid), failing instead of skipping under CI=true; child processes that are always reaped.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { test, type TestContext } from 'node:test';

export function rootTest(name: string, fn: (t: TestContext) => Promise<void> | void): void {
  test(name, async (t) => {
    if (process.getuid?.() !== 0) {
      const why = `needs root (uid ${process.getuid?.()})`;
      if (process.env.CI === 'true') assert.fail(`cannot run (CI=true, nothing may skip): ${why}`);
      t.skip(why);
      return;
    }
    await fn(t);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Spawns a child; kill(child) in a finally reaps it. */
export function start(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  return spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

/** Kills and waits for a child (no zombies left behind). */
export async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}

/** The first line the child prints on stdout. */
export function firstLine(child: ChildProcess, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no output within ${timeoutMs} ms`)), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(buf.slice(0, nl));
      }
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code ?? sig}) before printing a line`));
    });
  });
}

/**
 * Runs `spawnIt` so that the new process gets exactly `pid` (writing pid − 1 to /proc/sys/kernel/ns_last_pid
 * just before). Other processes may take the number first: retried a few times. undefined when it never worked.
 */
export async function spawnWithPid(pid: number, spawnIt: () => ChildProcess): Promise<ChildProcess | undefined> {
  const fs = await import('node:fs');
  for (let attempt = 0; attempt < 20; attempt++) {
    fs.writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
    const child = spawnIt();
    if (child.pid === pid) return child;
    await kill(child);
  }
  return undefined;
}
