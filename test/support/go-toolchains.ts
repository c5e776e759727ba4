// Real Go toolchains (installed by scripts/install-go-toolchains.sh into <repo>/.toolchains/go1.NN) and the Go
// test fixtures (test/fixtures/go/<name>) built with them at test time, cached under <repo>/.cache/.
//
//   requireToolchain('1.21')            -> { version: '1.21', goroot, goBin }   (throws when missing)
//   buildFixture({ go: '1.26', fixture: 'inline', mode: 'stripped-pie', goarch: 'arm64' }) -> path of the binary
//   goToolAddr2line(goBin, binary, ['0x401000'])  -> what `go tool addr2line BINARY` prints
//   buildBigBinary()                    -> .cache/bigbin/bigbin (>= 50 MB, newest toolchain; for benchmarks)
//
// Tests fail, never skip, when a toolchain is missing: the error says how to install it.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The toolchains scripts/install-go-toolchains.sh installs (and CI therefore has). */
export const EXPECTED_GO_TOOLCHAINS = ['1.15', '1.19', '1.21', '1.22', '1.23', '1.26'] as const;

export interface Toolchain {
  /** '1.19' */
  version: string;
  /** The real GOROOT directory (symlinks resolved). */
  goroot: string;
  /** GOROOT/bin/go */
  goBin: string;
}

export type FixtureMode = 'plain' | 'stripped-pie' | 'cgo-external' | 'external-stripped-pie';
export type GoArch = 'amd64' | 'arm64';

export interface BuildFixtureOptions {
  /** toolchain version, '1.15' … '1.26' (a leading 'go' is accepted) */
  go: string;
  /** directory name under test/fixtures/go */
  fixture: string;
  /**
   * plain: `go build`; stripped-pie: `-ldflags='-s -w' -buildmode=pie`;
   * cgo-external: CGO_ENABLED=1 `-ldflags=-linkmode=external` (for a fixture that imports "C"; host arch only);
   * external-stripped-pie: the C linker, PIE, `-s -w`: no pclntab section and no symbols (host arch only).
   */
  mode: FixtureMode;
  /** default: the host's architecture. arm64 on an amd64 host is cross-compiled with CGO_ENABLED=0. */
  goarch?: GoArch;
}

let cachedRoot: string | undefined;

