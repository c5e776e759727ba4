// Finding functions by name through one search of the name bytes (Pclntab.funcIndexesNamed) finds exactly the
// functions a look at every name finds, in every supported release and link mode; the wrapper funcID read through
// it is the one Go's own source gives each release (internal/abi FuncIDWrapper / runtime funcID_wrapper).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GoBinary } from '../../src/gosym/binary';
import { findFuncByName } from '../../src/gosym/allgs';
import { wrapperFuncId } from '../../src/gosym/wrappers';
import { build, fixtureMatrix } from '../support/matrix';

/** FuncIDWrapper of the releases built here, from each release's runtime/symtab.go or internal/abi/symtab.go. */
const WRAPPER_ID: ReadonlyMap<number, number> = new Map([[15, 22], [19, 21], [21, 21], [22, 22], [23, 22], [26, 23]]);

for (const b of fixtureMatrix(['inline'])) {
  test(`functions found by a search of the name bytes are those a look at every name finds: ${b.label}`, () => {
    const bin = GoBinary.open(build(b));
    const names: string[] = [];
    for (let i = 0; i < bin.pcln.nfunc; i++) names.push(bin.funcName(bin.pcln.funcAt(i)));
    const bySuffix = (suffix: string): number[] => names.flatMap((n, i) => (n.endsWith(suffix) ? [i] : []));
    const byName = (name: string): number[] => names.flatMap((n, i) => (n === name ? [i] : []));

    for (const suffix of ['-fm', '.func1', 'main.main', 'e', '.init']) {
      const want = bySuffix(suffix);
      assert.deepEqual(bin.pcln.funcIndexesNamed(suffix), want, `names ending with ${suffix}`);
      assert.ok(want.length > 0, `the fixture has names ending with ${suffix}`);
    }
    for (const name of ['runtime.allgadd', 'main.main', 'runtime.main', 'main', 'allgadd']) {
      assert.deepEqual(bin.pcln.funcIndexesNamed(name, true), byName(name), `the name ${name}`);
    }
    assert.equal(findFuncByName(bin, 'runtime.allgadd')?.index, byName('runtime.allgadd')[0]);
    assert.deepEqual(bin.pcln.funcIndexesNamed('no.such.function-fm'), []);

    assert.equal(bin.version.major, 1);
    assert.ok(WRAPPER_ID.has(bin.version.minor), `go1.${bin.version.minor} is in the table of wrapper funcIDs`);
    assert.equal(wrapperFuncId(bin.pcln), WRAPPER_ID.get(bin.version.minor), 'the wrapper funcID');
  });
}
