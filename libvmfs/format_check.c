/*
 * format_check.c - the offline checker behind `vmfsctl fsck`.
 *
 * Passes (each problem is reported once through the callback with the region
 * it is in; a structure that fails to decode is not used by later passes):
 *   1. volume header copies: each decodes, and they are identical (repair:
 *      rewrite the bad copy from the good one);
 *   2. atomic units (volume lock, heartbeat slots, lock area, cluster and FD
 *      lock units): all-zero, or accepted by lockmgr's lm_unit_check();
 *   3. journal headers; journals holding committed transactions that were
 *      not replayed yet are counted (not a problem: a crashed host's journal
 *      waits for a survivor; the other passes may then see stale blocks);
 *   4. cluster headers + bitmaps (free counts are checked by the decoder);
 *   5. every allocated FD: inode decodes, its block tree (PBs, FBs, SBs)
 *      references only allocated resources, none twice, nalloc matches;
 *      directories: header, buckets and overflow chains decode, entries hash
 *      to their bucket and name allocated FDs;
 *   6. every allocated FB/SB/PB is referenced; every allocated FD is the root
 *      or named by a directory entry; link counts match the entries.
 * The checker never writes except for the header repair with
 * VMFS_CHECK_REPAIR.
 */
#include "format_ondisk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"
#include "crc32c.h"
#include "le.h"
#include "lockmgr.h"

#define MAX_REPORTED 1000 /* problems reported one by one; the rest are counted */

struct ck_type {
	uint8_t *alloc; /* bitmap from the cluster headers */
	uint8_t *ref;	/* bitmap of references found */
	uint8_t *valid; /* per cluster: header decoded */
	uint64_t nres;	/* ncl * per_cl */
};

struct ck {
	struct bdev *bd;
	struct vmfs_vh vh;
	vmfs_check_cb cb;
	void *arg;
	struct vmfs_check_stats *st;
	struct ck_type t[VMFS_RT_MAX + 1];
	uint32_t *links;   /* per FD: directory entries naming it */
	uint32_t *subdirs; /* per FD: subdirectory entries in it */
	uint8_t *buf;	   /* scratch, 2 units */
	int err;	   /* first operational error */
};

