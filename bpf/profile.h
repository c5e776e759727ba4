/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared layout between profile.bpf.c (the on-CPU sampler, with labels.h) and the agent. Mirrored in TypeScript with the
 * src/bpf codecs: the unwind map in src/symbols/unwind-table.ts, the per-process config in
 * src/symbols/injector.ts, the ring-buffer records and counters in src/sampler/records.ts.
 * Change a struct here and there together (test/symbols/unwind-table.test.ts and test/sampler check the sizes).
 *
 * All addresses are 64-bit. "Link-time" addresses are the ones in the ELF file and its .gopclntab; "runtime"
 * addresses are where the process has them: runtime = link-time + bias.
 */
#ifndef QUIETFLAME_PROFILE_H
#define QUIETFLAME_PROFILE_H

/* ---- the PC → frame-layout map (unwind_pages) ------------------------------------------------------------
 *
 * For each Go binary (binary_id, chosen by the agent) and each 4 KiB page of its Go text, counted from minpc:
 *   page = (link_pc - minpc) >> UNWIND_PAGE_SHIFT     (not link_pc >> 12: minpc need not be page-aligned)
 * the value lists the SP-delta ranges that intersect the page, in ascending order: range i covers page offsets
 * [start[i], start[i+1]) (the last one up to `end`), and spdelta[i] is the number of bytes the function has
 * pushed below its entry SP there (Go's pcsp table), so the return address is at [SP + spdelta].
 *
 * A page with more than UNWIND_CHUNK_RANGES ranges continues in further entries ("chunks") under the keys
 *   page | (chunk << UNWIND_CHUNK_SHIFT),  chunk = 1, 2, … < UNWIND_MAX_CHUNKS;
 * chunk k covers page offsets [end of chunk k-1, end of chunk k); its first range starts exactly where the
 * previous chunk ended. Chunk 0's first range starts at offset 0, the last chunk's end is 4096 (or where the
 * Go text ends). Offsets outside every range of the page have no entry: the BPF side falls back to the frame
 * pointer.
 *
 * Whether the function has set up its own frame pointer at a PC is not in the table: the BPF program decides it
 * from the registers (RBP == SP + spdelta - 8 exactly when the frame is set up).
 */
#define UNWIND_PAGE_SHIFT 12
#define UNWIND_PAGE_SIZE (1u << UNWIND_PAGE_SHIFT)
#define UNWIND_CHUNK_SHIFT 28
#define UNWIND_MAX_CHUNKS 8
#define UNWIND_CHUNK_RANGES 72

/* unwind_chunk.flags[i] */
#define UNWIND_F_GO 0x01        /* compiled Go code (not assembly): R14 holds g there (amd64, Go >= 1.17) */
#define UNWIND_F_TOP_FRAME 0x02 /* runtime.goexit, mstart, rt0_go, sigtramp: the stack ends here */
#define UNWIND_F_SPWRITE 0x04   /* the function writes SP (stack switch): spdelta is not trustworthy */
#define UNWIND_F_NO_INFO 0x08   /* no function or no pcsp data here: unwind by frame pointer only */

struct unwind_key {
	__u32 binary_id;
	__u32 page; /* page | chunk << UNWIND_CHUNK_SHIFT */
};

struct unwind_chunk {
	__u16 count;                         /* ranges used, 1..UNWIND_CHUNK_RANGES */
	__u16 end;                           /* this chunk covers page offsets [first start, end) */
	__u16 start[UNWIND_CHUNK_RANGES];    /* page offset where range i begins, ascending */
	__s32 spdelta[UNWIND_CHUNK_RANGES];  /* bytes below the function's entry SP in range i */
	__u8 flags[UNWIND_CHUNK_RANGES];     /* UNWIND_F_* of range i */
};                                       /* 508 bytes */

/* ---- per-process configuration (proc_configs, keyed by tgid) ------------------------------------------- */

#define PROC_F_R14_G 0x01 /* amd64, Go >= 1.17: in Go code (UNWIND_F_GO) R14 holds the current g */
#define PROC_F_TLS_G 0x02 /* g is at fs_base + tls_g_offset (tls_g_offset is known) */
#define PROC_F_GOID 0x04  /* g_goid, g_m, m_curg are known: report goroutine IDs */
#define PROC_F_SWITCH 0x08 /* proc_config.sw is known: samples on g0 join their goroutine's stack */

#define PROC_TOP_FRAMES 4
/* Functions a signal handler makes a goroutine call (Go's "injected calls": asyncPreempt, sigpanic(0), debugCallV*),
 * pushing the interrupted PC as their return address. */
