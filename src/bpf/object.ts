// The typed face of the addon: a BPF object file with its programs, maps, globals and links.
//
//   const obj = BpfObject.open(bpfObjectPath('selftest'), { globals: { target_tgid: pid } });
//   obj.load();
//   const links = obj.attachPerfEvent('on_sample', { freq: 99 });
//   const counts = obj.map('switches', u32, u64);
//   ...
//   obj.close();   // every link, ring buffer thread, map and program fd
//
// An object that is garbage-collected without close() is released by its finalizer, except while
// a ring-buffer reader runs: the reader's thread keeps it (and the event loop) alive until
// reader.stop() or close().
import { resolve } from 'node:path';

import { type Codec, perCpu, raw } from './codec';
import { usageError } from './errors';
import {
  type MapInfo,
  type NativeBpfObject,
  type NativeGlobal,
  type NativeMap,
  type NativeProgram,
  type ProgramInfo,
  native,
} from './native';
import { RingBufferReader, type RingBufferOptions } from './ringbuf';

/** Flags of BpfMap.update(). */
export const UpdateFlags = { ANY: 0, NOEXIST: 1, EXIST: 2, LOCK: 4 } as const;

/** perf_event_attr type/config values for the common software events. */
export const PerfType = { HARDWARE: 0, SOFTWARE: 1, TRACEPOINT: 2 } as const;
export const PerfSoftware = { CPU_CLOCK: 0, TASK_CLOCK: 1, PAGE_FAULTS: 2, CONTEXT_SWITCHES: 3 } as const;

export type GlobalValue = Buffer | number | bigint;

export interface OpenOptions {
  /** Initial values of global variables (.rodata, .data, .bss), set before load(). */
  globals?: Record<string, GlobalValue>;
  /** Programs not to load (false, e.g. one needing a missing kernel feature), or SEC("?…") ones to load (true). */
  autoload?: Record<string, boolean>;
  /** max_entries overrides, by map name. */
  maxEntries?: Record<string, number>;
  /** Attach targets instead of the section's (tp_btf: the BTF tracepoint name), by program name. */
  attachTargets?: Record<string, string>;
}

export interface PerfEventAttachOptions {
  /** Sampling frequency in Hz (frequency mode); or give `period`. */
  freq?: number;
  /** Events between samples (period mode). */
  period?: number;
  /** CPUs to open the event on; default every online CPU (one link each). */
  cpus?: number[];
  /** Only this process/thread (with cpus omitted: one event following it across CPUs). */
  pid?: number;
  /** perf_event_attr.type/config; default software cpu-clock. */
  type?: number;
  config?: number;
}

type ProgramRef = string | BpfProgram;

export class BpfObject {
  readonly path: string;
  private readonly nat: NativeBpfObject;
  private readonly programList: NativeProgram[];
  private readonly mapList: NativeMap[];
  private readonly globalList: NativeGlobal[];
  private readonly readers = new Set<RingBufferReader>();
  private isClosed = false;

  private constructor(path: string, nat: NativeBpfObject) {
    this.path = path;
    this.nat = nat;
    this.programList = nat.programs();
    this.mapList = nat.maps();
    this.globalList = nat.globals();
  }

  /** bpf_object__open_file + configuration; nothing reaches the kernel until load(). */
  static open(path: string, options: OpenOptions = {}): BpfObject {
    const abs = resolve(path);
    const obj = new BpfObject(abs, new (native().BpfObject)(abs));
    try {
      for (const [name, value] of Object.entries(options.globals ?? {})) obj.setGlobal(name, value);
      for (const [name, on] of Object.entries(options.autoload ?? {})) obj.nat.setAutoload(obj.programIndex(name), on);
      for (const [name, n] of Object.entries(options.maxEntries ?? {})) obj.nat.setMaxEntries(obj.mapIndex(name), n);
      for (const [name, t] of Object.entries(options.attachTargets ?? {})) obj.nat.setAttachTarget(obj.programIndex(name), t);
      obj.refresh();
    } catch (err) {
      obj.close();
      throw err;
    }
    return obj;
  }

