/*
 * fs_alloc.c - the resource allocator: FD, PB, SB and FB clusters.
 *
 * Each cluster has a lock unit and a header block holding its bitmap. An
 * allocation or a free changes the header inside the caller's transaction,
 * holding the cluster lock EX until that transaction is committed (a few
 * milliseconds): the bitmap change and the reference to the resource are
 * journaled together, so a crash never leaks nor double-allocates.
 *
 * Deadlock avoidance: FD locks are taken before cluster locks. A cluster
 * lock is tried once (no wait) while the transaction holds another cluster
 * lock; only a transaction holding none waits for one (and can thereby take
 * a dead holder over). An allocation moves on to the next cluster when one
 * is busy; when every cluster with room is busy it returns -EAGAIN and the
 * caller aborts and retries the transaction (after a short backoff); a free
 * that finds its cluster busy returns -EAGAIN and the caller commits what it
 * has and retries.
 *
 * Affinity: each host starts its search at cluster slot * ncl / max_hosts of
 * every type and keeps a cursor at the last cluster it allocated from, so
 * hosts seldom contend for a cluster.
 *
 * Growth (grow() below): an FD, PB or SB allocation that finds every
 * cluster full turns a free file block into an extension cluster in the
 * same transaction; the extension table's lock ranks with cluster locks.
 * -ENOSPC only when no file block is free either.
 */
#include "fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"

/* Whether the tx holds a cluster lock (or the extension table's, which
 * ranks with them). */
static int holds_cluster(struct tx *tx)
{
	const struct vmfs_vh *vh = &tx->fs->vh;

	for (unsigned i = 0; i < tx->nl; i++)
		if (!tx->l[i].ino && tx->l[i].mode == LM_MODE_EX) {
			uint64_t a = tx->l[i].addr;

			uint32_t fbx;

			if (vh->xtab_off && a == vh->xtab_off)
				return 1;
			if (vmfs_fbx_find(vh, a, &fbx))
				return 1; /* an FB cluster in the data area (grown) */
			for (unsigned t = VMFS_RT_FB; t <= VMFS_RT_MAX; t++) {
				const struct vmfs_res_region *r = &vh->res[t];

				if (a >= r->off && a < r->off + r->len &&
				    (a - r->off) % r->cl_size == 0)
					return 1;
				if (a >= vh->data_off && vmfs_xtab_find(vh, t, a) >= 0)
					return 1;
			}
		}
	return 0;
}

/* Locks a cluster: try once, or wait when the tx holds no other cluster. */
static int cl_lock(struct tx *tx, uint64_t cl_off, int may_wait)
{
	struct txl *l;
	int rc = tx_lock_cl(tx, cl_off);

	if (rc != -EBUSY || !may_wait || holds_cluster(tx))
		return rc;
	l = &tx->l[tx->nl];
	rc = fs_lock_take(tx->fs, cl_off, LM_MODE_EX, fs_wait_ms(tx->fs), &l->lk);
	if (rc == -ETIMEDOUT)
		rc = -EBUSY;
	if (rc)
		return rc;
	*l = (struct txl){.addr = cl_off, .lk = l->lk, .mode = LM_MODE_EX};
	tx->nl++;
	return 0;
}

int fs_lock_cl_wait(struct tx *tx, uint64_t cl_off)
{
	return cl_lock(tx, cl_off, 1);
}

/* Decodes a cluster header; one that does not match the layout we know may
 * be the last FB cluster of a volume another host grew: re-read the volume
 * header and try again (fs_volume.c V4). */
static int ch_decode(struct vmfs *fs, const uint8_t *blk, struct vmfs_ch *ch, char *why,
		     size_t whylen)
{
	int rc = vmfs_ch_decode(blk, &fs->vh, ch, why, whylen);

	if (rc == -EUCLEAN && fs_vh_refresh(fs) > 0)
		rc = vmfs_ch_decode(blk, &fs->vh, ch, why, whylen);
	return rc;
}