#define PROC_INJECTED_CALLS 4

/* Where the current goroutine's pprof labels are (proc_config.labels). The numbers come from the agent's one
 * description of Go's layouts (src/gosym/pprof-labels.ts), so this side knows no Go release. */
#define LABELS_NONE 0  /* not read for this process */
#define LABELS_MAP 1   /* Go <= 1.23: g.labels -> a map variable -> hmap of map[string]string */
#define LABELS_SLICE 2 /* Go >= 1.24: g.labels -> slice header of {key, value string} pairs */

struct labels_layout {
	__u32 g_labels;        /* offsetof(runtime.g, labels) */
	__u8 kind;             /* LABELS_* */
	__u8 entries;          /* map: cells per bucket (their tophash bytes start the bucket) */
	__u8 min_tophash;      /* map: tophash below this = empty or evacuated cell */
	__u8 same_size_grow;   /* map: the hmap.flags bit of a grow to the same size */
	__u8 hmap_count;       /* map: offsets in the hmap of count (int), B (uint8), flags (uint8), buckets, oldbuckets */
	__u8 hmap_b;
	__u8 hmap_flags;
	__u8 hmap_buckets;
	__u8 hmap_oldbuckets;
	__u8 pad[3];
	__u16 bucket_size;     /* map: bytes per bucket */
	__u16 bucket_overflow; /* map: offset of a bucket's overflow pointer */
	__u16 slice_array;     /* slice: offsets of array and len in the slice header */
	__u16 slice_len;
	__u16 key_at;          /* the first pair's key string header, in a bucket (map) or the array (slice) */
	__u16 value_at;        /* its value string header */
	__u16 stride;          /* from one pair's headers to the next pair's */
	__u16 pad2;
};                         /* 32 bytes */

/* Where a goroutine served on the system stack (g0) left its own stack, and the functions that switch stacks
 * (proc_config.sw): systemstack and morestack save the goroutine's state in g.sched, a cgo call (asmcgocall) in
 * g.syscallsp/syscallpc (entersyscall); mcall leaves the goroutine for good (the scheduler), so a g0 stack ends
 * there, as in Go's traceback. */
#define SWITCH_SYSTEMSTACK 0
#define SWITCH_MORESTACK 1
#define SWITCH_ASMCGOCALL 2
#define SWITCH_MCALL 3
#define SWITCH_FUNCS 4
#define G_STATUS_SYSCALL 3   /* _Gsyscall */
#define G_STATUS_SCAN 0x1000 /* _Gscan, or-ed in while the GC scans the stack */

struct stack_switch {
	__u32 m_g0;           /* offsetof(runtime.m, g0) */
	__u32 g_status;       /* offsets in runtime.g: atomicstatus, stack.lo, stack.hi, sched.sp/pc/bp, syscallsp/pc */
	__u32 g_stack_lo;
	__u32 g_stack_hi;
	__u32 g_sched_sp;
	__u32 g_sched_pc;
	__u32 g_sched_bp;
	__u32 g_syscall_sp;
	__u32 g_syscall_pc;
	__u32 pad;
	__u64 start[SWITCH_FUNCS]; /* link-time [start, end) of systemstack, morestack, asmcgocall, mcall (0, 0 = absent) */
	__u64 end[SWITCH_FUNCS];
};                            /* 104 bytes */

struct proc_config {
	__u32 binary_id;     /* of its unwind_pages entries; 0 = no unwind table (frame pointers only) */
	__u32 flags;         /* PROC_F_* */
	__u64 bias;          /* runtime address - link-time address (mod 2^64) */
	__u64 minpc;         /* link-time [minpc, maxpc): the Go text the table covers */
	__u64 maxpc;
	__s32 tls_g_offset;  /* amd64: g = *(fs_base + tls_g_offset); -8 for internally linked binaries */
	__u32 g_goid;        /* offsetof(runtime.g, goid) */
	__u32 g_m;           /* offsetof(runtime.g, m) */
	__u32 m_curg;        /* offsetof(runtime.m, curg) */
	/* link-time [start, end) of the functions with the TopFrame flag (0,0 = unused): the walk stops there */
	__u64 top_start[PROC_TOP_FRAMES];
	__u64 top_end[PROC_TOP_FRAMES];
	/* link-time [start, end) of the injected-call functions (0,0 = unused) */
	__u64 injected_start[PROC_INJECTED_CALLS];
	__u64 injected_end[PROC_INJECTED_CALLS];
	struct labels_layout labels;
	struct stack_switch sw;
	/* The process's start time as /proc/PID/stat has it (field 22, clock ticks since boot): a config is used only
	 * for the process it was written for, never for a later one that got the same PID. */
	__u64 start_ticks;
};                       /* 320 bytes */

