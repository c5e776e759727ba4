/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The current goroutine's pprof labels, read from its g (g.labels, where runtime/pprof.SetGoroutineLabels put them
 * and where the runtime's own CPU profiler takes them from m.curg) into the record format of profile.h. Where the
 * labels are and how they are laid out comes from the process's proc_config (struct labels_layout): a map of
 * buckets up to Go 1.23, a slice of pairs from 1.24. Everything is read with bpf_probe_read_user and bounded:
 * at most labels_max labels of at most label_key_bytes + label_value_bytes, LABELS_MAX_VISITS map buckets.
 *
 * The walk keeps its state in a per-CPU map (struct label_walk), not on the stack: the verifier then sees the same
 * state at every loop head and the loops verify in linear time, and the 512-byte stack stays free.
 * Include after vmlinux.h, the libbpf headers and profile.h, with count() defined.
 */
#ifndef QUIETFLAME_LABELS_H
#define QUIETFLAME_LABELS_H

/* Set before load (the agent's flags); labels_max 0 = labels off. */
const volatile __u32 labels_max = 0;
const volatile __u32 label_key_bytes = 64;
const volatile __u32 label_value_bytes = 128;

/* Bytes a labels buffer needs so the verifier can prove every write in bounds (see put_label). */
#define LABELS_SCRATCH (LABELS_BUF + LABEL_HEADER + 2 * LABEL_KEY_MAX + 2 * LABEL_VALUE_MAX)

_Static_assert((LABELS_BUF & (LABELS_BUF - 1)) == 0, "LABELS_BUF: a power of two");
_Static_assert((LABEL_KEY_MAX & (LABEL_KEY_MAX - 1)) == 0 && (LABEL_VALUE_MAX & (LABEL_VALUE_MAX - 1)) == 0,
	       "LABEL_KEY_MAX, LABEL_VALUE_MAX: powers of two");

#define WALK_CPU 0    /* the perf-event program's walk state */
#define WALK_OFFCPU 1 /* the sched_switch program's */

struct label_walk {
	__u64 bucket;        /* map: bucket being read (0 = take the next one of base) */
	__u64 base;          /* map: bucket array being walked */
	__u64 old;           /* map: old bucket array of a map still growing, walked after base (0 = none) */
	__u32 next;          /* map: index of the next bucket of base */
	__u32 nbuckets;      /* map: buckets in base */
	__u32 old_nbuckets;
	__u32 off;           /* bytes written */
	__u32 n;             /* labels written */
	__u32 want;          /* labels to read: the set's size, at most labels_max */
	__u32 cut;           /* something was left out */
	__u32 pad;
	__u8 tophash[8];     /* map: the bucket's tophash bytes */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2); /* WALK_CPU, WALK_OFFCPU: the two programs never share one */
	__type(key, __u32);
	__type(value, struct label_walk);
} label_walks SEC(".maps");

struct go_string {
	__u64 ptr;
	__u64 len;
};

/* Appends the label whose key and value string headers are at key_hdr and value_hdr (user addresses) to out
 * (LABELS_SCRATCH bytes). false: out is full, stop. A label that cannot be read is skipped. */
static __always_inline bool put_label(__u8 *out, struct label_walk *st, __u64 key_hdr, __u64 value_hdr)
{
	struct go_string k, v;
	__u32 off = st->off, kl, vl;

	if (bpf_probe_read_user(&k, sizeof(k), (void *)key_hdr) || bpf_probe_read_user(&v, sizeof(v), (void *)value_hdr)) {
		st->cut = 1;
		return true;
	}
	kl = k.len < label_key_bytes ? k.len : label_key_bytes;
	vl = v.len < label_value_bytes ? v.len : label_value_bytes;
	if (kl < k.len || vl < v.len)
		st->cut = 1;
	/* The masks change nothing (the globals are at most the maxima, off + header + kl + vl <= LABELS_BUF): they
	 * are the bounds the verifier needs. */
	kl &= 2 * LABEL_KEY_MAX - 1;
	vl &= 2 * LABEL_VALUE_MAX - 1;
	if (off + LABEL_HEADER + kl + vl > LABELS_BUF) {
		st->cut = 1;
		return false;
	}
	off &= LABELS_BUF - 1;
	out[off] = kl;
	out[off + 1] = kl >> 8;
	out[off + 2] = vl;
	out[off + 3] = vl >> 8;
	if (bpf_probe_read_user(out + off + LABEL_HEADER, kl, (void *)k.ptr) ||
	    bpf_probe_read_user(out + off + LABEL_HEADER + kl, vl, (void *)v.ptr)) {
		st->cut = 1; /* not paged in, or not memory: skipped */
		return true;
	}
	st->off = off + LABEL_HEADER + kl + vl;
	st->n++;
	return true;
}

