/*
 * fs_volume.c - the volume's lifecycle on a mounted volume: growing it into
 * a device that grew (vmfs_grow, `vmfsctl grow`), changing its label and
 * heartbeat timing (vmfs_tune, `vmfsctl tune`), and how the other mounted
 * hosts learn of it (fs_vh_refresh). docs/FILESYSTEM.md "Growing the volume"
 * has the long version; docs/FORMAT.md the on-disk side (INCOMPAT_FBX).
 *
 * DESIGN NOTE
 *
 * Growing adds file blocks at the end of the data area: nblocks grows to
 * what fits before the new backup header, the last FB cluster's header
 * covers its new blocks, and FB clusters past the region mkfs made live in
 * the first file block they cover (INCOMPAT_FBX, set when the first one is
 * needed). Nothing else moves: FD, PB and SB clusters grow on their own
 * (INCOMPAT_XRES); the extension table keeps the capacity mkfs gave it.
 *
 * Invariants
 *  V1. The header only grows: vol_size and nblocks never decrease, and
 *      every other field but the label and the heartbeat timing is
 *      fixed at mkfs. vmfs_vh_adopt() refuses anything else, for a header
 *      re-read from the disk and for one replayed from a journal alike (a
 *      journaled header that would shrink the volume is a corrupt journal).
 *  V2. One grow or tune at a time, volume-wide: both run in one transaction
 *      that holds the volume lock (vol_lock_off) EX from before the header
 *      is re-read until after the commit.
 *  V3. Until the new header is committed, nothing on the disk refers to
 *      the space beyond the old end: the new FB cluster headers and the new
 *      backup header are written there (directly, flushed) before the
 *      journal descriptor; a crash before the commit leaves them in space
 *      that the old header does not cover (old size, nothing lost), a crash
 *      after it is replayed to the new size (the journal holds the primary
 *      header and the header of the partly-filled last FB cluster).
 *  V4. A host learns the new size by re-reading the primary header: at
 *      statfs, when an FB allocation finds no free block, when a cluster
 *      header does not decode against the layout it knows (the last FB
 *      cluster covers more blocks), and on a file block address past the
 *      end it knows (vmfs_addr_check, vh.refresh). Replay adopts the header
 *      image of a transaction it applies before the next one is read.
 *  V5. The heartbeat timing is part of every host's liveness judgement
 *      (lockmgr reads each slot's own interval and timeout), so it is only
 *      changed when no other host is mounted (-EBUSY naming them), and the
 *      tuning host then leaves the heartbeat region at once: it must not
 *      go on beating with the old timing. Its mount is spent (-ESTALE)
 *      until vmfs_umount().
 *
 * Crash order of a grow (X = crash here; what a fresh mount finds):
 *
 *   lock volume EX, re-read header
 *   write new FB cluster headers past the old end, new backup header, flush
 *      X  old size: the new blocks are beyond the header; fsck clean
 *   journal: descriptor + primary header + last FB cluster header, flush,
 *            commit record, flush
 *      X  replay writes both images (and the backup copy again): new size
 *   in place: primary header, last FB cluster header, flush; log retired
 *      X  new size (replay, if the log was not retired yet, is idempotent)
 *
 * Tune journals the primary and the backup header together (same size),
 * so a crash leaves both old or, after replay, both new.
 */
#include "fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"

int fs_vh_refresh(struct vmfs *fs)
{
	char why[256];
	int rc = vmfs_vh_refresh(fs->bd, &fs->vh, why, sizeof(why));

	if (rc == -EUCLEAN)
		fs_seterr(fs, "%s", why);
	return rc;
}

/* The header of a volume of `size` bytes grown from fs->vh: validated by a
 * decode of its encoding against the device. */