/** The repository root: the nearest directory above this file holding package.json (works from src and dist). */
export function repoRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return (cachedRoot = dir);
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${__dirname}`);
    dir = up;
  }
}

function versionKey(v: string): number[] {
  return v.split('.').map((p) => Number(p));
}

function compareVersions(a: string, b: string): number {
  const x = versionKey(a);
  const y = versionKey(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function normalizeVersion(v: string): string {
  return v.startsWith('go') ? v.slice(2) : v;
}

function hostArch(): GoArch {
  return process.arch === 'arm64' ? 'arm64' : 'amd64';
}

/** Every toolchain installed under <repo>/.toolchains, oldest first. */
export function listToolchains(): Toolchain[] {
  const dir = path.join(repoRoot(), '.toolchains');
  if (!fs.existsSync(dir)) return [];
  const out: Toolchain[] = [];
  for (const name of fs.readdirSync(dir)) {
    const m = /^go(\d+\.\d+)$/.exec(name);
    if (!m) continue;
    let goroot: string;
    try {
      goroot = fs.realpathSync(path.join(dir, name));
    } catch {
      continue; // dangling symlink: not installed
    }
    const goBin = path.join(goroot, 'bin', 'go');
    try {
      fs.accessSync(goBin, fs.constants.X_OK);
    } catch {
      continue;
    }
    out.push({ version: m[1]!, goroot, goBin });
  }
  return out.sort((a, b) => compareVersions(a.version, b.version));
}

/** The toolchain for version ('1.21'), or an error telling how to install it. */
export function requireToolchain(version: string): Toolchain {
  const v = normalizeVersion(version);
  const tc = listToolchains().find((t) => t.version === v);
  if (!tc) throw new Error(`Go ${v} toolchain missing: run scripts/install-go-toolchains.sh (as root)`);
  return tc;
}

/** The newest installed toolchain. */
export function newestToolchain(): Toolchain {
  const all = listToolchains();
  const tc = all[all.length - 1];
  if (!tc) throw new Error(`no Go toolchain under ${path.join(repoRoot(), '.toolchains')}: run scripts/install-go-toolchains.sh (as root)`);
  return tc;
}

/** The exact version string of a toolchain, e.g. 'go1.26.10' (from GOROOT/VERSION, else `go version`). */
export function toolchainGoVersion(tc: Toolchain): string {
  try {
    const first = fs.readFileSync(path.join(tc.goroot, 'VERSION'), 'utf8').split('\n')[0]!.trim();
    if (/^go\d/.test(first)) return first;
  } catch {
    // fall through
  }
  const out = run(tc.goBin, ['version'], { env: goEnv(tc), cwd: repoRoot() });
  const m = /go version (go\S+)/.exec(out);
  if (!m) throw new Error(`${tc.goBin} version: unexpected output ${JSON.stringify(out)}`);
  return m[1]!;
}

/**
 * The environment every go command here runs with: the caller's environment without any GO… or CGO_… variables,
 * plus a hermetic Go setup (this toolchain's GOROOT, caches under .cache/, no network, no toolchain switching,
 * module mode; nothing like -trimpath, so binaries keep real file paths).
 */
export function goEnv(tc: Toolchain, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const root = repoRoot();
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('GO') || k.startsWith('CGO_')) continue;
    env[k] = v;
  }
  Object.assign(env, {
    GOROOT: tc.goroot,
    GOPATH: path.join(root, '.cache', 'gopath'),
    GOCACHE: path.join(root, '.cache', `gocache-${tc.version}`),
    GOENV: 'off', // ignore the user's `go env -w` settings
    GO111MODULE: 'on', // every fixture has a go.mod (go 1.15), so module mode works for 1.15 … 1.26
    GOTOOLCHAIN: 'local', // never switch toolchains (Debian's go.env says auto)
    GOPROXY: 'off',
    GOSUMDB: 'off',
    GOWORK: 'off',
    GOFLAGS: '',
  });
  Object.assign(env, extra);
  return env;
}

interface RunOptions {
  env: NodeJS.ProcessEnv;
  cwd: string;
  input?: string;
  timeoutMs?: number;
}

function run(cmd: string, args: string[], opts: RunOptions): string {
  try {
    return execFileSync(cmd, args, {
      cwd: opts.cwd,
      env: opts.env,
      input: opts.input ?? '',
      encoding: 'utf8',
      maxBuffer: 1 << 30,
      timeout: opts.timeoutMs ?? 15 * 60_000,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (e) {
    const err = e as { status?: number | null; signal?: string | null; stderr?: string | Buffer; message?: string };
    const stderr = String(err.stderr ?? '').trim();
    const how = err.status != null ? `exit status ${err.status}` : err.signal ? `signal ${err.signal}` : (err.message ?? 'failed');
    throw new Error(`${cmd} ${args.join(' ')} (in ${opts.cwd}) failed: ${how}${stderr ? `\n${stderr}` : ''}`);
  }
}

/** Newest mtime (ms) of any file under dir. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** The source directory of a fixture: <repo>/test/fixtures/go/<name>. */
export function fixtureDir(fixture: string): string {
  return path.join(repoRoot(), 'test', 'fixtures', 'go', fixture);
}

function minorOf(version: string): number {
  return versionKey(version)[1] ?? 0;
}

/**
 * Builds `go build` with `args` in `srcDir` into `binary` unless an up-to-date build is there: the binary is
 * newer than every file of the sources and was built with the same command, toolchain and environment (a
 * .stamp file beside it). Builds into a temporary name and renames, so concurrent callers never see half a file.
 */
function cachedBuild(tc: Toolchain, srcDir: string, binary: string, args: string[], extraEnv: Record<string, string>, sourceMtime: number): string {
  const stampFile = binary + '.stamp';
  const stamp = JSON.stringify({ goroot: tc.goroot, goVersion: toolchainGoVersion(tc), args, env: extraEnv });
  if (fs.existsSync(binary) && fs.statSync(binary).mtimeMs >= sourceMtime) {
    try {
      if (fs.readFileSync(stampFile, 'utf8') === stamp) return binary;
    } catch {
      // no stamp: rebuild
    }
  }
  fs.mkdirSync(path.dirname(binary), { recursive: true });
  const tmp = `${binary}.tmp-${process.pid}`;
  try {
    run(tc.goBin, ['build', '-o', tmp, ...args, '.'], { env: goEnv(tc, extraEnv), cwd: srcDir });
    fs.renameSync(tmp, binary);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  fs.writeFileSync(stampFile + `.tmp-${process.pid}`, stamp);
  fs.renameSync(stampFile + `.tmp-${process.pid}`, stampFile);
  return binary;
}

/**
 * Builds (or reuses) a fixture and returns the binary's path:
 * <repo>/.cache/fixtures/<go>-<fixture>-<mode>-<arch>/<fixture>. Rebuilt when a fixture source file is newer or
 * the toolchain or flags changed.
 */
export function buildFixture(opts: BuildFixtureOptions): string {
  const tc = requireToolchain(opts.go);
  const goarch = opts.goarch ?? hostArch();
  const srcDir = fixtureDir(opts.fixture);
  if (!fs.existsSync(path.join(srcDir, 'go.mod'))) throw new Error(`no Go fixture ${opts.fixture}: ${srcDir}/go.mod missing`);

  const args: string[] = [];
  const env: Record<string, string> = { GOOS: 'linux', GOARCH: goarch };
  const cross = goarch !== hostArch();
  switch (opts.mode) {
    case 'plain':
      break;
    case 'stripped-pie':
      args.push('-buildmode=pie', '-ldflags=-s -w');
      break;
    case 'cgo-external':
      if (cross) throw new Error(`cgo-external builds need a C cross compiler for ${goarch}; only ${hostArch()} is supported`);
      args.push('-ldflags=-linkmode=external');
      env['CGO_ENABLED'] = '1';
      break;
    case 'external-stripped-pie':
      if (cross) throw new Error(`external linking needs a C cross compiler for ${goarch}; only ${hostArch()} is supported`);
      args.push('-buildmode=pie', '-ldflags=-s -w -linkmode=external');
      env['CGO_ENABLED'] = '1';
      break;
    default: {
      const never: never = opts.mode;
      throw new Error(`unknown fixture build mode ${String(never)}`);
    }
  }
  if (cross) env['CGO_ENABLED'] = '0';
  // go ≥ 1.18 stamps VCS state by running git on the enclosing repository; fixtures do not need it, and it
  // fails on clones owned by another user.
  if (minorOf(tc.version) >= 18) args.push('-buildvcs=false');

  const binary = path.join(repoRoot(), '.cache', 'fixtures', `${tc.version}-${opts.fixture}-${opts.mode}-${goarch}`, opts.fixture);
  return cachedBuild(tc, srcDir, binary, args, env, newestMtime(srcDir));
}

/**
 * Runs `go tool addr2line BINARY` with the given addresses on stdin (one per line, as given: '0x401000') and
 * returns its stdout unchanged. With go ≥ 1.25 the go command builds addr2line on first use (into GOCACHE).
 */
export function goToolAddr2line(goBin: string, binary: string, addrs: string[]): string {
  const goroot = fs.realpathSync(path.dirname(path.dirname(goBin)));
  const known = listToolchains().find((t) => t.goroot === goroot);
  const tc: Toolchain = known ?? { version: 'other', goroot, goBin };
  return run(goBin, ['tool', 'addr2line', binary], {
    env: goEnv(tc),
    cwd: repoRoot(),
    input: addrs.length ? addrs.join('\n') + '\n' : '',
  });
}

/**
 * Generates (bench/fixtures/gen-bigbin.js) and builds a big Go program with the newest toolchain (or `go`):
 * a binary of at least 50 MB with tens of thousands of functions, for benchmarks. Cached in
 * <repo>/.cache/bigbin/bigbin; rebuilt only when the generator or the toolchain changes. The first build takes
 * a few minutes on 2 cores.
 */
export function buildBigBinary(go?: string): string {
  const tc = go ? requireToolchain(go) : newestToolchain();
  const root = repoRoot();
  const generator = path.join(root, 'bench', 'fixtures', 'gen-bigbin.js');
  const dir = path.join(root, '.cache', 'bigbin');
  const srcDir = path.join(dir, 'src');
  const binary = path.join(dir, tc.version === newestToolchain().version ? 'bigbin' : `bigbin-${tc.version}`);
  const genMtime = fs.statSync(generator).mtimeMs;
  const srcStamp = path.join(srcDir, '.generator-mtime');
  let generated = false;
  try {
    generated = fs.readFileSync(srcStamp, 'utf8') === String(genMtime);
  } catch {
    // not generated yet
  }
  if (!generated) {
    fs.rmSync(srcDir, { recursive: true, force: true });
    run(process.execPath, [generator, srcDir], { env: process.env, cwd: root });
    fs.writeFileSync(srcStamp, String(genMtime));
  }
  const args = minorOf(tc.version) >= 18 ? ['-buildvcs=false'] : [];
  // The sources' mtime is the generator's: regenerating alone must not force a rebuild unless it changed.
  return cachedBuild(tc, srcDir, binary, args, { GOOS: 'linux', GOARCH: hostArch() }, genMtime);
}

/**
 * The standalone `pprof` built with the newest toolchain from the google/pprof sources that toolchain vendors
 * (GOPATH mode over src/cmd/vendor: no module download), cached in <repo>/.cache/pprof/pprof. `go tool pprof`
 * fetches profiles with its own HTTP client, which ignores -tls_cert/-tls_key/-tls_ca; this one honours them.
 */
export function buildUpstreamPprof(): string {
  const tc = newestToolchain();
  const gopath = path.join(repoRoot(), '.cache', 'pprof', 'gopath');
  fs.mkdirSync(path.join(gopath, 'src'), { recursive: true });
  for (const top of ['github.com', 'golang.org']) {
    const link = path.join(gopath, 'src', top);
    const target = path.join(tc.goroot, 'src', 'cmd', 'vendor', top);
    if (fs.existsSync(link) && fs.readlinkSync(link) === target) continue;
    fs.rmSync(link, { force: true });
    fs.symlinkSync(target, link);
  }
  const srcDir = path.join(repoRoot(), 'test', 'support', 'pprof');
  const binary = path.join(repoRoot(), '.cache', 'pprof', 'pprof');
  return cachedBuild(tc, srcDir, binary, ['-buildvcs=false'], { GOPATH: gopath, GO111MODULE: 'off' }, newestMtime(srcDir));
}
