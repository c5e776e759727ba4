// Which Linux capabilities this process holds (CapEff in /proc/self/status), and which the agent still lacks.

import * as fs from 'node:fs';

export const CAPABILITIES = {
  CAP_DAC_READ_SEARCH: 2,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_ADMIN: 21,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
} as const;

export type CapabilityName = keyof typeof CAPABILITIES;

/** What the agent needs: load BPF and attach perf events, and read other processes' /proc entries. */
export const AGENT_CAPABILITIES: readonly CapabilityName[] = ['CAP_BPF', 'CAP_PERFMON', 'CAP_SYS_PTRACE', 'CAP_DAC_READ_SEARCH'];

export function effectiveCapabilities(status = fs.readFileSync('/proc/self/status', 'utf8')): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  if (!m) throw new Error('/proc/self/status has no CapEff line');
  return BigInt('0x' + m[1]);
}

export function missingCapabilities(needed: readonly CapabilityName[], eff = effectiveCapabilities()): CapabilityName[] {
  return needed.filter((c) => (eff & (1n << BigInt(CAPABILITIES[c]))) === 0n);
}