/* Go >= 1.24: a slice of pairs, header at lp. */
static __always_inline void labels_slice(const struct labels_layout *L, __u64 lp, __u8 *out, struct label_walk *st)
{
	__u64 array, len;

	if (bpf_probe_read_user(&array, sizeof(array), (void *)(lp + L->slice_array)) ||
	    bpf_probe_read_user(&len, sizeof(len), (void *)(lp + L->slice_len))) {
		st->cut = 1;
		return;
	}
	if (len > labels_max) {
		st->cut = 1;
		len = labels_max;
	}
	st->want = len;
	for (__u32 i = 0; i < LABELS_MAX; i++) {
		if (i >= st->want)
			break;
		if (!put_label(out, st, array + L->key_at + (__u64)i * L->stride, array + L->value_at + (__u64)i * L->stride))
			break;
	}
}

/* Go <= 1.23: lp points at a map variable; its hmap's buckets, their overflow chains and, while the map still
 * grows, its old buckets (whose cells not yet moved have a real tophash; moved ones are marked evacuated). */
static __always_inline void labels_map(const struct labels_layout *L, __u64 lp, __u8 *out, struct label_walk *st)
{
	__u64 hmap, count;
	__u8 b, flags;

	if (bpf_probe_read_user(&hmap, sizeof(hmap), (void *)lp))
		goto unreadable;
	if (!hmap)
		return; /* a nil map */
	if (bpf_probe_read_user(&count, sizeof(count), (void *)(hmap + L->hmap_count)) ||
	    bpf_probe_read_user(&b, sizeof(b), (void *)(hmap + L->hmap_b)) ||
	    bpf_probe_read_user(&flags, sizeof(flags), (void *)(hmap + L->hmap_flags)) ||
	    bpf_probe_read_user(&st->base, sizeof(st->base), (void *)(hmap + L->hmap_buckets)) ||
	    bpf_probe_read_user(&st->old, sizeof(st->old), (void *)(hmap + L->hmap_oldbuckets)))
		goto unreadable;
	if (b > 16 || (__s64)count < 0)
		goto unreadable;
	if (count > labels_max) {
		st->cut = 1;
		count = labels_max;
	}
	st->want = count;
	st->nbuckets = 1u << b;
	st->old_nbuckets = (flags & L->same_size_grow) || !b ? 1u << b : 1u << (b - 1);
	st->bucket = 0;
	st->next = 0;

	for (__u32 v = 0; v < LABELS_MAX_VISITS && st->n < st->want; v++) {
		if (!st->bucket) {
			if (st->next >= st->nbuckets) {
				if (!st->old)
					break;
				st->base = st->old;
				st->nbuckets = st->old_nbuckets;
				st->old = 0;
				st->next = 0;
			}
			st->bucket = st->base + (__u64)st->next * L->bucket_size;
			st->next++;
		}
		/* Unreadable: a page Go never wrote because it knew it was zero (fresh from the OS), so an empty
		 * bucket; were it not, the labels missing at the end say so. */
		if (bpf_probe_read_user(st->tophash, sizeof(st->tophash), (void *)st->bucket)) {
			st->bucket = 0;
			continue;
		}
		for (__u32 j = 0; j < sizeof(st->tophash); j++) {
			if (j >= L->entries || st->n >= st->want)
				break;
			if (st->tophash[j] < L->min_tophash)
				continue;
			if (!put_label(out, st, st->bucket + L->key_at + j * L->stride, st->bucket + L->value_at + j * L->stride))
				return;
		}
		if (bpf_probe_read_user(&st->bucket, sizeof(st->bucket), (void *)(st->bucket + L->bucket_overflow)))
			st->bucket = 0;
	}
	if (st->n < st->want)
		st->cut = 1; /* unreadable, or more buckets than LABELS_MAX_VISITS */
	return;
unreadable:
	st->cut = 1;
}

/* g.labels of goroutine g (0 = none), or 0 when it has none or the process's labels are not read. */
static __always_inline __u64 labels_of(const struct proc_config *cfg, __u64 g)
{
	__u64 lp = 0;

	if (!g || !labels_max || cfg->labels.kind == LABELS_NONE)
		return 0;
	if (bpf_probe_read_user(&lp, sizeof(lp), (void *)(g + cfg->labels.g_labels)))
		return 0;
	return lp;
}

/* The labels at lp (labels_of) into out (LABELS_SCRATCH bytes): returns the bytes written (at most LABELS_BUF),
 * SAMPLE_F_LABELS_CUT into *flags. which: WALK_CPU or WALK_OFFCPU. */
static __always_inline __u32 read_labels(const struct proc_config *cfg, __u64 lp, __u8 *out, __u32 which, __u32 *flags)
{
	const struct labels_layout *L = &cfg->labels;
	struct label_walk *st = bpf_map_lookup_elem(&label_walks, &which);

	if (!st)
		return 0;
	st->off = 0;
	st->n = 0;
	st->want = 0;
	st->cut = 0;
	if (L->kind == LABELS_SLICE)
		labels_slice(L, lp, out, st);
	else if (L->kind == LABELS_MAP)
		labels_map(L, lp, out, st);
	if (st->cut) {
		*flags |= SAMPLE_F_LABELS_CUT;
		count(COUNTER_LABELS_CUT);
	}
	if (st->off > LABELS_BUF)
		return 0;
	if (st->off)
		count(COUNTER_LABELED);
	return st->off;
}

#endif