static int grow_plan(struct vmfs *fs, uint64_t size, struct vmfs_vh *nv, uint8_t *buf)
{
	const struct vmfs_vh *vh = &fs->vh;
	uint64_t nb, max = (uint64_t)VMFS_CL_MAX * VMFS_FB_PER_CL;
	struct vmfs_vh cur = *vh;
	char why[256];
	int rc;

	cur.xt = NULL;
	*nv = cur;
	nv->vol_size = size;
	nv->backup_off = size - VMFS_UNIT;
	nb = (nv->backup_off - vh->data_off) / vh->block_size;
	nb = nb > max ? max : nb;
	nv->nblocks = nb < vh->nblocks ? vh->nblocks : nb;
	nv->data_len = nv->nblocks * vh->block_size;
	if ((nv->nblocks + VMFS_FB_PER_CL - 1) / VMFS_FB_PER_CL > vh->res[VMFS_RT_FB].ncl)
		nv->incompat |= VMFS_INCOMPAT_FBX;
	vmfs_vh_encode(nv, buf);
	rc = vmfs_vh_decode(buf, fs->bd->size, nv, why, sizeof(why));
	if (!rc)
		rc = vmfs_vh_same_volume(&cur, nv, why, sizeof(why));
	if (rc)
		fs_seterr(fs, "grown header: %s", why);
	return rc;
}

/* Writes the headers of FB clusters [from, to) of the grown layout nv
 * (their lock unit zero, then the header; block 0 of each is the cluster's
 * own), directly: they lie beyond the old end (V3). */
static int write_new_fb_clusters(struct vmfs *fs, const struct vmfs_vh *nv, uint32_t from,
				 uint32_t to)
{
	uint8_t *buf = bdev_alloc(VMFS_CL_HDR);
	struct vmfs_ch *ch = calloc(1, sizeof(*ch));
	int rc = buf && ch ? lm_write_guard(fs->lm) : -ENOMEM;

	for (uint32_t c = from; c < to && !rc; c++) {
		uint64_t off = vmfs_cl_off(nv, VMFS_RT_FB, c);

		memset(ch, 0, sizeof(*ch));
		ch->type = VMFS_RT_FB;
		ch->index = c;
		ch->nres = vmfs_cl_nres(nv, VMFS_RT_FB, c);
		ch->nfree = ch->nres - 1;
		vmfs_bit_set(ch->bitmap, 0, 1);
		ch->cl_off = off;
		ch->res_off = off;
		ch->res_size = nv->block_size;
		memset(buf, 0, VMFS_UNIT);
		vmfs_ch_encode(ch, buf + VMFS_UNIT);
		rc = lm_guarded_write(fs->lm, buf, off, VMFS_CL_HDR);
		fs_cache_drop(fs, off, VMFS_CL_HDR);
	}
	free(ch);
	bdev_free(buf);
	return rc;
}

/* The last FB cluster known before the grow covers its new blocks: its
 * header, journaled under its lock. */
static int extend_last_fb_cluster(struct tx *tx, const struct vmfs_vh *nv)
{
	struct vmfs *fs = tx->fs;
	uint32_t last = vmfs_ncl(&fs->vh, VMFS_RT_FB) - 1, was, now;
	uint64_t own = vmfs_cl_off(&fs->vh, VMFS_RT_FB, last);
	struct vmfs_ch *ch;
	uint8_t *blk;
	char why[256];
	int rc;

	was = vmfs_cl_nres(&fs->vh, VMFS_RT_FB, last);
	now = vmfs_cl_nres(nv, VMFS_RT_FB, last);
	if (was == now)
		return 0;
	rc = fs_lock_cl_wait(tx, own);
	if (rc)
		return rc;
	ch = malloc(sizeof(*ch));
	rc = ch ? tx_write_own(tx, own + VMFS_UNIT, 0, own, &blk) : -ENOMEM;
	if (!rc && vmfs_ch_decode(blk, &fs->vh, ch, why, sizeof(why))) {
		fs_seterr(fs, "FB cluster %" PRIu32 " header: %s", last, why);
		rc = -EUCLEAN;
	}
	if (!rc) {
		ch->nfree += now - was;
		ch->nres = now;
		vmfs_ch_encode(ch, blk);
	}
	free(ch);
	return rc;
}

