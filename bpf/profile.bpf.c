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
 * A sample on the system stack (g0) serving a goroutine joins that goroutine's stack where Go's own traceback does
 * (switch_stacks): after runtime.systemstack, for runtime.morestack, and for a cgo call (C code reached through
 * asmcgocall), from the state the goroutine saved when it left its stack; a g0 stack ends at runtime.mcall.
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
_Static_assert(sizeof(struct stack_switch) == 104, "struct stack_switch: see src/symbols/injector.ts");
_Static_assert(sizeof(struct proc_config) == 320, "struct proc_config: see src/symbols/injector.ts");
_Static_assert(sizeof(struct sample_record) == 2088, "struct sample_record: see src/sampler/records.ts");
_Static_assert(__builtin_offsetof(struct sample_record, user_stack) == 56, "struct sample_record: see src/sampler/records.ts");
_Static_assert(sizeof(struct exec_record) == 16, "struct exec_record: see src/sampler/records.ts");
_Static_assert(sizeof(struct exit_record) == 16, "struct exit_record: see src/sampler/records.ts");
_Static_assert(sizeof(struct offcpu_record) == 2112, "struct offcpu_record: see src/sampler/records.ts");
#define USER_ADDR_END (1ULL << 56) /* above any user address (also with 5-level page tables) */
#define USER_ADDR_MIN 0x10000ULL  /* below vm.mmap_min_addr's default: no code there, so not a return address */

/* Set before load: sample only this process (0 = as filter_mode says). */
const volatile __u32 target_tgid = 0;
/* Set before load: how long after its start a process without a config gets SAMPLE_F_SP_CALLER (sp_caller_step). */
const volatile __u64 sp_caller_age_ns = 30000000000ULL;
/* Set by the agent at any time: FILTER_NONE, FILTER_ALL or FILTER_PIDS, for CPU samples and for off-CPU time. */
__u32 filter_mode = FILTER_NONE;
__u32 offcpu_filter_mode = FILTER_NONE;
/* Off-CPU sampling period (struct offcpu_record; at most 1 s, so an interval shorter than it, shifted left by 32,
 * fits in 64 bits), and which attachment of the off-CPU program this is (the agent counts them from 1): a thread
 * last seen leaving in an earlier one may have run and left again while the program was detached, so that interval
 * is not timed. */
__u64 offcpu_period_ns = 10000000;
__u32 offcpu_attachment = 0;
/* When an exec record last woke the agent's reader (bpf_ktime_get_ns); racing CPUs only cost an extra wakeup. */
__u64 exec_wakeup_ns = 0;
/* Exec records wake the reader at most this often: the agent learns of a new program within about this long
 * (its mappings are read while it runs), and 200 execs a second do not cost 200 wakeups. */
#define EXEC_WAKEUP_GAP_NS 50000000ULL


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

/* Is the link-time PC inside an injected-call function (asyncPreempt, sigpanic, debugCallV*)? Its return address is
 * then the PC a signal interrupted, not a call's. */
static __always_inline bool injected_call(const struct proc_config *cfg, __u64 link_pc)
{
	for (int i = 0; i < PROC_INJECTED_CALLS; i++)
		if (link_pc >= cfg->injected_start[i] && link_pc < cfg->injected_end[i])
			return true;
	return false;
}

/* Has the function of range r set up its own frame pointer, with SP sp and RBP bp? Also true when the table cannot
 * say (no pcsp data, assembly that writes SP itself): the frame pointer is followed then. */
static __always_inline bool frame_set_up(const struct range_info *r, __u64 sp, __u64 bp)
{
	return (r->flags & (UNWIND_F_NO_INFO | UNWIND_F_SPWRITE)) || r->spdelta < 0 || bp == sp + r->spdelta - 8;
}

/* The frame a signal interrupted to inject a call (asyncPreempt at an async preemption, sigpanic at a fault), at pc
 * with SP sp and RBP bp: like a sampled leaf it may not have set up its frame (a frameless loop is a preemption
 * point), and then RBP is its caller's and the frame pointers skip that caller. Returns the caller's return address
 * ([SP + spdelta]) in that case; 0 when the frame pointer is its own, or nothing tells. */
