// Flags of `quietflame agent`, checked up front so a typo ends the command with a one-line message.

import { DEFAULT_LABEL_LIMITS, LabelCaps, type LabelLimits } from '../sampler/records';
import { UsageError } from './addr2line';
import { SERVICE_ACCOUNT_DIR } from '../kube/api-watch';
import { ACCESS_USAGE, accessFlagsProblem, type AccessFlags } from '../server/access';

export interface AgentArgs {
  host: string;
  port: number;
  hz: number;
  offCpuPeriodMs: number;
  maxProfileSeconds: number;
  /** Profile captures at once, and node-wide off-CPU captures among them. */
  maxProfiles: number;
  maxNodeOffCpuProfiles: number;
  /** Go binaries whose tables stay in the BPF maps after their last process exits. */
  keepIdleBinaries: number;
  logLevel: string;
  /** Run-queue latency also per cgroup (quietflame_cgroup_runqueue_latency_seconds). */
  runqueuePerCgroup: boolean;
  /** Page captures kept in memory: how many, and how many MiB of pprof. */
  keepCaptures: number;
  keepCapturesMib: number;
  /** Where the kubelet's pods/ and containers/ log directories are (names of pods and containers). */
  kubeletLogDir: string;
  /** Names of pods also from the Kubernetes API (--kube-api): where it is, as whom, and which node's pods. */
  kubeApi?: { server: string; serviceAccountDir: string; nodeName: string };
  access: AccessFlags;
  /** The goroutines' pprof labels on CPU and off-CPU samples: how many and how long (maxLabels 0 = off). */
  labels: LabelLimits;
  /** The largest table one binary may make the agent read or inflate (--max-binary-table-mib). */
  maxBinaryTableMib: number;
}

export const AGENT_USAGE = `usage: quietflame agent [--listen HOST:PORT] [--hz N] [--offcpu-period-ms N] [--max-profile-seconds N] [--log-level LEVEL]
                        [--max-profiles N] [--max-node-offcpu-profiles N] [--keep-idle-binaries N] [--runqueue-per-cgroup] [--keep-captures N] [--keep-captures-mib N] [--kubelet-log-dir DIR]
                        [--kube-api [--kube-api-server URL] [--kube-serviceaccount-dir DIR] [--node-name NAME]]
                        [--tls-cert FILE --tls-key FILE] [--tls-client-ca FILE] [--token-file FILE] [--open-metrics] [--allow-unauthenticated]
                        [--labels N|off] [--label-key-bytes N] [--label-value-bytes N] [--max-binary-table-mib N]
  --listen HOST:PORT        where to serve pprof, metrics and the UI (default 127.0.0.1:7070)
  --hz N                    CPU samples per second per CPU (default 99; 1 to 1000)
  --offcpu-period-ms N      off-CPU profiles: intervals this long or longer are all kept, shorter ones sampled
                            in proportion to their length (default 10; 1 to 1000)
  --max-profile-seconds N   longest profile a request may ask for (default 300)
  --max-profiles N          profiles captured at once, of any kind and any client; more get 429 (default 8; 1 to 64)
  --max-node-offcpu-profiles N
                            of those, off-CPU profiles of the whole node (or a pod): each reads a stack at every
                            context switch of the node (default 1; 0 refuses them all; up to 64)
  --keep-idle-binaries N    Go binaries whose tables stay in the BPF maps after their last process exits, so the
                            next process of one costs almost nothing (default 8; 0 to 256)
  --log-level LEVEL         pino level: fatal, error, warn, info, debug, trace (default info)
  --runqueue-per-cgroup     also export run-queue latency per cgroup (v2), labelled cgroup and container_id
  --keep-captures N         captures started from the page that are kept for GET /api/captures (default 20; 0 to 1000)
  --keep-captures-mib N     at most this many MiB of their pprof kept, oldest dropped first (default 32; 0 to 4096)
  --labels N|off            the goroutine's pprof labels on each sample: at most N of them (default ${DEFAULT_LABEL_LIMITS.maxLabels}; up to ${LabelCaps.labels})
  --label-key-bytes N       label keys cut to N bytes (default ${DEFAULT_LABEL_LIMITS.keyBytes}; 1 to ${LabelCaps.keyBytes})
  --label-value-bytes N     label values cut to N bytes (default ${DEFAULT_LABEL_LIMITS.valueBytes}; 1 to ${LabelCaps.valueBytes})
  --max-binary-table-mib N  the most one table of a profiled binary (a pclntab, a symbol table, a section once
                            inflated) may take; a binary that asks for more is not symbolized (default 64; 1 to 1024)
  --kubelet-log-dir DIR     the kubelet's log directory, whose pods/ and containers/ name each process's namespace, pod
                            and container (default /var/log)
  --kube-api                also name pods from the Kubernetes API: a watch of this node's pods only, as the pod's
                            service account (RBAC get/list/watch pods: deploy/kube-api); the logs stay the fallback
  --kube-api-server URL     the API server (default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)
  --kube-serviceaccount-dir DIR
                            its token and ca.crt (default ${SERVICE_ACCOUNT_DIR})
  --node-name NAME          this node (default $NODE_NAME, which the DaemonSet sets from spec.nodeName)
access (a --listen beyond loopback needs TLS with client certificates and/or a token, or --allow-unauthenticated):
${ACCESS_USAGE}`;

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function intFlag(name: string, raw: string | undefined, lo: number, hi: number): number {
  if (raw === undefined || !/^\d+$/.test(raw) || Number(raw) < lo || Number(raw) > hi) {
    throw new UsageError(`${name} ${raw ?? '(missing)'}: expected an integer from ${lo} to ${hi}\n${AGENT_USAGE}`);
  }
  return Number(raw);
}

