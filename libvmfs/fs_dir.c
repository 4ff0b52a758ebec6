/*
 * fs_dir.c - hashed directories (format.h: linear hashing over 4 KiB
 * directory blocks). A directory's file is always in SB mode: sub-block j
 * holds directory blocks 2j and 2j+1, i.e. bucket j's primary block and
 * overflow block j-1 (the header for j = 0). So at most 256 buckets and 255
 * overflow blocks (2 MiB): -ENOSPC beyond.
 *
 * Insert: the entry goes to the first block of its bucket's chain with room,
 * else to a new overflow block chained at the end. When the directory holds
 * more than VMFS_DIR_SPLIT_LOAD entries per bucket, bucket `split` is split
 * (its entries are redistributed between it and bucket 2^level + split,
 * reusing the chain's blocks), all in the inserting transaction. Removal
 * leaves emptied overflow blocks in their chain. Every block touched is
 * journaled; the directory's FD lock is held EX by the caller.
 */
#include "fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"

#define DIR_MAXBLK ((uint32_t)(VMFS_NDIRECT * (VMFS_SB_SIZE / VMFS_UNIT)))

static int blk_off(struct tx *tx, const struct vmfs_fd *dir, uint32_t i, uint64_t *off)
{
	uint64_t sb;

	if (dir->amode != VMFS_AM_SB || i >= DIR_MAXBLK || (uint64_t)i * VMFS_UNIT >= dir->size ||
	    !(sb = dir->u.addr[i / 2])) {
		fs_seterr(tx->fs, "directory FD 0x%" PRIx64 ": block %" PRIu32 " missing",
			  dir->self, i);
		return -EUCLEAN;
	}
	*off = vmfs_addr_off(&tx->fs->vh, sb) + (uint64_t)(i % 2) * VMFS_UNIT;
	return 0;
}

/* Loads directory block i (decoded into db; blk: its buffer). */
static int db_get(struct tx *tx, const struct vmfs_fd *dir, uint32_t i, int dirty,
		  struct vmfs_db *db, uint8_t **blk)
{
	char why[256];
	uint64_t off;
	int rc = blk_off(tx, dir, i, &off);

	if (!rc)
		rc = dirty ? tx_write(tx, off, 0, blk) : tx_read(tx, off, blk);
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

/* Makes sure directory block i exists (allocating its sub-block). */
static int ensure_blk(struct tx *tx, struct vmfs_fd *dir, uint32_t i)
{
	uint64_t *slot;
	int rc;

	if (i >= DIR_MAXBLK)
		return -ENOSPC;
	slot = &dir->u.addr[i / 2];
	if (!*slot) {
		rc = fs_alloc(tx, VMFS_RT_SB, slot);
		if (rc)
			return rc;
		dir->nalloc++;
	}
	if (dir->size < (uint64_t)(i / 2 + 1) * VMFS_SB_SIZE)
		dir->size = (uint64_t)(i / 2 + 1) * VMFS_SB_SIZE;
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
		rc = tx_write(tx, off, 1, &blk);
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
	if (idx >= DIR_MAXBLK)
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

	if (1 + 2 * nb >= DIR_MAXBLK)
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
		rc = hdr_get(d, 1);
	}
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