static __always_inline __u64 interrupted_caller(const struct proc_config *cfg, __u64 pc, __u64 sp, __u64 bp)
{
	struct range_info r;
	__u64 ret;

	if (!cfg->binary_id || pc - cfg->bias < cfg->minpc || pc - cfg->bias >= cfg->maxpc ||
	    !find_range(cfg->binary_id, pc - cfg->bias - cfg->minpc, &r) || frame_set_up(&r, sp, bp) ||
	    bpf_probe_read_user(&ret, sizeof(ret), (void *)(sp + r.spdelta)) || ret < USER_ADDR_MIN || ret >= USER_ADDR_END)
		return 0;
	return ret;
}

struct leaf_info {
	bool found; /* the leaf PC is in the unwind table */
	__u8 flags; /* its UNWIND_F_* */
};

/* The leaf step without a table (amd64): a process the agent has not configured yet (a Go process's first second),
 * or whose table did not fit, is walked by frame pointers alone, which skips the caller of a leaf that has not set
 * up its frame (a frameless function, a prologue). Nothing here tells whether it has, so the word at [SP] goes in
 * as stack[1], flagged SAMPLE_F_SP_CALLER: user space, which names the stack from the binary's tables, keeps it
 * only where the leaf's SP delta is 0. Only where that can matter: a PC in the main executable's text (Go code is
 * there) of a process configured without a table or started less than sp_caller_age_ns ago (now is
 * CLOCK_MONOTONIC, start_boottime CLOCK_BOOTTIME: ahead by the time suspended, which only keeps it longer). A
 * process never configured keeps its stacks' shape, so identical samples still merge. */
static __always_inline __u16 sp_caller_step(struct task_struct *task, struct pt_regs *regs,
					    const struct proc_config *cfg, __u64 *stack, __u32 *flags, __u64 now)
{
	__u64 pc = PT_REGS_IP(regs), sp = PT_REGS_SP(regs), ret;
	struct mm_struct *mm = task->mm;

	if (!cfg && task->group_leader->start_boottime + sp_caller_age_ns < now)
		return 1;
	if (!mm || pc < mm->start_code || pc >= mm->end_code)
		return 1;
	if (bpf_probe_read_user(&ret, sizeof(ret), (void *)sp) || ret < USER_ADDR_MIN || ret >= USER_ADDR_END)
		return 1;
	stack[1] = ret;
	*flags |= SAMPLE_F_SP_CALLER;
	return 2;
}

/* The leaf step (amd64): where the sampled function's return address is, and whether it has set up its frame
 * pointer yet. Puts the PC (and, for a frame not set up, its caller) into stack[]; returns the entries used, or 0
 * with stack[0] set when the walk ends here (a TopFrame, an unreadable return address). now: CLOCK_MONOTONIC. */
static __always_inline __u16 leaf_step(struct task_struct *task, struct pt_regs *regs, const struct proc_config *cfg,
				       __u64 *stack, __u32 *flags, struct leaf_info *leaf, bool *done, __u64 now)
{
	__u64 pc = PT_REGS_IP(regs), sp = PT_REGS_SP(regs), bp = PT_REGS_FP(regs), ret; /* BTF loads */
	struct range_info r;
	__u16 n;

	*done = !pc;
	if (!pc)
		return 0;
	stack[0] = pc;
#if defined(__TARGET_ARCH_x86)
	if (!cfg || !cfg->binary_id)
		return sp_caller_step(task, regs, cfg, stack, flags, now);
	if (pc - cfg->bias < cfg->minpc || pc - cfg->bias >= cfg->maxpc)
		return 1;
	if (!find_range(cfg->binary_id, pc - cfg->bias - cfg->minpc, &r)) {
		count(COUNTER_TABLE_MISSES);
		return 1;
	}
	count(COUNTER_TABLE_HITS);
	leaf->found = true;
	leaf->flags = r.flags;
	*flags |= SAMPLE_F_TABLE;
	if (r.flags & UNWIND_F_TOP_FRAME) {
		*flags |= SAMPLE_F_TOP_FRAME;
		*done = true;
		return 1;
	}
	if (frame_set_up(&r, sp, bp))
		return 1;
	/* Frame not set up (frameless leaf, prologue, epilogue): RBP is still the caller's, so the caller would be
	 * skipped. Take it from the stack. */
	if (bpf_probe_read_user(&ret, sizeof(ret), (void *)(sp + r.spdelta)) || !ret || ret >= USER_ADDR_END ||
	    ret < USER_ADDR_MIN) {
		*done = true;
		return 1;
	}
	stack[1] = ret;
	n = 2;
	*flags |= SAMPLE_F_LEAF_FIXUP;
	count(COUNTER_LEAF_FIXUPS);
	if (injected_call(cfg, pc - cfg->bias)) {
		/* The start of asyncPreempt or sigpanic (where the signal handler's return lands): ret is the PC the
		 * signal interrupted. It goes in as pc + 1, as Go's traceback records it, so that symbolizing at
		 * address - 1 finds that instruction; and its function may not have set up its frame either. */
		stack[1] = ret + 1;
		ret = interrupted_caller(cfg, ret, sp + r.spdelta + 8, bp);
		if (!ret)
			return n;
		stack[2] = ret;
		n = 3;
	}
	if (top_frame(cfg, ret - 1 - cfg->bias)) {
		*flags |= SAMPLE_F_TOP_FRAME;
		*done = true;
	}
	return n;
#else
	return 1;
#endif
}

