/*
 * fs_cache.c - the metadata block cache of a mount, valid by construction.
 *
 * DESIGN NOTE
 *
 * Entries are 4 KiB metadata blocks (FD inode blocks, directory blocks,
 * pointer blocks, extended-attribute blocks, cluster headers), each tagged
 * with its owner, the lock that covers it (fs_core.c I1), and a
 * generation of that lock. Hosts share nothing but the disk, so an entry
 * is never trusted on its own: it is used only when the owner's lock
 * generation proves that nobody can have written the block since it was
 * cached.
 *
 * Invariant C1. An entry (off, own, g) holds the content block off had at a
 * moment when the lock own had generation g and no other host held it in a
 * mode that writes (EX, MW). Entries are made (a) by a transaction that
 * holds own (SH or EX, never MW) at generation g: blocks it reads, and the
 * blocks it wrote once its commit is in place; (b) by an optimistic read
 * (fs_opt_read) that saw generation g with no EX holder before and after
 * its reads.
 *
 * Rule C2 (use). Every acquisition of a lock bumps its generation, and
 * metadata is changed only under EX (I1). So:
 *  - a host holding own at generation h (its acquisition produced h) may
 *    use entries with g >= h - 1: h - 1 -> h was its own acquisition, so
 *    nobody acquired own between the entry and now, and nobody can while
 *    it holds the lock;
 *  - an optimistic read that sees generation g and no EX holder may use
 *    entries with exactly g (g - 1 -> g may have been another host's
 *    writer, long gone).
 * A host's own writes keep C1: a commit replaces the entries of the blocks
 * it wrote (tagged with the transaction's hold of the owner) or drops them
 * when it does not know their owner; writes outside transactions (blocks
 * copied into a new directory file block, a new extension cluster, journal
 * replay) drop the range they wrote; freeing a resource drops its range,
 * so a block that changes owner is never found under its old one.
 *
 * Bounded: at most max entries (vmfs_mount_opts.cache_mb, default 32 MiB),
 * least recently used evicted first. One mutex; nothing blocks under it.
 * fs_cache_hint() returns an entry whatever its tag, for hints that are
 * checked again under the lock (free counts of clusters).
 */
#include "fs_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"

#define DSLOTS 4096 /* counts of data-area entries by block number, hashed */

struct mc_ent {
	uint64_t off, own, gen;
	struct mc_ent *hnext;	    /* hash chain */
	struct mc_ent *prev, *next; /* LRU, most recent first */
	uint8_t *buf;
};

struct fs_cache {
	pthread_mutex_t mu;
	struct mc_ent **tab;
	size_t nbuckets, n, max;
	struct mc_ent lru; /* sentinel */
	uint64_t hits, misses;
	uint64_t wseq;		 /* bumped by every put and drop */
	uint32_t dcount[DSLOTS]; /* entries in the data area, by block number % DSLOTS */
};

static size_t hash(const struct fs_cache *c, uint64_t off)
{
	uint64_t x = (off / VMFS_UNIT) * 0x9e3779b97f4a7c15ull;

	return (size_t)(x >> 20) % c->nbuckets;
}

int fs_cache_init(struct vmfs *fs, unsigned mb)
{
	struct fs_cache *c;

	if (!mb)
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->max = (size_t)mb * (1u << 20) / VMFS_UNIT;
	c->nbuckets = c->max < 64 ? 64 : c->max;
	c->tab = calloc(c->nbuckets, sizeof(*c->tab));
	if (!c->tab) {
		free(c);
		return -ENOMEM;
	}
	c->lru.prev = c->lru.next = &c->lru;
	pthread_mutex_init(&c->mu, NULL);
	fs->cache = c;
	return 0;
}

void fs_cache_fini(struct vmfs *fs)
{
	struct fs_cache *c = fs->cache;

	if (!c)
		return;
	for (struct mc_ent *e = c->lru.next, *n; e != &c->lru; e = n) {
		n = e->next;
		bdev_free(e->buf);
		free(e);
	}
	pthread_mutex_destroy(&c->mu);
	free(c->tab);
	free(c);
	fs->cache = NULL;
}

static struct mc_ent *find(struct fs_cache *c, uint64_t off, struct mc_ent ***pp)
{
	struct mc_ent **p = &c->tab[hash(c, off)];

	for (; *p; p = &(*p)->hnext)
		if ((*p)->off == off)
			break;
	if (pp)
		*pp = p;
	return *p;
}

