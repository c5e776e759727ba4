// Oracle: a real program's own traceback. GOTRACEBACK=system and SIGQUIT make the Go runtime print every frame
// of every goroutine with its pc; `quietflame addr2line --inline` must name, for every physical frame, the same
// functions (the calls inlined there included) at the same file:line. The programs are the hard case: linked by
// the C linker and stripped — Debian's prometheus (C start-up code before runtime.text, no .symtab) and fixtures
// built -linkmode=external -s -w as PIE. Go's own `go tool addr2line` is checked on the same addresses, to keep
// the README's statement about it true: where the binary has a .gopclntab section it takes .text's start as the
// base of the table's function offsets (the runtime uses runtime.text), so where C code comes first its answers are
// other functions' names (prometheus, go1.26 external PIEs); go1.19's stripped external PIEs have no such section
// and it answers `?`.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { GoBinary } from '../../src/gosym/binary';
import { buildFixture, goToolAddr2line, newestToolchain, requireToolchain } from '../support/go-toolchains';
import { runCli } from '../support/cli';
import { PROMETHEUS } from '../support/prometheus';

interface TraceFrame {
  function: string;
  file: string;
  line: number;
}

/** One physical frame of a traceback: its pc, and the frames printed for it (inlined calls first). */
interface PhysicalFrame {
  pc: number;
  /** pc − the function's entry (the "+0x…"). */
  off: number;
  /** The pc is where a signal stopped the goroutine, not a return address: Go symbolizes it as is. */
  trap: boolean;
  frames: TraceFrame[];
}

const FUNC_LINE = /^(\S.*)\((.*)\)$/;
const POS_LINE = /^\t(.+):(\d+)(?: \+0x([0-9a-f]+))?(?: fp=0x[0-9a-f]+ sp=0x[0-9a-f]+ pc=0x([0-9a-f]+))?$/;
/**
 * Frames injected by a signal, after which the runtime prints the frame below at its pc as is (it was stopped
 * there, not at a call). Since go1.21's unwinder that is every injected call; before, only sigpanic: go1.15–1.20
 * print a frame stopped by asynchronous preemption at the line of pc−1.
 */
function injectedFrames(goMinor: number): Set<string> {
  return new Set(goMinor >= 21 ? ['runtime.sigpanic', 'runtime.asyncPreempt', 'runtime.debugCallV2'] : ['runtime.sigpanic']);
}

