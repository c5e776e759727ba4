// SPDX-License-Identifier: Apache-2.0
/*
 * On-CPU sampler: a perf-event program (software cpu-clock, one event per CPU, frequency mode) that records for
 * the sampled task its tgid, tid, cpu, comm, kernel stack, user stack and, for Go processes, the goroutine ID.
 *
 * The user stack is walked here rather than by bpf_get_stack(BPF_F_USER_STACK), so that Go code is unwound
 * right: frame pointers alone lose the caller of a frameless leaf function, or of any PC in a prologue or an
 * epilogue, because RBP still holds the caller's frame pointer there. For a process the agent has configured
 * (proc_configs) and a sampled PC in its Go text, the unwind table (unwind_pages, built from the binary's
 * pcsp tables) gives the SP delta at that PC: the return address is at [SP + spdelta], and the function has set
 * up its own frame exactly when RBP == SP + spdelta - 8. Above the leaf the walk follows frame pointers.
 *
 * Off-CPU: the same record, with the same unwinding, for a thread that was off the CPU. On sched_switch a wanted
 * thread that leaves the CPU notes when, why and its user stack (task-local storage; for a thread of very short
 * intervals, the stack at only some switch-outs: profile.h); when it is switched in again the interval is sent, or
 * sampled if short (struct offcpu_record), with the kernel stack it waited in.
 * That program is attached only while an off-CPU profile runs.
 *
 * pprof labels: labels.h, read from the same goroutine as the goroutine ID, sent after the record.
 *
 * Layouts and constants: profile.h. Loader: src/sampler/sampler.ts; decoder: src/sampler/records.ts.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "profile.h"
#include "sched.h"

/* The agent decodes these layouts with the codecs in src/ (their tests pin the same numbers). */
_Static_assert(sizeof(struct unwind_key) == 8, "struct unwind_key: see src/symbols/unwind-table.ts");
_Static_assert(sizeof(struct unwind_chunk) == 508, "struct unwind_chunk: see src/symbols/unwind-table.ts");
_Static_assert(sizeof(struct labels_layout) == 32, "struct labels_layout: see src/symbols/injector.ts");
_Static_assert(sizeof(struct proc_config) == 144, "struct proc_config: see src/symbols/injector.ts");
_Static_assert(sizeof(struct sample_record) == 2088, "struct sample_record: see src/sampler/records.ts");
_Static_assert(__builtin_offsetof(struct sample_record, user_stack) == 56, "struct sample_record: see src/sampler/records.ts");
_Static_assert(sizeof(struct exec_record) == 16, "struct exec_record: see src/sampler/records.ts");
_Static_assert(sizeof(struct offcpu_record) == 2112, "struct offcpu_record: see src/sampler/records.ts");
#define USER_ADDR_END (1ULL << 56) /* above any user address (also with 5-level page tables) */
#define USER_ADDR_MIN 0x10000ULL  /* below vm.mmap_min_addr's default: no code there, so not a return address */

/* Set before load: sample only this process (0 = as filter_mode says). */
const volatile __u32 target_tgid = 0;
/* Set by the agent at any time: FILTER_NONE, FILTER_ALL or FILTER_PIDS, for CPU samples and for off-CPU time. */
__u32 filter_mode = FILTER_NONE;
__u32 offcpu_filter_mode = FILTER_NONE;
/* Off-CPU sampling period (struct offcpu_record; at most 1 s, so an interval shorter than it, shifted left by 32,
 * fits in 64 bits), and the time the off-CPU programs were attached: intervals that
 * began before it were timed by an earlier attachment and are not sent. */
__u64 offcpu_period_ns = 10000000;
__u64 offcpu_since_ns = 0;


struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* memory grows with the binaries profiled, up to max_entries */
	__uint(max_entries, 65536);
	__type(key, struct unwind_key);
	__type(value, struct unwind_chunk);
} unwind_pages SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32); /* tgid */
	__type(value, struct proc_config);
} proc_configs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); /* tgid */
	__type(value, __u8); /* TARGET_* bits */
} target_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

