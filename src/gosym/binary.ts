// GoBinary: one Go executable's symbol tables. Opening reads the ELF headers and the pclntab (one read); names,
// files, line tables and inline trees are decoded only when a PC asks for them.

import { FormatError, type ReadAllocator } from './bytes';
import { applyRelativeRelocs, ElfFile, EM_AARCH64, EM_X86_64, ET_DYN } from './elf';
import { GoVersion, parseGoVersion, readGoBuildId, readGoVersionString, versionFromLayout } from './buildinfo';
import { findModuledata, findTextStart, locatePclntab, ModuleData } from './locate';
import { FUNC_FLAG_SPWRITE, FuncInfo, Pclntab } from './pclntab';
import type { Frame, InlineExpander } from './inline';

export type GoArch = 'amd64' | 'arm64';

/** What `go tool addr2line` prints for a PC: the outermost function, and file:line (file '' and line -1 when unknown). */
export interface LineInfo {
  function: string;
  file: string;
  line: number;
}

export class GoBinary {
  readonly arch: GoArch;
  readonly pcln: Pclntab;
  readonly pclntabAddr: number;
  readonly textStart: number;
  readonly moduledata: ModuleData | undefined;
  readonly version: GoVersion;
  readonly buildId: string | undefined;
  /** Link-time address of file offset 0 (PIE executables are linked at 0x400000, not 0). */
  readonly baseVaddr: number;
  readonly isPie: boolean;
  /** Base of 1.18+ funcdata offsets (0: absolute pointers, or unknown). */
  readonly gofunc: number;
  private expander: InlineExpander | undefined;
  private wrapperId: number | undefined | null = null;

  /** `allocate`: where the file's reads go (the pclntab is one read of up to tens of MiB). */
  static open(path: string, allocate?: ReadAllocator): GoBinary {
    const elf = ElfFile.open(path, allocate);
    try {
      return new GoBinary(elf);
    } catch (e) {
      elf.close();
      throw e;
    }
  }

  /**
   * @param opts.pcTablesOnDemand the pclntab's pc-value tables are read from the file when looked up instead of
   *   held (Pclntab.withPcTablesOnDemand): for a table kept long and asked little, such as the agent's. The file
   *   must stay open meanwhile. Inline trees are then cached a little at a time too (inline.ts FEW_CHUNKS).
   */
  constructor(
    readonly elf: ElfFile,
    private readonly opts: { pcTablesOnDemand?: boolean } = {},
  ) {
    if (elf.machine === EM_X86_64) this.arch = 'amd64';
    else if (elf.machine === EM_AARCH64) this.arch = 'arm64';
    else throw new FormatError(`unsupported machine type ${elf.machine} (only amd64 and arm64)`);
    const loc = locatePclntab(elf);
    this.pclntabAddr = loc.vaddr;
    this.isPie = elf.type === ET_DYN;
    this.baseVaddr = elf.baseVaddr();
    if (this.isPie && (loc.header.generation === 'go1.2' || loc.header.generation === 'go1.16')) {
      // Absolute PCs in the functab: an old internally linked PIE may have left them to its relocations.
      if (loc.data.readBigUInt64LE(loc.header.generation === 'go1.2' ? 16 : Number(loc.data.readBigUInt64LE(8 + 6 * 8))) === 0n) {
        loc.data = Buffer.from(loc.data);
        applyRelativeRelocs(elf, loc.vaddr, loc.data);
      }
    }
    this.moduledata = findModuledata(elf, loc);
    this.textStart = loc.header.generation === 'go1.18' || loc.header.generation === 'go1.20' ? findTextStart(elf, loc, this.moduledata) : 0;
    const pcln = new Pclntab(loc.data, this.textStart);
    this.pcln = opts.pcTablesOnDemand ? pcln.withPcTablesOnDemand(pclntabReader(elf, loc.vaddr)) : pcln;
    const versionString = readGoVersionString(elf);
    this.version = (versionString && parseGoVersion(versionString)) || versionFromLayout(loc.header.generation, elf.section('.go.module') !== undefined);
    this.buildId = readGoBuildId(elf);
    this.gofunc = this.findGofunc();
  }