  /** Verifies and loads every program, creates every map. */
  load(): this {
    this.nat.load();
    this.refresh(); // fds are known now
    return this;
  }

  get loaded(): boolean {
    return this.nat.state().loaded;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Stops ring-buffer threads, destroys links, closes every map and program fd. Idempotent. */
  close(): void {
    for (const r of this.readers) r.markClosed();
    this.readers.clear();
    this.nat.close();
    this.isClosed = true;
  }

  programs(): readonly NativeProgram[] {
    return this.programList;
  }

  maps(): readonly NativeMap[] {
    return this.mapList;
  }

  globals(): readonly NativeGlobal[] {
    return this.globalList;
  }

  program(name: string): BpfProgram {
    return new BpfProgram(this, this.nat, this.programIndex(name), name);
  }

  /**
   * A map with typed keys and values (raw Buffers by default). Per-CPU maps: use perCpuMap().
   */
  map<K = Buffer, V = Buffer>(name: string, key?: Codec<K>, value?: Codec<V>): BpfMap<K, V> {
    const index = this.mapIndex(name);
    const m = this.mapList[index] as NativeMap;
    if (m.perCpu) throw usageError(`map '${name}' is ${m.type}: use perCpuMap('${name}', key, value)`);
    const k = key ?? (raw(m.keySize, `map '${name}' key`) as unknown as Codec<K>);
    const v = value ?? (raw(m.valueSize, `map '${name}' value`) as unknown as Codec<V>);
    return new BpfMap<K, V>(this.nat, index, m, k, v);
  }

  /** A per-CPU map: each value is an array with one element per possible CPU. */
  perCpuMap<K = Buffer, V = Buffer>(name: string, key?: Codec<K>, value?: Codec<V>): BpfMap<K, V[]> {
    const index = this.mapIndex(name);
    const m = this.mapList[index] as NativeMap;
    if (!m.perCpu) throw usageError(`map '${name}' is ${m.type}, not per-CPU: use map('${name}', …)`);
    const k = key ?? (raw(m.keySize, `map '${name}' key`) as unknown as Codec<K>);
    const v = value ?? (raw(m.valueSize, `map '${name}' value`) as unknown as Codec<V>);
    return new BpfMap<K, V[]>(this.nat, index, m, k, perCpu(v, native().possibleCpus()));
  }

  /** Sets a global variable: before load() any of them, after load() only non-const ones. */
  setGlobal(name: string, value: GlobalValue): void {
    const g = this.globalList.find((x) => x.name === name);
    if (g === undefined) throw this.unknown('global variable', name, this.globalList);
    this.nat.setGlobal(name, typeof value === 'number' || typeof value === 'bigint' ? encodeInteger(g, value) : value);
  }

  /** Current bytes of a global (the live value for .bss/.data after load). */
  getGlobal(name: string): Buffer;
  getGlobal<T>(name: string, codec: Codec<T>): T;
  getGlobal<T>(name: string, codec?: Codec<T>): Buffer | T {
    if (!this.globalList.some((x) => x.name === name)) throw this.unknown('global variable', name, this.globalList);
    const buf = this.nat.getGlobal(name);
    return codec === undefined ? buf : codec.decode(buf);
  }

  /** Auto-attach by section name (tp_btf/…, raw_tp/…, tracepoint/…, fentry/…, kprobe/…). */
  attach(prog: ProgramRef): BpfLink {
    const p = this.resolveProgram(prog);
    return new BpfLink(this.nat, this.nat.attach(p.index), p.name);
  }

  /** Classic tracepoint (needs tracefs: see ensureTracefs()). */
  attachTracepoint(prog: ProgramRef, category: string, name: string): BpfLink {
    const p = this.resolveProgram(prog);
    return new BpfLink(this.nat, this.nat.attachTracepoint(p.index, category, name), p.name);
  }

  attachRawTracepoint(prog: ProgramRef, name: string): BpfLink {
    const p = this.resolveProgram(prog);
    return new BpfLink(this.nat, this.nat.attachRawTracepoint(p.index, name), p.name);
  }

  /** perf_event_open on each CPU (software cpu-clock by default) + attach: one link per CPU. */
  attachPerfEvent(prog: ProgramRef, options: PerfEventAttachOptions): BpfLink[] {
    const p = this.resolveProgram(prog);
    if ((options.freq === undefined) === (options.period === undefined)) {
      throw usageError('attachPerfEvent: give exactly one of freq (Hz) or period');
    }
    const ids = this.nat.attachPerfEvent(p.index, {
      type: options.type ?? PerfType.SOFTWARE,
      config: options.config ?? PerfSoftware.CPU_CLOCK,
      ...(options.freq !== undefined ? { frequency: options.freq } : {}),
      ...(options.period !== undefined ? { period: options.period } : {}),
      ...(options.cpus !== undefined ? { cpus: options.cpus } : {}),
      ...(options.pid !== undefined ? { pid: options.pid } : {}),
    });
    return ids.map((id) => new BpfLink(this.nat, id, p.name));
  }

  /** Starts a thread draining a BPF_MAP_TYPE_RINGBUF map; records arrive in batches. */
  ringBuffer(mapName: string, options: RingBufferOptions = {}): RingBufferReader {
    const index = this.mapIndex(mapName);
    const reader = new RingBufferReader(this.nat, index, mapName, options, () => this.readers.delete(reader));
    this.readers.add(reader);
    return reader;
  }

  /** Links currently attached through this object. */
  get linkCount(): number {
    return this.nat.linkCount();
  }

  private refresh(): void {
    this.programList.splice(0, this.programList.length, ...this.nat.programs());
    this.mapList.splice(0, this.mapList.length, ...this.nat.maps());
  }

  private checkOpen(): void {
    if (this.isClosed) throw usageError(`BpfObject(${this.path}) is closed`);
  }

  private resolveProgram(prog: ProgramRef): BpfProgram {
    if (typeof prog !== 'string') {
      if (prog.object !== this) throw usageError(`program '${prog.name}' belongs to another BpfObject`);
      return prog;
    }
    return this.program(prog);
  }

  private programIndex(name: string): number {
    this.checkOpen();
    const i = this.programList.findIndex((p) => p.name === name);
    if (i < 0) throw this.unknown('program', name, this.programList);
    return i;
  }

  private mapIndex(name: string): number {
    this.checkOpen();
    const i = this.mapList.findIndex((m) => m.name === name);
    if (i < 0) throw this.unknown('map', name, this.mapList);
    return i;
  }

  private unknown(kind: string, name: string, list: readonly { name: string }[]): Error {
    const known = list.map((x) => x.name).join(', ') || 'none';
    return usageError(`no ${kind} '${name}' in ${this.path} (${kind}s: ${known})`);
  }
}

export class BpfProgram {
  constructor(
    readonly object: BpfObject,
    private readonly nat: NativeBpfObject,
    readonly index: number,
    readonly name: string,
  ) {}