static __always_inline void count(__u32 counter)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &counter);

	if (n)
		*n += 1; /* per-CPU, and perf-event programs do not nest on a CPU */
}

#include "labels.h"

/* Does a profile want this process? mode is filter_mode or offcpu_filter_mode, bit its TARGET_*. */
static __always_inline bool wanted(__u32 tgid, __u32 mode, __u8 bit)
{
	__u8 *bits;

	if (tgid == 0 || mode == FILTER_NONE) /* the idle task, or nobody is asking */
		return false;
	if (target_tgid)
		return tgid == target_tgid;
	if (mode == FILTER_ALL)
		return true;
	bits = bpf_map_lookup_elem(&target_pids, &tgid);
	return bits && (*bits & bit);
}

struct range_info {
	__s32 spdelta;
	__u8 flags;
};

/* The SP-delta range holding page-relative offset rel (= link-time PC - minpc) of binary_id. */
static __always_inline bool find_range(__u32 binary_id, __u64 rel, struct range_info *out)
{
	struct unwind_key key = { .binary_id = binary_id };
	__u32 page = rel >> UNWIND_PAGE_SHIFT;
	__u32 off = rel & (UNWIND_PAGE_SIZE - 1);
	struct unwind_chunk *c = NULL;
	__u32 k, i, lo, hi, mid;

	if (page >> UNWIND_CHUNK_SHIFT)
		return false;
	for (k = 0; k < UNWIND_MAX_CHUNKS; k++) {
		key.page = page | (k << UNWIND_CHUNK_SHIFT);
		c = bpf_map_lookup_elem(&unwind_pages, &key);
		if (!c || off < c->end)
			break;
	}
	if (!c || off >= c->end)
		return false;

	/* Binary search for the last range starting at or before off (ranges[0] starts at the chunk's start). */
	lo = 0;
	hi = c->count;
	if (hi == 0 || hi > UNWIND_CHUNK_RANGES)
		return false;
	for (i = 0; i < 7 && hi - lo > 1; i++) { /* 2^7 >= UNWIND_CHUNK_RANGES */
		mid = (lo + hi) / 2;
		if (mid >= UNWIND_CHUNK_RANGES)
			return false;
		if (c->start[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	if (lo >= UNWIND_CHUNK_RANGES || c->start[lo] > off)
		return false;
	out->spdelta = c->spdelta[lo];
	out->flags = c->flags[lo];
	return true;
}

/* Is the link-time PC inside a TopFrame function (goexit, mstart, …)? */
static __always_inline bool top_frame(const struct proc_config *cfg, __u64 link_pc)
{
	for (int i = 0; i < PROC_TOP_FRAMES; i++)
		if (link_pc >= cfg->top_start[i] && link_pc < cfg->top_end[i])
			return true;
	return false;
}

struct leaf_info {
	bool found; /* the leaf PC is in the unwind table */
	__u8 flags; /* its UNWIND_F_* */
};

/* Fills stack[] (MAX_USER_STACK entries) from the task's user registers and returns the entries used; SAMPLE_F_*
 * into *flags. The Go-aware leaf step and goroutine IDs are amd64 only (arm64 gets the frame-pointer walk: its
 * frame records have the same [FP] / [FP + 8] shape). */
static __always_inline __u16 walk_user(struct pt_regs *regs, const struct proc_config *cfg, __u64 *stack,
				       __u32 *flags, struct leaf_info *leaf)
{
	__u64 pc = PT_REGS_IP(regs), sp = PT_REGS_SP(regs), bp = PT_REGS_FP(regs), prev_bp = 0; /* BTF loads */
	struct { __u64 next_bp, ret; } frame;
	struct range_info r;
	__u32 n = 0, i;

	if (!pc)
		return 0;
	stack[n++] = pc;

#if defined(__TARGET_ARCH_x86)
	/* The leaf: where is its return address, and has it set up its frame pointer yet? */
	if (cfg && cfg->binary_id && pc - cfg->bias >= cfg->minpc && pc - cfg->bias < cfg->maxpc) {
		if (!find_range(cfg->binary_id, pc - cfg->bias - cfg->minpc, &r)) {
			count(COUNTER_TABLE_MISSES);
		} else {
			count(COUNTER_TABLE_HITS);
			leaf->found = true;
			leaf->flags = r.flags;
			*flags |= SAMPLE_F_TABLE;
			if (r.flags & UNWIND_F_TOP_FRAME) {
				*flags |= SAMPLE_F_TOP_FRAME;
				goto out;
			}
			if (!(r.flags & (UNWIND_F_NO_INFO | UNWIND_F_SPWRITE)) && r.spdelta >= 0) {
				__u64 ret_at = sp + r.spdelta;

				if (bp != ret_at - 8) {
					/* Frame not set up (frameless leaf, prologue, epilogue): RBP is still the
					 * caller's, so the caller would be skipped. Take it from the stack. */
					if (bpf_probe_read_user(&frame.ret, sizeof(frame.ret), (void *)ret_at) ||
					    !frame.ret || frame.ret >= USER_ADDR_END || frame.ret < USER_ADDR_MIN)
						goto out;
					stack[n++] = frame.ret;
					*flags |= SAMPLE_F_LEAF_FIXUP;
					count(COUNTER_LEAF_FIXUPS);
					if (top_frame(cfg, frame.ret - 1 - cfg->bias)) {
						*flags |= SAMPLE_F_TOP_FRAME;
						goto out;
					}
				}
			}
		}
	}
#endif

	/* Frame pointers: [BP] = the caller's BP, [BP + 8] = the return address. */
	for (i = 0; i < MAX_USER_STACK; i++) {
		if (!bp || (bp & 7) || bp <= prev_bp)
			break;
		if (n >= MAX_USER_STACK) {
			*flags |= SAMPLE_F_TRUNCATED;
			break;
		}
		if (bpf_probe_read_user(&frame, sizeof(frame), (void *)bp))
			break;
		if (frame.next_bp == bp + 8) {
			/* Two frame records back to back (Go 1.26's crosscall2: the assembler's frame setup and
			 * the cgo macro's): the word above this one is the other's saved BP, not a return address.
			 * The outer record holds the return address. */
			bp = frame.next_bp;
			if (bpf_probe_read_user(&frame, sizeof(frame), (void *)bp))
				break;
		}
		if (!frame.ret || frame.ret >= USER_ADDR_END || frame.ret < USER_ADDR_MIN)
			break;
		stack[n++] = frame.ret;
		if (cfg && top_frame(cfg, frame.ret - 1 - cfg->bias)) {
			*flags |= SAMPLE_F_TOP_FRAME;
			break;
		}
		prev_bp = bp;
		bp = frame.next_bp;
	}
out:
	return n;
}

/* The goroutine the thread is running (0 = none or unknown): g from R14 (Go code, Go >= 1.17) or TLS; from
 * g0/gsignal to m.curg. Its ID is returned, its g into *gp; SAMPLE_F_* into *flags. */
static __always_inline __u64 read_goid(struct task_struct *task, struct pt_regs *regs,
				       const struct proc_config *cfg, const struct leaf_info *leaf, __u32 *flags, __u64 *gp)
{
#if defined(__TARGET_ARCH_x86)
	__u64 g = 0, m = 0, curg = 0, goid = 0;

	if (!(cfg->flags & PROC_F_GOID))
		return 0;
	if ((cfg->flags & PROC_F_R14_G) && leaf->found &&
	    (leaf->flags & (UNWIND_F_GO | UNWIND_F_NO_INFO)) == UNWIND_F_GO) {
		g = regs->r14;
		*flags |= SAMPLE_F_G_R14;
	} else if (cfg->flags & PROC_F_TLS_G) {
		__u64 fsbase = task->thread.fsbase;

		if (!fsbase || bpf_probe_read_user(&g, sizeof(g), (void *)(fsbase + (__s64)cfg->tls_g_offset)))
			return 0;
		*flags |= SAMPLE_F_G_TLS;
	}
	if (!g)
		return 0;
	if (!bpf_probe_read_user(&m, sizeof(m), (void *)(g + cfg->g_m)) && m &&
	    !bpf_probe_read_user(&curg, sizeof(curg), (void *)(m + cfg->m_curg)) && curg && curg != g) {
		g = curg; /* g was g0 or gsignal */
		*flags |= SAMPLE_F_CURG;
	}
	if (bpf_probe_read_user(&goid, sizeof(goid), (void *)(g + cfg->g_goid)) || !goid)
		return 0;
	*gp = g;
	*flags |= SAMPLE_F_GOID;
	count(COUNTER_GOIDS);
	return goid;
#else
	return 0;
#endif
}

/* What capture_user found besides the stack: the process's config and the goroutine's g (0 = unknown). */
struct captured {
	const struct proc_config *cfg;
	__u64 g;
};

/* The current task's user stack and goroutine (*stack has MAX_USER_STACK entries); returns the entries used. */
static __always_inline __u16 capture_user(__u32 tgid, __u64 *stack, __u32 *flags, __u64 *goid, struct captured *c)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct leaf_info leaf = {};
	const struct proc_config *cfg;
	struct pt_regs *regs;
	__u16 n;

	*goid = 0;
	if (task->flags & PF_KTHREAD) {
		*flags |= SAMPLE_F_KTHREAD;
		return 0;
	}
	/* The user-mode registers, also when the task is in the kernel (a syscall, a fault, a switch). */
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	cfg = bpf_map_lookup_elem(&proc_configs, &tgid);
	if (cfg)
		*flags |= SAMPLE_F_CONFIG;
	n = walk_user(regs, cfg, stack, flags, &leaf);
	c->cfg = cfg;
	if (cfg)
		*goid = read_goid(task, regs, cfg, &leaf, flags, &c->g);
	return n;
}

/* A CPU sample is put together here and sent with its labels' length (bpf_ringbuf_output): the ring buffer's
 * reserve takes constant sizes only. */
struct sample_buf {
	struct sample_record rec;
	__u8 labels[LABELS_SCRATCH];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sample_buf);
} sample_bufs SEC(".maps");

SEC("perf_event")
int do_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), lp;
	__u32 tgid = id >> 32, zero = 0, flags = 0, labels_len = 0;
	struct captured c = {};
	struct sample_record *rec;
	struct sample_buf *buf;
	long len;

	if (!wanted(tgid, filter_mode, TARGET_CPU))
		return 0;
	count(COUNTER_SAMPLES);

	buf = bpf_map_lookup_elem(&sample_bufs, &zero);
	if (!buf)
		return 0;
	rec = &buf->rec;
	rec->kind = RECORD_SAMPLE;
	rec->tgid = tgid;
	rec->tid = (__u32)id;
	rec->cpu = bpf_get_smp_processor_id();
	rec->time_ns = bpf_ktime_get_ns();
	rec->kernel_len = 0;
	bpf_get_current_comm(rec->comm, sizeof(rec->comm));

	/* Kernel stack only when the sample hit kernel mode (a kernel IP has the top bit set). */
	if ((long)PT_REGS_IP(&ctx->regs) < 0) {
		len = bpf_get_stack(ctx, rec->kernel_stack, sizeof(rec->kernel_stack), 0);
		if (len > 0)
			rec->kernel_len = len / sizeof(__u64);
	}
	rec->user_len = capture_user(tgid, rec->user_stack, &flags, &rec->goid, &c);
	if (c.cfg && (lp = labels_of(c.cfg, c.g)))
		labels_len = read_labels(c.cfg, lp, buf->labels, WALK_CPU, &flags);
	rec->flags = flags;
	rec->labels_len = labels_len;

	if (labels_len > LABELS_BUF || bpf_ringbuf_output(&events, buf, sizeof(*rec) + labels_len, 0)) {
		count(COUNTER_RINGBUF_DROPS);
		return 0;
	}
	count(COUNTER_SENT);
	return 0;
}

