// SPDX-License-Identifier: Apache-2.0
/* Self-test programs for the loader layer (native/ + src/bpf/): one of each
 * attach kind and map kind the agent relies on. Not used by the agent itself. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "selftest.h"

/* 0 = every process; set from user space before load. */
const volatile __u32 target_tgid = 0;
/* The process whose getppid(2) calls the echo program answers; 0 = none. */
const volatile __u32 echo_tgid = 0;

#if defined(__TARGET_ARCH_x86)
#define NR_GETPPID 110
#elif defined(__TARGET_ARCH_arm64)
#define NR_GETPPID 173
#else
#define NR_GETPPID -1 /* not wired up: the echo never fires */
#endif

/* .bss: read and written by user space through the mmaped map. */
__u64 execs = 0;
__u64 ringbuf_drops = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} switches SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} samples SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Only touched from user space: map-operation round trips. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct kv_key);
	__type(value, struct kv_value);
} kv SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&switches, &zero);

	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, zero = 0;
	struct sample_event *e;
	__u64 *n;

	if (target_tgid && tgid != target_tgid)
		return 0;
	n = bpf_map_lookup_elem(&samples, &zero);
	if (n)
		*n += 1;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&ringbuf_drops, 1);
		return 0;
	}
	e->pid = tgid;
	e->tid = (__u32)id;
	e->cpu = bpf_get_smp_processor_id();
	e->flags = 0;
	e->time_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP); /* read on the reader's timer, in batches */
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int on_exec(void *ctx)
{
	__sync_fetch_and_add(&execs, 1);
	return 0;
}

/* Records of chosen bytes, in a chosen order, through a real ring buffer (for the reader's own handling of them,
 * e.g. native/sample_coalescer.h): user space writes echo_input, then calls getppid(2) (Node: process.ppid). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct echo_input);
} echo_input SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} echoes SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(echo, struct pt_regs *regs, long id)
{
	struct echo_input *in;
	__u32 zero = 0, len;

	if (id != NR_GETPPID || !echo_tgid || bpf_get_current_pid_tgid() >> 32 != echo_tgid)
		return 0;
	in = bpf_map_lookup_elem(&echo_input, &zero);
	if (!in)
		return 0;
	len = in->len;
	if (len == 0 || len > ECHO_MAX)
		return 0;
	bpf_ringbuf_output(&echoes, in->data, len, BPF_RB_NO_WAKEUP); /* read when the test asks (readNow) */
	return 0;
}

/* Off by default ("?"): tests enable it to check that verifier rejections reach JS with the log. */
SEC("?tp_btf/sched_switch")
int BPF_PROG(verifier_reject)
{
	struct kv_key key = {};
	struct kv_value *v = bpf_map_lookup_elem(&kv, &key);

	return v->count; /* no NULL check: the verifier must refuse this */
}

char LICENSE[] SEC("license") = "GPL";