static void problem(struct ck *c, const char *region, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(struct ck *c, const char *region, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->st->problems++;
	if (c->cb && c->st->problems <= MAX_REPORTED)
		c->cb(c->arg, region, msg);
}

static int ck_read(struct ck *c, void *buf, uint64_t off, size_t len)
{
	int rc = bdev_read(c->bd, buf, off, len);

	if (rc && !c->err) {
		c->err = rc;
		c->st->err_off = off;
	}
	return rc;
}

/* Index of a resource in the per-type bitmaps. */
static uint64_t res_idx(const struct ck *c, uint64_t a)
{
	unsigned t = vmfs_addr_type(a);

	return (uint64_t)vmfs_addr_cl(a) * c->vh.res[t].per_cl + vmfs_addr_res(a);
}

/* why without a leading "prefix: " (the region already names it). */
static const char *strip(const char *why, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(why, prefix, n) == 0 && why[n] == ':' && why[n + 1] == ' ' ? why + n + 2
										  : why;
}

/* ---- pass 1: headers ------------------------------------------------------ */

static int check_headers(struct ck *c, unsigned flags, unsigned *fixed)
{
	uint8_t *p = c->buf, *b = c->buf + VMFS_UNIT;
	struct vmfs_vh bvh;
	char why[320];
	int prc, brc, rc;
	uint64_t boff;

	rc = vmfs_vh_read(c->bd, &c->vh, why, sizeof(why));
	if (rc == -EUCLEAN) {
		problem(c, "volume header", "%s", strip(why, "volume header"));
		c->st->no_header = 1;
		return rc;
	}
	if (rc) {
		c->st->err_off = VMFS_VH_OFF;
		return c->err = rc;
	}
	boff = c->vh.backup_off;
	if (ck_read(c, p, VMFS_VH_OFF, VMFS_UNIT) || ck_read(c, b, boff, VMFS_UNIT))
		return c->err;
	prc = c->vh.from_backup ? -EUCLEAN : 0;
	brc = prc ? 0 : vmfs_vh_decode(b, c->bd->size, &bvh, why, sizeof(why));
	if (prc) {
		problem(c, "volume header", "%s (the backup is good)", strip(why, "volume header"));
	} else if (brc) {
		problem(c, "backup volume header", "%s", strip(why, "volume header"));
	} else if (memcmp(p, b, VMFS_VH_SIZE)) {
		problem(c, "backup volume header", "differs from the primary");
		brc = -EUCLEAN;
	}
	if (!(flags & VMFS_CHECK_REPAIR) || (!prc && !brc))
		return 0;
	rc = bdev_write(c->bd, prc ? b : p, prc ? VMFS_VH_OFF : boff, VMFS_UNIT);
	if (rc == 0)
		rc = bdev_flush(c->bd);
	if (rc) {
		c->st->err_off = prc ? VMFS_VH_OFF : boff;
		return c->err = rc;
	}
	(*fixed)++;
	c->st->problems--;
	c->vh.from_backup = 0;
	return 0;
}

/* ---- pass 2: atomic units ------------------------------------------------- */

static void check_unit(struct ck *c, const uint8_t *u, const char *region, uint64_t *used)
{
	char why[256];

	if (vmfs__zero(u, 0, VMFS_UNIT))
		return;
	if (used)
		(*used)++;
	if (lm_unit_check(u, VMFS_UNIT, why, sizeof(why)))
		problem(c, region, "%s", why);
}

static void check_unit_array(struct ck *c, uint64_t off, uint32_t n, const char *name,
			     uint64_t *used)
{
	const uint32_t chunk = 256;
	uint8_t *buf = bdev_alloc((size_t)chunk * VMFS_UNIT);
	char region[64];

	if (!buf) {
		c->err = -ENOMEM;
		return;
	}
	for (uint32_t i = 0; i < n; i += chunk) {
		uint32_t k = n - i < chunk ? n - i : chunk;

		if (ck_read(c, buf, off + (uint64_t)i * VMFS_UNIT, (size_t)k * VMFS_UNIT))
			break;
		for (uint32_t j = 0; j < k; j++) {
			snprintf(region, sizeof(region), "%s %" PRIu32, name, i + j);
			check_unit(c, buf + (size_t)j * VMFS_UNIT, region, used);
		}
	}
	bdev_free(buf);
}

/* ---- pass 3: journals ------------------------------------------------------- */

/* Counts the committed transactions from the head (stops at the first
 * invalid one, as replay does); they are not problems: a crashed host's
 * journal holds them until a survivor or the next mount replays it. */
static uint64_t journal_pending(struct ck *c, uint64_t joff, const struct vmfs_jh *jh)
{
	uint64_t nlog = vmfs_journal_nlog(jh->journal_len), pos = jh->head, txid = jh->head_txid;
	uint8_t *blk = c->buf + VMFS_UNIT, *desc = malloc(VMFS_UNIT);
	struct vmfs_jd *jd = malloc(sizeof(*jd));
	struct vmfs_jc jc;
	uint64_t n = 0, used = 0;
	uint32_t crc;

	while (desc && jd && used < nlog) {
		if (bdev_read(c->bd, desc, vmfs_journal_log_off(joff, jh->journal_len, pos),
			      VMFS_UNIT) ||
		    vmfs_jd_decode(desc, &c->vh, jd, NULL, 0) || jd->txid != txid)
			break;
		crc = crc32c(0, desc, VMFS_UNIT);
		for (uint32_t i = 0; i <= jd->nblocks; i++) {
			uint64_t at = vmfs_journal_log_off(joff, jh->journal_len, pos + 1 + i);

			if (bdev_read(c->bd, blk, at, VMFS_UNIT))
				goto out;
			if (i < jd->nblocks)
				crc = crc32c(crc, blk, VMFS_UNIT);
		}
		if (vmfs_jc_decode(blk, &jc, NULL, 0) || jc.txid != txid ||
		    jc.nblocks != jd->nblocks || jc.data_crc != crc)
			break;
		n++;
		txid++;
		used += jd->nblocks + 2;
		pos = (pos + jd->nblocks + 2) % nlog;
	}
out:
	free(desc);
	free(jd);
	return n;
}

static void check_journals(struct ck *c)
{
	struct vmfs_jh jh;
	char why[256], region[48];

	for (uint32_t s = 0; s < c->vh.max_hosts; s++) {
		uint64_t joff = vmfs_journal_off(&c->vh, s);

		/* both copies (c->buf holds two units); one bad copy is what a
		 * torn header write leaves and is harmless */
		if (ck_read(c, c->buf, joff, VMFS_JH_COPIES * VMFS_UNIT))
			return;
		snprintf(region, sizeof(region), "journal %" PRIu32 " header", s);
		if (vmfs_jh_pick(c->buf, c->buf + VMFS_UNIT, &c->vh, s, &jh, NULL, why,
				 sizeof(why)))
			problem(c, region, "%s", why);
		else if (journal_pending(c, joff, &jh))
			c->st->journals_pending++;
	}
}

/* ---- pass 4: clusters ------------------------------------------------------- */

static int alloc_type(struct ck *c, unsigned t)
{
	struct ck_type *ct = &c->t[t];
	size_t bytes;

	ct->nres = (uint64_t)c->vh.res[t].ncl * c->vh.res[t].per_cl;
	bytes = (size_t)((ct->nres + 7) / 8);
	ct->alloc = calloc(1, bytes);
	ct->ref = calloc(1, bytes);
	ct->valid = calloc(c->vh.res[t].ncl, 1);
	return ct->alloc && ct->ref && ct->valid ? 0 : -ENOMEM;
}

static void check_clusters(struct ck *c, unsigned t)
{
	struct ck_type *ct = &c->t[t];
	struct vmfs_ch *ch = malloc(sizeof(*ch));
	char why[256], region[64];

	if (!ch) {
		c->err = -ENOMEM;
		return;
	}
	for (uint32_t cl = 0; cl < c->vh.res[t].ncl; cl++) {
		uint64_t base = (uint64_t)cl * c->vh.res[t].per_cl;

		if (ck_read(c, c->buf, vmfs_cl_off(&c->vh, t, cl), 2 * VMFS_UNIT))
			break;
		snprintf(region, sizeof(region), "%s cluster %" PRIu32 " lock", vmfs_rtype_name(t),
			 cl);
		check_unit(c, c->buf, region, NULL);
		snprintf(region, sizeof(region), "%s cluster %" PRIu32 " header",
			 vmfs_rtype_name(t), cl);
		if (vmfs_ch_decode(c->buf + VMFS_UNIT, &c->vh, ch, why, sizeof(why))) {
			problem(c, region, "%s", strip(why, "cluster header"));
			continue;
		}
		if (ch->type != t || ch->index != cl) {
			problem(c, region, "wrong type or index");
			continue;
		}
		ct->valid[cl] = 1;
		for (uint32_t i = 0; i < ch->nres; i++)
			if (vmfs_bit_get(ch->bitmap, i))
				ct->alloc[(base + i) / 8] |= (uint8_t)(1u << ((base + i) % 8));
	}
	free(ch);
}

/* ---- pass 5: FDs and their trees ------------------------------------------ */

static int bit64(const uint8_t *bm, uint64_t i)
{
	return bm[i / 8] >> (i % 8) & 1;
}

static void set64(uint8_t *bm, uint64_t i)
{
	bm[i / 8] = (uint8_t)(bm[i / 8] | 1u << (i % 8));
}

/* Records a reference to `a` found in `region`; reports a reference to a
 * resource that its bitmap says is free, or that was already referenced
 * (then returns 1: a PB met twice is not walked twice, so a hostile tree
 * costs at most one read per PB). */
static int take_ref(struct ck *c, const char *region, uint64_t a)
{
	unsigned t = vmfs_addr_type(a);
	struct ck_type *ct = &c->t[t];
	uint64_t i = res_idx(c, a);
	char as[48];

	vmfs_addr_str(a, as, sizeof(as));
	if (!ct->valid[vmfs_addr_cl(a)])
		return 0; /* cluster header already reported */
	if (!bit64(ct->alloc, i))
		problem(c, region, "references %s, which is free in its cluster bitmap", as);
	if (bit64(ct->ref, i)) {
		problem(c, region, "references %s, which is referenced twice", as);
		return 1;
	}
	set64(ct->ref, i);
	return 0;
}

struct fdwalk {
	const char *region;
	uint64_t self;
	uint64_t nalloc;
	uint64_t *map; /* dir files: logical 4K block -> device offset (0 = hole) */
	uint64_t nmap;
};

static void map_data(struct ck *c, struct fdwalk *w, uint64_t lbn, uint64_t a, uint32_t bsize)
{
	uint64_t per = bsize / VMFS_UNIT, first = lbn * per, off = vmfs_addr_off(&c->vh, a);

	for (uint64_t k = 0; k < per && w->map && first + k < w->nmap; k++)
		w->map[first + k] = off + k * VMFS_UNIT;
}

static void walk_pb(struct ck *c, struct fdwalk *w, uint64_t a, uint32_t level, uint64_t lbn)
{
	struct vmfs_pb *pb;
	char why[256];
	uint64_t span = level == 2 ? VMFS_PB_NADDR : 1;

	w->nalloc++;
	if (take_ref(c, w->region, a))
		return;
	pb = malloc(sizeof(*pb));
	if (!pb || ck_read(c, c->buf + VMFS_UNIT, vmfs_addr_off(&c->vh, a), VMFS_UNIT)) {
		free(pb);
		return;
	}
	if (vmfs_pb_decode(c->buf + VMFS_UNIT, &c->vh, pb, why, sizeof(why)))
		problem(c, w->region, "%s", why);
	else if (pb->self != a || pb->owner != w->self || pb->level != level)
		problem(c, w->region, "pointer block: self/owner/level do not match its use");
	else
		for (unsigned i = 0; i < VMFS_PB_NADDR; i++) {
			if (!pb->addr[i])
				continue;
			if (level == 2) {
				walk_pb(c, w, pb->addr[i], 1, lbn + i * span);
			} else {
				take_ref(c, w->region, pb->addr[i]);
				w->nalloc++;
				map_data(c, w, lbn + i, pb->addr[i], c->vh.block_size);
			}
		}
	free(pb);
}

static void walk_fd(struct ck *c, struct fdwalk *w, const struct vmfs_fd *fd)
{
	uint64_t n = VMFS_PB_NADDR;

	if (fd->amode == VMFS_AM_INLINE)
		return;
	for (unsigned i = 0; i < VMFS_NADDR; i++) {
		uint64_t a = fd->u.addr[i];

		if (!a)
			continue;
		if (i >= VMFS_NDIRECT + VMFS_NSINGLE)
			walk_pb(c, w, a, 2,
				VMFS_NDIRECT + VMFS_NSINGLE * n +
				    (i - VMFS_NDIRECT - VMFS_NSINGLE) * n * n);
		else if (i >= VMFS_NDIRECT)
			walk_pb(c, w, a, 1, VMFS_NDIRECT + (i - VMFS_NDIRECT) * n);
		else {
			take_ref(c, w->region, a);
			w->nalloc++;
			map_data(c, w, i, a,
				 fd->amode == VMFS_AM_SB ? VMFS_SB_SIZE : c->vh.block_size);
		}
	}
}

/* The FD's extended-attribute block: allocated, referenced once, valid,
 * owned by this FD (not counted in nalloc). */
static void walk_xattr(struct ck *c, struct fdwalk *w, uint64_t a)
{
	struct vmfs_xb *xb;
	char why[256];

	if (take_ref(c, w->region, a))
		return;
	xb = malloc(sizeof(*xb));
	if (!xb || ck_read(c, c->buf + VMFS_UNIT, vmfs_addr_off(&c->vh, a), VMFS_UNIT)) {
		free(xb);
		return;
	}
	if (vmfs_xb_decode(c->buf + VMFS_UNIT, &c->vh, xb, why, sizeof(why)))
		problem(c, w->region, "%s", why);
	else if (xb->self != a || xb->owner != w->self)
		problem(c, w->region, "xattr block: self/owner do not match its use");
	free(xb);
}

/* Checks one directory's blocks; counts links of the FDs it names. */
static void check_dir_entries(struct ck *c, struct fdwalk *w, const struct vmfs_db *h,
			      struct vmfs_db *db)
{
	uint64_t total = 0, fdix;
	struct vmfs_dirent e;
	char why[256], reg[96];

	for (uint32_t b = 0; b < h->nbuckets; b++) {
		uint64_t blk = 1 + 2 * (uint64_t)b;
		uint32_t steps = 0;

		while (blk) {
			snprintf(reg, sizeof(reg), "%s directory block %" PRIu64, w->region, blk);
			if (blk >= w->nmap || !w->map[blk]) {
				problem(c, reg, "missing (hole or beyond the directory size)");
				break;
			}
			if (ck_read(c, c->buf + VMFS_UNIT, w->map[blk], VMFS_UNIT))
				return;
			if (vmfs_db_decode(c->buf + VMFS_UNIT, &c->vh, db, why, sizeof(why))) {
				problem(c, reg, "%s", why);
				break;
			}
			if (db->dir != w->self || db->index != blk || db->bucket != b ||
			    (blk % 2 == 0 && db->kind != VMFS_DB_OVERFLOW)) {
				problem(c, reg, "directory block: owner/index/bucket do not match");
				break;
			}
			for (uint32_t pos = 0; vmfs_db_next(db, &pos, &e);) {
				total++;
				if (vmfs_dir_bucket(e.hash, h->level, h->split) != b)
					problem(c, reg, "entry '%s' is in the wrong bucket",
						e.name);
				fdix = res_idx(c, e.fd);
				if (!c->t[VMFS_RT_FD].valid[vmfs_addr_cl(e.fd)])
					continue;
				if (!bit64(c->t[VMFS_RT_FD].alloc, fdix))
					problem(c, reg, "entry '%s' names a free FD", e.name);
				else
					c->links[fdix]++;
				if (e.type == VMFS_FT_DIR)
					c->subdirs[res_idx(c, w->self)]++;
			}
			if (++steps > h->novf + 1) {
				problem(c, reg, "overflow chain loops");
				break;
			}
			blk = db->next;
		}
	}
	if (total != h->total)
		problem(c, w->region, "directory header counts %" PRIu64 " entries, found %" PRIu64,
			h->total, total);
}

static void check_dir(struct ck *c, struct fdwalk *w)
{
	struct vmfs_db *h = malloc(sizeof(*h)), *db = malloc(sizeof(*db));
	char why[256], reg[96];

	snprintf(reg, sizeof(reg), "%s directory block 0", w->region);
	if (!h || !db) {
		c->err = -ENOMEM;
	} else if (w->nmap < 2 || !w->map[0]) {
		problem(c, reg, "missing (empty directory file)");
	} else if (!ck_read(c, c->buf + VMFS_UNIT, w->map[0], VMFS_UNIT)) {
		if (vmfs_db_decode(c->buf + VMFS_UNIT, &c->vh, h, why, sizeof(why)))
			problem(c, reg, "%s", why);
		else if (h->kind != VMFS_DB_HEADER || h->dir != w->self)
			problem(c, reg, "directory block: not this directory's header");
		else if (2 * (uint64_t)h->nbuckets > w->nmap)
			problem(c, reg,
				"directory header: %" PRIu32 " buckets beyond the file size",
				h->nbuckets);
		else
			check_dir_entries(c, w, h, db);
	}
	free(h);
	free(db);
}

static void check_fd(struct ck *c, uint64_t a, struct vmfs_fd *fd)
{
	struct fdwalk w = {0};
	char why[256], region[64], as[48];

	vmfs_addr_str(a, as, sizeof(as));
	snprintf(region, sizeof(region), "%s", as);
	w.region = region;
	w.self = a;
	if (ck_read(c, c->buf, vmfs_addr_off(&c->vh, a), 2 * VMFS_UNIT))
		return;
	snprintf(region, sizeof(region), "%s lock", as);
	check_unit(c, c->buf, region, NULL);
	snprintf(region, sizeof(region), "%s", as);
	if (vmfs_fd_decode(c->buf + VMFS_UNIT, &c->vh, fd, why, sizeof(why))) {
		problem(c, region, "%s", why);
		return;
	}
	if (fd->self != a) {
		problem(c, region, "FD inode: self address does not match its place");
		return;
	}
	if (fd->type == VMFS_FT_DIR) {
		w.nmap = (fd->size + VMFS_UNIT - 1) / VMFS_UNIT;
		if (w.nmap > (1u << 22))
			w.nmap = 1u << 22; /* bounded: 16 GiB of directory */
		w.map = calloc(w.nmap ? w.nmap : 1, sizeof(uint64_t));
		if (!w.map) {
			c->err = -ENOMEM;
			return;
		}
	}
	walk_fd(c, &w, fd);
	if (fd->xattr)
		walk_xattr(c, &w, fd->xattr);
	if (w.nalloc != fd->nalloc)
		problem(c, region, "FD inode: owns %" PRIu64 " blocks, nalloc says %" PRIu64,
			w.nalloc, fd->nalloc);
	if (fd->type == VMFS_FT_DIR)
		check_dir(c, &w);
	free(w.map);
}

static void check_fds(struct ck *c)
{
	const struct vmfs_res_region *r = &c->vh.res[VMFS_RT_FD];
	struct vmfs_fd *fd = malloc(sizeof(*fd));
	uint64_t root = res_idx(c, c->vh.root_fd);

	if (!fd) {
		c->err = -ENOMEM;
		return;
	}
	if (c->t[VMFS_RT_FD].valid[vmfs_addr_cl(c->vh.root_fd)] &&
	    !bit64(c->t[VMFS_RT_FD].alloc, root))
		problem(c, "root directory", "root FD is free in its cluster bitmap");
	for (uint64_t i = 0; i < c->t[VMFS_RT_FD].nres && !c->err; i++) {
		uint64_t a = vmfs_addr_make(VMFS_RT_FD, (uint32_t)(i / r->per_cl),
					    (uint32_t)(i % r->per_cl));

		if (!bit64(c->t[VMFS_RT_FD].alloc, i))
			continue;
		c->st->fds_used++;
		check_fd(c, a, fd);
		if (i == root && (fd->type != VMFS_FT_DIR || fd->parent != a))
			problem(c, "root directory",
				"root FD is not a directory that is its own parent");
	}
	free(fd);
}

/* ---- pass 6: leaks and link counts ------------------------------------------- */

static void check_leaks(struct ck *c)
{
	char region[64], as[48];

	for (unsigned t = VMFS_RT_FB; t <= VMFS_RT_PB; t++) {
		const struct ck_type *ct = &c->t[t];
		uint64_t *used = t == VMFS_RT_FB   ? &c->st->fbs_used
				 : t == VMFS_RT_SB ? &c->st->sbs_used
						   : &c->st->pbs_used;

		for (uint64_t i = 0; i < ct->nres; i++) {
			uint32_t per = c->vh.res[t].per_cl;

			if (!bit64(ct->alloc, i))
				continue;
			(*used)++;
			if (bit64(ct->ref, i))
				continue;
			snprintf(region, sizeof(region), "%s cluster %" PRIu64 " bitmap",
				 vmfs_rtype_name(t), i / per);
			vmfs_addr_str(vmfs_addr_make(t, (uint32_t)(i / per), (uint32_t)(i % per)),
				      as, sizeof(as));
			problem(c, region, "%s is allocated but not referenced by any FD", as);
		}
	}
}

static void check_links(struct ck *c, struct vmfs_fd *fd)
{
	const struct vmfs_res_region *r = &c->vh.res[VMFS_RT_FD];
	uint64_t root = res_idx(c, c->vh.root_fd);
	char as[48];

	for (uint64_t i = 0; i < c->t[VMFS_RT_FD].nres && !c->err; i++) {
		uint64_t a = vmfs_addr_make(VMFS_RT_FD, (uint32_t)(i / r->per_cl),
					    (uint32_t)(i % r->per_cl));
		uint64_t want;
		char why[256];

		if (!bit64(c->t[VMFS_RT_FD].alloc, i) ||
		    ck_read(c, c->buf, vmfs_addr_off(&c->vh, a) + VMFS_UNIT, VMFS_UNIT) ||
		    vmfs_fd_decode(c->buf, &c->vh, fd, why, sizeof(why)))
			continue; /* decode problems were reported by check_fds() */
		vmfs_addr_str(a, as, sizeof(as));
		if (fd->flags & VMFS_FDF_UNLINKED) {
			c->st->fds_unlinked++;
			if (c->links[i] || i == root)
				problem(c, as, "FD inode: UNLINKED but named by a directory");
			continue;
		}
		if (i != root && c->links[i] == 0) {
			problem(c, as, "FD is allocated but no directory names it (orphan)");
			continue;
		}
		want = fd->type == VMFS_FT_DIR ? 2 + (uint64_t)c->subdirs[i] : c->links[i];
		if (fd->nlink != want)
			problem(c, as, "FD inode: link count %" PRIu32 ", expected %" PRIu64,
				fd->nlink, want);
	}
}

/* ---- driver ------------------------------------------------------------------ */

static void run_passes(struct ck *c)
{
	struct vmfs_fd *fd;

	check_unit_array(c, c->vh.vol_lock_off, 1, "volume lock", NULL);
	check_unit_array(c, c->vh.hb_off, c->vh.max_hosts, "heartbeat slot", &c->st->hb_used);
	check_unit_array(c, c->vh.lock_off, c->vh.nlocks, "lock area unit", &c->st->locks_used);
	check_journals(c);
	for (unsigned t = VMFS_RT_FB; t <= VMFS_RT_MAX && !c->err; t++) {
		c->err = alloc_type(c, t);
		if (!c->err)
			check_clusters(c, t);
	}
	if (c->err)
		return;
	c->links = calloc(c->t[VMFS_RT_FD].nres, sizeof(uint32_t));
	c->subdirs = calloc(c->t[VMFS_RT_FD].nres, sizeof(uint32_t));
	fd = malloc(sizeof(*fd));
	if (!c->links || !c->subdirs || !fd) {
		c->err = -ENOMEM;
		free(fd);
		return;
	}
	check_fds(c);
	if (!c->err)
		check_leaks(c);
	if (!c->err)
		check_links(c, fd);
	free(fd);
}

int vmfs_check(struct bdev *bd, unsigned flags, vmfs_check_cb cb, void *arg,
	       struct vmfs_check_stats *st, unsigned *fixed)
{
	struct ck *c = calloc(1, sizeof(*c));
	int rc;

	memset(st, 0, sizeof(*st));
	*fixed = 0;
	if (!c)
		return -ENOMEM;
	c->bd = bd;
	c->cb = cb;
	c->arg = arg;
	c->st = st;
	c->buf = bdev_alloc(2 * VMFS_UNIT);
	if (!c->buf) {
		free(c);
		return -ENOMEM;
	}
	rc = check_headers(c, flags, fixed);
	if (rc == 0)
		run_passes(c);
	if (cb && st->problems > MAX_REPORTED) {
		char more[64];

		snprintf(more, sizeof(more), "%" PRIu64 " more problems not listed",
			 st->problems - MAX_REPORTED);
		cb(arg, "volume", more);
	}
	rc = c->err ? c->err : (int)(st->problems > INT32_MAX ? INT32_MAX : st->problems);
	if (rc == -EUCLEAN)
		rc = (int)st->problems;
	for (unsigned t = 0; t <= VMFS_RT_MAX; t++) {
		free(c->t[t].alloc);
		free(c->t[t].ref);
		free(c->t[t].valid);
	}
	free(c->links);
	free(c->subdirs);
	bdev_free(c->buf);
	free(c);
	return rc;
}
