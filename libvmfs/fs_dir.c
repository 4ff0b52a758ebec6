/*
 * fs_dir.c - hashed directories (format.h: linear hashing over 4 KiB
 * directory blocks). A directory's file starts in SB mode: sub-block j
 * holds directory blocks 2j and 2j+1, i.e. bucket j's primary block and
 * overflow block j-1 (the header for j = 0).
 *
 * Growth to FB mode: when an insert finds the highest directory block in
 * use at or beyond DIR_SB_CONVERT (half of what SB mode can address), the
 * directory moves to file blocks first, in the inserting transaction: FBs
 * are allocated, the current directory blocks (this transaction's images
 * when it already changed them, e.g. a rename within the directory) are
 * copied into them with plain guarded writes (not journaled: the FBs are
 * unreachable until the transaction commits, and the commit's first flush
 * makes the copies durable before the commit record, as for file data,
 * I5), the sub-blocks are freed and the FD switches to FB mode. From then
 * on directory block i lives in direct FB i / (block_size / 4096) and is
 * journaled in place like any metadata block: the journal accepts targets
 * in the data area, and replay checks that each such image is a valid
 * directory block (fs_journal.c). FB mode uses direct blocks only: 256 x
 * block_size of directory (16 MiB with 64 KiB blocks, 256 MiB with the
 * default 1 MiB: millions of names); -ENOSPC beyond.
 *
 * Insert: the entry goes to the first block of its bucket's chain with room,
 * else to a new overflow block chained at the end. When the directory holds
 * more than VMFS_DIR_SPLIT_LOAD entries per bucket, bucket `split` is split
 * (its entries are redistributed between it and bucket 2^level + split,
 * reusing the chain's blocks), all in the inserting transaction. So a
 * lookup reads the header and one chain of about one block whatever the
 * directory size. Removal leaves emptied overflow blocks in their chain.
 * Every block touched is journaled; the directory's FD lock is held EX by
 * the caller.
 */
#include "fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"

#define DIR_SB_MAXBLK  ((uint32_t)(VMFS_NDIRECT * (VMFS_SB_SIZE / VMFS_UNIT)))
#define DIR_SB_CONVERT (DIR_SB_MAXBLK / 2)

static uint32_t fb_per(const struct vmfs *fs)
{
	return fs->vh.block_size / VMFS_UNIT;
}

/* Directory blocks the directory's mode can address. */
static uint32_t dir_maxblk(const struct vmfs *fs, const struct vmfs_fd *dir)
{
	return dir->amode == VMFS_AM_FB ? VMFS_NDIRECT * fb_per(fs) : DIR_SB_MAXBLK;
}

static int blk_off(struct tx *tx, const struct vmfs_fd *dir, uint32_t i, uint64_t *off)
{
	uint32_t per = dir->amode == VMFS_AM_FB ? fb_per(tx->fs) : VMFS_SB_SIZE / VMFS_UNIT;
	uint64_t a = 0;

	if ((dir->amode == VMFS_AM_SB || dir->amode == VMFS_AM_FB) && i < dir_maxblk(tx->fs, dir) &&
	    (uint64_t)i * VMFS_UNIT < dir->size)
		a = dir->u.addr[i / per];
	if (!a) {
		fs_seterr(tx->fs, "directory FD 0x%" PRIx64 ": block %" PRIu32 " missing",
			  dir->self, i);
		return -EUCLEAN;
	}
	*off = vmfs_addr_off(&tx->fs->vh, a) + (uint64_t)(i % per) * VMFS_UNIT;
	return 0;
}

/* The lock covering a directory's blocks: its FD's (fs_cache.c). */
static uint64_t dir_own(struct tx *tx, const struct vmfs_fd *dir)
{
	return vmfs_addr_off(&tx->fs->vh, dir->self);
}

/* Loads directory block i (decoded into db; blk: its buffer). */
static int db_get(struct tx *tx, const struct vmfs_fd *dir, uint32_t i, int dirty,
		  struct vmfs_db *db, uint8_t **blk)
{
	char why[256];
	uint64_t off;
	int rc = blk_off(tx, dir, i, &off);

