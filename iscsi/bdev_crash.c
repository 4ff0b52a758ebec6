/*
 * bdev_crash.c - crash simulation around another device
 * ("crash:SPEC:INNER-URI"; SPEC is described in bdev.h), after SQLite's
 * test6.c: a volatile write cache that loses, keeps or garbles unflushed
 * sectors when the simulated machine dies.
 *
 * Design note
 *  - State machine:
 *        RUNNING --flush #N or bdev_crash_now()--> CRASHED (final)
 *    RUNNING: write/discard/write_zeroes store whole sectors in the pending
 *    cache (a hash from sector number to its data; NULL data = zeroes);
 *    read returns the inner device's data overlaid with pending sectors;
 *    flush (other than the Nth) writes every pending sector through in
 *    sector order, flushes the inner device, and empties the cache.
 *    Crash: each pending sector, in sector order, is written (keep), dropped
 *    (drop) or replaced by random bytes (garble); in mode random one of the
 *    three is drawn per sector. The inner device is then flushed, the cache
 *    emptied, and the state is CRASHED: every operation, including the
 *    crash-point flush itself, fails with -BDEV_E_CRASHED.
 *  - Invariant: data of a flush that returned 0 is on the inner device and
 *    never touched by a later crash (the crash only writes pending sectors).
 *  - ats() is write-through: it runs on the inner device, so it stays atomic
 *    against other processes and hosts (a pending copy of the same sector,
 *    which bdev.h's invariant 4 forbids anyway, is first written through).
 *    An ats() is durable at once, like a COMPARE AND WRITE with FUA.
 *  - bdev_close() of a device that did not crash writes the pending sectors
 *    through (a clean shutdown); crash first to lose them.
 *  - Random choices and garbage come from a xorshift64* generator seeded by
 *    seed=S, so a failing case can be replayed. One mutex guards everything,
 *    including the inner I/O: threads may share one crash bdev.
 */
#include "bdev.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum crash_mode { MODE_KEEP, MODE_DROP, MODE_GARBLE, MODE_RANDOM };

struct pend {
	uint64_t key;	     /* sector + 1; 0 = empty slot */
	unsigned char *data; /* lsec bytes; NULL = zeroes */
};

struct crash_priv {
	struct bdev *inner;
	pthread_mutex_t mu;
	uint64_t crash_flush; /* the flush that crashes, 0 = none */
	uint64_t flushes;
	uint64_t rng;
	int mode;
	int crashed;
	struct pend *tab; /* open addressing, linear probing */
	size_t cap, count;
};

static const struct bdev_ops crash_ops;

/* ---- the pending-sector table ---- */

static size_t home(const struct crash_priv *p, uint64_t key)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 17) & (p->cap - 1);
}

static struct pend *pend_find(struct crash_priv *p, uint64_t sec)
{
	size_t i;

	if (!p->count)
		return NULL;
	for (i = home(p, sec + 1); p->tab[i].key; i = (i + 1) & (p->cap - 1))
		if (p->tab[i].key == sec + 1)
			return &p->tab[i];
	return NULL;
}

static int pend_grow(struct crash_priv *p)
{
	size_t oldcap = p->cap, i;
	struct pend *old = p->tab;

	p->cap = oldcap ? oldcap * 2 : 1024;
	p->tab = calloc(p->cap, sizeof(*p->tab));
	if (!p->tab) {
		p->tab = old;
		p->cap = oldcap;
		return -ENOMEM;
	}
	for (i = 0; i < oldcap; i++) {
		size_t j;

		if (!old[i].key)
			continue;
		for (j = home(p, old[i].key); p->tab[j].key; j = (j + 1) & (p->cap - 1))
			;
		p->tab[j] = old[i];
	}
	free(old);
	return 0;
}

