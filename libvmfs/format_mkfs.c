/*
 * format_mkfs.c - writes a fresh volume for a layout from vmfs_layout().
 *
 * Order (a crash at any point leaves either no valid header or a complete
 * volume):
 *   1. invalidate both header copies (zero their blocks), flush;
 *   2. discard [volume lock, end of FB clusters): every lock unit, heartbeat
 *      slot, journal and FD becomes all-zero (= free); discard keeps sparse
 *      images sparse and frees thin LUN space; the data area is not touched;
 *   3. journal headers, cluster headers + bitmaps (root FD and its sub-block
 *      marked), empty extension table blocks, root FD inode, root directory
 *      header + bucket 0;
 *   4. flush, write backup then primary header, flush.
 */
#include "format_ondisk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"

#define ZERO_CHUNK (256ull << 20)
#define BATCH	   64u

uint64_t vmfs_mkfs_bytes(const struct vmfs_vh *vh)
{
	const struct vmfs_res_region *fb = &vh->res[VMFS_RT_FB];

	if (vh->xtab_off)
		return vh->xtab_off + vmfs_xtab_len(vh) - vh->vol_lock_off;
	return fb->off + fb->len - vh->vol_lock_off;
}

static void progress(const struct vmfs_mkfs_opts *o, const char *phase, uint64_t done,
		     uint64_t total)
{
	if (o->progress)
		o->progress(o->progress_arg, phase, total ? (unsigned)(done * 100 / total) : 100);
}

static int zero_range(struct bdev *bd, const struct vmfs_mkfs_opts *o, uint64_t off, uint64_t len)
{
	uint64_t done = 0;
	int rc = 0;

	progress(o, "zeroing metadata", 0, len);
	while (done < len && rc == 0) {
		uint64_t n = len - done < ZERO_CHUNK ? len - done : ZERO_CHUNK;

		rc = bdev_discard(bd, off + done, n);
		done += n;
		progress(o, "zeroing metadata", done, len);
	}
	return rc;
}

static int write_journal_headers(struct bdev *bd, const struct vmfs_vh *vh,
				 const struct vmfs_mkfs_opts *o)
{
	uint8_t *buf = bdev_alloc(VMFS_UNIT);
	struct vmfs_jh jh;
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	for (uint32_t s = 0; s < vh->max_hosts && rc == 0; s++) {
		memset(&jh, 0, sizeof(jh));
		jh.slot = s;
		jh.journal_off = vmfs_journal_off(vh, s);
		jh.journal_len = vh->journal_size;
		jh.head_txid = 1;
		for (jh.seq = 0; jh.seq < VMFS_JH_COPIES && rc == 0; jh.seq++) {
			vmfs_jh_encode(&jh, buf);
			rc = bdev_write(bd, buf, jh.journal_off + jh.seq * VMFS_UNIT, VMFS_UNIT);
		}
		if (s % 64 == 63 || s + 1 == vh->max_hosts)
			progress(o, "writing journal headers", s + 1, vh->max_hosts);
	}
	bdev_free(buf);
	return rc;
}

static void cluster_header(const struct vmfs_vh *vh, unsigned t, uint32_t cl, struct vmfs_ch *ch)
{
	memset(ch, 0, sizeof(*ch));
	ch->type = t;
	ch->index = cl;
	ch->nres = vmfs_cl_nres(vh, t, cl);
	ch->nfree = ch->nres;
	ch->cl_off = vmfs_cl_off(vh, t, cl);
	ch->res_off = vmfs_addr_off(vh, vmfs_addr_make(t, cl, 0));
	ch->res_size = vh->res[t].res_size;
	if (cl == 0 && (t == VMFS_RT_FD || t == VMFS_RT_SB)) { /* root FD and its sub-block */
		vmfs_bit_set(ch->bitmap, 0, 1);
		ch->nfree--;
	}
}

/* Writes the header blocks of one cluster type, BATCH at a time. */
static int write_cluster_headers(struct bdev *bd, const struct vmfs_vh *vh, unsigned t,
				 const struct vmfs_mkfs_opts *o, uint64_t *done, uint64_t total)
{
	struct bdev_io ios[BATCH];
	uint8_t *buf = bdev_alloc((size_t)BATCH * VMFS_UNIT);
	struct vmfs_ch *ch = malloc(sizeof(*ch));
	uint32_t ncl = vh->res[t].ncl;
	int rc = 0;

	if (!buf || !ch) {
		bdev_free(buf);
		free(ch);
		return -ENOMEM;
	}
	for (uint32_t cl = 0; cl < ncl && rc == 0; cl += BATCH) {
		unsigned n = ncl - cl < BATCH ? ncl - cl : BATCH;

		for (unsigned i = 0; i < n; i++) {
			cluster_header(vh, t, cl + i, ch);
			vmfs_ch_encode(ch, buf + (size_t)i * VMFS_UNIT);
			ios[i] = (struct bdev_io){BDEV_OP_WRITE, buf + (size_t)i * VMFS_UNIT,
						  ch->cl_off + VMFS_UNIT, VMFS_UNIT, 0};
		}
		rc = bdev_submit(bd, ios, n);
		*done += n;
		progress(o, "writing cluster headers", *done, total);
	}
	bdev_free(buf);
	free(ch);
	return rc;
}

