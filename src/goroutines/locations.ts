// Locations (addresses, mappings, symbolized frames) for a dump read elsewhere (the snapshot worker) with raw
// stacks kept: resolved here by the agent's own symbolizer, once per distinct stack (goroutines share stacks).

import type { StackResolver } from '../profile/builder';
import type { GoroutineDump } from './model';

export function resolveGoroutineLocations(dump: GoroutineDump, resolver: StackResolver): void {
  if (dump.pid === undefined) return;
  const byStack = new Map<string, NonNullable<GoroutineDump['goroutines'][number]['locations']>>();
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
}
