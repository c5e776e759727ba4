// SPDX-License-Identifier: Apache-2.0
/* Run-queue latency as bcc's runqlat defines it (a task becomes runnable — woken, new, or preempted while still
 * TASK_RUNNING — and later runs: now - then), into a floor-log2 histogram of microseconds. Node-wide always; per
 * cgroup v2 id when per_cgroup is set. Beside it, node-wide off-CPU nanoseconds of user threads: runnable (that
 * same wait) and blocked (from leaving the CPU not runnable until woken). Nothing is ever reset: user space reads
 * cumulative counters.
 *
 * One program, on sched_switch only: the kernel already timestamps the enqueue (task_struct.sched_info, kept for
 * /proc/PID/schedstat: last_queued when it became runnable, run_delay the waits so far, in rq clock), so no
 * wakeup programs run and, as the switch is traced before the kernel folds the wait into run_delay, the wait that
 * ends now is rq->clock - last_queued, plus any part of it a migration already folded into run_delay. Needs
 * CONFIG_SCHED_INFO (CONFIG_SCHEDSTATS or CONFIG_TASK_DELAY_ACCT; /proc/self/schedstat exists) and
 * CONFIG_FAIR_GROUP_SCHED (the cgroup cpu controller; for the rq pointer).
 *
 * Blocked time: when a thread goes on a CPU its arrival (rq clock) and CPU time (se.sum_exec_runtime) are noted in
 * task-local storage; at its next arrival it left the CPU at arrival + the CPU time used since, and what is not
 * run-queue wait since then was blocked. (CPU time leaves out IRQ and steal time, so blocked time is over-counted
 * by that of the last stint.) Task-local storage, not a pid-keyed hash: nothing to size or fill, the kernel
 * frees it when the task exits, and the lookup is a pointer chase from task_struct.
 *
 * Then, while user space has put one there, the program tail-calls another sched_switch program (the off-CPU
 * profiler of profile.bpf.o): one program entry per switch for both, not two. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "runqlat.h"
#include "sched.h"

const volatile bool per_cgroup = false;
/* MISSING_* bits (runqlat.h). */
__u32 missing_fields = 0;

struct task_times {
	__u64 arrived_ns;       /* rq clock when it last went on a CPU; 0 = not seen yet */
	__u64 exec_at_arrival;  /* its se.sum_exec_runtime then */
	__u64 delay_at_arrival; /* its sched_info.run_delay once that arrival's wait was added */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_times);
} start SEC(".maps");

/* Per-CPU so the per-switch path needs no atomics; user space sums the CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct runq_hist);
} hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RUNQ_MAX_CGROUPS);
	__type(key, __u64); /* cgroup v2 id (the cgroup directory's inode number) */
	__type(value, struct runq_hist);
} cgroup_hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RUNQ_DROP_KINDS);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OFFCPU_NS_KINDS);
	__type(key, __u32);
	__type(value, __u64);
} offcpu_ns SEC(".maps");

/* Slot 0: a tp_btf/sched_switch program to run after this one (empty: none). */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} then_run SEC(".maps");

static const struct runq_hist empty_hist;

static __always_inline void drop(__u32 why)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &why);

	if (n)
		*n += 1;
}

static __always_inline void add_offcpu(__u32 state, __u64 ns)
{
	__u64 *sum = bpf_map_lookup_elem(&offcpu_ns, &state);

	if (sum)
		*sum += ns;
}

static __always_inline __u64 log2l(__u64 v)
{
	__u64 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	return r + (v >> 1);
}

static __always_inline struct runq_hist *cgroup_hist(struct task_struct *t)
{
	__u64 id = BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
	struct runq_hist *h = bpf_map_lookup_elem(&cgroup_hists, &id);

	if (h)
		return h;
	bpf_map_update_elem(&cgroup_hists, &id, &empty_hist, BPF_NOEXIST); /* -E2BIG when full */
	h = bpf_map_lookup_elem(&cgroup_hists, &id);
	if (!h)
		drop(RUNQ_DROP_CGROUP);
	return h;
}

static __always_inline void record_wait(struct task_struct *t, __u64 wait)
{
	__u64 slot = log2l(wait / 1000);
	struct runq_hist *h;
	__u32 zero = 0;

	if (slot >= RUNQ_SLOTS)
		slot = RUNQ_SLOTS - 1;
	h = bpf_map_lookup_elem(&hist, &zero);
	if (h) {
		h->slots[slot] += 1;
		h->sum_ns += wait;
		h->count += 1;
	}
	if (per_cgroup && (h = cgroup_hist(t))) {
		__sync_fetch_and_add(&h->slots[slot], 1);
		__sync_fetch_and_add(&h->sum_ns, wait);
		__sync_fetch_and_add(&h->count, 1);
	}
}

static __always_inline void measure_switch(struct task_struct *next)
{
	/* This CPU's rq clock (the clock of sched_info; __schedule updated it before the pick). Every task's
	 * se.cfs_rq is on its CPU, and next's CPU is this one. (runqueues itself, a per-CPU variable, is not in
	 * kallsyms without CONFIG_KALLSYMS_ALL.) */
	__u64 now, queued, delay, pending, wait, left;
	bool user = !(next->flags & PF_KTHREAD);
	struct task_times *tt;

	/* Fields that depend on the kernel's configuration: without them the program still loads (the reads below
	 * are dead code then) and says what is missing. */
	if (!bpf_core_field_exists(next->se.cfs_rq)) {
		missing_fields |= MISSING_RQ_CLOCK;
		return;
	}
	if (!bpf_core_field_exists(next->sched_info.last_queued) || !bpf_core_field_exists(next->sched_info.run_delay)) {
		missing_fields |= MISSING_SCHED_INFO;
		return;
	}
	if (!next->pid) /* the idle task */
		return;
	now = next->se.cfs_rq->rq->clock;
	queued = next->sched_info.last_queued;
	delay = next->sched_info.run_delay;
	pending = queued && now > queued ? now - queued : 0; /* the wait ending now, not yet in run_delay */
	wait = pending;
	tt = bpf_task_storage_get(&start, next, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!tt) {
		drop(RUNQ_DROP_START);
	} else {
		if (tt->arrived_ns) {
			if (delay > tt->delay_at_arrival) /* part of the wait, ended early by a migration */
				wait += delay - tt->delay_at_arrival;
			left = tt->arrived_ns + (next->se.sum_exec_runtime - tt->exec_at_arrival);
			if (user && now > left + wait)
				add_offcpu(OFFCPU_NS_BLOCKED, now - left - wait);
		}
		tt->arrived_ns = now;
		tt->exec_at_arrival = next->se.sum_exec_runtime;
		tt->delay_at_arrival = delay + pending;
	}
	if (!queued) /* not enqueued the usual way (no sched_info_enqueue): no wait to record */
		return;
	if (user)
		add_offcpu(OFFCPU_NS_RUNNABLE, wait);
	record_wait(next, wait);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	measure_switch(next);
	bpf_tail_call(ctx, &then_run, 0); /* returns only when the slot is empty */
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
