// Codecs between JS values and the fixed-layout little-endian bytes of BPF map keys, values,
// globals and ring-buffer records. struct() lays fields out like C does (natural alignment,
// trailing padding), so a codec mirrors the C struct field by field.

export interface Codec<T> {
  /** Bytes on the wire. */
  readonly size: number;
  encode(value: T): Buffer;
  decode(buf: Buffer): T;
}

/** A codec that can sit inside a struct or an array. */
export interface FieldCodec<T> extends Codec<T> {
  /** C alignment of the type. */
  readonly align: number;
  write(buf: Buffer, offset: number, value: T): void;
  read(buf: Buffer, offset: number): T;
}

export type CodecValue<C> = C extends Codec<infer T> ? T : never;

function field<T>(
  size: number,
  align: number,
  write: (buf: Buffer, offset: number, value: T) => void,
  read: (buf: Buffer, offset: number) => T,
): FieldCodec<T> {
  return {
    size,
    align,
    write,
    read,
    encode(value: T): Buffer {
      const buf = Buffer.alloc(size);
      write(buf, 0, value);
      return buf;
    },
    decode(buf: Buffer): T {
      if (buf.length < size) throw new RangeError(`decode: need ${size} bytes, got ${buf.length}`);
      return read(buf, 0);
    },
  };
}

export const u8: FieldCodec<number> = field(1, 1, (b, o, v) => b.writeUInt8(v, o), (b, o) => b.readUInt8(o));
export const i8: FieldCodec<number> = field(1, 1, (b, o, v) => b.writeInt8(v, o), (b, o) => b.readInt8(o));
export const u16: FieldCodec<number> = field(2, 2, (b, o, v) => b.writeUInt16LE(v, o), (b, o) => b.readUInt16LE(o));
export const i16: FieldCodec<number> = field(2, 2, (b, o, v) => b.writeInt16LE(v, o), (b, o) => b.readInt16LE(o));
export const u32: FieldCodec<number> = field(4, 4, (b, o, v) => b.writeUInt32LE(v, o), (b, o) => b.readUInt32LE(o));
export const i32: FieldCodec<number> = field(4, 4, (b, o, v) => b.writeInt32LE(v, o), (b, o) => b.readInt32LE(o));
export const u64: FieldCodec<bigint> = field(
  8,
  8,
  (b, o, v) => b.writeBigUInt64LE(v, o),
  (b, o) => b.readBigUInt64LE(o),
);
export const i64: FieldCodec<bigint> = field(
  8,
  8,
  (b, o, v) => b.writeBigInt64LE(v, o),
  (b, o) => b.readBigInt64LE(o),
);

/** u64 as a JS number; throws on values above Number.MAX_SAFE_INTEGER rather than losing bits. */
export const u64n: FieldCodec<number> = field(
  8,
  8,
  (b, o, v) => {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`u64n: ${v} is not a safe non-negative integer`);
    b.writeBigUInt64LE(BigInt(v), o);
  },
  (b, o) => {
    const v = b.readBigUInt64LE(o);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`u64n: ${v} does not fit a JS number; use u64`);
    return Number(v);
  },
);

/** Raw bytes (copied on read). */
export function bytes(size: number): FieldCodec<Buffer> {
  return field(
    size,
    1,
    (b, o, v) => {
      if (v.length !== size) throw new RangeError(`bytes(${size}): got ${v.length} bytes`);
      v.copy(b, o);
    },
    (b, o) => Buffer.from(b.subarray(o, o + size)),
  );
}

/** A char[size]: NUL-terminated on read, NUL-padded (and truncated) on write. */
export function cstring(size: number): FieldCodec<string> {
  return field(
    size,
    1,
    (b, o, v) => {
      b.fill(0, o, o + size);
      b.write(v, o, Math.min(size, Buffer.byteLength(v)), 'utf8');
    },
    (b, o) => {
      const s = b.subarray(o, o + size);
      const nul = s.indexOf(0);
      return s.toString('utf8', 0, nul < 0 ? size : nul);
    },
  );
}

/** T[length], like a C array member. */
export function array<T>(elem: FieldCodec<T>, length: number): FieldCodec<T[]> {
  return field(
    elem.size * length,
    elem.align,
    (b, o, v) => {
      if (v.length !== length) throw new RangeError(`array(${length}): got ${v.length} elements`);
      for (let i = 0; i < length; i++) elem.write(b, o + i * elem.size, v[i] as T);
    },
    (b, o) => {
      const out: T[] = new Array<T>(length);
      for (let i = 0; i < length; i++) out[i] = elem.read(b, o + i * elem.size);
      return out;
    },
  );
}

export type StructFields = Record<string, FieldCodec<any>>;
export type StructValue<F extends StructFields> = { [K in keyof F]: CodecValue<F[K]> };

export interface StructCodec<F extends StructFields> extends FieldCodec<StructValue<F>> {
  /** Byte offset of each field. */
  readonly offsets: { readonly [K in keyof F]: number };
}

/**
 * A C struct: fields in declaration order, each at its natural alignment, the size rounded up
 * to the struct's alignment (like the compiler does). `packed: true` drops all padding.
 */
export function struct<F extends StructFields>(fields: F, options: { packed?: boolean } = {}): StructCodec<F> {
  const names = Object.keys(fields) as (keyof F & string)[];
  const offsets = {} as { [K in keyof F]: number };
  let offset = 0;
  let align = 1;
  for (const name of names) {
    const f = fields[name] as FieldCodec<unknown>;
    const a = options.packed ? 1 : f.align;
    offset = Math.ceil(offset / a) * a;
    offsets[name] = offset;
    offset += f.size;
    align = Math.max(align, a);
  }
  const size = Math.ceil(offset / align) * align;
  const codec = field<StructValue<F>>(
    size,
    align,
    (b, o, v) => {
      for (const name of names) {
        const value = v[name];
        if (value === undefined) throw new TypeError(`struct: field '${name}' is missing`);
        (fields[name] as FieldCodec<unknown>).write(b, o + offsets[name], value);
      }
    },
    (b, o) => {
      const out = {} as StructValue<F>;
      for (const name of names) out[name] = (fields[name] as FieldCodec<unknown>).read(b, o + offsets[name]) as never;
      return out;
    },
  );
  return Object.assign(codec, { offsets });
}

/** Identity codec for maps used with raw Buffers; `what` names it in errors. */
export function raw(size: number, what = 'value'): Codec<Buffer> {
  return {
    size,
    encode(value: Buffer): Buffer {
      if (value.length !== size) throw new RangeError(`${what}: expected ${size} bytes, got ${value.length}`);
      return value;
    },
    decode(buf: Buffer): Buffer {
      return buf;
    },
  };
}

/** Values of per-CPU maps: one T per possible CPU, each slot round_up(size, 8) bytes. */
export function perCpu<T>(elem: Codec<T>, cpus: number): Codec<T[]> {
  const stride = Math.ceil(elem.size / 8) * 8;
  return {
    size: stride * cpus,
    encode(values: T[]): Buffer {
      if (values.length !== cpus) throw new RangeError(`per-CPU value: need ${cpus} values (possible CPUs), got ${values.length}`);
      const buf = Buffer.alloc(stride * cpus);
      values.forEach((v, i) => elem.encode(v).copy(buf, i * stride));
      return buf;
    },
    decode(buf: Buffer): T[] {
      const out: T[] = [];
      for (let i = 0; i < cpus; i++) out.push(elem.decode(buf.subarray(i * stride, i * stride + elem.size)));
      return out;
    },
  };
}
