#!/usr/bin/env -S node --max-semi-space-size=1
// quietflame's command line: thin, parses arguments and hands over to the rooms.
// The shebang caps V8's young generation at 2 × 1 MiB (default: up to 2 × 16 MiB, kept once grown): the agent's
// memory target. It must be given at start-up (v8.setFlagsFromString is too late); deploy/Containerfile repeats it.

import { runAddr2line, UsageError } from './cli/addr2line';
import { describeError } from './cli/errors';

// Loaded only by `agent`: fastify, pino and the BPF addon cost a short-lived addr2line ~50–100 ms of startup.
let agentModule: typeof import('./cli/agent') | undefined;
let goroutinesModule: typeof import('./cli/goroutines') | undefined;

const USAGE = `usage: quietflame <command> [options]

commands:
  agent [--listen HOST:PORT] [--hz N]   profile every Go process on this node (CPU and off-CPU); serve pprof and
                                metrics (default 127.0.0.1:7070)
  goroutines PID [--debug 0|1|2]   every goroutine of a running Go process, read from outside (never stopped),
                                as Go prints them on SIGQUIT (--debug 2, the default) or as a pprof profile
  addr2line [--inline] BINARY   symbolize link-time addresses read from stdin (Go's format, or JSON with inlined frames)
  diagnose FILE…                known Go failure shapes in CPU/off-CPU profiles and goroutine dumps, as JSON findings
  goroutines analyze FILE       group a goroutine dump's goroutines, find blocking chains (--json, --pprof OUT)
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case 'addr2line':
      await runAddr2line(args);
      return 0;
    case 'goroutines':
      if (args[0] === 'analyze') return (await import('./cli/goroutines-analyze')).runGoroutinesAnalyze(args.slice(1));
      goroutinesModule = await import('./cli/goroutines');
      return goroutinesModule.runGoroutines(args);
    case 'diagnose': {
      const { runDiagnose, InputError } = await import('./cli/diagnose');
      try {
        process.stdout.write(runDiagnose(args));
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        process.stderr.write(`quietflame diagnose: ${e.message}\n`);
        return 1;
      }
      return 0;
    }
    case 'agent':
      agentModule = await import('./cli/agent');
      return agentModule.runAgent(args);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}"\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    if (process.argv[2] === 'agent') process.exit(code); // do not wait for stray handles once the agent has stopped
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`quietflame: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    const known = (goroutinesModule && err instanceof goroutinesModule.GoroutinesError) || (agentModule && err instanceof agentModule.AgentStartError);
    const message = known ? (err as Error).message : describeError(err, process.argv.at(-1) ?? '');
    process.stderr.write(`quietflame ${process.argv[2] ?? ''}: ${message}\n`);
    process.exitCode = 1;
  },
);