/* Journals the primary header (and with backup, the backup copy) = nv. */
static int put_header(struct tx *tx, const struct vmfs_vh *nv, int backup)
{
	uint8_t *p;
	int rc = tx_write(tx, VMFS_VH_OFF, 1, &p);

	if (!rc)
		vmfs_vh_encode(nv, p);
	if (!rc && backup)
		rc = tx_write(tx, nv->backup_off, 1, &p);
	if (!rc && backup)
		vmfs_vh_encode(nv, p);
	return rc;
}

/* Locks the volume for tx (V2) and takes in what other hosts did. */
static int lock_volume(struct tx *tx)
{
	struct vmfs *fs = tx->fs;
	int rc = fs_lock_cl_wait(tx, fs->vh.vol_lock_off);

	if (rc == -EBUSY)
		fs_seterr(fs, "the volume lock is busy (another host grows or tunes the volume)");
	if (!rc) {
		rc = fs_vh_refresh(fs);
		rc = rc > 0 ? 0 : rc;
	}
	return rc;
}

static int grow_locked(struct vmfs *fs, uint64_t size, struct vmfs_grow_info *gi)
{
	struct vmfs_vh *nv = malloc(sizeof(*nv));
	uint8_t *buf = bdev_alloc(VMFS_UNIT);
	uint32_t from, to;
	struct tx tx;
	int rc = nv && buf ? bdev_refresh_size(fs->bd) : -ENOMEM;

	tx_begin(fs, &tx);
	if (!rc)
		rc = lock_volume(&tx);
	if (!rc) {
		gi->old_size = fs->vh.vol_size;
		gi->old_blocks = gi->new_blocks = fs->vh.nblocks;
		gi->new_size = fs->vh.vol_size;
		size = size ? size : fs->bd->size;
		size -= size % VMFS_UNIT;
		if (size > fs->bd->size) {
			fs_seterr(fs, "%" PRIu64 " bytes is beyond the device (%" PRIu64 " bytes)",
				  size, fs->bd->size);
			rc = -ENOSPC;
		} else if (size < fs->vh.vol_size) {
			fs_seterr(fs,
				  "the volume is %" PRIu64 " bytes: it cannot shrink to %" PRIu64,
				  fs->vh.vol_size, size);
			rc = -EINVAL;
		} else if (size == fs->vh.vol_size) {
			tx_abort(&tx);
			goto out; /* nothing to do */
		}
	}
	if (!rc)
		rc = grow_plan(fs, size, nv, buf);
	if (!rc)
		rc = extend_last_fb_cluster(&tx, nv);
	from = vmfs_ncl(&fs->vh, VMFS_RT_FB);
	to = rc ? from : vmfs_ncl(nv, VMFS_RT_FB);
	if (!rc)
		rc = write_new_fb_clusters(fs, nv, from, to);
	if (!rc) { /* the backup copy first, beyond the old end (V3) */
		vmfs_vh_encode(nv, buf);
		rc = lm_guarded_write(fs->lm, buf, nv->backup_off, VMFS_UNIT);
	}
	if (!rc)
		rc = bdev_flush(fs->bd);
	if (!rc)
		rc = put_header(&tx, nv, 0);
	if (rc) {
		tx_abort(&tx);
		goto out;
	}
	rc = tx_commit(&tx);
	if (!rc) {
		char why[256];

		rc = vmfs_vh_adopt(&fs->vh, nv, why, sizeof(why));
		rc = rc > 0 ? 0 : rc;
		gi->new_size = nv->vol_size;
		gi->new_blocks = nv->nblocks;
		gi->new_clusters = to - from;
	}
out:
	free(nv);
	bdev_free(buf);
	return rc;
}