/** The physical frames of a GOTRACEBACK=system dump printed by a program of go1.GOMINOR. */
function parseTraceback(text: string, goMinor: number): PhysicalFrame[] {
  const injected = injectedFrames(goMinor);
  const out: PhysicalFrame[] = [];
  let pending: TraceFrame[] = [];
  let fn: string | undefined;
  let firstOfSignalled = false;
  let sawSignal = false;
  let previous: string | undefined;
  for (const line of text.split('\n')) {
    if (/^PC=0x/.test(line)) sawSignal = true;
    if (/^goroutine \d+/.test(line)) {
      // The first goroutine printed after "PC=…" is the one the signal stopped, unless it was in a system call:
      // then the runtime starts from where it entered the call (g.syscallpc, a return address) and drops the trap
      // flag (traceback1: _Gsyscall). The signal can land on the thread blocked for os/signal's receiver.
      firstOfSignalled = sawSignal && out.length === 0 && !/^goroutine \d+ \[syscall/.test(line);
      pending = [];
      previous = undefined;
      continue;
    }
    const f = FUNC_LINE.exec(line);
    if (f && !line.startsWith('created by')) {
      fn = f[1]!;
      continue;
    }
    const p = POS_LINE.exec(line);
    if (!p || fn === undefined) {
      fn = undefined;
      continue;
    }
    pending.push({ function: fn, file: p[1]!, line: Number(p[2]) });
    fn = undefined;
    if (p[4] === undefined) continue; // an inlined call: its physical frame follows
    const trap = firstOfSignalled || (previous !== undefined && injected.has(previous));
    out.push({ pc: parseInt(p[4], 16), off: parseInt(p[3] ?? '0', 16), trap, frames: pending });
    previous = pending[pending.length - 1]!.function;
    pending = [];
    firstOfSignalled = false;
  }
  return out;
}

/** The pc Go symbolizes a frame at (runtime.unwinder.symPC): a return address backs up into its call. */
function symPc(f: PhysicalFrame): number {
  return !f.trap && f.off > 0 ? f.pc - 1 : f.pc;
}

/** Starts a Go program with GOTRACEBACK=system, waits until `ready` sees its stderr so far, sends SIGQUIT, returns its dump and load bias. */
async function quitDump(cmd: string, args: string[], ready: (stdout: string, stderr: string) => boolean): Promise<{ dump: string; bias: number }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GOTRACEBACK: 'system' } });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const deadline = Date.now() + 60_000;
    while (!ready(out, err)) {
      assert.ok(child.exitCode === null && child.signalCode === null, `${cmd} exited: ${err.slice(-2000)}`);
      assert.ok(Date.now() < deadline, `${cmd} not ready after 60 s: ${err.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // Load bias: where file offset 0 is mapped, less the first PT_LOAD's link-time address.
    const exe = fs.realpathSync(cmd);
    const maps = fs.readFileSync(`/proc/${child.pid}/maps`, 'utf8').split('\n');
    const first = maps.map((l) => l.split(/\s+/)).find((c) => c[5] === exe && c[2] === '00000000');
    assert.ok(first, `no mapping of ${exe} at offset 0`);
    const bin = GoBinary.open(exe);
    const bias = parseInt(first[0]!.split('-')[0]!, 16) - bin.baseVaddr;
    bin.close();
    child.kill('SIGQUIT');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
    return { dump: err, bias };
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

interface Checked {
  frames: number;
  goWrong: number;
  goUnknown: number;
}

/** Every physical frame of the dump through `quietflame addr2line --inline`, and through `go tool addr2line` GO. */
function check(t: TestContext, what: string, binary: string, dump: string, bias: number, goBins: string[]): Checked[] {
  const bin = GoBinary.open(binary);
  const goMinor = bin.version.minor;
  bin.close();
  const frames = parseTraceback(dump, goMinor);
  assert.ok(frames.length >= 30, `${what}: only ${frames.length} frames with a pc in the dump:\n${dump.slice(0, 3000)}`);
  assert.ok(frames.some((f) => f.frames.length > 1), `${what}: no inlined call in the dump`);
  const addrs = frames.map((f) => '0x' + (symPc(f) - bias).toString(16));
  const r = runCli(['addr2line', '--inline', binary], addrs.join('\n') + '\n');
  assert.equal(r.status, 0, r.stderr);
  const answers = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { pc: string; frames: TraceFrame[] });
  assert.equal(answers.length, frames.length);
  const wrong: string[] = [];
  frames.forEach((f, i) => {
    const want = f.frames.map((x) => `${x.function} ${x.file}:${x.line}`);
    const got = answers[i]!.frames.map((x) => `${x.function} ${x.file}:${x.line}`);
    if (want.join('\n') !== got.join('\n')) wrong.push(`${addrs[i]}: traceback ${JSON.stringify(want)}, addr2line ${JSON.stringify(got)}`);
  });
  t.diagnostic(`${what}: ${frames.length} frames (${frames.filter((f) => f.frames.length > 1).length} with inlined calls), quietflame addr2line agrees on ${frames.length - wrong.length}`);
  assert.deepEqual(wrong.slice(0, 10), [], `${what}: ${wrong.length} frames differ`);

  // go tool addr2line prints one function (the physical one) and the innermost file:line.
  return goBins.map((goBin) => {
    const lines = goToolAddr2line(goBin, binary, addrs).split('\n');
    let goWrong = 0;
    let goUnknown = 0;
    frames.forEach((f, i) => {
      const [name, pos] = [lines[2 * i], lines[2 * i + 1]];
      const inner = f.frames[0]!;
      if (name === '?') goUnknown++;
      else if (name !== f.frames[f.frames.length - 1]!.function || pos !== `${inner.file}:${inner.line}`) goWrong++;
    });
    t.diagnostic(`${what}: go tool addr2line (${path.basename(path.dirname(path.dirname(goBin)))}): ${goWrong} of ${frames.length} frames wrong, ${goUnknown} answered ?`);
    return { frames: frames.length, goWrong, goUnknown };
  });
}

/**
 * What go tool addr2line makes of a binary, from its layout: without a .gopclntab section (Go ≤ 1.2x's -s -w
 * external PIEs keep the table inside .data.rel.ro) it finds no table and answers ?; with one, it takes .text's
 * start as the base of the table's function offsets, so where the C linker put code before runtime.text every
 * answer is wrong.
 */
function goToolExpectation(binary: string): '?' | 'wrong' | 'right' {
  const bin = GoBinary.open(binary);
  try {
    if (bin.elf.section('.gopclntab') === undefined) return '?';
    return bin.textStart > bin.elf.section('.text')!.addr ? 'wrong' : 'right';
  } finally {
    bin.close();
  }
}

function expectGoTool(binary: string, c: Checked): void {
  const want = goToolExpectation(binary);
  const right = c.frames - c.goWrong - c.goUnknown;
  if (want === '?') assert.equal(c.goUnknown, c.frames, `go tool addr2line answered ${c.frames - c.goUnknown} of ${c.frames} frames; expected ? (no .gopclntab)`);
  else if (want === 'wrong') assert.ok(c.goWrong >= 0.9 * c.frames, `go tool addr2line got ${right} of ${c.frames} frames right; expected wrong (runtime.text after .text)`);
  else assert.equal(right, c.frames, `go tool addr2line got ${right} of ${c.frames} frames right`);
}

test('addr2line agrees with Debian\'s prometheus\'s own traceback; go tool addr2line names other functions there', { timeout: 180_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qf-a2l-'));
  try {
    const { dump, bias } = await quitDump(
      PROMETHEUS,
      [`--storage.tsdb.path=${path.join(dir, 'data')}`, '--web.listen-address=127.0.0.1:0', `--config.file=${path.join(dir, 'p.yml')}`],
      (_, err) => {
        if (!fs.existsSync(path.join(dir, 'p.yml'))) fs.writeFileSync(path.join(dir, 'p.yml'), 'global:\n  scrape_interval: 1s\n');
        return err.includes('Server is ready to receive web requests');
      },
    );
    assert.equal(bias, 0, 'prometheus is not PIE: runtime addresses are link-time addresses');
    const goBins = [newestToolchain().goBin, requireToolchain('1.19').goBin];
    // runtime.text is 0x100 past .text here: go tool addr2line's answers are functions 256 bytes earlier.
    assert.equal(goToolExpectation(PROMETHEUS), 'wrong');
    for (const c of check(t, 'prometheus', PROMETHEUS, dump, bias, goBins)) expectGoTool(PROMETHEUS, c);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

for (const go of ['1.19', newestToolchain().version]) {
  test(`addr2line agrees with the own traceback of a go${go} program linked externally, stripped, PIE; go tool addr2line is ? or wrong`, { timeout: 180_000 }, async (t) => {
    const binary = buildFixture({ go, fixture: 'hot', mode: 'external-stripped-pie' });
    const bin = GoBinary.open(binary);
    try {
      assert.ok(bin.isPie && bin.elf.section('.symtab') === undefined, 'not the stripped PIE this test is about');
    } finally {
      bin.close();
    }
    const { dump, bias } = await quitDump(binary, [], (out) => out.includes('"pid"'));
    assert.notEqual(bias, 0);
    t.diagnostic(`go${go} external-stripped-pie: go tool addr2line should be ${goToolExpectation(binary)}`);
    for (const c of check(t, `go${go} hot external-stripped-pie`, binary, dump, bias, [requireToolchain(go).goBin, newestToolchain().goBin])) expectGoTool(binary, c);
  });
}
