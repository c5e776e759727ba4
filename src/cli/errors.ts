// One line a person can act on, for any error a command ends with: never a stack trace.

import { FormatError } from '../gosym/bytes';

const SYSTEM_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'is a directory, not a binary',
  EPERM: 'operation not permitted',
  ELOOP: 'too many symbolic links',
};

export function describeError(err: unknown, subject: string): string {
  if (err instanceof FormatError) return `${subject}: ${err.message}`;
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && SYSTEM_ERRORS[e.code]) return `${e.path ?? subject}: ${SYSTEM_ERRORS[e.code]}`;
  if (err instanceof RangeError) return `${subject}: corrupt or truncated tables (${err.message})`;
  const msg = err instanceof Error ? err.message : String(err);
  return `${subject}: internal error: ${msg.split('\n')[0]}`;
}
