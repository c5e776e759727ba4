// Diagnosis over HTTP. GET /api/diagnose?pid=P&seconds=N captures CPU and off-CPU at once for N seconds, reads
// the process's goroutines (from outside) before and after, and answers with the findings as JSON. Page captures
// are diagnosed from what they have (one profile, the goroutines at their start and end). Every finding is
// counted in quietflame_diagnosis_findings_total{rule}.

import type { FastifyInstance } from 'fastify';
import { diagnose, type Diagnosis } from '../diagnose/diagnose';
import type { GoroutineDump } from '../goroutines/model';
import type { ReadGoroutines } from '../goroutines/snapshotter';
import { countFindings } from '../metrics/registry';
import { decodePprof } from '../profile/pprof';
import type { SampleKind } from '../sampler/types';
import type { CaptureManager, NewProfile } from './capture';
import type { CaptureAnalysis } from './captures-api';
import { BadRequest, parsePid, parseSeconds, type QueryValue } from './params';

/** A goroutine snapshot, or undefined with a note saying why not (not Go, gone, not readable). */
export async function trySnapshot(read: ReadGoroutines | undefined, pid: number | undefined, notes: string[], when: string): Promise<GoroutineDump | undefined> {
  if (pid === undefined || !read) return undefined;
  try {
    return await read(pid);
  } catch (e) {
    notes.push(`goroutines at the ${when} not read: ${(e as Error).message}`);
    return undefined;
  }
}

/** The diagnosis of a page capture (counted). */
export function analyzeCapture(a: CaptureAnalysis): Diagnosis {
  const d = diagnose({ [a.kind]: a.profile, dumps: a.dumps });
  countFindings(d.findings);
  return d;
}

export interface DiagnoseApiDeps {
  captures: CaptureManager;
  maxSeconds: number;
  newProfile: NewProfile;
  processExists(pid: number): boolean;
  goroutines?: ReadGoroutines;
}

export function registerDiagnoseApi(app: FastifyInstance, deps: DiagnoseApiDeps): void {
  app.get<{ Querystring: Record<string, QueryValue> }>('/api/diagnose', async (req, reply) => {
    const seconds = parseSeconds(req.query.seconds, deps.maxSeconds);
    const pid = parsePid(req.query.pid);
    if (pid !== undefined && !deps.processExists(pid)) throw new BadRequest(`pid=${pid}: no such process (a thread ID is not a process ID)`, 404);
    const { captures } = deps;
    const refused = captures.refusal([{ pid, kind: 'cpu' }, { pid, kind: 'offcpu' }]);
    if (refused) {
      reply.header('Retry-After', '5');
      throw new BadRequest(`a diagnosis needs a CPU and an off-CPU profile at once: ${refused}`, 429);
    }
    const notes: string[] = [];
    const before = await trySnapshot(deps.goroutines, pid, notes, 'start');
    const startUnixNs = BigInt(Date.now()) * 1_000_000n;
    const run = async (kind: SampleKind) => {
      const profile = deps.newProfile(kind, startUnixNs);
      const window = await captures.capture(seconds, { pid, kind }, req.signal, profile, startUnixNs);
      if (window.ended === 'aborted') return { window, profile: undefined };
      const bytes = await profile.finish(window);
      return { window, profile: profile.built?.() ?? decodePprof(bytes) };
    };
    const [cpu, offcpu] = await Promise.all([run('cpu'), run('offcpu')]);
    if (!cpu.profile || !offcpu.profile) return reply; // the client left
    const after = cpu.window.ended === 'elapsed' ? await trySnapshot(deps.goroutines, pid, notes, 'end') : undefined;
    const dumps = [before, after].filter((d): d is GoroutineDump => d !== undefined);
    const d = diagnose({ cpu: cpu.profile, offcpu: offcpu.profile, dumps });
    countFindings(d.findings);
    req.log.info({ pid, seconds, findings: d.findings.map((f) => f.rule) }, 'diagnosis');
    return {
      ...(pid !== undefined ? { pid } : {}),
      seconds,
      inputs: { cpuSamples: cpu.window.samples, offcpuSamples: offcpu.window.samples, goroutines: dumps.map((x) => x.goroutines.length) },
      findings: d.findings,
      notes: [...notes, ...d.notes],
    };
  });
}
