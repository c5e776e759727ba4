/* SPDX-License-Identifier: Apache-2.0 */
/* Shared layout between runqlat.bpf.c and src/metrics/runqlat.ts (mirrored there with src/bpf codecs). */
#ifndef QUIETFLAME_RUNQLAT_H
#define QUIETFLAME_RUNQLAT_H

/* Slot i counts latencies of floor(log2(µs)) = i, i.e. [2^i, 2^(i+1)) µs (slot 0 also holds 0 µs);
 * the last slot also takes everything longer (≥ 2^31 µs ≈ 36 min). */
#define RUNQ_SLOTS 32

/* Default capacity of the per-cgroup histograms (a hash; overridable at open). */
#define RUNQ_MAX_CGROUPS 1024

struct runq_hist {
	__u64 slots[RUNQ_SLOTS];
	__u64 sum_ns; /* sum of the latencies, nanoseconds */
	__u64 count;  /* latencies recorded (= sum of slots) */
};

/* Index into the per-CPU `offcpu_ns` array: node-wide off-CPU time of user threads (kernel threads left out:
 * most of them sleep by design), by why they were off the CPU. */
enum offcpu_state {
	OFFCPU_NS_BLOCKED = 0,  /* switched out not runnable, until woken */
	OFFCPU_NS_RUNNABLE = 1, /* woken or preempted, until running again (the run-queue latency of user threads) */
	OFFCPU_NS_KINDS = 2,
};

/* Bits of the `missing_fields` global: a field this kernel lacks (CO-RE), so no latency can be measured. Set by
 * the first switch that needed it; user space then reports the feature off. */
#define MISSING_RQ_CLOCK 0x1   /* task_struct.se.cfs_rq (CONFIG_FAIR_GROUP_SCHED): the rq clock */
#define MISSING_SCHED_INFO 0x2 /* task_struct.sched_info.last_queued (CONFIG_SCHED_INFO) */

/* Index into the per-CPU `drops` array: why a latency was not recorded. */
enum runq_drop {
	RUNQ_DROP_START = 0,  /* task storage unavailable (-ENOMEM, or busy on recursion): the latency is recorded without
			       * any part a migration ended early, and blocked time is not counted */
	RUNQ_DROP_CGROUP = 1, /* cgroup_hists full: node-wide histogram still counted it */
	RUNQ_DROP_KINDS = 2,
};

#endif