/* Stores one sector (src NULL = zeroes). */
static int pend_put(struct crash_priv *p, uint64_t sec, const void *src, uint32_t lsec)
{
	struct pend *e = pend_find(p, sec);
	size_t i;

	if (!e) {
		if ((p->count + 1) * 2 > p->cap && pend_grow(p) < 0)
			return -ENOMEM;
		for (i = home(p, sec + 1); p->tab[i].key; i = (i + 1) & (p->cap - 1))
			;
		e = &p->tab[i];
		e->key = sec + 1;
		e->data = NULL;
		p->count++;
	}
	if (!src) {
		free(e->data);
		e->data = NULL;
		return 0;
	}
	if (!e->data && !(e->data = malloc(lsec)))
		return -ENOMEM; /* the entry stays: it reads as zeroes */
	memcpy(e->data, src, lsec);
	return 0;
}

/* Removes an entry, shifting later entries of its probe run back. */
static void pend_del(struct crash_priv *p, struct pend *e)
{
	size_t i = (size_t)(e - p->tab), j = i;

	free(e->data);
	for (;;) {
		size_t k;

		j = (j + 1) & (p->cap - 1);
		if (!p->tab[j].key)
			break;
		k = home(p, p->tab[j].key);
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			p->tab[i] = p->tab[j];
			i = j;
		}
	}
	p->tab[i].key = 0;
	p->tab[i].data = NULL;
	p->count--;
}

static void pend_clear(struct crash_priv *p)
{
	size_t i;

	for (i = 0; i < p->cap; i++) {
		free(p->tab[i].data);
		p->tab[i].key = 0;
		p->tab[i].data = NULL;
	}
	p->count = 0;
}

static int cmp_pend(const void *a, const void *b)
{
	uint64_t x = (*(struct pend *const *)a)->key, y = (*(struct pend *const *)b)->key;

	return x < y ? -1 : x > y;
}

/* The pending entries in sector order (NULL with *n = 0 when empty). */
static struct pend **pend_sorted(struct crash_priv *p, size_t *n)
{
	struct pend **v;
	size_t i, k = 0;

	*n = 0;
	if (!p->count)
		return NULL;
	v = malloc(p->count * sizeof(*v));
	if (!v)
		return NULL;
	for (i = 0; i < p->cap; i++)
		if (p->tab[i].key)
			v[k++] = &p->tab[i];
	qsort(v, k, sizeof(*v), cmp_pend);
	*n = k;
	return v;
}

/* ---- writing pending sectors to the inner device ---- */

static uint64_t rng_next(struct crash_priv *p)
{
	p->rng ^= p->rng >> 12;
	p->rng ^= p->rng << 25;
	p->rng ^= p->rng >> 27;
	return p->rng * 0x2545f4914f6cdd1dull;
}

static void fill_random(struct crash_priv *p, unsigned char *buf, uint32_t len)
{
	uint32_t i;

	for (i = 0; i < len; i += 8) {
		uint64_t r = rng_next(p);

		memcpy(buf + i, &r, len - i < 8 ? len - i : 8);
	}
}

/* Writes runs of consecutive sectors v[0..n) (already in sector order);
 * `garble` marks the sectors to replace by random bytes. */
#define RUN_MAX 256u
static int write_runs(struct crash_priv *p, struct pend **v, const unsigned char *garble, size_t n)
{
	uint32_t lsec = p->inner->lsec;
	unsigned char *buf = bdev_alloc((size_t)RUN_MAX * lsec);
	size_t i = 0;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (i < n && rc == 0) {
		size_t k = 0;

		while (i + k < n && k < RUN_MAX && v[i + k]->key == v[i]->key + k) {
			unsigned char *dst = buf + k * lsec;

			if (garble && garble[i + k])
				fill_random(p, dst, lsec);
			else if (v[i + k]->data)
				memcpy(dst, v[i + k]->data, lsec);
			else
				memset(dst, 0, lsec);
			k++;
		}
		rc = bdev_write(p->inner, buf, (v[i]->key - 1) * lsec, k * lsec);
		i += k;
	}
	bdev_free(buf);
	return rc;
}

