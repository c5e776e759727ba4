// Errors from the addon carry errno (positive, as os.constants.errno), code ('EPERM', 'ENOENT', …),
// syscall (the libbpf/kernel call that failed) and, when libbpf explained itself, log.
export interface BpfError extends Error {
  errno?: number;
  code: string;
  syscall?: string;
  log?: string;
}

export function isBpfError(err: unknown): err is BpfError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string';
}

/** A mistake in how the API is used (unknown name, wrong size, wrong state). */
export function usageError(message: string): BpfError {
  const e = new Error(message) as BpfError;
  e.code = 'ERR_QF_BPF_USAGE';
  return e;
}
