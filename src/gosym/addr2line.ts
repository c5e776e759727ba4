// The two output formats of `quietflame addr2line`: Go's own (byte for byte what `go tool addr2line` prints)
// and one JSON line per address with the inlined frames.

import { GoBinary } from './binary';

/** Parses an input line the way cmd/addr2line does: strip one "0x", hex; anything unparsable is PC 0. */
export function parseAddress(line: string): number {
  const hex = line.startsWith('0x') ? line.slice(2) : line;
  if (hex.length === 0 || !/^[0-9a-fA-F]+$/.test(hex)) return 0;
  if (hex.length > 13) {
    const big = BigInt('0x' + hex);
    return big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
  }
  return parseInt(hex, 16);
}

/** One answer in `go tool addr2line` format (two lines). */
export function goAddr2line(bin: GoBinary, input: string): string {
  if (input.includes(':')) return '!reverse translation not implemented\n'; // cmd/addr2line says the same
  const info = bin.lineInfo(parseAddress(input));
  if (!info) return '?\n?:0\n';
  return `${info.function}\n${info.file}:${info.line}\n`;
}

/** One answer as a JSON line: {"pc":"0x…","frames":[{function,file,line},…]} innermost first. */
export function inlineAddr2line(bin: GoBinary, input: string): string {
  const pc = parseAddress(input);
  return JSON.stringify({ pc: '0x' + pc.toString(16), frames: bin.frames(pc) }) + '\n';
}
