#!/usr/bin/env -S node --max-semi-space-size=1
// quietflame's command line: thin, parses arguments and hands over to the rooms.
// The shebang caps V8's young generation at 2 × 1 MiB (default: up to 2 × 16 MiB, kept once grown): the agent's
// memory target. It must be given at start-up (v8.setFlagsFromString is too late); deploy/Containerfile repeats it.

import { runAddr2line, UsageError } from './cli/addr2line';
import { describeError } from './cli/errors';

// Loaded only by `agent`: fastify, pino and the BPF addon cost a short-lived addr2line ~50–100 ms of startup.
let agentModule: typeof import('./cli/agent') | undefined;

const USAGE = `usage: quietflame <command> [options]

commands:
  agent [--listen HOST:PORT] [--hz N]   profile every Go process on this node (CPU and off-CPU); serve pprof and
                                metrics (default 127.0.0.1:7070)
  addr2line [--inline] BINARY   symbolize link-time addresses read from stdin (Go's format, or JSON with inlined frames)
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
      throw new UsageError(`unknown goroutines command "${args[0] ?? ''}"\n${USAGE}`);
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
    const message = agentModule && err instanceof agentModule.AgentStartError ? err.message : describeError(err, process.argv.at(-1) ?? '');
    process.stderr.write(`quietflame ${process.argv[2] ?? ''}: ${message}\n`);
    process.exitCode = 1;
  },
);
