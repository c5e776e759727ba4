// Shared by test/bpf: the BPF gate (real BPF as root; under CI=true an unusable machine FAILS the
// test instead of skipping it), selftest.bpf.o's layouts, and small helpers.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { test, type TestContext } from 'node:test';

import { array, bytes, cstring, struct, u16, u32, u64, u8 } from '../../src/bpf/codec';
import { bpfObjectPath, native } from '../../src/bpf/native';

export const SELFTEST = bpfObjectPath('selftest');

// Mirrors bpf/selftest.h.
export const SampleEvent = struct({ pid: u32, tid: u32, cpu: u32, flags: u32, time_ns: u64 });
export const KvKey = struct({ pid: u32, tag: bytes(4) });
export const KvValue = struct({ count: u64, cpu: u16, comm: cstring(6), ids: array(u32, 2) });
export const Tag = array(u8, 4);

let reason: string | undefined | null = null;

/** Why real BPF cannot run here, or undefined when it can. */
export function bpfUnavailable(): string | undefined {
  if (reason !== null) return reason;
  reason = undefined;
  if (process.platform !== 'linux') reason = `BPF needs Linux (this is ${process.platform})`;
  else if (process.getuid?.() !== 0) reason = `BPF tests need root (CAP_BPF, CAP_PERFMON); running as uid ${process.getuid?.()}`;
  else if (!existsSync('/sys/kernel/btf/vmlinux')) reason = 'kernel BTF (/sys/kernel/btf/vmlinux) is missing: CONFIG_DEBUG_INFO_BTF=y needed';
  else if (!existsSync(SELFTEST)) reason = `${SELFTEST} is missing: build it with \`npm run build:bpf\` (or \`npm ci\`)`;
  else {
    try {
      native();
    } catch (err) {
      reason = (err as Error).message;
    }
  }
  return reason;
}

/** A test that needs real BPF: skipped with the reason locally, failed with it under CI=true. */
export function bpfTest(name: string, fn: (t: TestContext) => Promise<void> | void): void {
  test(name, async (t) => {
    const why = bpfUnavailable();
    if (why !== undefined) {
      if (process.env.CI === 'true') assert.fail(`cannot run BPF test (CI=true, nothing may skip): ${why}`);
      t.skip(why);
      return;
    }
    await fn(t);
  });
}

export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until check() is truthy or the deadline passes; returns the last value. */
export async function waitFor<T>(check: () => T, timeoutMs: number, stepMs = 25): Promise<T> {
  const end = Date.now() + timeoutMs;
  let v = check();
  while (!v && Date.now() < end) {
    await sleep(stepMs);
    v = check();
  }
  return v;
}

/** waitFor with an async check. */
export async function waitForAsync(check: () => Promise<boolean>, timeoutMs: number, stepMs = 500): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= end) return false;
    await sleep(stepMs);
  }
}

/** Ids the kernel lists right now (`bpftool -j prog|map show`). */
export function bpftoolIds(kind: 'prog' | 'map'): Set<number> {
  const out = execFileSync('bpftool', ['-j', kind, 'show'], { encoding: 'utf8' });
  return new Set((JSON.parse(out) as Array<{ id: number }>).map((x) => x.id));
}
