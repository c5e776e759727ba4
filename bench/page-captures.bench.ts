// What page captures cost: the agent's memory with captures kept, their sizes (pprof and the flame model the
// page fetches), the time to serve a flame model, and what drawing one costs a real Chromium. Node-wide CPU and
// off-CPU captures while three different Go programs run (a CPU-bound one, an HTTP server with deep stacks, a
// garbage churner), so the profiles hold many distinct stacks.
//   npm run build && node dist/bench/page-captures.bench.js [CAPTURES] [SECONDS]
// Prints numbers; asserts nothing.

import { ChildProcess, spawn } from 'node:child_process';
import { startAgentProcess, median } from './support/agent';
import { memoryMiB } from './support/proc-stats';
import { buildFixture, newestToolchain } from '../test/support/go-toolchains';
import { launchBrowser } from '../test/support/browser';
import type { CaptureInfo, CaptureList } from '../src/server/api-types';

const CAPTURES = Number(process.argv[2] ?? 8);
const SECONDS = Number(process.argv[3] ?? 5);

const rssMiB = (pid: number): number => memoryMiB(pid).rss;

async function captureAndWait(url: string, kind: 'cpu' | 'offcpu'): Promise<CaptureInfo> {
  const r = await fetch(`${url}/api/captures`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ kind, seconds: SECONDS }) });
  const { capture } = (await r.json()) as { capture: CaptureInfo };
  for (;;) {
    await new Promise((res) => setTimeout(res, 250));
    const c = ((await (await fetch(`${url}/api/captures`)).json()) as CaptureList).captures.find((x) => x.id === capture.id);
    if (c && c.state !== 'running') return c;
  }
}

async function main(): Promise<void> {
  const go = newestToolchain().version;
  const procs: ChildProcess[] = [
    spawn(buildFixture({ go, fixture: 'hot', mode: 'plain' }), ['-leaf', '1', '-framed', '1', '-sleeper', '4'], { stdio: 'ignore' }),
    spawn(buildFixture({ go, fixture: 'shapes', mode: 'plain' }), ['-shape', 'deep-servehttp'], { stdio: ['pipe', 'ignore', 'ignore'] }),
    spawn(buildFixture({ go, fixture: 'shapes', mode: 'plain' }), ['-shape', 'gc-pressure'], { stdio: ['pipe', 'ignore', 'ignore'] }),
  ];
  const agent = await startAgentProcess(['--keep-captures', String(CAPTURES + 2), '--keep-captures-mib', '64']);
  try {
    // Warm up (kallsyms, symbol tables, JIT) with one capture that is not kept in the numbers.
    await captureAndWait(agent.url, 'cpu');
    // Baseline in the same run: the same captures through /debug/pprof (nothing kept, no flame model, no diagnosis).
    const rssBase0 = rssMiB(agent.proc.pid!);
    for (let i = 0; i < CAPTURES; i++) {
      const endpoint = i % 4 === 3 ? 'offcpu' : 'profile';
      await (await fetch(`${agent.url}/debug/pprof/${endpoint}?seconds=${SECONDS}`)).arrayBuffer();
    }
    const rssBase1 = rssMiB(agent.proc.pid!);
    console.log(`baseline: ${CAPTURES} captures through /debug/pprof: agent RSS ${rssBase0.toFixed(1)} → ${rssBase1.toFixed(1)} MiB`);
    const rss0 = rssMiB(agent.proc.pid!);
    const rows: Array<{ kind: string; samples: number; pprof: number; flame: number; flameMs: number; rss: number }> = [];
    for (let i = 0; i < CAPTURES; i++) {
      const kind = i % 4 === 3 ? 'offcpu' : 'cpu';
      const c = await captureAndWait(agent.url, kind);
      const t0 = performance.now();
      const flame = await (await fetch(`${agent.url}/api/captures/${c.id}/flame`)).text();
      const flameMs = performance.now() - t0;
      rows.push({ kind, samples: c.samples, pprof: c.bytes, flame: flame.length, flameMs, rss: rssMiB(agent.proc.pid!) });
    }
    console.log('kind    samples  pprof KiB  flame JSON KiB  flame ms  agent RSS MiB');
    for (const r of rows) {
      console.log(`${r.kind.padEnd(7)} ${String(r.samples).padStart(7)} ${(r.pprof / 1024).toFixed(1).padStart(10)} ${(r.flame / 1024).toFixed(1).padStart(15)} ${r.flameMs.toFixed(1).padStart(9)} ${r.rss.toFixed(1).padStart(14)}`);
    }
    const kept = ((await (await fetch(`${agent.url}/api/captures`)).json()) as CaptureList).captures;
    const keptBytes = kept.reduce((n, c) => n + c.bytes, 0);
    const rss1 = rssMiB(agent.proc.pid!);
    console.log(`kept: ${kept.length} captures, ${(keptBytes / 1024).toFixed(1)} KiB of pprof; agent RSS ${rss0.toFixed(1)} → ${rss1.toFixed(1)} MiB (page captures +${(rss1 - rss0).toFixed(1)} MiB vs /debug/pprof +${(rssBase1 - rssBase0).toFixed(1)} MiB)`);
    console.log(`flame JSON / pprof (gzipped): median ×${median(rows.map((r) => r.flame / r.pprof)).toFixed(1)}; flame model served in median ${median(rows.map((r) => r.flameMs)).toFixed(1)} ms`);

    // The page: load it, then draw the largest capture kept and time it (fetch + tree + SVG).
    const browser = await launchBrowser();
    try {
      const page = await browser.context.newPage();
      const cdp = await browser.context.newCDPSession(page);
      await cdp.send('Performance.enable');
      const t0 = performance.now();
      await page.goto(agent.url);
      await page.locator('#flame g.frame').first().waitFor();
      const firstDraw = performance.now() - t0;
      const largest = [...kept].sort((a, b) => b.bytes - a.bytes)[0]!;
      const draws: number[] = [];
      for (let i = 0; i < 5; i++) {
        const other = kept.find((c) => c.id !== largest.id)!;
        await page.click(`#captures tr[data-id="${other.id}"]`);
        await page.locator('#flame-title', { hasText: other.kind === 'cpu' ? 'CPU of node' : 'off-CPU of node' }).waitFor();
        const t = performance.now();
        await page.click(`#captures tr[data-id="${largest.id}"]`);
        // (The page's CSP forbids evaluating strings: wait with locators.)
        await page.locator(`#captures tr.selected[data-id="${largest.id}"]`).waitFor();
        await page.locator('#flame g.frame').first().waitFor();
        draws.push(performance.now() - t);
      }
      const frames = await page.locator('#flame g.frame').count();
      const metrics = (await cdp.send('Performance.getMetrics')) as { metrics: Array<{ name: string; value: number }> };
      const heap = metrics.metrics.find((m) => m.name === 'JSHeapUsedSize')!.value / (1 << 20);
      const nodes = metrics.metrics.find((m) => m.name === 'Nodes')!.value;
      console.log(`page: first load to first frame ${firstDraw.toFixed(0)} ms; drawing the largest capture (${(largest.bytes / 1024).toFixed(1)} KiB pprof, ${largest.samples} samples, ${frames} frames drawn) median ${median(draws).toFixed(0)} ms; JS heap ${heap.toFixed(1)} MiB, ${nodes} DOM nodes`);
    } finally {
      await browser.close();
    }
  } finally {
    await agent.stop();
    for (const p of procs) p.kill('SIGKILL');
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