/* The process's start time in /proc/PID/stat's clock ticks (proc_config.start_ticks). */
static __always_inline __u64 start_ticks(struct task_struct *task)
{
	return task->group_leader->start_boottime / NSEC_PER_USER_TICK;
}

/* The config of the current process, if it was written for this process and not for an earlier one whose PID it
 * has now (the agent read that one's start time and wrote its config after it had exited). */
static __always_inline const struct proc_config *config_of(struct task_struct *task, __u32 tgid)
{
	const struct proc_config *cfg = bpf_map_lookup_elem(&proc_configs, &tgid);

	if (cfg && cfg->start_ticks != start_ticks(task)) {
		cfg = NULL;
		/* Keeps this a branch: clang 19 otherwise picks between cfg and NULL with arithmetic, and the
		 * verifier then sees a scalar where the map value was (do_sample: "invalid mem access 'scalar'"). */
		barrier_var(cfg);
	}
	return cfg;
}

/* The goroutine context of a sample, read before the frame-pointer walk. */
struct gctx {
	__u64 g;     /* the g the thread runs: a goroutine, or its M's g0 or gsignal */
	__u64 curg;  /* the user goroutine (m.curg, or g itself); 0 = none */
	bool on_g0;  /* g is the M's g0: the walk stops at a stack switch, and jumps to curg's stack if there is one */
};

/* g from R14 (Go code, Go >= 1.17) or TLS, and m.curg. Returns the goroutine ID (0 = none or unknown). */
static __always_inline __u64 read_g(struct task_struct *task, struct pt_regs *regs, const struct proc_config *cfg,
				    const struct leaf_info *leaf, __u32 *flags, struct gctx *gc)
{
#if defined(__TARGET_ARCH_x86)
	__u64 g = 0, m = 0, curg = 0, g0 = 0, goid = 0;

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
	gc->g = g;
	if (bpf_probe_read_user(&m, sizeof(m), (void *)(g + cfg->g_m)) || !m)
		goto goid;
	if ((cfg->flags & PROC_F_SWITCH) && !bpf_probe_read_user(&g0, sizeof(g0), (void *)(m + cfg->sw.m_g0)))
		gc->on_g0 = g0 == g;
	if (!bpf_probe_read_user(&curg, sizeof(curg), (void *)(m + cfg->m_curg)) && curg && curg != g) {
		*flags |= SAMPLE_F_CURG; /* g was g0 or gsignal */
		g = curg;
	} else if (gc->on_g0) {
		return 0; /* g0 serving no goroutine: the scheduler, or the GC's own work */
	}
goid:
	if (bpf_probe_read_user(&goid, sizeof(goid), (void *)(g + cfg->g_goid)) || !goid)
		return 0;
	gc->curg = g;
	*flags |= SAMPLE_F_GOID;
	count(COUNTER_GOIDS);
	return goid;
#else
	return 0;
#endif
}

/* Frame-pointer walk state, in a per-CPU map (as label_walk in labels.h): the walk is a bpf_loop callback. */
#define WALK_END 0         /* a frame pointer or return address that is no more */
#define WALK_SWITCH 1      /* WALK_SWITCH + SWITCH_*: a return address into that stack-switching function */
#define WALK_LEFT_G0 9     /* the next frame record is on curg's stack: the walk left g0 without a switch seen */
/* Frame records lie above the ones they were called from, except while a goroutine's stack is copied to a bigger
 * one (runtime.copystack): the new copy's saved frame pointers point into the old copy until they are adjusted, and
 * the old copy is intact until then. So a walk may go down twice (into the old copy and back); a garbage chain that
 * loops stops there, or at MAX_USER_STACK frames. */