	if (!rc)
		rc = dirty ? tx_write_own(tx, off, 0, dir_own(tx, dir), blk)
			   : tx_read_own(tx, off, dir_own(tx, dir), blk);
	if (rc)
		return rc;
	rc = vmfs_db_decode(*blk, &tx->fs->vh, db, why, sizeof(why));
	if (!rc &&
	    (db->dir != dir->self || db->index != i || (i == 0) != (db->kind == VMFS_DB_HEADER))) {
		snprintf(why, sizeof(why), "directory block: owner/index/kind do not match");
		rc = -EUCLEAN;
	}
	if (rc)
		fs_seterr(tx->fs, "directory FD 0x%" PRIx64 " block %" PRIu32 ": %s", dir->self, i,
			  why);
	return rc;
}

/* Makes sure directory block i exists (allocating its sub-block or file
 * block). */
static int ensure_blk(struct tx *tx, struct vmfs_fd *dir, uint32_t i)
{
	int fb = dir->amode == VMFS_AM_FB;
	uint32_t per = fb ? fb_per(tx->fs) : VMFS_SB_SIZE / VMFS_UNIT;
	uint64_t bsz = fb ? tx->fs->vh.block_size : VMFS_SB_SIZE;
	uint64_t *slot;
	int rc;

	if (i >= dir_maxblk(tx->fs, dir))
		return -ENOSPC;
	slot = &dir->u.addr[i / per];
	if (!*slot) {
		rc = fs_alloc(tx, fb ? VMFS_RT_FB : VMFS_RT_SB, slot);
		if (rc)
			return rc;
		dir->nalloc++;
	}
	if (dir->size < (uint64_t)(i / per + 1) * bsz)
		dir->size = (uint64_t)(i / per + 1) * bsz;
	return 0;
}

/* Copies directory blocks [k * per, min((k + 1) * per, nblk)) of an SB-mode
 * directory into file block fb (device offset dev). */
static int copy_to_fb(struct tx *tx, const struct vmfs_fd *dir, uint32_t k, uint32_t nblk,
		      uint64_t dev, uint8_t *buf)
{
	uint32_t per = fb_per(tx->fs), n = 0;
	uint64_t off;
	uint8_t *p;
	int rc = 0;

	for (uint32_t i = k * per; i < nblk && i < (k + 1) * per && !rc; i++, n++) {
		memset(buf + (size_t)n * VMFS_UNIT, 0, VMFS_UNIT);
		if (!dir->u.addr[i / 2] || (uint64_t)i * VMFS_UNIT >= dir->size)
			continue; /* hole */
		rc = blk_off(tx, dir, i, &off);
		if (!rc)
			rc = tx_read_own(tx, off, dir_own(tx, dir), &p);
		if (!rc)
			memcpy(buf + (size_t)n * VMFS_UNIT, p, VMFS_UNIT);
	}
	if (!rc && n)
		rc = lm_guarded_write(tx->fs->lm, buf, dev, (size_t)n * VMFS_UNIT);
	fs_cache_drop(tx->fs, dev, (uint64_t)n * VMFS_UNIT); /* written outside the tx */
	return rc;
}

/* Moves an SB-mode directory of nblk blocks to FB mode (see the note at the
 * top). */
static int dir_to_fb(struct tx *tx, struct vmfs_fd *dir, uint32_t nblk)
{
	uint32_t per = fb_per(tx->fs), nfb = (nblk + per - 1) / per;
	uint64_t fbs[VMFS_NDIRECT] = {0}, nsb = 0;
	size_t len = (size_t)(per < nblk ? per : nblk) * VMFS_UNIT;
	uint8_t *buf = bdev_alloc(len);
	int rc = buf ? 0 : -ENOMEM;

	for (uint32_t k = 0; k < nfb && !rc; k++) {
		rc = fs_alloc(tx, VMFS_RT_FB, &fbs[k]);
		if (!rc)
			rc = copy_to_fb(tx, dir, k, nblk, vmfs_addr_off(&tx->fs->vh, fbs[k]), buf);
	}
	bdev_free(buf);
	for (uint32_t j = 0; j < VMFS_NDIRECT && !rc; j++)
		if (dir->u.addr[j]) {
			rc = fs_free(tx, dir->u.addr[j]);
			nsb++;
		}
	if (rc)
		return rc; /* the caller aborts the transaction */
	memset(&dir->u, 0, sizeof(dir->u));
	memcpy(dir->u.addr, fbs, sizeof(uint64_t) * nfb);
	dir->amode = VMFS_AM_FB;
	dir->nalloc = dir->nalloc - nsb + nfb;
	dir->size = (uint64_t)nfb * tx->fs->vh.block_size;
	return 0;
}

