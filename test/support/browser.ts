// A real headless Chromium (Debian's `chromium`) driven by playwright-core, for the page's tests. Each launch gets
// a fresh profile directory and the flags that keep Chromium off the network (no component updates, no sync, no
// QUIC probing) and working as root in a container (--no-sandbox). Without Chromium the tests fail under CI=true
// (scripts/install-system-deps.sh installs it) and are skipped with the reason otherwise.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { chromium, type BrowserContext } from 'playwright-core';
import { bpfUnavailable } from '../bpf/support';
import { repoRoot } from './go-toolchains';

export const CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function chromiumUnavailable(): string | undefined {
  if (!fs.existsSync(CHROMIUM)) return `${CHROMIUM} is missing: install Debian's chromium (scripts/install-system-deps.sh)`;
  return undefined;
}

/** A test that needs Chromium and, like every agent test, real BPF as root. */
export function browserTest(name: string, fn: (t: TestContext) => Promise<void>): void {
  test(name, async (t) => {
    const why = bpfUnavailable() ?? chromiumUnavailable();
    if (why !== undefined) {
      if (process.env['CI'] === 'true') throw new Error(why);
      t.skip(why);
      return;
    }
    await fn(t);
  });
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** `httpCredentials`: what the browser answers an HTTP auth challenge with (Basic, as a person would type it). */
export async function launchBrowser(opts: { httpCredentials?: { username: string; password: string } } = {}): Promise<Browser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1600, height: 1000 },
    acceptDownloads: true,
    timeout: 60_000,
    ...(opts.httpCredentials ? { httpCredentials: opts.httpCredentials } : {}),
  });
  return {
    context,
    close: async () => {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Where tests leave screenshots for people to look at: dist/screenshots/NAME.png (dist/ is not committed). */
export function screenshotPath(name: string): string {
  const dir = path.join(repoRoot(), 'dist', 'screenshots');
  fs.mkdirSync(dir, { recursive: true });
  return path.join(dir, `${name}.png`);
}
