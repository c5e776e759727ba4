// Why a goroutine dump could not be taken, in the words the CLI prints and the HTTP status the server sends.

export type GoroutineReadErrorKind =
  /** The process is gone (or never was). */
  | 'not-found'
  /** The process does not run Go. */
  | 'not-go'
  /** A Go program this reader cannot read: another architecture, no allgs to be found. */
  | 'unsupported'
  /** Its memory may not be read (missing CAP_SYS_PTRACE, a stricter LSM). */
  | 'forbidden'
  /** What was read is not a goroutine list (corrupt, or the layout does not fit). */
  | 'corrupt';

const HTTP_STATUS: Record<GoroutineReadErrorKind, number> = {
  'not-found': 404,
  'not-go': 422,
  unsupported: 422,
  forbidden: 403,
  corrupt: 422,
};

export class GoroutineReadError extends Error {
  constructor(readonly kind: GoroutineReadErrorKind, message: string) {
    super(message);
    this.name = 'GoroutineReadError';
  }

  get httpStatus(): number {
    return HTTP_STATUS[this.kind];
  }
}