int vmfs_grow(struct vmfs *fs, uint64_t size, struct vmfs_grow_info *info)
{
	struct vmfs_grow_info gi = {0};
	int rc = fs_enter(fs, 1);

	if (rc)
		return rc;
	rc = grow_locked(fs, size, &gi);
	if (info)
		*info = gi;
	return fs_leave(fs, rc);
}

/* -EBUSY naming every other host with a slot in use (after taking over
 * those already judged dead). */
static int others_mounted(struct vmfs *fs)
{
	struct lm_geom g;
	char names[200] = "";
	size_t len = 0;
	unsigned n = 0;

	lm_recover(fs->lm, 0);
	lm_geom_get(fs->lm, &g);
	for (uint32_t s = 0; s < fs->vh.max_hosts; s++) {
		struct lm_slot_info si;

		if (s == fs->slot || lm_slot_read(fs->bd, &g, s, &si, NULL, 0) || si.never_used ||
		    si.state == LM_SLOT_FREE)
			continue;
		if (len < sizeof(names) - 1)
			len += (size_t)snprintf(names + len, sizeof(names) - len,
						"%s%s (slot %" PRIu32 ")", n ? ", " : "",
						si.hostname, s);
		n++;
	}
	if (!n)
		return 0;
	fs_seterr(fs,
		  "the heartbeat timing cannot change while other hosts are mounted: %s; "
		  "unmount them first",
		  names);
	return -EBUSY;
}

static int tune_locked(struct vmfs *fs, const struct vmfs_tune_opts *o, int timing)
{
	struct vmfs_vh *nv = malloc(sizeof(*nv));
	uint8_t *buf = bdev_alloc(VMFS_UNIT);
	char why[256];
	struct tx tx;
	int rc = nv && buf ? 0 : -ENOMEM;

	tx_begin(fs, &tx);
	if (!rc)
		rc = lock_volume(&tx);
	if (!rc && timing)
		rc = others_mounted(fs);
	if (!rc) {
		*nv = fs->vh;
		nv->xt = NULL;
		if (o->label)
			snprintf(nv->label, sizeof(nv->label), "%s", o->label);
		if (o->hb_interval_ms)
			nv->hb_interval_ms = o->hb_interval_ms;
		if (o->hb_timeout_ms)
			nv->hb_timeout_ms = o->hb_timeout_ms;
		vmfs_vh_encode(nv, buf);
		rc = vmfs_vh_decode(buf, fs->bd->size, nv, why, sizeof(why));
		if (rc)
			fs_seterr(fs, "tuned header: %s", why);
	}
	if (!rc)
		rc = put_header(&tx, nv, 1);
	if (rc) {
		tx_abort(&tx);
	} else {
		rc = tx_commit(&tx);
		if (!rc && vmfs_vh_adopt(&fs->vh, nv, why, sizeof(why)) < 0)
			rc = -EUCLEAN;
	}
	free(nv);
	bdev_free(buf);
	return rc;
}

/* V5: the tuning host leaves the heartbeat region; the mount is spent. */
static int leave_after_timing(struct vmfs *fs)
{
	int rc;

	fs_journal_stop(fs);
	rc = lm_leave(fs->lm);
	fs->left = 1;
	return rc;
}

int vmfs_tune(struct vmfs *fs, const struct vmfs_tune_opts *o)
{
	int timing = o->hb_interval_ms || o->hb_timeout_ms, rc;

	if (o->label && strlen(o->label) >= VMFS_LABEL_LEN)
		return -ENAMETOOLONG;
	rc = fs_enter(fs, 1);
	if (rc)
		return rc;
	if (timing && (fs->files || fs->inodes)) {
		fs_seterr(fs, "close every file before changing the heartbeat timing");
		return fs_leave(fs, -EBUSY);
	}
	rc = tune_locked(fs, o, timing);
	if (!rc && timing)
		rc = leave_after_timing(fs);
	return fs_leave(fs, rc);
}