  /** Base of 1.18+ funcdata offsets: moduledata.gofunc, else the go:func.* symbol (which costs a .symtab scan). */
  private findGofunc(): number {
    if (this.pcln.generation === 'go1.2' || this.pcln.generation === 'go1.16') return 0; // funcdata are absolute pointers
    if (this.moduledata && this.moduledata.gofunc !== 0 && this.elf.segmentAt(this.moduledata.gofunc)) return this.moduledata.gofunc;
    const sym = this.elf.symbol('go:func.*') ?? this.elf.symbol('go.func.*');
    return sym ? sym.value : 0;
  }

  /**
   * Made (and its module loaded) on first use, like wrappers.ts below: `addr2line` without --inline never
   * expands inlined calls, and each module costs a short-lived process a millisecond or two of start-up.
   */
  private inlineExpander(): InlineExpander {
    if (this.expander === undefined) {
      const { InlineExpander, inlineLayout, FEW_CHUNKS, KEEP_ALL_CHUNKS } = require('./inline') as typeof import('./inline');
      const layout = inlineLayout(this.pcln, this.version.exact ? this.version.minor : undefined);
      this.expander = new InlineExpander(this.pcln, this.elf, layout, this.gofunc, this.opts.pcTablesOnDemand ? FEW_CHUNKS : KEEP_ALL_CHUNKS);
    }
    return this.expander;
  }

  close(): void {
    this.elf.close();
  }

  /** The function containing a link-time PC (debug/gosym's findFunc: [entry, next entry)). */
  funcAt(pc: number): FuncInfo | undefined {
    return this.pcln.find(pc);
  }

  funcName(f: FuncInfo): string {
    return this.pcln.funcName(f);
  }

  /** `go tool addr2line` semantics for one link-time PC. */
  lineInfo(pc: number): LineInfo | undefined {
    const f = this.pcln.find(pc);
    if (!f) return undefined;
    return { function: this.pcln.funcName(f), file: this.pcln.file(f, pc), line: this.pcln.line(f, pc) };
  }

  /**
   * All frames at exactly this link-time PC, inlined calls expanded, innermost first; [] when unknown. `pcs`
   * receives the PC each frame was looked up at (see InlineExpander.frames).
   */
  frames(pc: number, pcs?: number[]): Frame[] {
    const f = this.pcln.find(pc);
    return f ? this.inlineExpander().frames(f, pc, pcs) : [];
  }

  /** Is the function at this link-time PC a compiler-generated wrapper (see wrappers.ts)? */
  isWrapper(pc: number): boolean {
    const f = this.pcln.find(pc);
    if (!f) return false;
    if (this.wrapperId === null) this.wrapperId = (require('./wrappers') as typeof import('./wrappers')).wrapperFuncId(this.pcln);
    return this.wrapperId !== undefined && this.pcln.funcId(f) === this.wrapperId;
  }

  /** Bytes below the entry SP at pc (-1 unknown); with the function's flags, what the BPF unwinder needs. */
  spDelta(pc: number): number {
    const f = this.pcln.find(pc);
    return f ? this.pcln.spDelta(f, pc) : -1;
  }

  /**
   * Has the function at this link-time PC no frame of its own there (SP delta 0: a frameless function, or a PC
   * before its prologue or after its epilogue)? Then its return address is at [SP] and the frame pointer is still
   * its caller's, as the BPF unwinder reasons with a table (SP-writing assembly excepted, as there).
   */
  frameNotSetUp(pc: number): boolean {
    const f = this.pcln.find(pc);
    return f !== undefined && (this.pcln.funcFlag(f) & FUNC_FLAG_SPWRITE) === 0 && this.pcln.spDelta(f, pc) === 0;
  }
}

/**
 * Reads of the pclntab at `vaddr` by its own offsets. A function of its own so that the closure holds the file and
 * the address only: one made in GoBinary's constructor would keep the whole table it was opened from alive.
 */
function pclntabReader(elf: ElfFile, vaddr: number): (offset: number, length: number) => Buffer {
  return (offset, length) => elf.readAt(vaddr + offset, length);
}