static int ch_get(struct tx *tx, unsigned type, uint32_t cl, int dirty, struct vmfs_ch *ch,
		  uint8_t **blk)
{
	uint64_t own = vmfs_cl_off(&tx->fs->vh, type, cl), off = own + VMFS_UNIT;
	char why[256];
	int rc = dirty ? tx_write_own(tx, off, 0, own, blk) : tx_read_own(tx, off, own, blk);

	if (rc)
		return rc;
	rc = ch_decode(tx->fs, *blk, ch, why, sizeof(why));
	if (!rc && (ch->type != type || ch->index != cl)) {
		snprintf(why, sizeof(why), "wrong type or index");
		rc = -EUCLEAN;
	}
	if (rc)
		fs_seterr(tx->fs, "%s cluster %" PRIu32 " header: %s", vmfs_rtype_name(type), cl,
			  why);
	return rc;
}

/* Free count of a cluster without its lock (a hint). */
static int peek_free(struct tx *tx, unsigned type, uint32_t cl, uint32_t *nfree)
{
	uint64_t off = vmfs_cl_off(&tx->fs->vh, type, cl) + VMFS_UNIT;
	struct vmfs_ch *ch = malloc(sizeof(*ch));
	uint8_t *blk = bdev_alloc(VMFS_UNIT);
	char why[64];
	int rc = ch && blk ? 0 : -ENOMEM;

	/* a cached header (whatever its age) saying "free" is checked under
	 * the lock anyway; one saying "full" may be stale: read the disk */
	if (!rc && fs_cache_hint(tx->fs, off, blk) &&
	    !vmfs_ch_decode(blk, &tx->fs->vh, ch, why, sizeof(why)) && ch->nfree) {
		*nfree = ch->nfree;
		goto out;
	}
	if (!rc)
		rc = fs_meta_read(tx->fs, blk, off, VMFS_UNIT);
	if (!rc)
		*nfree = ch_decode(tx->fs, blk, ch, why, sizeof(why)) ? 0 : ch->nfree;
out:
	free(ch);
	bdev_free(blk);
	return rc;
}

static int take_bit(struct tx *tx, unsigned type, uint32_t cl, uint64_t *addr)
{
	struct vmfs_ch *ch = malloc(sizeof(*ch));
	uint8_t *blk;
	int rc = ch ? ch_get(tx, type, cl, 1, ch, &blk) : -ENOMEM;

	if (!rc && ch->nfree == 0)
		rc = -ENOSPC;
	for (uint32_t i = 0; !rc && i < ch->nres; i++) {
		if (vmfs_bit_get(ch->bitmap, i))
			continue;
		vmfs_bit_set(ch->bitmap, i, 1);
		ch->nfree--;
		vmfs_ch_encode(ch, blk);
		*addr = vmfs_addr_make(type, cl, i);
		break;
	}
	free(ch);
	return rc;
}

/* One pass over the clusters; *busy counts clusters skipped as locked. */
static int alloc_pass(struct tx *tx, unsigned type, int may_wait, uint64_t *addr, int *busy)
{
	struct vmfs *fs = tx->fs;
	uint32_t ncl = vmfs_ncl(&fs->vh, type), start = fs->cursor[type] % ncl, nfree;
	int rc;

	for (uint32_t i = 0; i < ncl; i++) {
		uint32_t cl = (start + i) % ncl;
		uint64_t cl_off = vmfs_cl_off(&fs->vh, type, cl);

		if (!tx_holds(tx, cl_off)) {
			rc = peek_free(tx, type, cl, &nfree);
			if (rc)
				return rc;
			if (!nfree)
				continue;
			rc = cl_lock(tx, cl_off, may_wait);
			if (rc == -EBUSY) {
				(*busy)++;
				continue;
			}
			if (rc)
				return rc;
		}
		rc = take_bit(tx, type, cl, addr);
		if (rc == -ENOSPC)
			continue;
		if (!rc)
			fs->cursor[type] = cl;
		return rc;
	}
	return -ENOSPC;
}

/*
 * Growth (INCOMPAT_XRES): every cluster of the type is full, so turn a
 * free file block into a new cluster of it, in this transaction:
 *   1. lock the extension table (EX, ranked like a cluster lock) and
 *      re-read the type's table: if another host grew it meanwhile, use
 *      that (return 0, the caller scans again);
 *   2. allocate a file block (FB bitmap change, journaled with the rest);
 *   3. publish the cluster in memory (tx->xgrow: taken back if the
 *      transaction is abandoned), then write its block directly: zeroes
 *      (every lock unit free), then its header with all resources free;
 *      these writes reach the disk before the descriptor (write_log
 *      flushes first), and a crash before the commit leaves them in a
 *      block that is still free;
 *   4. append the block's address to the table block (journaled).
 * Other hosts learn of the cluster from the table, written in place
 * after the commit and before the table lock is released.
 */
