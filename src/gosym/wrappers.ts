// Compiler-generated wrappers (method wrappers, `go`/`defer` statement wrappers, method values): Go's traceback,
// runtime.Callers and so runtime/pprof leave them out of stacks unless they called a panic
// (runtime.elideWrapperCalling). Their funcID tells them apart; its value differs by release.

import type { Pclntab } from './pclntab';

/** A wrapper shown in stacks anyway: it called one of these. */
export const WRAPPER_SHOWN_CALLING: ReadonlySet<string> = new Set(['runtime.gopanic', 'runtime.sigpanic', 'runtime.panicwrap']);

/**
 * The funcID of wrappers (abi.FuncIDWrapper: 22 in 1.15, 21 in 1.19–1.21, 22 in 1.22–1.24, 23 from 1.25), read off
 * the table: method-value wrappers ("…-fm"), which every Go program's runtime has, carry it.
 */
const ENOUGH = 16;

export function wrapperFuncId(pcln: Pclntab): number | undefined {
  const votes = new Map<number, number>();
  for (const i of pcln.funcIndexesNamed('-fm')) {
    const id = pcln.funcId(pcln.funcAt(i));
    if (id === 0) continue;
    const n = (votes.get(id) ?? 0) + 1;
    votes.set(id, n);
    if (n >= ENOUGH && votes.size === 1) return id;
  }
  let best: number | undefined;
  for (const [id, n] of votes) if (best === undefined || n > votes.get(best)!) best = id;
  return best;
}