/* /proc/PID/stat's start time from task_struct.start_boottime: nsec_to_clock_t with USER_HZ = 100 (every
 * architecture the agent runs on). */
#define NSEC_PER_USER_TICK 10000000ULL

/* ---- sampling filter ------------------------------------------------------------------------------------ */

#define FILTER_NONE 0 /* sample nothing (no subscriber) */
#define FILTER_ALL 1  /* every process but the idle task */
#define FILTER_PIDS 2 /* only tgids whose target_pids value has the profile's bit */

/* target_pids values: which profiles want the process (a bit set) */
#define TARGET_CPU 0x01
#define TARGET_OFFCPU 0x02

/* ---- ring-buffer records (events) ---------------------------------------------------------------------- */

#define RECORD_SAMPLE 1
#define RECORD_EXEC 2
#define RECORD_OFFCPU 3
#define RECORD_EXIT 4

#define MAX_USER_STACK 127
#define MAX_KERNEL_STACK 127

/* pprof labels travel after the fixed record (sample_record.labels_len bytes): per label a u16 key length and a u16
 * value length (little-endian, the bytes kept), then the key's and the value's bytes. At most labels_max labels,
 * label_key_bytes and label_value_bytes (load-time globals, the agent's flags) and LABELS_BUF bytes in all; what
 * does not fit is left out and the record has SAMPLE_F_LABELS_CUT. */
#define LABELS_MAX 64           /* labels_max at most */
#define LABEL_KEY_MAX 128       /* label_key_bytes at most */
#define LABEL_VALUE_MAX 512     /* label_value_bytes at most */
#define LABEL_HEADER 4
#define LABELS_BUF 4096         /* a power of two */
#define LABELS_MAX_VISITS 32    /* map buckets (overflow and old ones included) looked at per sample */