#define WALK_MAX_BACK 2 /* after a switch to the goroutine's stack (only newstack copies it) */

struct fp_walk {
	__u64 bp;
	__u64 prev_bp;
	__u64 lo, hi;   /* while on g0: curg's stack, [lo, hi) */
	__u64 ret;      /* WALK_SWITCH*: the return address into the switching function */
	__u32 n;        /* entries in stack[] */
	__u32 stop;     /* WALK_* */
	__u32 flags;    /* SAMPLE_F_* found on the way */
	__u32 on_g0;
	__u32 back;     /* frame records met below the one before (at most WALK_MAX_BACK) */
	__u32 injected; /* the last entry is in an injected-call function: the next return address is an interrupted PC */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2); /* WALK_CPU, WALK_OFFCPU */
	__type(key, __u32);
	__type(value, struct fp_walk);
} fp_walks SEC(".maps");

struct fp_ctx {
	const struct proc_config *cfg;
	__u64 *stack;
	struct fp_walk *w;
};

/* Appends a return address to the walk's stack; false when full. */
static __always_inline bool push(__u64 *stack, struct fp_walk *w, __u64 ret)
{
	__u32 n = w->n;

	if (n >= MAX_USER_STACK) {
		w->flags |= SAMPLE_F_TRUNCATED;
		return false;
	}
	stack[n] = ret;
	w->n = n + 1;
	return true;
}

/* One frame record: [BP] = the caller's BP, [BP + 8] = the return address (bpf_loop callback). */
static long fp_step(__u64 i, void *arg)
{
	struct fp_ctx *c = arg;
	struct fp_walk *w = c->w;
	const struct proc_config *cfg = c->cfg;
	struct { __u64 next_bp, ret; } frame;
	__u64 bp = w->bp, lpc, ret;

	if (!bp || (bp & 7) || bp == w->prev_bp)
		return 1;
	if (bp < w->prev_bp && (!(w->flags & SAMPLE_F_SWITCHED) || w->back++ >= WALK_MAX_BACK))
		return 1;
	if (bp >= w->lo && bp < w->hi) {
		w->stop = WALK_LEFT_G0;
		return 1;
	}
	if (bpf_probe_read_user(&frame, sizeof(frame), (void *)bp))
		return 1;
	if (frame.next_bp == bp + 8) {
		/* Two frame records back to back (Go 1.26's crosscall2: the assembler's frame setup and the cgo
		 * macro's): the word above this one is the other's saved BP, not a return address. */
		bp = frame.next_bp;
		if (bpf_probe_read_user(&frame, sizeof(frame), (void *)bp))
			return 1;
	}
	if (!frame.ret || frame.ret >= USER_ADDR_END || frame.ret < USER_ADDR_MIN)
		return 1;
	if (cfg && w->injected) {
		/* frame.ret is the PC the signal interrupted (pushed as pc + 1, as in leaf_step); below it, the
		 * interrupted function's caller if it had no frame yet. Its SP was just above that PC. */
		w->injected = 0;
		if (!push(c->stack, w, frame.ret + 1))
			return 1;
		lpc = frame.ret - cfg->bias;
		ret = interrupted_caller(cfg, frame.ret, bp + 16, frame.next_bp);
		if (ret) {
			if (!push(c->stack, w, ret))
				return 1;
			lpc = ret - 1 - cfg->bias;
		}
		if (top_frame(cfg, lpc)) {
			w->flags |= SAMPLE_F_TOP_FRAME;
			return 1;
		}
	} else if (cfg) {
		lpc = frame.ret - 1 - cfg->bias;
		if (w->on_g0) {
			for (int k = 0; k < SWITCH_FUNCS; k++) {
				if (lpc >= cfg->sw.start[k] && lpc < cfg->sw.end[k]) {
					w->stop = WALK_SWITCH + k;
					w->ret = frame.ret;
					return 1;
				}
			}
		}
		if (!push(c->stack, w, frame.ret))
			return 1;
		if (top_frame(cfg, lpc)) {
			w->flags |= SAMPLE_F_TOP_FRAME;
			return 1;
		}
		w->injected = injected_call(cfg, lpc);
	} else if (!push(c->stack, w, frame.ret)) {
		return 1;
	}
	w->prev_bp = bp;
	w->bp = frame.next_bp;
	return 0;
}

