// The binaries the symbol-table tests run against: every toolchain the project supports, plain and stripped PIE,
// plus arm64 and cgo (externally linked) builds. Tests fail, never skip, when a toolchain is missing.

import { buildFixture, FixtureMode, newestToolchain } from './go-toolchains';

export const SUPPORTED_GO = ['1.15', '1.19', '1.21', '1.22', '1.23', '1.26'] as const;

export interface FixtureBuild {
  go: string;
  fixture: string;
  mode: FixtureMode;
  goarch: 'amd64' | 'arm64';
  label: string;
}

export function fixtureMatrix(fixtures: readonly string[]): FixtureBuild[] {
  const out: FixtureBuild[] = [];
  const add = (go: string, fixture: string, mode: FixtureBuild['mode'], goarch: FixtureBuild['goarch']): void => {
    out.push({ go, fixture, mode, goarch, label: `go${go} ${fixture} ${mode} ${goarch}` });
  };
  for (const go of SUPPORTED_GO) {
    for (const fixture of fixtures) {
      add(go, fixture, 'plain', 'amd64');
      add(go, fixture, 'stripped-pie', 'amd64');
    }
  }
  const newest = newestToolchain().version;
  add(newest, fixtures[0]!, 'plain', 'arm64');
  add(newest, fixtures[0]!, 'stripped-pie', 'arm64');
  add('1.19', 'cgo', 'cgo-external', 'amd64');
  add(newest, 'cgo', 'cgo-external', 'amd64');
  return out;
}

export function build(b: FixtureBuild): string {
  return buildFixture({ go: b.go, fixture: b.fixture, mode: b.mode, goarch: b.goarch });
}
