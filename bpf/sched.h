/* SPDX-License-Identifier: Apache-2.0 */
/* Scheduler facts shared by the sched_switch programs (runqlat.bpf.c, profile.bpf.c). Include after vmlinux.h. */
#ifndef QUIETFLAME_SCHED_H
#define QUIETFLAME_SCHED_H

#define TASK_RUNNING 0
#define PF_EXITING 0x00000004 /* include/linux/sched.h: in do_exit */
#define PF_KTHREAD 0x00200000

/* task_struct::state became __state in v5.14 (commit 2f064a59a1); libbpf-tools' core_fixes.bpf.h. */
struct task_struct___o {
	volatile long state;
} __attribute__((preserve_access_index));

/* t must be a trusted BTF pointer (a tp_btf argument): a plain load, no probe-read helper call per switch. */
static __always_inline long task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return t->__state;
	return ((struct task_struct___o *)t)->state;
}

#endif
