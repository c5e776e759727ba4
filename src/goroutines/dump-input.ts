// A goroutine dump as people hand it over (a file, a request body): the text Go printed, maybe gzipped, of bounded
// size. Turns bytes into a parsed dump or one clear reason why not.

import * as zlib from 'node:zlib';
import type { GoroutineDump } from './model';
import { parseGoroutineDump } from './parse';

export class DumpInputError extends Error {
  constructor(
    /** 413: too large; 400: not a goroutine dump. */
    readonly status: 400 | 413,
    message: string,
  ) {
    super(message);
    this.name = 'DumpInputError';
  }
}

const MiB = 1 << 20;

/** The dump's text: gunzipped when it is gzip, at most maxBytes either way. */
export function dumpText(bytes: Buffer, maxBytes: number): string {
  if (bytes.length > maxBytes) throw new DumpInputError(413, `the dump is ${sizeText(bytes.length)}; at most ${sizeText(maxBytes)} is read`);
  let text = bytes;
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      text = zlib.gunzipSync(bytes, { maxOutputLength: maxBytes });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new DumpInputError(413, `the gzipped dump unpacks to more than ${sizeText(maxBytes)}`);
      throw new DumpInputError(400, `the dump looks gzipped but does not unpack: ${(e as Error).message}`);
    }
  }
  return new TextDecoder('utf-8').decode(text);
}

/** Parsed, or DumpInputError when not one goroutine is in it. */
export function parseDumpInput(bytes: Buffer, maxBytes: number): GoroutineDump {
  const dump = parseGoroutineDump(dumpText(bytes, maxBytes));
  if (dump.goroutines.length === 0) {
    const why = dump.warnings[0] && !/^no goroutines found$/.test(dump.warnings[0]) ? `: ${dump.warnings[0]}` : '';
    throw new DumpInputError(400, `no goroutine dump found (expected the text Go prints on SIGQUIT, runtime.Stack(all) or /debug/pprof/goroutine?debug=2)${why}`);
  }
  return dump;
}

function sizeText(n: number): string {
  return n >= MiB ? `${(n / MiB).toFixed(n % MiB === 0 ? 0 : 1)} MiB` : `${n} bytes`;
}
