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
 */
#include "fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"

static int holds_cluster(struct tx *tx)
{
	for (unsigned i = 0; i < tx->nl; i++)
		if (!tx->l[i].ino && tx->l[i].mode == LM_MODE_EX) {
			uint64_t a = tx->l[i].addr;

			for (unsigned t = VMFS_RT_FB; t <= VMFS_RT_MAX; t++) {
				const struct vmfs_res_region *r = &tx->fs->vh.res[t];

				if (a >= r->off && a < r->off + r->len &&
				    (a - r->off) % r->cl_size == 0)
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
	rc = lm_lock_acquire(tx->fs->lm, cl_off, LM_MODE_EX, fs_wait_ms(tx->fs), &l->lk);
	if (rc == -ETIMEDOUT)
		rc = -EBUSY;
	if (rc)
		return rc;
	*l = (struct txl){.addr = cl_off, .lk = l->lk, .mode = LM_MODE_EX};
	tx->nl++;
	return 0;
}

static int ch_get(struct tx *tx, unsigned type, uint32_t cl, int dirty, struct vmfs_ch *ch,
		  uint8_t **blk)
{
	uint64_t off = vmfs_cl_off(&tx->fs->vh, type, cl) + VMFS_UNIT;
	char why[256];
	int rc = dirty ? tx_write(tx, off, 0, blk) : tx_read(tx, off, blk);

	if (rc)
		return rc;
	rc = vmfs_ch_decode(*blk, &tx->fs->vh, ch, why, sizeof(why));
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
	struct vmfs_ch *ch = malloc(sizeof(*ch));
	uint8_t *blk = bdev_alloc(VMFS_UNIT);
	char why[64];
	int rc = ch && blk ? 0 : -ENOMEM;

	if (!rc)
		rc = bdev_read(tx->fs->bd, blk, vmfs_cl_off(&tx->fs->vh, type, cl) + VMFS_UNIT,
			       VMFS_UNIT);
	if (!rc)
		*nfree = vmfs_ch_decode(blk, &tx->fs->vh, ch, why, sizeof(why)) ? 0 : ch->nfree;
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
	uint32_t ncl = fs->vh.res[type].ncl, start = fs->cursor[type] % ncl, nfree;
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
	if (rc == -ENOSPC)
		fs_seterr(tx->fs, "no free %s resource", vmfs_rtype_name(type));
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
		vmfs_ch_encode(ch, blk);
	}
	free(ch);
	return rc;
}

int fs_count_free(struct vmfs *fs, unsigned type, uint64_t *nfree, uint64_t *total)
{
	const struct vmfs_res_region *r = &fs->vh.res[type];
	uint8_t *buf = bdev_alloc(VMFS_UNIT);
	struct vmfs_ch *ch = malloc(sizeof(*ch));
	char why[256];
	int rc = buf && ch ? 0 : -ENOMEM;

	*nfree = *total = 0;
	for (uint32_t cl = 0; cl < r->ncl && !rc; cl++) {
		rc = bdev_read(fs->bd, buf, vmfs_cl_off(&fs->vh, type, cl) + VMFS_UNIT, VMFS_UNIT);
		if (!rc && vmfs_ch_decode(buf, &fs->vh, ch, why, sizeof(why)) == 0) {
			*nfree += ch->nfree;
			*total += ch->nres;
		}
	}
	free(ch);
	bdev_free(buf);
	return rc;
}
