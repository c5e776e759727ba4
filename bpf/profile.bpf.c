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
 * Layouts and constants: profile.h. Loader and decoder: src/sampler/cpu-sampler.ts.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "profile.h"

/* The agent decodes these layouts with the codecs in src/ (their tests pin the same numbers). */
_Static_assert(sizeof(struct unwind_key) == 8, "struct unwind_key: see src/symbols/unwind-table.ts");
_Static_assert(sizeof(struct unwind_chunk) == 508, "struct unwind_chunk: see src/symbols/unwind-table.ts");
_Static_assert(sizeof(struct proc_config) == 112, "struct proc_config: see src/symbols/injector.ts");
_Static_assert(sizeof(struct sample_record) == 2088, "struct sample_record: see src/sampler/cpu-sampler.ts");
_Static_assert(__builtin_offsetof(struct sample_record, user_stack) == 56, "struct sample_record: see src/sampler/cpu-sampler.ts");
_Static_assert(sizeof(struct exec_record) == 16, "struct exec_record: see src/sampler/cpu-sampler.ts");

#define PF_KTHREAD 0x00200000 /* include/linux/sched.h */
#define USER_ADDR_END (1ULL << 56) /* above any user address (also with 5-level page tables) */

/* Set before load: sample only this process (0 = as filter_mode says). */
const volatile __u32 target_tgid = 0;
/* Set by the agent at any time: FILTER_NONE, FILTER_ALL or FILTER_PIDS. */
__u32 filter_mode = FILTER_NONE;

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
	__type(value, __u8);
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