  get section(): string {
    return (this.object.programs()[this.index] as NativeProgram).section;
  }

  get type(): string {
    return (this.object.programs()[this.index] as NativeProgram).type;
  }

  /** The loaded program's fd (a prog-array map's value is one), or -1 before load. */
  get fd(): number {
    return (this.object.programs()[this.index] as NativeProgram).fd;
  }

  /** Kernel id (as in `bpftool prog show`), run counters. */
  info(): ProgramInfo {
    return this.nat.programInfo(this.index);
  }

  attach(): BpfLink {
    return this.object.attach(this);
  }
}

export class BpfLink {
  private attached = true;

  constructor(
    private readonly nat: NativeBpfObject,
    readonly id: number,
    readonly program: string,
  ) {}

  get isAttached(): boolean {
    return this.attached && !this.nat.state().closed;
  }

  /** Detaches (and closes the perf event fd, for perf-event links). Idempotent. */
  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    if (!this.nat.state().closed) this.nat.detach(this.id);
  }
}

export class BpfMap<K, V> {
  readonly name: string;
  readonly type: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;

  constructor(
    private readonly nat: NativeBpfObject,
    private readonly index: number,
    meta: NativeMap,
    readonly keyCodec: Codec<K>,
    readonly valueCodec: Codec<V>,
  ) {
    this.name = meta.name;
    this.type = meta.type;
    this.keySize = meta.keySize;
    this.valueSize = meta.valueSize;
    this.maxEntries = meta.maxEntries;
    if (keyCodec.size !== meta.keySize) {
      throw usageError(`map '${meta.name}': key codec is ${keyCodec.size} bytes, key_size is ${meta.keySize}`);
    }
    if (valueCodec.size !== meta.valueBufferSize) {
      throw usageError(
        `map '${meta.name}': value codec is ${valueCodec.size} bytes, the map's values are ${meta.valueBufferSize}` +
          (meta.perCpu ? ` (per-CPU: ${meta.valueSize} rounded to 8 × possible CPUs)` : ''),
      );
    }
  }