static int db_new(struct tx *tx, struct vmfs_fd *dir, uint32_t i, uint32_t kind, uint32_t bucket)
{
	struct vmfs_db *db;
	uint64_t off;
	uint8_t *blk;
	int rc = ensure_blk(tx, dir, i);

	if (!rc)
		rc = blk_off(tx, dir, i, &off);
	if (!rc)
		rc = tx_write_own(tx, off, 1, dir_own(tx, dir), &blk);
	if (rc)
		return rc;
	db = calloc(1, sizeof(*db));
	if (!db)
		return -ENOMEM;
	db->kind = kind;
	db->index = i;
	db->dir = dir->self;
	db->bucket = kind == VMFS_DB_HEADER ? 0 : bucket;
	db->nbuckets = kind == VMFS_DB_HEADER ? 1 : 0;
	vmfs_db_encode(db, blk);
	free(db);
	return 0;
}

int dir_init(struct tx *tx, struct vmfs_fd *dir)
{
	int rc;

	dir->amode = VMFS_AM_SB;
	memset(&dir->u, 0, sizeof(dir->u));
	dir->size = 0;
	rc = db_new(tx, dir, 0, VMFS_DB_HEADER, 0);
	return rc ? rc : db_new(tx, dir, 1, VMFS_DB_BUCKET, 0);
}

struct dctx {
	struct tx *tx;
	struct vmfs_fd *dir;
	struct vmfs_db h, db;
	uint8_t *hblk;
};

static int hdr_get(struct dctx *d, int dirty)
{
	return db_get(d->tx, d->dir, 0, dirty, &d->h, &d->hblk);
}

/* Walks bucket b's chain: fn(d, index, blk) on each block until it returns
 * non-zero (returned). */
static int chain_walk(struct dctx *d, uint32_t b, int dirty,
		      int (*fn)(struct dctx *d, uint32_t idx, uint8_t *blk, void *arg), void *arg)
{
	uint32_t idx = 1 + 2 * b, steps = 0;
	uint8_t *blk;
	int rc;

	while (idx) {
		if (++steps > d->h.novf + 2) {
			fs_seterr(d->tx->fs, "directory FD 0x%" PRIx64 ": overflow chain loops",
				  d->dir->self);
			return -EUCLEAN;
		}
		rc = db_get(d->tx, d->dir, idx, dirty, &d->db, &blk);
		if (!rc && d->db.bucket != b)
			rc = -EUCLEAN;
		if (!rc)
			rc = fn(d, idx, blk, arg);
		if (rc)
			return rc;
		idx = d->db.next;
	}
	return 0;
}

struct find {
	const char *name;
	size_t len;
	struct vmfs_dirent *e;
};

static int find_fn(struct dctx *d, uint32_t idx, uint8_t *blk, void *arg)
{
	struct find *f = arg;
	uint32_t pos = 0;

	(void)idx;
	(void)blk;
	while (vmfs_db_next(&d->db, &pos, f->e))
		if (f->e->name_len == f->len && !memcmp(f->e->name, f->name, f->len))
			return 1;
	return 0;
}

int dir_lookup(struct tx *tx, const struct vmfs_fd *dir, const char *name, size_t len,
	       struct vmfs_dirent *e)
{
	struct dctx *d = calloc(1, sizeof(*d));
	struct find f = {name, len, e};
	int rc = d ? 0 : -ENOMEM;

	if (!rc) {
		d->tx = tx;
		d->dir = (struct vmfs_fd *)dir;
		rc = hdr_get(d, 0);
	}
	if (!rc) {
		uint32_t b = vmfs_dir_bucket(vmfs_name_hash(name, len), d->h.level, d->h.split);

		rc = b < d->h.nbuckets ? chain_walk(d, b, 0, find_fn, &f) : -EUCLEAN;
		rc = rc == 1 ? 0 : rc == 0 ? -ENOENT : rc;
	}
	free(d);
	return rc;
}