static int grow(struct tx *tx, unsigned type)
{
	struct vmfs *fs = tx->fs;
	const struct vmfs_vh *vh = &fs->vh;
	struct vmfs_xt_blk *xb = NULL;
	struct vmfs_ch *ch = NULL;
	uint8_t *blk = NULL, *hdr = NULL;
	uint64_t fb = 0, off;
	int64_t cl = -1;
	uint32_t k, bi;
	char why[256];
	int rc;

	rc = cl_lock(tx, vh->xtab_off, 1);
	if (rc == -EBUSY)
		return holds_cluster(tx) ? -EAGAIN : -EBUSY;
	if (rc)
		return rc;
	rc = vmfs_xtab_refresh(vh, type);
	if (rc)
		return rc < 0 ? rc : 0; /* grown elsewhere: scan the new clusters */
	k = vmfs_ncl(vh, type) - vh->res[type].ncl;
	if (k >= vmfs_ncl_max(vh, type) - vh->res[type].ncl) {
		fs_seterr(fs, "extension table for %s is full", vmfs_rtype_name(type));
		return -ENOSPC;
	}
	rc = fs_alloc(tx, VMFS_RT_FB, &fb);
	if (rc)
		return rc;
	xb = malloc(sizeof(*xb));
	ch = calloc(1, sizeof(*ch));
	hdr = bdev_alloc(VMFS_UNIT);
	rc = xb && ch && hdr ? 0 : -ENOMEM;
	bi = k / VMFS_XT_PER_BLK;
	if (!rc)
		rc = tx_write(tx, vmfs_xt_blk_off(vh, type, bi), 0, &blk);
	if (!rc && vmfs_xt_decode(blk, vh, type, bi, xb, why, sizeof(why))) {
		fs_seterr(fs, "%s", why);
		rc = -EUCLEAN;
	}
	if (!rc && xb->count != k % VMFS_XT_PER_BLK) {
		fs_seterr(fs,
			  "extension table %s block %" PRIu32 ": %" PRIu32
			  " entries, expected %" PRIu32,
			  vmfs_rtype_name(type), bi, xb->count, k % VMFS_XT_PER_BLK);
		rc = -EUCLEAN;
	}
	if (!rc) {
		cl = vmfs_xtab_push(vh, type, fb);
		rc = cl < 0 ? (int)cl : 0;
	}
	if (!rc) {
		tx->xgrow[type]++;
		off = vmfs_cl_off(vh, type, (uint32_t)cl);
		ch->type = type;
		ch->index = (uint32_t)cl;
		ch->nres = ch->nfree = vmfs_xt_nres(vh, type);
		ch->cl_off = off;
		ch->res_off = off + VMFS_CL_HDR;
		ch->res_size = vh->res[type].res_size;
		vmfs_ch_encode(ch, hdr);
		rc = lm_write_guard(fs->lm);
		if (!rc)
			rc = bdev_write_zeroes(fs->bd, off, vh->block_size);
		if (!rc)
			rc = lm_guarded_write(fs->lm, hdr, off + VMFS_UNIT, VMFS_UNIT);
		fs_cache_drop(fs, off, vh->block_size); /* written outside the tx */
	}
	if (!rc) {
		xb->fb[xb->count++] = fb;
		vmfs_xt_encode(xb, blk);
	}
	free(xb);
	free(ch);
	bdev_free(hdr);
	return rc;
}

