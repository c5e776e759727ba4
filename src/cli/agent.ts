// `quietflame agent`: checks what it needs up front (capabilities, flags), runs until SIGTERM/SIGINT, then stops
// everything within a couple of seconds and exits 0.

import pino from 'pino';
import { AGENT_CAPABILITIES, missingCapabilities, missingCapabilitiesMessage } from '../proc/capabilities';
import { startAgent } from '../server/agent';
import { parseAgentArgs } from './agent-args';

export class AgentStartError extends Error {}

export async function runAgent(args: string[]): Promise<number> {
  const opts = parseAgentArgs(args);
  // QUIETFLAME_SKIP_CAPABILITY_CHECK=1 starts anyway, to see what a missing capability breaks (test/deploy does).
  const missing = process.env['QUIETFLAME_SKIP_CAPABILITY_CHECK'] === '1' ? [] : missingCapabilities(AGENT_CAPABILITIES);
  if (missing.length > 0) throw new AgentStartError(missingCapabilitiesMessage(missing));
  const logger = pino({ level: opts.logLevel, base: { pid: process.pid } });
  let agent;
  try {
    agent = await startAgent(opts, logger);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EADDRINUSE' || err.code === 'EADDRNOTAVAIL' || err.code === 'EACCES') {
      throw new AgentStartError(`cannot listen on ${opts.host}:${opts.port}: ${err.message}`);
    }
    throw new AgentStartError(err.message.split('\n')[0]!);
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping');
      const force = setTimeout(() => {
        logger.error('shutdown took longer than 5 s; exiting anyway');
        resolve(1);
      }, 5000);
      force.unref();
      agent.close().then(
        () => resolve(0),
        (e: unknown) => {
          logger.error({ err: e }, 'error while stopping');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}
