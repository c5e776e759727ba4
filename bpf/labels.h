/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The current goroutine's pprof labels, read from its g (g.labels, where runtime/pprof.SetGoroutineLabels put them
 * and where the runtime's own CPU profiler takes them from m.curg) into the record format of profile.h. Where the
 * labels are and how they are laid out comes from the process's proc_config (struct labels_layout): a map of
 * buckets up to Go 1.23, a slice of pairs from 1.24. Everything is read with bpf_probe_read_user and bounded:
 * at most labels_max labels of at most label_key_bytes + label_value_bytes, LABELS_MAX_VISITS map buckets.
 *
 * The walks are bpf_loop callbacks (kernel 5.17) that keep their state in a per-CPU map (struct label_walk), not on
 * the stack: the verifier then sees the same state in every round and checks each callback a few times instead of
 * once per iteration, and the 512-byte stack stays free.
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

/* A map bucket or a slice's pairs are read whole into label_walk.chunk (one helper call), then taken apart. */
#define LABEL_CHUNK 2048 /* a power of two, >= a bucket of map[string]string and LABELS_MAX pairs */
#define GO_STRING 16

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
	__u32 pos;           /* slice: where the next pair's headers are in chunk */
	__u8 chunk[LABEL_CHUNK + 2 * GO_STRING]; /* a bucket, or the pairs; the slack keeps header reads in bounds */
};

_Static_assert(LABELS_MAX * 2 * GO_STRING <= LABEL_CHUNK, "LABEL_CHUNK holds LABELS_MAX pairs");

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

/* Appends the label whose key and value string headers are at offsets key_at and value_at of st->chunk to out
 * (LABELS_SCRATCH bytes). false: out is full, stop. A label that cannot be read is skipped. */
static __always_inline bool put_label(__u8 *out, struct label_walk *st, __u32 key_at, __u32 value_at)
{
	struct go_string *k = (void *)(st->chunk + (key_at & (LABEL_CHUNK - 1)));
	struct go_string *v = (void *)(st->chunk + (value_at & (LABEL_CHUNK - 1)));
	__u32 off = st->off, kl, vl;

	kl = k->len < label_key_bytes ? k->len : label_key_bytes;
	vl = v->len < label_value_bytes ? v->len : label_value_bytes;
	if (kl < k->len || vl < v->len)
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
	if (bpf_probe_read_user(out + off + LABEL_HEADER, kl, (void *)k->ptr) ||
	    bpf_probe_read_user(out + off + LABEL_HEADER + kl, vl, (void *)v->ptr)) {
		st->cut = 1; /* not paged in, or not memory: skipped */
		return true;
	}
	st->off = off + LABEL_HEADER + kl + vl;
	st->n++;
	return true;
}

/* The loops run in bpf_loop callbacks on state in the map: the verifier checks a callback until its state stops
 * changing (a couple of rounds), not once per possible iteration as it would a bounded loop. */
struct label_ctx {
	const struct labels_layout *L;
	__u8 *out;
	struct label_walk *st;
};

/* One pair of a slice (bpf_loop callback): 0 = go on, 1 = stop. */
static long slice_pair(__u64 i, void *arg)
{
	struct label_ctx *c = arg;
	struct label_walk *st = c->st;
	__u32 pos = st->pos;

	st->pos = pos + c->L->stride;
	return put_label(c->out, st, pos + c->L->key_at, pos + c->L->value_at) ? 0 : 1;
}

/* Go >= 1.24: a slice of pairs, header at lp. */
static __always_inline void labels_slice(struct label_ctx *c, __u64 lp)
{
	const struct labels_layout *L = c->L;
	struct label_walk *st = c->st;
	__u64 array, len, size; /* 64-bit: a 32-bit size checked here would reach the helper as another register */

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
	size = len * L->stride;
	if (!len || size > LABEL_CHUNK)
		return;
	if (bpf_probe_read_user(st->chunk, size, (void *)array)) {
		st->cut = 1;
		return;
	}
	st->pos = 0;
	bpf_loop(len, slice_pair, c, 0);
}

/* One bucket of a map (bpf_loop callback): its cells, then on to its overflow bucket or the next one. */
static long map_bucket(__u64 i, void *arg)
{
	struct label_ctx *c = arg;
	const struct labels_layout *L = c->L;
	struct label_walk *st = c->st;
	__u64 size = L->bucket_size;

	if (st->n >= st->want || size > LABEL_CHUNK)
		return 1;
	if (!st->bucket) {
		if (st->next >= st->nbuckets) {
			if (!st->old)
				return 1;
			st->base = st->old;
			st->nbuckets = st->old_nbuckets;
			st->old = 0;
			st->next = 0;
		}
		st->bucket = st->base + (__u64)st->next * size;
		st->next++;
	}
	/* Unreadable: a page Go never wrote because it knew it was zero (fresh from the OS), so an empty bucket;
	 * were it not, the labels missing at the end say so. */
	if (bpf_probe_read_user(st->chunk, size, (void *)st->bucket)) {
		st->bucket = 0;
		return 0;
	}
	for (__u32 j = 0; j < 8; j++) {
		if (j >= L->entries || st->n >= st->want)
			break;
		if (st->chunk[j] < L->min_tophash) /* tophash[j]: empty or evacuated */
			continue;
		if (!put_label(c->out, st, L->key_at + j * L->stride, L->value_at + j * L->stride))
			return 1;
	}
	st->bucket = *(__u64 *)(st->chunk + (L->bucket_overflow & (LABEL_CHUNK - 1)));
	return 0;
}

/* Go <= 1.23: lp points at a map variable; its hmap's buckets, their overflow chains and, while the map still
 * grows, its old buckets (whose cells not yet moved have a real tophash; moved ones are marked evacuated). */
static __always_inline void labels_map(struct label_ctx *c, __u64 lp)
{
	const struct labels_layout *L = c->L;
	struct label_walk *st = c->st;
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
	bpf_loop(LABELS_MAX_VISITS, map_bucket, c, 0);
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
	struct label_walk *st = bpf_map_lookup_elem(&label_walks, &which);
	struct label_ctx c = { .L = &cfg->labels, .out = out, .st = st };

	if (!st)
		return 0;
	st->off = 0;
	st->n = 0;
	st->want = 0;
	st->cut = 0;
	if (c.L->kind == LABELS_SLICE)
		labels_slice(&c, lp);
	else if (c.L->kind == LABELS_MAP)
		labels_map(&c, lp);
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