static __always_inline bool wanted(__u32 tgid)
{
	if (tgid == 0) /* the idle task */
		return false;
	if (target_tgid)
		return tgid == target_tgid;
	if (filter_mode == FILTER_ALL)
		return true;
	if (filter_mode == FILTER_PIDS)
		return bpf_map_lookup_elem(&target_pids, &tgid) != NULL;
	return false;
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

/* Fills rec->user_stack from the task's user registers. The Go-aware leaf step and goroutine IDs are amd64 only
 * (arm64 gets the frame-pointer walk: its frame records have the same [FP] / [FP + 8] shape). */
static __always_inline void walk_user(struct pt_regs *regs, const struct proc_config *cfg,
				      struct sample_record *rec, struct leaf_info *leaf)
{
	__u64 pc = PT_REGS_IP_CORE(regs), sp = PT_REGS_SP_CORE(regs), bp = PT_REGS_FP_CORE(regs), prev_bp = 0;
	struct { __u64 next_bp, ret; } frame;
	struct range_info r;
	__u32 n = 0, i;

	if (!pc)
		return;
	rec->user_stack[n++] = pc;

#if defined(__TARGET_ARCH_x86)
	/* The leaf: where is its return address, and has it set up its frame pointer yet? */
	if (cfg && cfg->binary_id && pc - cfg->bias >= cfg->minpc && pc - cfg->bias < cfg->maxpc) {
		if (!find_range(cfg->binary_id, pc - cfg->bias - cfg->minpc, &r)) {
			count(COUNTER_TABLE_MISSES);
		} else {
			count(COUNTER_TABLE_HITS);
			leaf->found = true;
			leaf->flags = r.flags;
			rec->flags |= SAMPLE_F_TABLE;
			if (r.flags & UNWIND_F_TOP_FRAME) {
				rec->flags |= SAMPLE_F_TOP_FRAME;
				goto out;
			}
			if (!(r.flags & (UNWIND_F_NO_INFO | UNWIND_F_SPWRITE)) && r.spdelta >= 0) {
				__u64 ret_at = sp + r.spdelta;

				if (bp != ret_at - 8) {
					/* Frame not set up (frameless leaf, prologue, epilogue): RBP is still the
					 * caller's, so the caller would be skipped. Take it from the stack. */
					if (bpf_probe_read_user(&frame.ret, sizeof(frame.ret), (void *)ret_at) ||
					    !frame.ret || frame.ret >= USER_ADDR_END)
						goto out;
					rec->user_stack[n++] = frame.ret;
					rec->flags |= SAMPLE_F_LEAF_FIXUP;
					count(COUNTER_LEAF_FIXUPS);
					if (top_frame(cfg, frame.ret - 1 - cfg->bias)) {
						rec->flags |= SAMPLE_F_TOP_FRAME;
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
			rec->flags |= SAMPLE_F_TRUNCATED;
			break;
		}
		if (bpf_probe_read_user(&frame, sizeof(frame), (void *)bp))
			break;
		if (!frame.ret || frame.ret >= USER_ADDR_END)
			break;
		rec->user_stack[n++] = frame.ret;
		if (cfg && top_frame(cfg, frame.ret - 1 - cfg->bias)) {
			rec->flags |= SAMPLE_F_TOP_FRAME;
			break;
		}
		prev_bp = bp;
		bp = frame.next_bp;
	}
out:
	rec->user_len = n;
}

/* The goroutine the thread is running: g from R14 (Go code, Go >= 1.17) or TLS; from g0/gsignal to m.curg. */
static __always_inline void read_goid(struct task_struct *task, struct pt_regs *regs,
				      const struct proc_config *cfg, const struct leaf_info *leaf,
				      struct sample_record *rec)
{
#if defined(__TARGET_ARCH_x86)
	__u64 g = 0, m = 0, curg = 0, goid = 0;

	if (!(cfg->flags & PROC_F_GOID))
		return;
	if ((cfg->flags & PROC_F_R14_G) && leaf->found &&
	    (leaf->flags & (UNWIND_F_GO | UNWIND_F_NO_INFO)) == UNWIND_F_GO) {
		g = BPF_CORE_READ(regs, r14);
		rec->flags |= SAMPLE_F_G_R14;
	} else if (cfg->flags & PROC_F_TLS_G) {
		__u64 fsbase = BPF_CORE_READ(task, thread.fsbase);

		if (!fsbase || bpf_probe_read_user(&g, sizeof(g), (void *)(fsbase + (__s64)cfg->tls_g_offset)))
			return;
		rec->flags |= SAMPLE_F_G_TLS;
	}
	if (!g)
		return;
	if (!bpf_probe_read_user(&m, sizeof(m), (void *)(g + cfg->g_m)) && m &&
	    !bpf_probe_read_user(&curg, sizeof(curg), (void *)(m + cfg->m_curg)) && curg && curg != g) {
		g = curg; /* g was g0 or gsignal */
		rec->flags |= SAMPLE_F_CURG;
	}
	if (bpf_probe_read_user(&goid, sizeof(goid), (void *)(g + cfg->g_goid)) || !goid)
		return;
	rec->goid = goid;
	rec->flags |= SAMPLE_F_GOID;
	count(COUNTER_GOIDS);
#endif
}

SEC("perf_event")
int do_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct leaf_info leaf = {};
	const struct proc_config *cfg;
	struct sample_record *rec;
	struct task_struct *task;
	struct pt_regs *regs;
	long len;

	if (!wanted(tgid))
		return 0;
	count(COUNTER_SAMPLES);

	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec) {
		count(COUNTER_RINGBUF_DROPS);
		return 0;
	}
	rec->kind = RECORD_SAMPLE;
	rec->tgid = tgid;
	rec->tid = (__u32)id;
	rec->cpu = bpf_get_smp_processor_id();
	rec->time_ns = bpf_ktime_get_ns();
	rec->goid = 0;
	rec->flags = 0;
	rec->user_len = 0;
	rec->kernel_len = 0;
	bpf_get_current_comm(rec->comm, sizeof(rec->comm));

	/* Kernel stack only when the sample hit kernel mode (a kernel IP has the top bit set). */
	if ((long)PT_REGS_IP(&ctx->regs) < 0) {
		len = bpf_get_stack(ctx, rec->kernel_stack, sizeof(rec->kernel_stack), 0);
		if (len > 0)
			rec->kernel_len = len / sizeof(__u64);
	}

	task = bpf_get_current_task_btf();
	if (task->flags & PF_KTHREAD) {
		rec->flags |= SAMPLE_F_KTHREAD;
	} else {
		/* The user-mode registers, also when the sample interrupted the kernel (a syscall, a fault). */
		regs = (struct pt_regs *)bpf_task_pt_regs(task);
		cfg = bpf_map_lookup_elem(&proc_configs, &tgid);
		if (cfg)
			rec->flags |= SAMPLE_F_CONFIG;
		walk_user(regs, cfg, rec, &leaf);
		if (cfg)
			read_goid(task, regs, cfg, &leaf, rec);
	}

	bpf_ringbuf_submit(rec, 0);
	count(COUNTER_SENT);
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
