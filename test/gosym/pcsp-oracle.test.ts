// The SP delta at a PC (pcsp), which the BPF unwinder relies on, checked against the call-frame information the
// Go linker writes into .debug_frame, as decoded independently by binutils (`readelf -wF`): CFA = SP + delta
// (+ 8 on amd64, where CALL pushed the return address; arm64 keeps it in LR).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { GoBinary } from '../../src/gosym/binary';
import { build, fixtureMatrix } from '../support/matrix';

interface CfaRow {
  pc: number;
  end: number;
  cfaOffset: number;
}

/** Rows of every FDE: [pc, next row's pc or the FDE's end) has CFA = sp + cfaOffset. */
function cfaRows(binary: string): CfaRow[] {
  const text = execFileSync('readelf', ['-wF', binary], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const rows: CfaRow[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const fde = /FDE cie=\w+ pc=([0-9a-f]+)\.\.([0-9a-f]+)/.exec(block);
    if (!fde) continue;
    const end = parseInt(fde[2]!, 16);
    const entries = [...block.matchAll(/^([0-9a-f]{16}) +[rs]?sp([+-]\d+)/gm)].map((m) => ({ pc: parseInt(m[1]!, 16), off: Number(m[2]) }));
    entries.forEach((e, i) => {
      const next = entries.slice(i + 1).find((x) => x.pc > e.pc)?.pc ?? end;
      if (next > e.pc) rows.push({ pc: e.pc, end: next, cfaOffset: e.off });
    });
  }
  return rows;
}

const builds = fixtureMatrix(['inline']).filter((b) => b.mode === 'plain');

for (const b of builds) {
  test(`pcsp SP deltas match readelf's .debug_frame CFA table: ${b.label}`, { timeout: 10 * 60_000 }, () => {
    const binary = build(b);
    const rows = cfaRows(binary);
    assert.ok(rows.length > 1000, `readelf gave only ${rows.length} CFA rows`);
    const bin = GoBinary.open(binary);
    const retAddrSlot = bin.arch === 'amd64' ? 8 : 0;
    let checked = 0;
    try {
      for (const r of rows) {
        for (const pc of [r.pc, r.end - 1]) {
          const f = bin.funcAt(pc);
          if (!f || pc >= f.end) continue;
          assert.equal(bin.spDelta(pc), r.cfaOffset - retAddrSlot, `0x${pc.toString(16)} in ${bin.funcName(f)}`);
          checked++;
        }
      }
    } finally {
      bin.close();
    }
    assert.ok(checked > 1000, `only ${checked} PCs checked`);
  });
}
