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

/** What the agent does with each capability it asks for, for the message when one is missing. */
const USES: Partial<Record<CapabilityName, string>> = {
  CAP_BPF: 'load the BPF programs and maps',
  CAP_PERFMON: 'attach them to perf events and tracepoints',
  CAP_SYS_PTRACE: "read other processes' /proc/PID/maps, memory and files through /proc/PID/root",
  CAP_DAC_READ_SEARCH: 'open binaries that only their owner may read',
};

/**
 * One line naming each missing capability, what it is for and how to grant it: in Kubernetes the securityContext
 * line of deploy/daemonset.yaml (capability names without CAP_ there).
 */
export function missingCapabilitiesMessage(missing: readonly CapabilityName[]): string {
  const uses = missing.map((c) => `${c} to ${USES[c] ?? 'run'}`).join('; ');
  const add = missing.map((c) => `"${c.replace(/^CAP_/, '')}"`).join(', ');
  return `missing capabilities ${missing.join(', ')} (${uses}): grant them, in Kubernetes with securityContext.capabilities.add: [${add}] as deploy/daemonset.yaml does, or run as root`;
}