/* ---- off-CPU ---- */

/* What a thread left the CPU with. Its user stack cannot change while it is off the CPU, and only the thread
 * itself can read it (bpf_probe_read_user reads the current address space), so it is walked here, at the switch. */
struct offcpu_slot {
	__u64 start_ns; /* left the CPU; 0 = not timed */
	__u64 avg_ns;   /* moving average of its off-CPU intervals; 0 = none yet */
	__u64 goid;
	__u32 state;    /* OFFCPU_* */
	__u32 flags;    /* SAMPLE_F_* */
	__u32 read_p;   /* probability the user stack was read at this switch-out, OFFCPU_P_ONE = 1; 0 = not read */
	__u16 user_len;
	__u16 labels_len; /* bytes in the thread's offcpu_labels */
	__u64 user_stack[MAX_USER_STACK];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct offcpu_slot);
} offcpu_slots SEC(".maps");

/* The labels a thread left the CPU with: only threads that ran a labelled goroutine at a switch-out get one. */
struct offcpu_labels {
	__u8 data[LABELS_SCRATCH];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct offcpu_labels);
} offcpu_labels SEC(".maps");

/* An off-CPU record is put together here and sent with its labels' length (as struct sample_buf). */
struct offcpu_buf {
	struct offcpu_record rec;
	__u8 labels[LABELS_SCRATCH];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct offcpu_buf);
} offcpu_bufs SEC(".maps");

