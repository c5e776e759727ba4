// Preloaded into the agent (node -r) by benches for diagnosis: a V8 CPU profile of the agent from CPU_PROF_AFTER_MS
// after start (default 3000: not during the BPF load, whose verifier run the profiler's SIGPROF would interrupt
// into EAGAIN) to its exit, written to CPU_PROF_DIR/agent-PID.cpuprofile (open in Chrome DevTools).

import * as fs from 'node:fs';
import * as inspector from 'node:inspector';
import * as path from 'node:path';

const dir = process.env.CPU_PROF_DIR;
if (dir !== undefined) {
  const session = new inspector.Session();
  session.connect();
  setTimeout(() => {
    session.post('Profiler.enable', () => session.post('Profiler.start'));
  }, Number(process.env.CPU_PROF_AFTER_MS ?? 3000)).unref();
  process.on('exit', () => {
    // The same-thread session answers synchronously, so this completes before the process goes.
    session.post('Profiler.stop', (err, r) => {
      if (!err) fs.writeFileSync(path.join(dir, `agent-${process.pid}.cpuprofile`), JSON.stringify(r.profile));
    });
  });
}