/* ---- insert ------------------------------------------------------------------ */

struct ins {
	const struct vmfs_dirent *e;
	uint32_t last;
};

static int ins_fn(struct dctx *d, uint32_t idx, uint8_t *blk, void *arg)
{
	struct ins *in = arg;
	int rc = vmfs_db_add(&d->db, in->e->fd, in->e->type, in->e->name, in->e->name_len);

	in->last = idx;
	if (rc == -ENOSPC)
		return 0;
	if (rc == 0)
		vmfs_db_encode(&d->db, blk);
	return rc ? rc : 1;
}

static int link_ovf(struct dctx *d, uint32_t last, uint32_t idx)
{
	uint8_t *blk;
	int rc = db_get(d->tx, d->dir, last, 1, &d->db, &blk);

	if (!rc) {
		d->db.next = idx;
		vmfs_db_encode(&d->db, blk);
	}
	return rc;
}

/* Adds an entry to bucket b (header in d->h, written back by the caller). */
static int chain_add(struct dctx *d, uint32_t b, const struct vmfs_dirent *e)
{
	struct ins in = {e, 0};
	uint8_t *blk;
	uint32_t idx;
	int rc = chain_walk(d, b, 1, ins_fn, &in);

	if (rc)
		return rc == 1 ? 0 : rc;
	idx = 2 + 2 * d->h.novf;
	if (idx >= dir_maxblk(d->tx->fs, d->dir))
		return -ENOSPC;
	rc = db_new(d->tx, d->dir, idx, VMFS_DB_OVERFLOW, b);
	if (!rc)
		rc = link_ovf(d, in.last, idx);
	if (!rc)
		d->h.novf++;
	if (!rc)
		rc = db_get(d->tx, d->dir, idx, 1, &d->db, &blk);
	if (!rc)
		rc = ins_fn(d, idx, blk, &in);
	return rc == 1 ? 0 : rc ? rc : -ENOSPC;
}

struct gather {
	struct vmfs_dirent *v;
	size_t n, cap;
};