/* The walk stopped on g0, which serves gc->curg: go on where the goroutine left its own stack, as Go's traceback
 * does (runtime/traceback.go): after systemstack at curg.sched (systemstack's own return address is at sched.sp,
 * its caller's frame pointer is sched.bp); for morestack at curg.sched.pc (the function that needed the bigger
 * stack, in its prologue) instead of morestack; in a cgo call (curg in a system call) at syscallpc/syscallsp,
 * whose caller the unwind table finds (runtime.cgocall's frame). Returns false when there is nowhere to go. */
static __always_inline bool switch_stacks(const struct proc_config *cfg, __u64 *stack, struct fp_walk *w,
					  const struct gctx *gc)
{
	const struct stack_switch *sw = &cfg->sw;
	__u64 curg = gc->curg, sp = 0, pc = 0, ret = 0, bp = 0;
	__u32 status = 0;
	struct range_info r;

	if (bpf_probe_read_user(&status, sizeof(status), (void *)(curg + sw->g_status)))
		return false;
	if ((status & ~G_STATUS_SCAN) == G_STATUS_SYSCALL) {
		if (bpf_probe_read_user(&sp, sizeof(sp), (void *)(curg + sw->g_syscall_sp)) ||
		    bpf_probe_read_user(&pc, sizeof(pc), (void *)(curg + sw->g_syscall_pc)) || !sp || !pc)
			return false;
		if (!push(stack, w, pc) || !cfg->binary_id || pc - cfg->bias < cfg->minpc || pc - cfg->bias >= cfg->maxpc ||
		    !find_range(cfg->binary_id, pc - cfg->bias - cfg->minpc, &r) ||
		    (r.flags & (UNWIND_F_NO_INFO | UNWIND_F_SPWRITE)) || r.spdelta < 8 ||
		    bpf_probe_read_user(&ret, sizeof(ret), (void *)(sp + r.spdelta)) ||
		    bpf_probe_read_user(&bp, sizeof(bp), (void *)(sp + r.spdelta - 8)))
			return false;
	} else if (w->stop == WALK_SWITCH + SWITCH_SYSTEMSTACK || w->stop == WALK_SWITCH + SWITCH_MORESTACK) {
		if (bpf_probe_read_user(&sp, sizeof(sp), (void *)(curg + sw->g_sched_sp)) ||
		    bpf_probe_read_user(&pc, sizeof(pc), (void *)(curg + sw->g_sched_pc)) ||
		    bpf_probe_read_user(&bp, sizeof(bp), (void *)(curg + sw->g_sched_bp)) || !sp ||
		    bpf_probe_read_user(&ret, sizeof(ret), (void *)sp))
			return false;
		if (!push(stack, w, w->stop == WALK_SWITCH + SWITCH_SYSTEMSTACK ? w->ret : pc))
			return false;
	} else {
		return false;
	}
	if (!ret || ret >= USER_ADDR_END || ret < USER_ADDR_MIN || !push(stack, w, ret))
		return false;
	if (top_frame(cfg, ret - 1 - cfg->bias)) {
		w->flags |= SAMPLE_F_TOP_FRAME;
		return false;
	}
	w->flags |= SAMPLE_F_SWITCHED;
	w->injected = injected_call(cfg, ret - 1 - cfg->bias);
	w->bp = bp;
	w->prev_bp = 0; /* another stack: its addresses need not be above the last one's */
	w->lo = w->hi = 0;
	w->on_g0 = 0;
	w->stop = WALK_END;
	return true;
}

/* What capture_user found besides the stack: the process's config and the goroutine's g (0 = unknown). */
struct captured {
	const struct proc_config *cfg;
	__u64 g;
};

/* The current task's user stack and goroutine (*stack has MAX_USER_STACK entries); returns the entries used.
 * which: WALK_CPU or WALK_OFFCPU; now: CLOCK_MONOTONIC. The Go-aware steps (leaf, goroutine, stack switches) are
 * amd64 only; arm64 gets the frame-pointer walk (its frame records have the same [FP] / [FP + 8] shape). */