  /** undefined when the key is absent. */
  lookup(key: K, flags = 0): V | undefined {
    const buf = this.nat.lookup(this.index, this.keyCodec.encode(key), flags);
    return buf === undefined ? undefined : this.valueCodec.decode(buf);
  }

  /** flags: UpdateFlags.ANY (default), NOEXIST, EXIST. */
  update(key: K, value: V, flags: number = UpdateFlags.ANY): void {
    this.nat.update(this.index, this.keyCodec.encode(key), this.valueCodec.encode(value), flags);
  }

  /** false when the key was absent. */
  delete(key: K): boolean {
    return this.nat.delete(this.index, this.keyCodec.encode(key));
  }

  lookupAndDelete(key: K): V | undefined {
    const buf = this.nat.lookupAndDelete(this.index, this.keyCodec.encode(key));
    return buf === undefined ? undefined : this.valueCodec.decode(buf);
  }

  /** Key after `key` (first key for undefined); undefined at the end. */
  nextKey(key?: K): K | undefined {
    const buf = this.nat.nextKey(this.index, key === undefined ? null : this.keyCodec.encode(key));
    return buf === undefined ? undefined : this.keyCodec.decode(buf);
  }

  /** Iterates keys with get_next_key (entries deleted meanwhile may restart a hash walk). */
  *keys(): IterableIterator<K> {
    let prev: Buffer | null = null;
    for (;;) {
      const next: Buffer | undefined = this.nat.nextKey(this.index, prev);
      if (next === undefined) return;
      yield this.keyCodec.decode(next);
      prev = next;
    }
  }

  /** Every entry, in one pass of batch syscalls (or iteration where the map type has none). */
  entries(): Array<[K, V]> {
    return this.decodeDump(false);
  }

  /** Reads and deletes every entry (lookup_and_delete_batch): for draining counters. */
  drain(): Array<[K, V]> {
    return this.decodeDump(true);
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries()[Symbol.iterator]();
  }

  /** Kernel view: id (as in `bpftool map show`), sizes, flags. */
  info(): MapInfo {
    return this.nat.mapInfo(this.index);
  }

  private decodeDump(del: boolean): Array<[K, V]> {
    const d = this.nat.dump(this.index, del);
    const ks = this.keyCodec.size;
    const vs = this.valueCodec.size;
    const out: Array<[K, V]> = [];
    for (let i = 0; i < d.count; i++) {
      out.push([
        this.keyCodec.decode(d.keys.subarray(i * ks, (i + 1) * ks)),
        this.valueCodec.decode(d.values.subarray(i * vs, (i + 1) * vs)),
      ]);
    }
    return out;
  }
}

function encodeInteger(g: NativeGlobal, value: number | bigint): Buffer {
  if (![1, 2, 4, 8].includes(g.size)) {
    throw usageError(`global '${g.name}' is ${g.size} bytes: pass a Buffer, not a number`);
  }
  if (typeof value === 'number' && !Number.isInteger(value)) {
    throw usageError(`global '${g.name}': ${value} is not an integer`);
  }
  const bits = BigInt(g.size * 8);
  const v = BigInt(value);
  if (v < -(1n << (bits - 1n)) || v >= 1n << bits) {
    throw usageError(`global '${g.name}' is ${g.size} bytes: ${value} does not fit`);
  }
  const buf = Buffer.alloc(g.size);
  let x = BigInt.asUintN(g.size * 8, v);
  for (let i = 0; i < g.size; i++) {
    buf[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return buf;
}
