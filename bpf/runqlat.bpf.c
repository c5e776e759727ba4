// SPDX-License-Identifier: Apache-2.0
/* Run-queue latency, the method of bcc's libbpf-tools runqlat: a task becomes runnable (wakeup, new
 * task, or preemption while still TASK_RUNNING), and when it next runs, now - then goes into a
 * floor-log2 histogram of microseconds. Node-wide always; per cgroup v2 id when per_cgroup is set.
 * Beside it, node-wide off-CPU nanoseconds of user threads: blocked (switched out not runnable, until
 * woken) and runnable (until running again). Nothing is ever reset: user space reads cumulative counters.
 *
 * The switch-out time of a blocked thread is not stored at the switch (that would be a second task-storage
 * lookup on every switch): the switch-in time and the thread's CPU time then are, and at wakeup the switch-out
 * time is the switch-in time plus the CPU time it has used since (se.sum_exec_runtime, complete once it is
 * off the CPU; it leaves out IRQ time, so blocked time is over-counted by the IRQ time of the last stint).
 *
 * The enqueue time lives in task-local storage, not a pid-keyed hash: nothing to size or fill, the
 * kernel frees it when the task exits (a hash leaks the entry of every thread woken before it exits),
 * and the lookup is a pointer chase from task_struct instead of a hash of the tid. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "runqlat.h"
#include "sched.h"

const volatile bool per_cgroup = false;

struct task_times {
	__u64 queued_ns;   /* ktime ns when it became runnable; 0 = not queued */
	__u64 on_since_ns; /* user threads: ktime ns when it last went on a CPU; 0 = not since its last wakeup */
	__u64 exec_at_on;  /* its se.sum_exec_runtime then */
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

static __always_inline struct task_times *times_of(struct task_struct *t)
{
	struct task_times *tt = bpf_task_storage_get(&start, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (!tt)
		drop(RUNQ_DROP_START);
	return tt;
}

/* t becomes runnable (woken, new, or preempted): the end of its blocked time (woken), the start of its wait
 * to run. */
static __always_inline void enqueue(struct task_struct *t, __u64 now, bool woken)
{
	struct task_times *tt;
	__u64 left;

	if (!t->pid) /* the idle task */
		return;
	tt = times_of(t);
	if (!tt)
		return;
	if (tt->on_since_ns && !t->on_cpu) { /* a wakeup of a thread still on its CPU ends no blocked time */
		if (woken) {
			left = tt->on_since_ns + (t->se.sum_exec_runtime - tt->exec_at_on);
			if (now > left)
				add_offcpu(OFFCPU_NS_BLOCKED, now - left);
		}
		tt->on_since_ns = 0;
	}
	tt->queued_ns = now;
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

SEC("tp_btf/sched_wakeup")
int BPF_PROG(on_wakeup, struct task_struct *p)
{
	enqueue(p, bpf_ktime_get_ns(), true);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(on_wakeup_new, struct task_struct *p)
{
	enqueue(p, bpf_ktime_get_ns(), true);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = bpf_ktime_get_ns(), delta, slot;
	struct task_times *tt;
	struct runq_hist *h;
	__u32 zero = 0;

	if (task_state(prev) == TASK_RUNNING) /* preempted: runnable again from now */
		enqueue(prev, now, false);

	tt = bpf_task_storage_get(&start, next, 0, 0);
	if (!tt)
		return 0;
	if (next->pid && !(next->flags & PF_KTHREAD)) {
		tt->on_since_ns = now;
		tt->exec_at_on = next->se.sum_exec_runtime;
	}
	if (!tt->queued_ns)
		return 0;
	delta = now - tt->queued_ns;
	tt->queued_ns = 0;
	if ((__s64)delta < 0) /* re-queued on another CPU as we read it */
		return 0;
	if (!(next->flags & PF_KTHREAD))
		add_offcpu(OFFCPU_NS_RUNNABLE, delta);

	slot = log2l(delta / 1000);
	if (slot >= RUNQ_SLOTS)
		slot = RUNQ_SLOTS - 1;

	h = bpf_map_lookup_elem(&hist, &zero);
	if (h) {
		h->slots[slot] += 1;
		h->sum_ns += delta;
		h->count += 1;
	}
	if (per_cgroup && (h = cgroup_hist(next))) {
		__sync_fetch_and_add(&h->slots[slot], 1);
		__sync_fetch_and_add(&h->sum_ns, delta);
		__sync_fetch_and_add(&h->count, 1);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