static __always_inline __u16 capture_user(__u32 tgid, __u64 *stack, __u32 *flags, __u64 *goid, struct captured *c,
					  __u32 which, __u64 now)
{
	struct task_struct *task = bpf_get_current_task_btf();
	const struct proc_config *cfg;
	struct leaf_info leaf = {};
	struct gctx gc = {};
	struct fp_ctx fc;
	struct fp_walk *w;
	struct pt_regs *regs;
	bool done;
	__u16 n;

	*goid = 0;
	if (task->flags & PF_KTHREAD) {
		*flags |= SAMPLE_F_KTHREAD;
		return 0;
	}
	/* In do_exit: the user registers are those of the exit call, and the address space is being torn down (by
	 * then the agent has forgotten the process's mappings, and no /proc/PID/maps describes them). Kernel stack
	 * only: the teardown is still the process's, by its pid and comm. */
	if (task->flags & PF_EXITING) {
		*flags |= SAMPLE_F_EXITING;
		return 0;
	}
	/* In execve: past its point of no return the address space is the new image's while the user registers are
	 * still the old one's (the execve call) until the new image's are set, so the stack would be read from the
	 * wrong memory and named from neither binary. Kernel stack only, as above; the exec is brief. */
	if (bpf_core_field_exists(task->in_execve) && BPF_CORE_READ_BITFIELD(task, in_execve)) {
		*flags |= SAMPLE_F_EXECVE;
		return 0;
	}
	/* The user-mode registers, also when the task is in the kernel (a syscall, a fault, a switch). */
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	cfg = config_of(task, tgid);
	if (cfg)
		*flags |= SAMPLE_F_CONFIG;
	n = leaf_step(task, regs, cfg, stack, flags, &leaf, &done, now);
	c->cfg = cfg;
	if (cfg) {
		*goid = read_g(task, regs, cfg, &leaf, flags, &gc);
		c->g = gc.curg;
	}
	w = bpf_map_lookup_elem(&fp_walks, &which);
	if (done || !w)
		return n;
	/* fc is set again before each bpf_loop: the verifier forgets the pointers in memory a helper was given. */
	fc = (struct fp_ctx){ .cfg = cfg, .stack = stack, .w = w };
	w->bp = PT_REGS_FP(regs);
	w->prev_bp = 0;
	w->n = n;
	w->stop = WALK_END;
	w->flags = 0;
	w->back = 0;
	/* The last entry's function (the leaf's PC is exact, a return address is one past its call). */
	w->injected = cfg && n > 0 && injected_call(cfg, (n == 1 ? stack[0] : stack[(n - 1) & 3] - 1) - cfg->bias);
	w->on_g0 = gc.on_g0;
	w->lo = w->hi = 0;
	if (gc.on_g0 && gc.curg &&
	    (bpf_probe_read_user(&w->lo, sizeof(w->lo), (void *)(gc.curg + cfg->sw.g_stack_lo)) ||
	     bpf_probe_read_user(&w->hi, sizeof(w->hi), (void *)(gc.curg + cfg->sw.g_stack_hi))))
		w->lo = w->hi = 0;
	bpf_loop(MAX_USER_STACK, fp_step, &fc, 0);
	if (gc.on_g0 && cfg) {
		if (w->stop != WALK_SWITCH + SWITCH_MCALL && gc.curg && switch_stacks(cfg, stack, w, &gc)) {
			fc = (struct fp_ctx){ .cfg = cfg, .stack = stack, .w = w };
			bpf_loop(MAX_USER_STACK, fp_step, &fc, 0);
		} else if (w->stop >= WALK_SWITCH && w->stop < WALK_SWITCH + SWITCH_FUNCS &&
			   w->stop != WALK_SWITCH + SWITCH_MORESTACK) {
			push(stack, w, w->ret); /* the stack ends in the switching function, as Go's traceback ends it */
		}
	}
	*flags |= w->flags;
	return w->n < MAX_USER_STACK ? w->n : MAX_USER_STACK;
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
	rec->user_len = capture_user(tgid, rec->user_stack, &flags, &rec->goid, &c, WALK_CPU, rec->time_ns);
	if (c.cfg && (lp = labels_of(c.cfg, c.g)))
		labels_len = read_labels(c.cfg, lp, buf->labels, WALK_CPU, &flags);
	rec->flags = flags;
	rec->labels_len = labels_len;

	if (labels_len > LABELS_BUF || bpf_ringbuf_output(&events, buf, sizeof(*rec) + labels_len, BPF_RB_NO_WAKEUP)) {
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
	__u64 left_at;    /* left the CPU, by switch_clock; 0 = not timed */
	__u64 avg_ns;     /* moving average of its off-CPU intervals, by switch_clock; 0 = none yet */
	__u64 start_ns;   /* left the CPU, bpf_ktime_get_ns(): taken only when the stack is read */
	__u64 goid;
	__u64 rng;        /* slot_random's state; 0 = not seeded */
	__u32 attachment; /* offcpu_attachment when it left */
	__u32 state;      /* OFFCPU_* */
	__u32 flags;      /* SAMPLE_F_* */
	__u32 read_p;     /* probability the user stack was read at this switch-out, OFFCPU_P_ONE = 1; 0 = not read */
	__u16 user_len;
	__u16 labels_len; /* bytes in the thread's offcpu_labels */
	__u32 pad;
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

/* A thread's own xorshift64 generator, for the decision made at every switch-out. bpf_get_prandom_u32 is a helper
 * call, and a call's return costs ~25 ns on CPUs whose kernel guards returns against speculation (AMD's SRSO "safe
 * RET", this project's machines): as much as the rest of a switch-out that reads no stack. The helper seeds it. */
static __always_inline __u32 slot_random(struct offcpu_slot *slot)
{
	__u64 x = slot->rng;

	if (!x)
		x = (__u64)bpf_get_prandom_u32() << 32 | bpf_get_prandom_u32() | 1;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	slot->rng = x;
	return x >> 32;
}

/* prev (the current task) leaves the CPU at clock (switch_clock): note when, why, and (maybe) its user stack. */
static __always_inline void offcpu_leave(struct task_struct *prev, __u64 clock)
{
	struct offcpu_slot *slot = bpf_task_storage_get(&offcpu_slots, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	struct offcpu_labels *labels;
	struct captured c = {};
	__u64 lp;

	if (!slot) {
		count(COUNTER_OFFCPU_NO_SLOT);
		return;
	}
	slot->left_at = clock;
	slot->attachment = offcpu_attachment;
	slot->state = task_state(prev) == TASK_RUNNING ? OFFCPU_RUNNABLE : OFFCPU_BLOCKED;
	slot->flags = 0;
	slot->user_len = 0;
	slot->labels_len = 0;
	slot->read_p = read_probability(slot->avg_ns, offcpu_period_ns);
	if (slot->read_p < OFFCPU_P_ONE && (slot_random(slot) >> (32 - OFFCPU_P_SHIFT)) >= slot->read_p) {
		slot->read_p = 0;
		return;
	}
	/* Only an interval whose stack is read can be sent: it alone is timed by the records' clock. From before the
	 * read, as the kernel counts it: prev's CPU time was last updated before this tracepoint, and the time spent
	 * here is charged to next. */
	slot->start_ns = bpf_ktime_get_ns();
	count(COUNTER_OFFCPU_READS);
	slot->user_len = capture_user(prev->tgid, slot->user_stack, &slot->flags, &slot->goid, &c, WALK_OFFCPU, slot->start_ns);
	if (!c.cfg || !(lp = labels_of(c.cfg, c.g)))
		return;
	labels = bpf_task_storage_get(&offcpu_labels, prev, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (labels)
		slot->labels_len = read_labels(c.cfg, lp, labels->data, WALK_OFFCPU, &slot->flags);
}

/* next is about to run again, at clock (switch_clock): send its interval, or a sample of the short ones (struct
 * offcpu_record). */
static __always_inline void offcpu_return(struct task_struct *next, __u64 clock)
{
	struct offcpu_slot *slot = bpf_task_storage_get(&offcpu_slots, next, 0, 0);
	__u64 left, now, begin, delta, weight, keep, period = offcpu_period_ns;
	struct offcpu_labels *labels;
	struct offcpu_record *rec;
	struct offcpu_buf *buf;
	__u32 zero = 0, labels_len;
	long len;

	if (!slot || !slot->left_at)
		return;
	left = slot->left_at;
	slot->left_at = 0;
	if (slot->attachment != offcpu_attachment) /* it left before this attachment, maybe long before: not timed */
		return;
	if (clock > left) {
		delta = clock - left;
		if (delta > OFFCPU_MAX_NS)
			delta = OFFCPU_MAX_NS;
		slot->avg_ns = slot->avg_ns ? slot->avg_ns - (slot->avg_ns >> OFFCPU_AVG_SHIFT) + (delta >> OFFCPU_AVG_SHIFT)
					    : delta;
	}
	if (!period)
		return;
	count(COUNTER_OFFCPU_ENDS);
	if (!slot->read_p)
		return;
	now = bpf_ktime_get_ns();
	begin = slot->start_ns;
	if (now <= begin)
		return;
	delta = now - begin;
	if (delta > OFFCPU_MAX_NS)
		delta = OFFCPU_MAX_NS;

	/* Sent with probability keep = min(1, delta / period), in 1/2^32. The stack was read with probability
	 * read_p: if that is below keep every read one is sent with weight delta / read_p, else a read one is sent
	 * with probability keep / read_p and weight period. Either way the expected weight is delta. */
	keep = delta >= period ? 1ULL << 32 : (delta << 32) / period;
	if (keep >= (__u64)slot->read_p << (32 - OFFCPU_P_SHIFT)) {
		weight = (delta << OFFCPU_P_SHIFT) / slot->read_p;
	} else {
		/* The helper, not slot_random: independent of the draw that decided the read. */
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
	if (labels_len > LABELS_BUF || bpf_ringbuf_output(&events, buf, sizeof(*rec) + labels_len, BPF_RB_NO_WAKEUP)) {
		count(COUNTER_OFFCPU_DROPS);
		return;
	}
	count(COUNTER_OFFCPU_SENT);
}

/* This CPU's scheduler clock (rq->clock), when the kernel has CONFIG_FAIR_GROUP_SCHED to reach it by: a load, where
 * bpf_ktime_get_ns() reads the clock source (~70 ns a call on this project's KVM guests, more than the rest of the
 * program at most switches). It drives the moving averages only: it is sched_clock, not CLOCK_MONOTONIC, and a
 * wakeup that preempts leaves it at the time of the wakeup (rq_clock_skip_update), a little before the switch. */
static __always_inline __u64 switch_clock(struct task_struct *next)
{
	if (bpf_core_field_exists(next->se.cfs_rq))
		return next->se.cfs_rq->rq->clock;
	return bpf_ktime_get_ns();
}

SEC("tp_btf/sched_switch")
int BPF_PROG(offcpu_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 clock = switch_clock(next);

	if (wanted(prev->tgid, offcpu_filter_mode, TARGET_OFFCPU) && !(prev->flags & PF_KTHREAD))
		offcpu_leave(prev, clock);
	offcpu_return(next, clock);
	return 0;
}

/* A new program image: the agent looks at the process now instead of at its next /proc scan. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct exec_record *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	__u64 now = bpf_ktime_get_ns(), wakeup = BPF_RB_NO_WAKEUP;

	if (!e) {
		count(COUNTER_EXEC_DROPS);
		return 0;
	}
	e->kind = RECORD_EXEC;
	e->tgid = p->tgid;
	e->time_ns = now;
	/* The agent reads the ring on a timer (samples need no hurry), but a new program may live only a few hundred
	 * milliseconds: its exec wakes the reader, unless one did within EXEC_WAKEUP_GAP_NS (the reader then reads
	 * again soon after that wakeup anyway). A wakeup per exec cost the agent a third more CPU under 200 execs a
	 * second (bench/churn.bench.ts). */
	if (now - exec_wakeup_ns >= EXEC_WAKEUP_GAP_NS) {
		exec_wakeup_ns = now;
		wakeup = BPF_RB_FORCE_WAKEUP;
	}
	bpf_ringbuf_submit(e, wakeup);
	return 0;
}

/* The last thread of a process exits: its config goes now, not at the agent's next /proc scan, and the agent
 * hears of it in stream order (struct exit_record). A thread that is not the last one leaves signal->live above 0
 * (do_exit decrements it before this tracepoint). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	__u32 tgid = p->tgid;
	struct exit_record *e;
	bool known;

	if (p->signal->live.counter > 0)
		return 0;
	known = bpf_map_delete_elem(&proc_configs, &tgid) == 0;
	if (!known && !wanted(tgid, filter_mode, TARGET_CPU) && !wanted(tgid, offcpu_filter_mode, TARGET_OFFCPU))
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(COUNTER_EXEC_DROPS);
		return 0;
	}
	e->kind = RECORD_EXIT;
	e->tgid = tgid;
	e->start_ticks = start_ticks(p);
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
