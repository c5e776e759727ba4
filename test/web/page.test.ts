// The page in a real headless Chromium against the real agent (real BPF) and a real Go program: pick the process,
// capture, watch the progress, read the flame graph (the hot functions by name, kernel and inlined frames told
// apart), search, filter by goroutine, download the pprof, reload and find the captures kept.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { Locator, Page } from 'playwright-core';
import { decodePprof } from '../../src/profile/pprof';
import { startAgent } from '../support/agent';
import { browserTest, launchBrowser, screenshotPath } from '../support/browser';
import { buildFixture, newestToolchain } from '../support/go-toolchains';
import { startShape } from '../diagnose/support';

interface HotInfo {
  pid: number;
  workers: Array<{ role: string; goid: number; stack: string[] }>;
}

async function startHot(): Promise<{ kill(): void; info: HotInfo }> {
  const binary = buildFixture({ go: newestToolchain().version, fixture: 'hot', mode: 'plain' });
  const proc = spawn(binary, [], { stdio: ['ignore', 'pipe', 'inherit'] });
  const first = await readline.createInterface({ input: proc.stdout! })[Symbol.asyncIterator]().next();
  return { kill: () => proc.kill('SIGKILL'), info: JSON.parse(first.value as string) as HotInfo };
}

/** Name and fill of every frame (svg g) whose label (its title) contains `text`. Runs in the page. */
async function framesLabelled(page: Page, text: string): Promise<Array<{ name: string; fill: string }>> {
  return page.evaluate(`[...document.querySelectorAll('#flame g.frame')]
    .filter((g) => (g.querySelector('title')?.textContent ?? '').includes(${JSON.stringify(text)}))
    .map((g) => ({ name: g.getAttribute('name') ?? '', fill: g.querySelector('rect')?.getAttribute('fill') ?? '' }))`);
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Selects a process in the list; the agent lists it once it has seen it (exec events, or its scan). */
async function pickProcess(page: Page, pid: number): Promise<Locator> {
  const row = page.locator(`#processes tr[data-pid="${pid}"]`);
  for (let i = 0; i < 50 && (await row.count()) === 0; i++) {
    await page.click('#refresh-processes');
    await page.waitForTimeout(200);
  }
  await row.click();
  return row;
}

async function capture(page: Page, pid: number, kind: 'cpu' | 'offcpu', seconds: number): Promise<void> {
  await page.selectOption('#kind', kind);
  await page.fill('#seconds', String(seconds));
  await page.click('#capture');
  // Progress is shown while it runs, then the graph of this capture replaces whatever was shown.
  await page.waitForSelector('#progress-box:not([hidden])', { timeout: 5000 });
  assert.match((await page.textContent('#progress-text')) ?? '', /^capturing \d+\.\d \/ \d+ s, \d+ samples$/);
  const what = kind === 'cpu' ? 'CPU' : 'off-CPU';
  await page.locator('#flame-title', { hasText: new RegExp(`^${escape(what)} of ${pid} `) }).waitFor({ timeout: (seconds + 30) * 1000 });
  assert.equal(await page.isHidden('#progress-box'), true);
}

browserTest('the page captures a Go process, shows the hot function by name, searches, filters by goroutine, downloads the pprof', async () => {
  const agent = await startAgent(['--keep-captures', '4']);
  const hot = await startHot();
  const browser = await launchBrowser();
  const errors: string[] = [];
  try {
    const page = await browser.context.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
    await page.goto(agent.url);
    const row = await pickProcess(page, hot.info.pid);
    assert.match((await row.textContent()) ?? '', /hot.*go1\.\d+/);

    await capture(page, hot.info.pid, 'cpu', 3);
    const leaf = page.locator('#flame g.frame[name="main.leafSpin"]');
    assert.equal(await leaf.count(), 1);
    await leaf.locator('div.d3-flame-graph-label').waitFor({ state: 'visible' });
    let width = 0;
    for (let i = 0; i < 30 && width <= 100; i++, await page.waitForTimeout(100)) width = Number(await leaf.locator('rect').getAttribute('width'));
    assert.ok(width > 100, `main.leafSpin is ${width} px wide (it has about half the CPU of a 1000 px graph)`);
    assert.equal(await leaf.locator('div.d3-flame-graph-label').textContent(), 'main.leafSpin');
    assert.equal(await page.locator('#flame g.frame[name="main.framedHash"]').count(), 1);

    await page.fill('#search', 'leafspin');
    await page.locator('#search-result', { hasText: 'main.leafSpin' }).waitFor();
    const found = (await page.textContent('#search-result')) ?? '';
    const share = Number(/([\d.]+)% of the time shown/.exec(found)?.[1]);
    assert.ok(share > 20 && share < 80, found);
    assert.equal((await leaf.locator('rect').getAttribute('fill'))?.toUpperCase(), '#E600E6', 'the match is highlighted');
    assert.match((await page.textContent('#findings')) ?? '', /No rule fired/);
    await page.screenshot({ path: screenshotPath('page-cpu'), fullPage: true });

    // Only the framed worker's goroutine: its functions stay, the leaf worker's go.
    const framed = hot.info.workers.find((w) => w.role === 'framed')!;
    await page.selectOption('#filter-key', 'goid');
    await page.selectOption('#filter-value', String(framed.goid));
    await page.click('#filter-add');
    await page.locator('#flame-title', { hasText: `filtered: goid=${framed.goid}` }).waitFor();
    assert.equal(await page.locator('#flame g.frame[name="main.leafSpin"]').count(), 0);
    assert.equal(await page.locator('#flame g.frame[name="main.framedHash"]').count(), 1);
    await page.click('#filters .chip button');
    await page.locator('#flame g.frame[name="main.leafSpin"]').waitFor();

    // The download is the capture's pprof, as GET /api/captures/ID serves it.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    const bytes = fs.readFileSync((await download.path())!);
    const p = decodePprof(bytes);
    assert.ok(p.function.some((f) => p.stringTable[f.name] === 'main.leafSpin'));
    const list = (await (await fetch(`${agent.url}/api/captures`)).json()) as { captures: Array<{ id: string; state: string; pid: number }> };
    assert.equal(list.captures.length, 1);
    assert.deepEqual(Buffer.from(await (await fetch(`${agent.url}/api/captures/${list.captures[0]!.id}`)).arrayBuffer()), bytes);

    // Off-CPU: the sleeper's kernel frames (nanosleep, futex) and the runtime's inlined calls, each in its colour.
    await page.fill('#search', '');
    await capture(page, hot.info.pid, 'offcpu', 2);
    const kernel = await framesLabelled(page, ' [kernel]');
    assert.ok(kernel.length > 0 && kernel.every((f) => f.fill.startsWith('hsl(210')), JSON.stringify(kernel.slice(0, 5)));
    assert.ok(kernel.some((f) => /^(__x64_sys_|do_syscall_64|entry_SYSCALL)/.test(f.name)), JSON.stringify(kernel.map((f) => f.name)));
    const inlined = await framesLabelled(page, ' (inlined)');
    assert.ok(inlined.length > 0 && inlined.every((f) => f.fill.startsWith('hsl(175')), JSON.stringify(inlined.slice(0, 5)));
    const user = await framesLabelled(page, 'runtime.mstart —'); // threads wait on g0's stack: no goroutine frames here
    assert.ok(user.length > 0 && user.every((f) => !/^hsl\((210|175)/.test(f.fill)), JSON.stringify(user));
    await page.screenshot({ path: screenshotPath('page-offcpu'), fullPage: true });

    // A reload (or a second person) finds both captures.
    await page.reload();
    await page.locator('#captures tbody tr').nth(1).waitFor();
    assert.equal(await page.locator('#captures tbody tr').count(), 2);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    hot.kill();
    await agent.stop();
  }
});

browserTest('the diagnosis of a capture is shown beside its flame graph', async () => {
  const agent = await startAgent();
  const fx = await startShape('scheduler-thrash');
  const browser = await launchBrowser();
  try {
    const page = await browser.context.newPage();
    await page.goto(agent.url);
    await pickProcess(page, fx.pid);
    await capture(page, fx.pid, 'cpu', 3);
    const card = page.locator('#findings .finding[data-rule="scheduler-thrash"]');
    await card.waitFor({ state: 'visible' });
    assert.match((await card.textContent()) ?? '', /of the CPU is in the Go scheduler/);
    assert.match((await card.locator('.sev').textContent()) ?? '', /^(warning|critical)$/);
    assert.ok((await card.locator('li code').count()) > 0, 'the functions that fired it are listed');
    assert.match((await page.textContent('#captures tbody tr')) ?? '', /⚑ \d/);
    await page.screenshot({ path: screenshotPath('page-findings'), fullPage: true });
  } finally {
    await browser.close();
    fx.kill();
    await agent.stop();
  }
});

browserTest('behind the agent\'s token the page works for a browser that answers the challenge, and nothing of it is served without', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-page-token-'));
  const tokenFile = path.join(dir, 'token');
  const token = randomBytes(24).toString('hex');
  fs.writeFileSync(tokenFile, token + '\n');
  const agent = await startAgent(['--token-file', tokenFile]);
  const hot = await startHot();
  const withToken = await launchBrowser({ httpCredentials: { username: 'someone', password: token } });
  const without = await launchBrowser();
  try {
    for (const url of ['/', '/assets/app.js', '/assets/vendor.js', '/api/processes', '/api/captures']) {
      assert.equal((await fetch(agent.url + url)).status, 401, url);
    }
    // A browser without the token is asked for it and gets nothing (Chromium gives up the navigation).
    await assert.rejects((await without.context.newPage()).goto(agent.url), /ERR_INVALID_AUTH_CREDENTIALS|401/);

    const page = await withToken.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(agent.url);
    await pickProcess(page, hot.info.pid);
    await capture(page, hot.info.pid, 'cpu', 2); // POST, polling and the flame model all pass the check
    await page.locator('#flame g.frame[name="main.leafSpin"]').waitFor();
    assert.deepEqual(errors, []);
  } finally {
    await withToken.close();
    await without.close();
    hot.kill();
    await agent.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