/* sample_record.flags */
#define SAMPLE_F_GOID 0x001       /* goid is valid */
#define SAMPLE_F_TABLE 0x002      /* the leaf PC was found in the unwind table */
#define SAMPLE_F_LEAF_FIXUP 0x004 /* leaf frame not set up: caller taken from [SP + spdelta] */
#define SAMPLE_F_G_R14 0x008      /* g read from R14 */
#define SAMPLE_F_G_TLS 0x010      /* g read from TLS */
#define SAMPLE_F_CURG 0x020       /* g was g0/gsignal: the goroutine is g.m.curg */
#define SAMPLE_F_TRUNCATED 0x040  /* the user stack has more than MAX_USER_STACK frames */
#define SAMPLE_F_KTHREAD 0x080    /* kernel thread: no user stack */
#define SAMPLE_F_TOP_FRAME 0x100  /* the walk ended at a TopFrame function */
#define SAMPLE_F_CONFIG 0x200     /* the process has a proc_config (a Go process known to the agent) */
#define SAMPLE_F_LABELS_CUT 0x400 /* some of the goroutine's labels or bytes of them were left out */
#define SAMPLE_F_SWITCHED 0x800   /* the walk went from the system stack (g0) on to the goroutine's stack */
#define SAMPLE_F_EXITING 0x1000   /* the thread is exiting: no user stack (its address space may be gone) */
#define SAMPLE_F_EXECVE 0x2000    /* in execve: no user stack (the old image's registers, maybe the new image's memory) */
#define SAMPLE_F_SP_CALLER 0x4000 /* no unwind table: user_stack[1] is the word at [SP], the leaf's caller only if the
				   * leaf had not set up its frame (user space decides, by the binary's pcsp table) */

struct sample_record {
	__u32 kind;       /* RECORD_SAMPLE */
	__u32 tgid;
	__u32 tid;
	__u32 cpu;
	__u64 time_ns;    /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 goid;
	__u16 flags;      /* SAMPLE_F_* */
	__u16 labels_len; /* bytes of pprof labels after the record (after struct offcpu_record for RECORD_OFFCPU) */
	__u16 user_len;   /* entries used in user_stack */
	__u16 kernel_len; /* entries used in kernel_stack */
	char comm[16];
	__u64 user_stack[MAX_USER_STACK];     /* [0] = sampled PC, then return addresses */
	__u64 kernel_stack[MAX_KERNEL_STACK]; /* innermost first; empty when the sample hit user mode */
};                                        /* 2088 bytes, then labels_len bytes of labels */

/* Off-CPU: a thread of a wanted process left the CPU (sched_switch) and now runs again. Every interval of at least
 * offcpu_period_ns is sent with its duration as weight; a shorter one of duration d is sent with probability
 * d / offcpu_period_ns and weight offcpu_period_ns, so the weights add up to the off-CPU time in expectation while
 * a thread sends at most one record per period of off-CPU time. The user stack is read as the thread leaves the
 * CPU, the kernel stack (where it waited) as it is switched in again.
 *
 * Reading the user stack is most of the cost of a switch, and a thread whose intervals are far shorter than the
 * period (a ping-pong over a pipe, a lock convoy) would have almost none of them sent. So a thread whose moving
 * average interval is below period / 2^OFFCPU_HEADROOM_SHIFT has its stack read at a switch-out only with
 * probability 2^OFFCPU_HEADROOM_SHIFT * average / period (at least OFFCPU_P_MIN); an interval whose stack was not
 * read is not sent, and the weights of those read are scaled so the expectation is unchanged (offcpu_return). */
#define OFFCPU_BLOCKED 1  /* it gave up the CPU (sleep, I/O, lock, futex) */
#define OFFCPU_RUNNABLE 2 /* it was preempted while still runnable */
#define OFFCPU_P_SHIFT 16                          /* stack-read probabilities in 1/2^16 */
#define OFFCPU_P_ONE (1u << OFFCPU_P_SHIFT)
#define OFFCPU_P_MIN (OFFCPU_P_ONE >> 5)           /* a thread of short intervals has 1 in 32 switch-outs read */
#define OFFCPU_HEADROOM_SHIFT 4                     /* read always when the average is >= period / 16 */
#define OFFCPU_AVG_SHIFT 3                          /* moving average: each new interval weighs 1/8 */
#define OFFCPU_MAX_NS (1ULL << 44)                  /* ~4.9 hours: longer intervals count as this (no overflow) */

struct offcpu_record {
	struct sample_record sample; /* sample.kind = RECORD_OFFCPU; sample.time_ns = switched in again */
	__u64 start_ns;              /* left the CPU (bpf_ktime_get_ns) */
	__u64 weight_ns;             /* off-CPU time this record stands for */
	__u32 state;                 /* OFFCPU_* */
	__u32 pad;
};                               /* 2112 bytes, then sample.labels_len bytes of labels */

struct exec_record {
	__u32 kind; /* RECORD_EXEC */
	__u32 tgid;
	__u64 time_ns;
};

/* The last thread of a process exited: sent for processes with a proc_config (removed by then) and for those a
 * profile wants. In the ring buffer it comes after every sample of the process, before any of a later process
 * with the same PID. */
struct exit_record {
	__u32 kind; /* RECORD_EXIT */
	__u32 tgid;
	__u64 start_ticks; /* as proc_config.start_ticks */
};

/* ---- per-CPU counters (counters[COUNTER_*]) ------------------------------------------------------------ */

#define COUNTER_SAMPLES 0        /* perf events for tasks that passed the filter */
#define COUNTER_SENT 1           /* sample records submitted */
#define COUNTER_RINGBUF_DROPS 2  /* sample records lost: ring buffer full */
#define COUNTER_TABLE_HITS 3     /* leaf PC in Go text found in the unwind table */
#define COUNTER_TABLE_MISSES 4   /* leaf PC in Go text, binary has a table, but no range for it */
#define COUNTER_LEAF_FIXUPS 5    /* caller recovered from [SP + spdelta] */
#define COUNTER_GOIDS 6          /* samples with a goroutine ID */
#define COUNTER_EXEC_DROPS 7     /* exec and exit records lost */
#define COUNTER_OFFCPU_ENDS 8    /* off-CPU intervals of wanted threads that ended */
#define COUNTER_OFFCPU_SENT 9    /* off-CPU records submitted */
#define COUNTER_OFFCPU_DROPS 10  /* off-CPU records lost: ring buffer full */
#define COUNTER_OFFCPU_NO_SLOT 11 /* switch-outs not timed: task storage could not be allocated */
#define COUNTER_OFFCPU_READS 12  /* switch-outs whose user stack was read */
#define COUNTER_LABELED 13       /* records sent with pprof labels */
#define COUNTER_LABELS_CUT 14    /* records whose labels were cut (limits, unreadable memory) */
#define COUNTER_MAX 15

#endif
