// Locations (addresses, mappings, symbolized frames) for a dump read elsewhere (the snapshot worker) with raw
// stacks kept: resolved here by the agent's own symbolizer, once per distinct stack (goroutines share stacks).

import type { ResolvedLocation, StackResolver } from '../profile/builder';
import type { GoroutineDump } from './model';

export async function resolveGoroutineLocations(dump: GoroutineDump, resolver: StackResolver): Promise<void> {
  if (dump.pid === undefined) return;
  const byStack = new Map<string, ResolvedLocation[]>();
  for (const g of dump.goroutines) {
    if (!g.stack || g.stack.length === 0) continue;
    const key = g.stack.join(',');
    let locations = byStack.get(key);
    if (!locations) {
      locations = resolver.resolveUser(dump.pid, g.stack);
      byStack.set(key, locations);
    }
    g.locations = locations;
  }
  // Native frames (cgo) whose file's symbol table is still being read: named once it is.
  const waiting = [...byStack.values()].some((ls) => ls.some((l) => l.later));
  if (!waiting) return;
  await resolver.settled?.();
  for (const ls of byStack.values()) {
    ls.forEach((l, i) => {
      if (l.later) ls[i] = { mapping: l.mapping, address: l.address, frames: l.later() };
    });
  }
}
