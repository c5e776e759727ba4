// JSON the page reads from the agent, beyond the flame model (src/profile/flame-model.ts). Types only: the
// page's build reads this file too.

import type { Finding } from '../diagnose/types';
import type { SampleKind } from '../sampler/types';

export interface CaptureInfo {
  id: string;
  kind: SampleKind;
  /** The process captured; undefined = the whole node. */
  pid?: number;
  /** What the process runs (its executable), when one process was captured. */
  exe?: string;
  seconds: number;
  startedAtMs: number;
  state: 'running' | 'done' | 'failed';
  /** Running captures in GET /api/captures: how far along they are (by the agent's clock). */
  elapsedMs?: number;
  /** Samples so far (running) or in the profile (done). */
  samples: number;
  /** Size of the gzipped pprof (done). */
  bytes: number;
  /** Why the window ended: its time was up, or the agent shut down. */
  ended?: 'elapsed' | 'shutdown';
  error?: string;
  /** What the diagnosis found, when it ran. */
  findings?: Finding[];
  /** Notes from the diagnosis: inputs it could not read. */
  notes?: string[];
}

export interface CaptureList {
  captures: CaptureInfo[];
  limits: { count: number; bytes: number; maxSeconds: number };
}
