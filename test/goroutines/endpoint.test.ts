// GET /debug/pprof/goroutine?pid=P on the real agent and `quietflame goroutines PID`, against the parked fixture's
// own runtime.Stack(all): debug=2 parses into the same goroutines, debug=1 counts them as Go does, debug=0 is a
// goroutine profile go tool pprof reads without a warning. Then the errors: each with its status, and the agent
// keeps serving.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseGoroutineDump } from '../../src/goroutines/parse';
import { expectPprofError, goTool, readPprof, sampleCount, startAgent } from '../support/agent';
import { runCli } from '../support/cli';
import { startParked } from '../support/parked';

/** IDs of the program's own parked goroutines (not the one printing the dump) that `ours` also has. */
function sharedIds(oursText: string, ownText: string): { own: number; shared: number } {
  const ours = new Set(parseGoroutineDump(oursText).goroutines.map((g) => g.id));
  const own = parseGoroutineDump(ownText).goroutines.filter((g) => g.state !== 'running');
  return { own: own.length, shared: own.filter((g) => ours.has(g.id)).length };
}

test('the agent serves every goroutine of a Go process as debug=2, debug=1 and a pprof goroutine profile', async () => {
  const parked = await startParked('1.26', 'stripped-pie', 2);
  const agent = await startAgent();
  try {
    const url = `${agent.url}/debug/pprof/goroutine?pid=${parked.pid}`;
    const r2 = await fetch(`${url}&debug=2`);
    assert.equal(r2.status, 200);
    assert.match(r2.headers.get('content-type') ?? '', /^text\/plain/);
    const text2 = await r2.text();
    const { own, shared } = sharedIds(text2, await parked.ownDump());
    assert.ok(own >= 30 && shared >= 0.99 * own, `${shared} of the program's ${own} goroutines in debug=2`);
    assert.match(text2, /^goroutine \d+ \[chan send\]:\nmain\./m);
    assert.match(text2, /^created by main\.\S+ in goroutine \d+$/m);

    // traceback=system: the runtime's own goroutines too (a GC worker or the finalizer goroutine).
    const sys = await (await fetch(`${url}&debug=2&traceback=system`)).text();
    assert.ok(parseGoroutineDump(sys).goroutines.length > parseGoroutineDump(text2).goroutines.length, 'more goroutines at traceback=system');
    assert.match(sys, /^runtime\.gopark\(/m);

    const text1 = await (await fetch(`${url}&debug=1`)).text();
    const total = Number(/^goroutine profile: total (\d+)\n/.exec(text1)?.[1]);
    const counted = [...text1.matchAll(/^(\d+) @( 0x[0-9a-f]+)+$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    assert.ok(total > 0 && counted === total, `debug=1: total ${total}, stacks count ${counted}`);
    assert.match(text1, /^#\t0x[0-9a-f]+\tmain\.\S+\+0x[0-9a-f]+\t\S+\.go:\d+$/m);

    const { profile, bytes } = await readPprof(await fetch(url), 'debug=0');
    assert.deepEqual(profile.sampleType.map((t) => `${profile.stringTable[t.type]}/${profile.stringTable[t.unit]}`), ['goroutine/count']);
    assert.equal(sampleCount(profile), total, 'debug=0 counts the goroutines debug=1 counts');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-goroutine-'));
    try {
      fs.writeFileSync(path.join(dir, 'goroutine.pb.gz'), bytes);
      const top = goTool(['pprof', '-top', '-tagfocus=state=waiting', path.join(dir, 'goroutine.pb.gz')]);
      assert.equal(top.status, 0, top.stderr);
      assert.doesNotMatch(top.stderr, /warning|error/i, 'go tool pprof reads it without a warning');
      assert.match(top.stdout, /runtime\.gopark|main\./);
      const tags = goTool(['pprof', '-tags', path.join(dir, 'goroutine.pb.gz')]);
      assert.match(tags.stdout, /wait_reason: .*chan send/s, 'wait_reason labels');
      assert.match(tags.stdout, /worker: .*w1/s, 'the goroutines\' own pprof labels');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    parked.stop();
    await agent.stop();
  }
});

test('goroutine requests that cannot be answered: status and one line each, and the agent keeps serving', async () => {
  const agent = await startAgent();
  const sleeper = spawn('sleep', ['60']);
  try {
    const base = `${agent.url}/debug/pprof/goroutine`;
    assert.match(await expectPprofError(await fetch(base), 400, 'no pid'), /^pid: required/);
    assert.match(await expectPprofError(await fetch(`${base}?pid=1&debug=3`), 400, 'debug=3'), /^debug="3": expected 0/);
    assert.match(await expectPprofError(await fetch(`${base}?pid=1&traceback=crash`), 400, 'traceback=crash'), /^traceback="crash"/);
    assert.match(await expectPprofError(await fetch(`${base}?pid=1&seconds=5`), 400, 'seconds'), /^seconds: goroutine dumps are snapshots/);
    assert.match(await expectPprofError(await fetch(`${base}?pid=1073741000`), 404, 'no such pid'), /no such process/);
    const notGo = await expectPprofError(await fetch(`${base}?pid=${sleeper.pid}&debug=2`), 422, 'not Go');
    assert.match(notGo, new RegExp(`^pid ${sleeper.pid} \\(\\S*sleep\\) is not a Go program`));
    assert.equal(notGo.trim().split('\n').length, 1, 'one line');
    assert.equal((await fetch(`${agent.url}/healthz`)).status, 200);
  } finally {
    sleeper.kill('SIGKILL');
    await agent.stop();
  }
});

test('quietflame goroutines PID prints what the program would print, and fails with one line when it cannot', async () => {
  const parked = await startParked('1.23', 'plain', 1);
  try {
    const r = runCli(['goroutines', String(parked.pid)]);
    assert.equal(r.status, 0, r.stderr);
    const { own, shared } = sharedIds(r.stdout, await parked.ownDump());
    assert.ok(own >= 15 && shared >= 0.99 * own, `${shared} of the program's ${own} goroutines`);
    const counts = runCli(['goroutines', String(parked.pid), '--debug', '1']);
    assert.match(counts.stdout, /^goroutine profile: total \d+\n/);
  } finally {
    parked.stop();
  }
  const gone = runCli(['goroutines', '1073741000']);
  assert.equal(gone.status, 1);
  assert.match(gone.stderr, /^quietflame goroutines: pid 1073741000: no such process.*\n$/);
  const bad = runCli(['goroutines', '--debug', '9', '1']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--debug 9: expected 0, 1 or 2/);
});