/* Empty extension table blocks (XRES): count 0 each. */
static int write_xtab(struct bdev *bd, const struct vmfs_vh *vh)
{
	static const unsigned types[3] = {VMFS_RT_FD, VMFS_RT_PB, VMFS_RT_SB};
	uint8_t *buf = bdev_alloc(VMFS_UNIT);
	struct vmfs_xt_blk *xb = calloc(1, sizeof(*xb));
	int rc = buf && xb ? 0 : -ENOMEM;

	for (unsigned t = 0; t < 3 && !rc && vh->xtab_off; t++)
		for (uint32_t i = 0; i < vh->xtab_nblk && !rc; i++) {
			xb->type = types[t];
			xb->index = i;
			vmfs_xt_encode(xb, buf);
			rc = bdev_write(bd, buf, vmfs_xt_blk_off(vh, types[t], i), VMFS_UNIT);
		}
	bdev_free(buf);
	free(xb);
	return rc;
}

static int write_root(struct bdev *bd, const struct vmfs_vh *vh)
{
	uint64_t sb = vmfs_addr_make(VMFS_RT_SB, 0, 0);
	uint8_t *buf = bdev_alloc(2 * VMFS_UNIT);
	struct vmfs_fd *fd = calloc(1, sizeof(*fd));
	struct vmfs_db *db = calloc(1, sizeof(*db));
	int rc = -ENOMEM;

	if (!buf || !fd || !db)
		goto out;
	fd->self = vh->root_fd;
	fd->type = VMFS_FT_DIR;
	fd->mode = 0755;
	fd->size = 2 * VMFS_UNIT;
	fd->atime_ns = fd->mtime_ns = fd->ctime_ns = fd->btime_ns = vh->created_ns;
	fd->nlink = 2;
	fd->generation = 1;
	fd->amode = VMFS_AM_SB;
	fd->parent = vh->root_fd;
	fd->nalloc = 1;
	fd->u.addr[0] = sb;
	vmfs_fd_encode(fd, buf);
	rc = bdev_write(bd, buf, vmfs_addr_off(vh, vh->root_fd) + VMFS_UNIT, VMFS_UNIT);
	if (rc)
		goto out;
	db->kind = VMFS_DB_HEADER;
	db->dir = vh->root_fd;
	db->nbuckets = 1;
	vmfs_db_encode(db, buf);
	memset(db, 0, sizeof(*db));
	db->kind = VMFS_DB_BUCKET;
	db->index = 1;
	db->dir = vh->root_fd;
	vmfs_db_encode(db, buf + VMFS_UNIT);
	rc = bdev_write(bd, buf, vmfs_addr_off(vh, sb), 2 * VMFS_UNIT);
out:
	bdev_free(buf);
	free(fd);
	free(db);
	return rc;
}

static int write_headers(struct bdev *bd, const struct vmfs_vh *vh, int zero)
{
	uint8_t *buf = bdev_alloc(VMFS_UNIT);
	int rc;

	if (!buf)
		return -ENOMEM;
	if (!zero)
		vmfs_vh_encode(vh, buf);
	rc = bdev_write(bd, buf, vh->backup_off, VMFS_UNIT);
	if (rc == 0)
		rc = bdev_write(bd, buf, VMFS_VH_OFF, VMFS_UNIT);
	if (rc == 0)
		rc = bdev_flush(bd);
	bdev_free(buf);
	return rc;
}

static int mkfs_steps(struct bdev *bd, const struct vmfs_vh *vh, const struct vmfs_mkfs_opts *o,
		      const char **step)
{
	uint64_t done = 0, ncl = 0;
	int rc;

	*step = "invalidating old headers";
	rc = write_headers(bd, vh, 1);
	if (rc)
		return rc;
	*step = "zeroing metadata regions";
	rc = zero_range(bd, o, vh->vol_lock_off, vmfs_mkfs_bytes(vh));
	if (rc)
		return rc;
	*step = "writing journal headers";
	rc = write_journal_headers(bd, vh, o);
	if (rc)
		return rc;
	*step = "writing cluster headers";
	for (unsigned t = VMFS_RT_FB; t <= VMFS_RT_MAX; t++)
		ncl += vh->res[t].ncl;
	for (unsigned t = VMFS_RT_FB; t <= VMFS_RT_MAX && !rc; t++)
		rc = write_cluster_headers(bd, vh, t, o, &done, ncl);
	if (rc)
		return rc;
	*step = "writing the extension table";
	rc = write_xtab(bd, vh);
	if (rc)
		return rc;
	*step = "writing the root directory";
	rc = write_root(bd, vh);
	if (rc)
		return rc;
	*step = "flushing";
	rc = bdev_flush(bd);
	if (rc)
		return rc;
	*step = "writing volume headers";
	return write_headers(bd, vh, 0);
}

int vmfs_mkfs_write(struct bdev *bd, const struct vmfs_vh *vh, const struct vmfs_mkfs_opts *o,
		    char *why, size_t whylen)
{
	const char *step = "";
	int rc;

	if (vh->vol_size > bd->size || bd->lsec > VMFS_MAX_LSEC || VMFS_UNIT % bd->lsec) {
		snprintf(why, whylen, "layout does not match the device");
		return -EINVAL;
	}
	rc = mkfs_steps(bd, vh, o, &step);
	if (rc)
		snprintf(why, whylen, "%s: %s", step, bdev_strerror(rc));
	return rc;
}