/* How likely a switch-out of a thread whose intervals average avg_ns has its user stack read (OFFCPU_P_ONE = 1):
 * always, unless its intervals are much shorter than the period (then few of them would be sent anyway). */
static __always_inline __u32 read_probability(__u64 avg_ns, __u64 period)
{
	__u64 p;

	if (!avg_ns || avg_ns >= period >> OFFCPU_HEADROOM_SHIFT)
		return OFFCPU_P_ONE;
	p = (avg_ns << (OFFCPU_P_SHIFT + OFFCPU_HEADROOM_SHIFT)) / period; /* < OFFCPU_P_ONE */
	return p < OFFCPU_P_MIN ? OFFCPU_P_MIN : p;
}

/* prev (the current task) leaves the CPU: note when, why, and (maybe) its user stack. */
static __always_inline void offcpu_leave(struct task_struct *prev, __u64 now)
{
	struct offcpu_slot *slot = bpf_task_storage_get(&offcpu_slots, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	struct offcpu_labels *labels;
	struct captured c = {};
	__u64 lp;

	if (!slot) {
		count(COUNTER_OFFCPU_NO_SLOT);
		return;
	}
	slot->start_ns = now;
	slot->state = task_state(prev) == TASK_RUNNING ? OFFCPU_RUNNABLE : OFFCPU_BLOCKED;
	slot->flags = 0;
	slot->user_len = 0;
	slot->labels_len = 0;
	slot->read_p = read_probability(slot->avg_ns, offcpu_period_ns);
	if (slot->read_p < OFFCPU_P_ONE && (bpf_get_prandom_u32() >> (32 - OFFCPU_P_SHIFT)) >= slot->read_p) {
		slot->read_p = 0;
		return;
	}
	count(COUNTER_OFFCPU_READS);
	slot->user_len = capture_user(prev->tgid, slot->user_stack, &slot->flags, &slot->goid, &c);
	if (!c.cfg || !(lp = labels_of(c.cfg, c.g)))
		return;
	labels = bpf_task_storage_get(&offcpu_labels, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (labels)
		slot->labels_len = read_labels(c.cfg, lp, labels->data, WALK_OFFCPU, &slot->flags);
}

/* next is about to run again: send its interval, or a sample of the short ones (struct offcpu_record). */
static __always_inline void offcpu_return(struct task_struct *next, __u64 now)
{
	struct offcpu_slot *slot = bpf_task_storage_get(&offcpu_slots, next, 0, 0);
	__u64 begin, delta, weight, keep, period = offcpu_period_ns;
	struct offcpu_labels *labels;
	struct offcpu_record *rec;
	struct offcpu_buf *buf;
	__u32 zero = 0, labels_len;
	long len;

	if (!slot || !slot->start_ns)
		return;
	begin = slot->start_ns;
	slot->start_ns = 0;
	if (now <= begin)
		return;
	delta = now - begin;
	if (delta > OFFCPU_MAX_NS)
		delta = OFFCPU_MAX_NS;
	slot->avg_ns = slot->avg_ns ? slot->avg_ns - (slot->avg_ns >> OFFCPU_AVG_SHIFT) + (delta >> OFFCPU_AVG_SHIFT)
				    : delta;
	if (begin < offcpu_since_ns || !period)
		return;
	count(COUNTER_OFFCPU_ENDS);
	if (!slot->read_p)
		return;

	/* Sent with probability keep = min(1, delta / period), in 1/2^32. The stack was read with probability
	 * read_p: if that is below keep every read one is sent with weight delta / read_p, else a read one is sent
	 * with probability keep / read_p and weight period. Either way the expected weight is delta. */
	keep = delta >= period ? 1ULL << 32 : (delta << 32) / period;
	if (keep >= (__u64)slot->read_p << (32 - OFFCPU_P_SHIFT)) {
		weight = (delta << OFFCPU_P_SHIFT) / slot->read_p;
	} else {
		if (bpf_get_prandom_u32() >= (keep << OFFCPU_P_SHIFT) / slot->read_p)
			return;
		weight = period;
	}

	buf = bpf_map_lookup_elem(&offcpu_bufs, &zero);
	if (!buf)
		return;
	rec = &buf->rec;
	rec->sample.kind = RECORD_OFFCPU;
	rec->sample.tgid = next->tgid;
	rec->sample.tid = next->pid;
	rec->sample.cpu = bpf_get_smp_processor_id();
	rec->sample.time_ns = now;
	rec->sample.goid = slot->goid;
	rec->sample.flags = slot->flags;
	rec->sample.user_len = slot->user_len;
	bpf_probe_read_kernel(rec->sample.comm, sizeof(rec->sample.comm), next->comm);
	bpf_probe_read_kernel(rec->sample.user_stack, sizeof(rec->sample.user_stack), slot->user_stack);
	/* next is not running: its kernel stack is still where it left the CPU. */
	len = bpf_get_task_stack(next, rec->sample.kernel_stack, sizeof(rec->sample.kernel_stack), 0);
	rec->sample.kernel_len = len > 0 ? len / sizeof(__u64) : 0;
	rec->start_ns = begin;
	rec->weight_ns = weight;
	rec->state = slot->state;
	rec->pad = 0;
	labels_len = slot->labels_len;
	if (labels_len) {
		labels = bpf_task_storage_get(&offcpu_labels, next, 0, 0);
		if (!labels || labels_len > LABELS_BUF || bpf_probe_read_kernel(buf->labels, labels_len, labels->data))
			labels_len = 0;
	}
	rec->sample.labels_len = labels_len;
	if (labels_len > LABELS_BUF || bpf_ringbuf_output(&events, buf, sizeof(*rec) + labels_len, 0)) {
		count(COUNTER_OFFCPU_DROPS);
		return;
	}
	count(COUNTER_OFFCPU_SENT);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(offcpu_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = bpf_ktime_get_ns();

	if (wanted(prev->tgid, offcpu_filter_mode, TARGET_OFFCPU) && !(prev->flags & PF_KTHREAD))
		offcpu_leave(prev, now);
	offcpu_return(next, now);
	return 0;
}

/* A new program image: the agent looks at the process now instead of at its next /proc scan. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct exec_record *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count(COUNTER_EXEC_DROPS);
		return 0;
	}
	e->kind = RECORD_EXEC;
	e->tgid = p->tgid;
	e->time_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