static int write_through(struct crash_priv *p)
{
	size_t n;
	struct pend **v = pend_sorted(p, &n);
	int rc;

	if (!v)
		return p->count ? -ENOMEM : 0;
	rc = write_runs(p, v, NULL, n);
	free(v);
	if (rc == 0)
		pend_clear(p);
	return rc;
}

/* The crash: keep, drop or garble each pending sector, then die. */
static void do_crash(struct crash_priv *p)
{
	size_t n, i, k = 0;
	struct pend **v = pend_sorted(p, &n);
	unsigned char *garble = calloc(n ? n : 1, 1);

	if (v && garble) {
		for (i = 0; i < n; i++) {
			int m = p->mode == MODE_RANDOM ? (int)(rng_next(p) % 3) : p->mode;

			if (m == MODE_DROP)
				continue;
			garble[k] = m == MODE_GARBLE;
			v[k++] = v[i];
		}
		(void)write_runs(p, v, garble, k);
		(void)bdev_flush(p->inner);
	}
	free(v);
	free(garble);
	pend_clear(p);
	p->crashed = 1;
}

/* ---- ops ---- */

static int crash_read(struct bdev *bd, void *buf, uint64_t off, size_t len)
{
	struct crash_priv *p = bd->priv;
	uint64_t s;
	int rc = -BDEV_E_CRASHED;

	pthread_mutex_lock(&p->mu);
	if (!p->crashed)
		rc = bdev_read(p->inner, buf, off, len);
	for (s = 0; rc == 0 && p->count && s < len / bd->lsec; s++) {
		struct pend *e = pend_find(p, off / bd->lsec + s);
		unsigned char *dst = (unsigned char *)buf + s * bd->lsec;

		if (e && e->data)
			memcpy(dst, e->data, bd->lsec);
		else if (e)
			memset(dst, 0, bd->lsec);
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static int crash_store(struct bdev *bd, const void *buf, uint64_t off, uint64_t len)
{
	struct crash_priv *p = bd->priv;
	uint64_t s;
	int rc = 0;

	pthread_mutex_lock(&p->mu);
	if (p->crashed)
		rc = -BDEV_E_CRASHED;
	for (s = 0; rc == 0 && s < len / bd->lsec; s++)
		rc = pend_put(p, off / bd->lsec + s,
			      buf ? (const unsigned char *)buf + s * bd->lsec : NULL, bd->lsec);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static int crash_write(struct bdev *bd, const void *buf, uint64_t off, size_t len)
{
	return crash_store(bd, buf, off, len);
}

static int crash_zero(struct bdev *bd, uint64_t off, uint64_t len)
{
	return crash_store(bd, NULL, off, len);
}

static int crash_flush(struct bdev *bd)
{
	struct crash_priv *p = bd->priv;
	int rc = -BDEV_E_CRASHED;

	pthread_mutex_lock(&p->mu);
	if (!p->crashed && ++p->flushes == p->crash_flush)
		do_crash(p);
	else if (!p->crashed && (rc = write_through(p)) == 0)
		rc = bdev_flush(p->inner);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static int crash_ats(struct bdev *bd, uint64_t off, const void *expect, const void *newdata,
		     void *actual)
{
	struct crash_priv *p = bd->priv;
	struct pend *e;
	int rc = -BDEV_E_CRASHED;

	pthread_mutex_lock(&p->mu);
	if (!p->crashed) {
		rc = 0;
		e = pend_find(p, off / bd->lsec);
		if (e && (rc = write_runs(p, &e, NULL, 1)) == 0)
			pend_del(p, e);
		if (rc == 0)
			rc = bdev_ats(p->inner, off, expect, newdata, actual);
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static void crash_close(struct bdev *bd)
{
	struct crash_priv *p = bd->priv;

	if (!p)
		return;
	if (!p->crashed)
		(void)write_through(p);
	pend_clear(p);
	free(p->tab);
	bdev_close(p->inner);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static int crash_pr(struct bdev *bd, struct bdev_pr_cmd *cmd)
{
	struct crash_priv *p = bd->priv;

	/* A crashed machine sends nothing, reservation commands included. */
	if (p->crashed)
		return -BDEV_E_CRASHED;
	return bdev_pr(p->inner, cmd);
}

/* Passes the inner device's new size through. */
static int crash_refresh_size(struct bdev *bd, uint64_t *size)
{
	struct crash_priv *p = bd->priv;
	int rc;

	if (p->crashed)
		return -BDEV_E_CRASHED;
	rc = bdev_refresh_size(p->inner);
	*size = p->inner->size;
	return rc;
}

static const struct bdev_ops crash_ops = {
    .version = BDEV_OPS_VERSION,
    .name = "crash",
    .read = crash_read,
    .write = crash_write,
    .flush = crash_flush,
    .ats = crash_ats,
    .discard = crash_zero,
    .write_zeroes = crash_zero,
    .close = crash_close,
    .pr = crash_pr,
    .refresh_size = crash_refresh_size,
};

/* ---- spec and constructor ---- */

static int parse_u64(const char *val, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(val, &end, 0);
	return (errno || end == val || *end) ? -BDEV_E_URI : 0;
}

static int parse_item(struct crash_priv *p, const char *key, const char *val)
{
	static const char *const modes[] = {"keep", "drop", "garble", "random"};
	int m;

	if (!val)
		return -BDEV_E_URI;
	if (strcmp(key, "flush") == 0)
		return parse_u64(val, &p->crash_flush) < 0 || !p->crash_flush ? -BDEV_E_URI : 0;
	if (strcmp(key, "seed") == 0)
		return parse_u64(val, &p->rng);
	if (strcmp(key, "mode") != 0)
		return -BDEV_E_URI;
	for (m = 0; m < 4; m++) {
		if (strcmp(val, modes[m]) == 0) {
			p->mode = m;
			return 0;
		}
	}
	return -BDEV_E_URI;
}

static int parse_spec(struct crash_priv *p, const char *spec)
{
	char *copy = strdup(spec), *save = NULL, *tok;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	p->mode = MODE_RANDOM;
	p->rng = 1;
	for (tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (eq)
			*eq++ = '\0';
		rc = parse_item(p, tok, eq);
	}
	free(copy);
	/* xorshift must not start at 0; mix the seed so nearby seeds differ. */
	p->rng = (p->rng ^ 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
	if (!p->rng)
		p->rng = 1;
	return rc;
}

int bdev_crash_open(const char *spec, struct bdev *inner, struct bdev **out)
{
	struct crash_priv *p = calloc(1, sizeof(*p));
	struct bdev *bd;
	int rc;

	if (!p)
		return -ENOMEM;
	rc = parse_spec(p, spec);
	if (rc < 0 || !(bd = bdev_new(&crash_ops, spec))) {
		free(p);
		return rc < 0 ? rc : -ENOMEM;
	}
	pthread_mutex_init(&p->mu, NULL);
	p->inner = inner;
	bd->priv = p;
	bdev_wrap_geometry(bd, inner);
	*out = bd;
	return 0;
}

int bdev_crash_now(struct bdev *bd)
{
	struct crash_priv *p;
	int rc = -BDEV_E_CRASHED;

	if (!bd || bd->ops != &crash_ops)
		return -EINVAL;
	p = bd->priv;
	pthread_mutex_lock(&p->mu);
	if (!p->crashed) {
		do_crash(p);
		rc = 0;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

long bdev_crash_pending(struct bdev *bd)
{
	struct crash_priv *p;
	long n;

	if (!bd || bd->ops != &crash_ops)
		return -EINVAL;
	p = bd->priv;
	pthread_mutex_lock(&p->mu);
	n = (long)p->count;
	pthread_mutex_unlock(&p->mu);
	return n;
}