static int gather_fn(struct dctx *d, uint32_t idx, uint8_t *blk, void *arg)
{
	struct gather *g = arg;
	uint32_t pos = 0;

	(void)idx;
	for (;;) {
		if (g->n == g->cap) {
			size_t cap = g->cap ? 2 * g->cap : 64;
			struct vmfs_dirent *v = realloc(g->v, cap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			g->v = v;
			g->cap = cap;
		}
		if (!vmfs_db_next(&d->db, &pos, &g->v[g->n]))
			break;
		g->n++;
	}
	d->db.nentries = 0;
	d->db.used = 0;
	memset(d->db.area, 0, sizeof(d->db.area));
	vmfs_db_encode(&d->db, blk);
	return 0;
}

static int split(struct dctx *d)
{
	uint32_t s = d->h.split, nb = (1u << d->h.level) + s;
	struct gather g = {0};
	int rc;

	if (1 + 2 * nb >= dir_maxblk(d->tx->fs, d->dir))
		return 0; /* at the bucket limit: chains grow instead */
	rc = db_new(d->tx, d->dir, 1 + 2 * nb, VMFS_DB_BUCKET, nb);
	if (!rc)
		rc = chain_walk(d, s, 1, gather_fn, &g);
	if (!rc) {
		d->h.nbuckets++;
		if (++d->h.split == 1u << d->h.level) {
			d->h.level++;
			d->h.split = 0;
		}
	}
	for (size_t i = 0; i < g.n && !rc; i++)
		rc = chain_add(d, vmfs_dir_bucket(g.v[i].hash, d->h.level, d->h.split), &g.v[i]);
	free(g.v);
	return rc;
}

/* SB mode with the highest block in use at DIR_SB_CONVERT or beyond: moves
 * to FB mode before the insert (which may need a few more blocks). */
static int maybe_grow(struct dctx *d)
{
	uint32_t top;
	int rc;

	if (d->dir->amode != VMFS_AM_SB)
		return 0;
	rc = hdr_get(d, 0);
	if (rc)
		return rc;
	top = 2 * d->h.nbuckets - 1;
	if (d->h.novf && 2 * d->h.novf > top)
		top = 2 * d->h.novf;
	if (top < DIR_SB_CONVERT)
		return 0;
	return dir_to_fb(d->tx, d->dir, top + 1);
}

int dir_add(struct tx *tx, struct vmfs_fd *dir, const char *name, size_t len, uint64_t fd,
	    uint8_t type)
{
	struct dctx *d = calloc(1, sizeof(*d));
	struct vmfs_dirent e = {.fd = fd, .type = type, .name_len = (uint8_t)len};
	int rc = d ? 0 : -ENOMEM;

	if (len > VMFS_NAME_MAX)
		rc = -ENAMETOOLONG;
	if (!rc) {
		memcpy(e.name, name, len);
		e.hash = vmfs_name_hash(name, len);
		d->tx = tx;
		d->dir = dir;
		rc = maybe_grow(d);
	}
	if (!rc)
		rc = hdr_get(d, 1);
	if (!rc)
		rc = chain_add(d, vmfs_dir_bucket(e.hash, d->h.level, d->h.split), &e);
	if (!rc) {
		d->h.total++;
		if (d->h.total > (uint64_t)VMFS_DIR_SPLIT_LOAD * d->h.nbuckets)
			rc = split(d);
	}
	if (!rc)
		vmfs_db_encode(&d->h, d->hblk);
	free(d);
	return rc;
}

struct rem {
	const char *name;
	size_t len;
};

static int rem_fn(struct dctx *d, uint32_t idx, uint8_t *blk, void *arg)
{
	struct rem *r = arg;

	(void)idx;
	if (vmfs_db_remove(&d->db, r->name, r->len))
		return 0;
	vmfs_db_encode(&d->db, blk);
	return 1;
}

int dir_remove(struct tx *tx, struct vmfs_fd *dir, const char *name, size_t len)
{
	struct dctx *d = calloc(1, sizeof(*d));
	struct rem r = {name, len};
	int rc = d ? 0 : -ENOMEM;

	if (!rc) {
		d->tx = tx;
		d->dir = dir;
		rc = hdr_get(d, 1);
	}
	if (!rc) {
		uint32_t b = vmfs_dir_bucket(vmfs_name_hash(name, len), d->h.level, d->h.split);

		rc = chain_walk(d, b, 1, rem_fn, &r);
		rc = rc == 1 ? 0 : rc == 0 ? -ENOENT : rc;
	}
	if (!rc) {
		d->h.total--;
		vmfs_db_encode(&d->h, d->hblk);
	}
	free(d);
	return rc;
}

int dir_count(struct tx *tx, const struct vmfs_fd *dir, uint64_t *n)
{
	struct vmfs_db *h = malloc(sizeof(*h));
	uint8_t *blk;
	int rc = h ? db_get(tx, dir, 0, 0, h, &blk) : -ENOMEM;

	if (!rc)
		*n = h->total;
	free(h);
	return rc;
}

struct iter {
	vmfs_readdir_cb cb;
	void *arg;
};

static int iter_fn(struct dctx *d, uint32_t idx, uint8_t *blk, void *arg)
{
	struct iter *it = arg;
	struct vmfs_dirent e;
	uint32_t pos = 0;
	int rc = 0;

	(void)idx;
	(void)blk;
	while (!rc && vmfs_db_next(&d->db, &pos, &e))
		rc = it->cb(it->arg, e.name, e.type, e.fd);
	return rc;
}

int dir_iter(struct tx *tx, const struct vmfs_fd *dir, vmfs_readdir_cb cb, void *arg)
{
	struct dctx *d = calloc(1, sizeof(*d));
	struct iter it = {cb, arg};
	int rc = d ? 0 : -ENOMEM;

	if (!rc) {
		d->tx = tx;
		d->dir = (struct vmfs_fd *)dir;
		rc = hdr_get(d, 0);
	}
	for (uint32_t b = 0; !rc && b < d->h.nbuckets; b++)
		rc = chain_walk(d, b, 0, iter_fn, &it);
	free(d);
	return rc;
}