static void lru_unlink(struct mc_ent *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static void lru_front(struct fs_cache *c, struct mc_ent *e)
{
	e->next = c->lru.next;
	e->prev = &c->lru;
	c->lru.next->prev = e;
	c->lru.next = e;
}

static uint32_t *dslot(struct vmfs *fs, uint64_t off)
{
	if (off < fs->vh.data_off)
		return NULL;
	return &fs->cache->dcount[((off - fs->vh.data_off) / fs->vh.block_size) % DSLOTS];
}

static void remove_ent(struct vmfs *fs, struct mc_ent **p)
{
	struct fs_cache *c = fs->cache;
	struct mc_ent *e = *p;
	uint32_t *d = dslot(fs, e->off);

	*p = e->hnext;
	lru_unlink(e);
	if (d)
		(*d)--;
	c->n--;
	bdev_free(e->buf);
	free(e);
}

int fs_cache_get(struct vmfs *fs, uint64_t off, uint64_t own, uint64_t gen, int held, void *dst)
{
	struct fs_cache *c = fs->cache;
	struct mc_ent *e;
	int hit;

	if (!c || !own)
		return 0;
	pthread_mutex_lock(&c->mu);
	e = find(c, off, NULL);
	hit = e && e->own == own && (held ? e->gen + 1 >= gen : e->gen == gen);
	if (hit) {
		memcpy(dst, e->buf, VMFS_UNIT);
		lru_unlink(e);
		lru_front(c, e);
		c->hits++;
	} else {
		c->misses++;
	}
	pthread_mutex_unlock(&c->mu);
	return hit;
}

int fs_cache_hint(struct vmfs *fs, uint64_t off, void *dst)
{
	struct fs_cache *c = fs->cache;
	struct mc_ent *e;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->mu);
	e = find(c, off, NULL);
	if (e)
		memcpy(dst, e->buf, VMFS_UNIT);
	pthread_mutex_unlock(&c->mu);
	return e != NULL;
}

void fs_cache_put(struct vmfs *fs, uint64_t off, uint64_t own, uint64_t gen, const void *src)
{
	struct fs_cache *c = fs->cache;
	struct mc_ent **p, *e;
	uint32_t *d;

	if (!c || !own)
		return;
	pthread_mutex_lock(&c->mu);
	e = find(c, off, &p);
	if (!e) {
		if (c->n >= c->max) {
			struct mc_ent *old = c->lru.prev, **q;

			find(c, old->off, &q);
			remove_ent(fs, q);
		}
		e = calloc(1, sizeof(*e));
		if (e && !(e->buf = bdev_alloc(VMFS_UNIT))) {
			free(e);
			e = NULL;
		}
		if (!e) { /* no memory: the cache just stays smaller */
			pthread_mutex_unlock(&c->mu);
			return;
		}
		e->off = off;
		find(c, off, &p);
		*p = e;
		c->n++;
		d = dslot(fs, off);
		if (d)
			(*d)++;
	} else {
		lru_unlink(e);
	}
	lru_front(c, e);
	e->own = own;
	e->gen = gen;
	memcpy(e->buf, src, VMFS_UNIT);
	c->wseq++;
	pthread_mutex_unlock(&c->mu);
}

uint64_t fs_cache_wseq(struct vmfs *fs)
{
	struct fs_cache *c = fs->cache;
	uint64_t w;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->mu);
	w = c->wseq;
	pthread_mutex_unlock(&c->mu);
	return w;
}

void fs_cache_drop(struct vmfs *fs, uint64_t off, uint64_t len)
{
	struct fs_cache *c = fs->cache;
	uint64_t a = off - off % VMFS_UNIT;

	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->wseq++;
	for (; a < off + len; a += VMFS_UNIT) {
		struct mc_ent **p;
		uint32_t *d = dslot(fs, a);

		if (d && !*d) { /* nothing cached in this file block: skip it */
			uint64_t next =
			    a - (a - fs->vh.data_off) % fs->vh.block_size + fs->vh.block_size;

			a = next - VMFS_UNIT;
			continue;
		}
		if (find(c, a, &p))
			remove_ent(fs, p);
	}
	pthread_mutex_unlock(&c->mu);
}

void fs_cache_stats(struct vmfs *fs, uint64_t *hits, uint64_t *misses, uint64_t *n, uint64_t *max)
{
	struct fs_cache *c = fs->cache;

	*hits = *misses = *n = *max = 0;
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	*hits = c->hits;
	*misses = c->misses;
	*n = c->n;
	*max = c->max;
	pthread_mutex_unlock(&c->mu);
}
