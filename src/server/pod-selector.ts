// pod= and container= on the profile endpoints: which processes run where the selector says.

import type { PodSelector } from './params';

/** Where a process runs in Kubernetes (src/kube): what `pod=` and `container=` select by. */
export interface PodOf {
  (pid: number): { namespace: string; pod: string; container?: string } | undefined;
}

/** Whether a pid runs where the selector says, each pid looked up once per use (a process keeps its pod). */
export function podMatcher(selector: PodSelector, podOf: PodOf | undefined): (pid: number) => boolean {
  const seen = new Map<number, boolean>();
  return (pid) => {
    let hit = seen.get(pid);
    if (hit === undefined) {
      const id = podOf?.(pid);
      hit = !!id && (selector.namespace === undefined || (id.namespace === selector.namespace && id.pod === selector.pod)) && (selector.container === undefined || id.container === selector.container);
      seen.set(pid, hit);
    }
    return hit;
  };
}

export function describeSelector(s: PodSelector): string {
  return [s.pod !== undefined ? `pod=${s.namespace}/${s.pod}` : '', s.container !== undefined ? `container=${s.container}` : ''].filter(Boolean).join('&');
}
