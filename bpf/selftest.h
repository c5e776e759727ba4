/* SPDX-License-Identifier: Apache-2.0 */
/* Shared layout between selftest.bpf.c and test/bpf (mirrored there with src/bpf codecs). */
#ifndef QUIETFLAME_SELFTEST_H
#define QUIETFLAME_SELFTEST_H

struct sample_event {
	__u32 pid;
	__u32 tid;
	__u32 cpu;
	__u32 flags;
	__u64 time_ns;
};

struct kv_key {
	__u32 pid;
	__u8 tag[4];
};

struct kv_value {
	__u64 count;
	__u16 cpu;
	__u8 comm[6];
	__u32 ids[2];
};

/* echo_input: bytes the echo program sends to the echoes ring as one record. */
#define ECHO_MAX 8192

struct echo_input {
	__u32 len;
	__u32 pad;
	__u8 data[ECHO_MAX];
};

#endif