int fs_alloc(struct tx *tx, unsigned type, uint64_t *addr)
{
	int busy = 0, rc = alloc_pass(tx, type, 0, addr, &busy);

	if (rc == -ENOSPC && busy) {
		busy = 0;
		rc = alloc_pass(tx, type, 1, addr, &busy);
	}
	if (rc == -ENOSPC && busy && lm_recover(tx->fs->lm, 0) > 0) {
		/* holders the lock manager already judged dead (its reclaim
		 * thread watches every slot) are taken over now: their locks
		 * are stale, so the clusters are free to lock */
		busy = 0;
		rc = alloc_pass(tx, type, 1, addr, &busy);
	}
	if (rc == -ENOSPC && busy)
		return -EAGAIN; /* clusters with room are locked: retry the transaction */
	if (rc == -ENOSPC && type == VMFS_RT_FB && fs_vh_refresh(tx->fs) > 0) {
		busy = 0; /* another host grew the volume: its new blocks */
		rc = alloc_pass(tx, type, 1, addr, &busy);
		if (rc == -ENOSPC && busy)
			return -EAGAIN;
	}
	for (int tries = 0; rc == -ENOSPC && type != VMFS_RT_FB && tx->fs->vh.xtab_off && tries < 4;
	     tries++) {
		rc = grow(tx, type);
		if (rc == -EBUSY)
			return -EAGAIN;
		if (!rc)
			rc = alloc_pass(tx, type, 1, addr, &busy);
		if (rc == -ENOSPC && busy)
			return -EAGAIN;
	}
	if (rc == -ENOSPC && (type == VMFS_RT_FB || !tx->fs->vh.xtab_off))
		fs_seterr(tx->fs, "no free %s resource", vmfs_rtype_name(type));
	/* G2: data goes in place unjournaled: a free of this kind still in
	 * the running group is made durable before any block is reused */
	if (!rc && (type == VMFS_RT_FB || type == VMFS_RT_SB))
		rc = fs_group_commit_freed(tx->fs);
	if (!rc && (type == VMFS_RT_FB || type == VMFS_RT_SB) &&
	    fs_pend_overlaps(tx->fs, vmfs_addr_off(&tx->fs->vh, *addr),
			     type == VMFS_RT_FB ? tx->fs->vh.block_size
						: tx->fs->vh.res[type].res_size))
		rc = fs_checkpoint(tx->fs); /* K2: its old metadata image goes first */
	return rc;
}

int fs_free(struct tx *tx, uint64_t addr)
{
	unsigned type = vmfs_addr_type(addr);
	uint32_t cl = vmfs_addr_cl(addr), res = vmfs_addr_res(addr);
	struct vmfs_ch *ch;
	uint8_t *blk;
	int rc;

	if (vmfs_addr_check(&tx->fs->vh, addr & ~VMFS_ADDR_FLAGS, 0, NULL, 0))
		return -EUCLEAN;
	rc = cl_lock(tx, vmfs_cl_off(&tx->fs->vh, type, cl), 1);
	if (rc == -EBUSY && holds_cluster(tx))
		return -EAGAIN;
	if (rc)
		return rc;
	ch = malloc(sizeof(*ch));
	rc = ch ? ch_get(tx, type, cl, 1, ch, &blk) : -ENOMEM;
	if (!rc && (res >= ch->nres || !vmfs_bit_get(ch->bitmap, res))) {
		fs_seterr(tx->fs,
			  "%s cluster %" PRIu32 ": freeing resource %" PRIu32
			  " that is not allocated",
			  vmfs_rtype_name(type), cl, res);
		rc = -EUCLEAN;
	}
	if (!rc) {
		vmfs_bit_set(ch->bitmap, res, 0);
		ch->nfree++;
		tx->freed_data |= type == VMFS_RT_FB || type == VMFS_RT_SB;
		vmfs_ch_encode(ch, blk);
		/* the resource changes owner: nothing cached of it may be
		 * found under the old one (fs_cache.c C1) */
		fs_cache_drop(tx->fs, vmfs_addr_off(&tx->fs->vh, addr & ~VMFS_ADDR_FLAGS),
			      type == VMFS_RT_FB ? tx->fs->vh.block_size
						 : tx->fs->vh.res[type].res_size);
	}
	free(ch);
	return rc;
}

int fs_count_free(struct vmfs *fs, unsigned type, uint64_t *nfree, uint64_t *total)
{
	uint8_t *buf = bdev_alloc(VMFS_UNIT);
	struct vmfs_ch *ch = malloc(sizeof(*ch));
	char why[256];
	int rc = buf && ch ? 0 : -ENOMEM;

	*nfree = *total = 0;
	for (uint32_t cl = 0; cl < vmfs_ncl(&fs->vh, type) && !rc; cl++) {
		rc = fs_meta_read(fs, buf, vmfs_cl_off(&fs->vh, type, cl) + VMFS_UNIT, VMFS_UNIT);
		if (!rc && vmfs_ch_decode(buf, &fs->vh, ch, why, sizeof(why)) == 0) {
			*nfree += ch->nfree;
			*total += ch->nres;
		}
	}
	free(ch);
	bdev_free(buf);
	return rc;
}