export function parseAgentArgs(args: readonly string[], env: NodeJS.ProcessEnv = process.env): AgentArgs {
  let kubeApi = false;
  const kube: { server?: string; serviceAccountDir?: string; nodeName?: string } = {};
  const out: AgentArgs = {
    host: '127.0.0.1', port: 7070, hz: 99, offCpuPeriodMs: 10, maxProfileSeconds: 300, maxProfiles: 8, maxNodeOffCpuProfiles: 1, keepIdleBinaries: 8, logLevel: 'info', runqueuePerCgroup: false, keepCaptures: 20, keepCapturesMib: 32, kubeletLogDir: '/var/log', access: {},
    labels: { ...DEFAULT_LABEL_LIMITS }, maxBinaryTableMib: 64,
  };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]!;
    const value = args[i + 1];
    switch (flag) {
      case '--listen': {
        const m = value === undefined ? null : /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(value);
        if (!m || Number(m[2]) > 65535) throw new UsageError(`--listen ${value ?? '(missing)'}: expected HOST:PORT, e.g. 0.0.0.0:7070\n${AGENT_USAGE}`);
        out.host = m[1]!.replace(/^\[(.*)\]$/, '$1');
        out.port = Number(m[2]);
        break;
      }
      case '--hz':
        out.hz = intFlag(flag, value, 1, 1000);
        break;
      case '--offcpu-period-ms':
        out.offCpuPeriodMs = intFlag(flag, value, 1, 1000);
        break;
      case '--max-profile-seconds':
        out.maxProfileSeconds = intFlag(flag, value, 1, 3600);
        break;
      case '--max-profiles':
        out.maxProfiles = intFlag(flag, value, 1, 64);
        break;
      case '--max-node-offcpu-profiles':
        out.maxNodeOffCpuProfiles = intFlag(flag, value, 0, 64);
        break;
      case '--keep-idle-binaries':
        out.keepIdleBinaries = intFlag(flag, value, 0, 256);
        break;
      case '--log-level':
        if (value === undefined || !LEVELS.includes(value)) throw new UsageError(`--log-level ${value ?? '(missing)'}: expected one of ${LEVELS.join(', ')}`);
        out.logLevel = value;
        break;
      case '--keep-captures':
        out.keepCaptures = intFlag(flag, value, 0, 1000);
        break;
      case '--keep-captures-mib':
        out.keepCapturesMib = intFlag(flag, value, 0, 4096);
        break;
      case '--labels':
        out.labels.maxLabels = value === 'off' ? 0 : intFlag(flag, value, 1, LabelCaps.labels);
        break;
      case '--label-key-bytes':
        out.labels.keyBytes = intFlag(flag, value, 1, LabelCaps.keyBytes);
        break;
      case '--label-value-bytes':
        out.labels.valueBytes = intFlag(flag, value, 1, LabelCaps.valueBytes);
        break;
      case '--max-binary-table-mib':
        out.maxBinaryTableMib = intFlag(flag, value, 1, 1024);
        break;
      case '--runqueue-per-cgroup':
        out.runqueuePerCgroup = true;
        continue; // takes no value
      case '--kubelet-log-dir':
        if (value === undefined || !value.startsWith('/')) throw new UsageError(`--kubelet-log-dir ${value ?? '(missing)'}: expected an absolute directory\n${AGENT_USAGE}`);
        out.kubeletLogDir = value;
        break;
      case '--kube-api':
        kubeApi = true;
        continue;
      case '--kube-api-server':
        if (value === undefined || !/^https:\/\/[^/\s]+\/?$/.test(value)) throw new UsageError(`--kube-api-server ${value ?? '(missing)'}: expected https://HOST:PORT\n${AGENT_USAGE}`);
        kube.server = value;
        break;
      case '--kube-serviceaccount-dir':
        if (value === undefined || !value.startsWith('/')) throw new UsageError(`--kube-serviceaccount-dir ${value ?? '(missing)'}: expected an absolute directory\n${AGENT_USAGE}`);
        kube.serviceAccountDir = value;
        break;
      case '--node-name':
        if (value === undefined || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(value)) throw new UsageError(`--node-name ${value ?? '(missing)'}: expected a node name\n${AGENT_USAGE}`);
        kube.nodeName = value;
        break;
      case '--tls-cert':
      case '--tls-key':
      case '--tls-client-ca':
      case '--token-file': {
        if (value === undefined || value === '' || value.startsWith('--')) throw new UsageError(`${flag}: expected a file\n${AGENT_USAGE}`);
        const key = ({ '--tls-cert': 'tlsCert', '--tls-key': 'tlsKey', '--tls-client-ca': 'tlsClientCa', '--token-file': 'tokenFile' } as const)[flag];
        out.access[key] = value;
        break;
      }
      case '--open-metrics':
        out.access.openMetrics = true;
        continue;
      case '--allow-unauthenticated':
        out.access.allowUnauthenticated = true;
        continue;
      default:
        throw new UsageError(`unknown flag ${flag}\n${AGENT_USAGE}`);
    }
    i++;
  }
  if (kubeApi) out.kubeApi = kubeApiTarget(kube, env);
  const problem = accessFlagsProblem(out.host, out.access);
  if (problem) throw new UsageError(problem);
  return out;
}

/** Where --kube-api reaches the API server and for which node, from flags or the environment a pod has. */
function kubeApiTarget(kube: { server?: string; serviceAccountDir?: string; nodeName?: string }, env: NodeJS.ProcessEnv): NonNullable<AgentArgs['kubeApi']> {
  const host = env['KUBERNETES_SERVICE_HOST'];
  const port = env['KUBERNETES_SERVICE_PORT'] ?? '443';
  const server = kube.server ?? (host ? `https://${host.includes(':') ? `[${host}]` : host}:${port}` : undefined);
  if (!server) throw new UsageError('--kube-api: KUBERNETES_SERVICE_HOST is not set (not in a pod?): give --kube-api-server https://HOST:PORT');
  const nodeName = kube.nodeName ?? env['NODE_NAME'];
  if (!nodeName) throw new UsageError("--kube-api: which node? give --node-name or set NODE_NAME (the DaemonSet sets it from spec.nodeName)");
  return { server, serviceAccountDir: kube.serviceAccountDir ?? SERVICE_ACCOUNT_DIR, nodeName };
}
