/*
 * format_vh.c - the volume header: encode, decode with validation of every
 * field and of the region layout, read with fallback to the backup copy,
 * format probe, and the layout computation used by mkfs.
 *
 * Layout invariants checked by vh_check_layout() (format.h, invariant 4):
 *   VH_OFF + 4K == vol_lock_off < hb_off <= lock_off <= journal_off <=
 *   res[FD].off <= res[PB].off <= res[SB].off <= res[FB].off <= data_off,
 *   each region starting at or after the previous one's end, data_off aligned
 *   to block_size, data end <= backup_off == vol_size - 4K <= device size.
 * All sums are computed with overflow checks: a hostile header cannot wrap.
 */
#include "format_ondisk.h"

#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "bdev.h"
#include "le.h"

static const unsigned res_order[4] = {VMFS_RT_FD, VMFS_RT_PB, VMFS_RT_SB, VMFS_RT_FB};

uint64_t vmfs_backup_off(uint64_t dev_size)
{
	return (dev_size & ~(uint64_t)(VMFS_UNIT - 1)) - VMFS_UNIT;
}

void vmfs_vh_encode(const struct vmfs_vh *vh, void *out)
{
	uint8_t *b = out;

	memset(b, 0, VMFS_UNIT);
	memcpy(b + VH_UUID, vh->uuid, 16);
	memcpy(b + VH_LABEL, vh->label, strnlen(vh->label, VMFS_LABEL_LEN - 1));
	le64_put(b + VH_VOL_SIZE, vh->vol_size);
	le64_put(b + VH_CREATED, vh->created_ns);
	le32_put(b + VH_LSEC, vh->lsec);
	le32_put(b + VH_UNIT, vh->unit);
	le32_put(b + VH_BLOCK_SIZE, vh->block_size);
	le32_put(b + VH_MAX_HOSTS, vh->max_hosts);
	le32_put(b + VH_HB_INTERVAL, vh->hb_interval_ms);
	le32_put(b + VH_HB_TIMEOUT, vh->hb_timeout_ms);
	le32_put(b + VH_NLOCKS, vh->nlocks);
	le32_put(b + VH_COMPAT, vh->compat);
	le32_put(b + VH_INCOMPAT, vh->incompat);
	le32_put(b + VH_RO_COMPAT, vh->ro_compat);
	le64_put(b + VH_JOURNAL_SIZE, vh->journal_size);
	le64_put(b + VH_VOL_LOCK_OFF, vh->vol_lock_off);
	le64_put(b + VH_HB_OFF, vh->hb_off);
	le64_put(b + VH_LOCK_OFF, vh->lock_off);
	le64_put(b + VH_JOURNAL_OFF, vh->journal_off);
	le64_put(b + VH_DATA_OFF, vh->data_off);
	le64_put(b + VH_NBLOCKS, vh->nblocks);
	le64_put(b + VH_BACKUP_OFF, vh->backup_off);
	le64_put(b + VH_ROOT_FD, vh->root_fd);
	le64_put(b + VH_XTAB_OFF, vh->xtab_off);
	le32_put(b + VH_XTAB_NBLK, vh->xtab_nblk);
	for (unsigned i = 0; i < 4; i++) {
		const struct vmfs_res_region *r = &vh->res[res_order[i]];
		uint8_t *e = b + VH_RES + i * RR_SIZE;

		le64_put(e + RR_OFF, r->off);
		le32_put(e + RR_NCL, r->ncl);
		le32_put(e + RR_PER_CL, r->per_cl);
		le32_put(e + RR_RES_SIZE, r->res_size);
		le32_put(e + RR_CL_SIZE, r->cl_size);
		le32_put(e + RR_TYPE, res_order[i]);
	}
	vmfs__rec_seal(b, VMFS_VH_MAGIC, VMFS_VH_SIZE);
}

static int is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static uint32_t res_per_cl(unsigned t)
{
	return t == VMFS_RT_FD	 ? VMFS_FD_PER_CL
	       : t == VMFS_RT_PB ? VMFS_PB_PER_CL
	       : t == VMFS_RT_SB ? VMFS_SB_PER_CL
				 : VMFS_FB_PER_CL;
}

static uint32_t res_size_of(unsigned t, uint32_t bs)
{
	return t == VMFS_RT_FD	 ? VMFS_FD_SIZE
	       : t == VMFS_RT_PB ? VMFS_PB_SIZE
	       : t == VMFS_RT_SB ? VMFS_SB_SIZE
				 : bs;
}

static uint32_t cl_size_of(unsigned t)
{
	return t == VMFS_RT_FB ? VMFS_CL_HDR : VMFS_CL_HDR + res_per_cl(t) * res_size_of(t, 0);
}

static const char *vh_what(const struct vmfs_vh *vh)
{
	return vh->from_backup ? "backup volume header" : "volume header";
}

/* Scalar fields. */
static int vh_check_fields(const struct vmfs_vh *vh, char *why, size_t whylen)
{
	const char *w = vh_what(vh);

	if (vh->unit != VMFS_UNIT)
		return vmfs__bad(why, whylen, "%s: unit %" PRIu32 " is not 4096", w, vh->unit);
	if (!is_pow2(vh->lsec) || vh->lsec < 512 || vh->lsec > VMFS_MAX_LSEC)
		return vmfs__bad(why, whylen, "%s: bad sector size %" PRIu32, w, vh->lsec);
	if (!is_pow2(vh->block_size) || vh->block_size < VMFS_BS_MIN ||
	    vh->block_size > VMFS_BS_MAX)
		return vmfs__bad(why, whylen,
				 "%s: block size %" PRIu32 " is not a power of two in 64K..64M", w,
				 vh->block_size);
	if (vh->max_hosts < 1 || vh->max_hosts > VMFS_HOSTS_MAX)
		return vmfs__bad(why, whylen, "%s: max_hosts %" PRIu32 " not in 1..%u", w,
				 vh->max_hosts, VMFS_HOSTS_MAX);
	if (vh->hb_interval_ms < VMFS_HB_INT_MIN || vh->hb_interval_ms > VMFS_HB_INT_MAX)
		return vmfs__bad(why, whylen, "%s: heartbeat interval %" PRIu32 " ms out of range",
				 w, vh->hb_interval_ms);
	if (vh->hb_timeout_ms < VMFS_HB_TMO_MULT * vh->hb_interval_ms ||
	    vh->hb_timeout_ms > VMFS_HB_TMO_MAX)
		return vmfs__bad(why, whylen,
				 "%s: heartbeat timeout %" PRIu32 " ms not in %u x interval..%u", w,
				 vh->hb_timeout_ms, VMFS_HB_TMO_MULT, VMFS_HB_TMO_MAX);
	if (vh->nlocks < 1 || vh->nlocks > VMFS_NLOCKS_MAX)
		return vmfs__bad(why, whylen, "%s: nlocks %" PRIu32 " not in 1..%u", w, vh->nlocks,
				 VMFS_NLOCKS_MAX);
	if (vh->incompat & ~VMFS_INCOMPAT_KNOWN)
		return vmfs__bad(why, whylen, "%s: unsupported incompat features 0x%" PRIx32, w,
				 vh->incompat & ~VMFS_INCOMPAT_KNOWN);
	if (!(vh->incompat & VMFS_INCOMPAT_JH2))
		return vmfs__bad(why, whylen,
				 "%s: journals with a single header copy (made before 0.2): not "
				 "supported, reformat",
				 w);
	if (vh->journal_size % VMFS_UNIT || vh->journal_size < VMFS_JOURNAL_MIN ||
	    vh->journal_size > VMFS_JOURNAL_MAX)
		return vmfs__bad(why, whylen, "%s: journal size %" PRIu64 " out of range", w,
				 vh->journal_size);
	if (vh->vol_size % VMFS_UNIT || vh->vol_size < VMFS_VH_OFF + 4 * VMFS_UNIT)
		return vmfs__bad(why, whylen, "%s: bad volume size %" PRIu64, w, vh->vol_size);
	return 0;
}

/* Region [off, off+len) must start at or after *end, be aligned, not wrap. */
static int region_next(const struct vmfs_vh *vh, const char *name, const char *prev, uint64_t off,
		       uint64_t len, uint64_t align, uint64_t *end, char *why, size_t whylen)
{
	const char *w = vh_what(vh);

	if (off % align)
		return vmfs__bad(why, whylen, "%s: %s region offset 0x%" PRIx64 " not aligned", w,
				 name, off);
	if (off < *end)
		return vmfs__bad(why, whylen, "%s: %s region overlaps %s region", w, name, prev);
	if (__builtin_add_overflow(off, len, end) || *end > vh->backup_off)
		return vmfs__bad(why, whylen, "%s: %s region ends beyond the volume", w, name);
	return 0;
}

static int res_check(struct vmfs_vh *vh, unsigned t, char *why, size_t whylen)
{
	struct vmfs_res_region *r = &vh->res[t];
	const char *n = vmfs_rtype_name(t);

	if (r->per_cl != res_per_cl(t) || r->res_size != res_size_of(t, vh->block_size) ||
	    r->cl_size != cl_size_of(t))
		return vmfs__bad(why, whylen, "%s: %s region: bad cluster geometry", vh_what(vh),
				 n);
	if (r->ncl < 1 || r->ncl > VMFS_CL_MAX)
		return vmfs__bad(why, whylen, "%s: %s region: bad cluster count %" PRIu32,
				 vh_what(vh), n, r->ncl);
	r->len = (uint64_t)r->ncl * r->cl_size;
	return 0;
}

static int vh_check_layout(struct vmfs_vh *vh, uint64_t dev_size, char *why, size_t whylen)
{
	const char *w = vh_what(vh);
	static const char *const rn[4] = {"FD", "PB", "SB", "FB"};
	uint64_t end = VMFS_VH_OFF + VMFS_UNIT, fbneed;
	const char *prev = "volume header";
	int rc;

	if (dev_size && vh->vol_size > dev_size)
		return vmfs__bad(why, whylen,
				 "%s: volume size %" PRIu64 " exceeds the device (%" PRIu64
				 " bytes)",
				 w, vh->vol_size, dev_size);
	if (vh->backup_off != vh->vol_size - VMFS_UNIT)
		return vmfs__bad(why, whylen,
				 "%s: backup header offset 0x%" PRIx64 " is not at the end", w,
				 vh->backup_off);
	if (vh->vol_lock_off != VMFS_VH_OFF + VMFS_UNIT)
		return vmfs__bad(why, whylen,
				 "%s: volume lock offset 0x%" PRIx64 " is not 0x101000", w,
				 vh->vol_lock_off);
	end = vh->vol_lock_off + VMFS_UNIT;
	vh->hb_len = (uint64_t)vh->max_hosts * VMFS_UNIT;
	vh->lock_len = (uint64_t)vh->nlocks * VMFS_UNIT;
	vh->journal_len = (uint64_t)vh->max_hosts * vh->journal_size;
	rc = region_next(vh, "heartbeat", "volume lock", vh->hb_off, vh->hb_len, VMFS_UNIT, &end,
			 why, whylen);
	if (!rc)
		rc = region_next(vh, "lock", "heartbeat", vh->lock_off, vh->lock_len, VMFS_UNIT,
				 &end, why, whylen);
	if (!rc)
		rc = region_next(vh, "journal", "lock", vh->journal_off, vh->journal_len, VMFS_UNIT,
				 &end, why, whylen);
	prev = "journal";
	for (unsigned i = 0; i < 4 && !rc; i++) {
		rc = res_check(vh, res_order[i], why, whylen);
		if (!rc)
			rc = region_next(vh, rn[i], prev, vh->res[res_order[i]].off,
					 vh->res[res_order[i]].len, VMFS_UNIT, &end, why, whylen);
		prev = rn[i];
	}
	if (rc)
		return rc;
	if (vh->nblocks < 1 || vh->nblocks > vh->vol_size / vh->block_size)
		return vmfs__bad(why, whylen, "%s: bad block count %" PRIu64, w, vh->nblocks);
	fbneed = (vh->nblocks + VMFS_FB_PER_CL - 1) / VMFS_FB_PER_CL;
	if (fbneed > VMFS_CL_MAX)
		return vmfs__bad(why, whylen, "%s: bad block count %" PRIu64, w, vh->nblocks);
	/* FBX: clusters past the region's live in the data area (grown) */
	if ((vh->incompat & VMFS_INCOMPAT_FBX) && fbneed > vh->res[VMFS_RT_FB].ncl) {
		/* nothing more: vmfs_cl_off() places them */
	} else if (fbneed != vh->res[VMFS_RT_FB].ncl)
		return vmfs__bad(why, whylen,
				 "%s: FB region has %" PRIu32 " clusters, %" PRIu64
				 " blocks need %" PRIu64,
				 w, vh->res[VMFS_RT_FB].ncl, vh->nblocks, fbneed);
	prev = "FB";
	if (vh->incompat & VMFS_INCOMPAT_XRES) {
		if (vh->xtab_nblk < 1 || vh->xtab_nblk > VMFS_XT_NBLK_MAX)
			return vmfs__bad(why, whylen, "%s: bad extension table size %" PRIu32, w,
					 vh->xtab_nblk);
		rc = region_next(vh, "extension table", prev, vh->xtab_off, vmfs_xtab_len(vh),
				 VMFS_UNIT, &end, why, whylen);
		if (rc)
			return rc;
		prev = "extension table";
	} else if (vh->xtab_off || vh->xtab_nblk) {
		return vmfs__bad(why, whylen, "%s: extension table without its feature bit", w);
	}
	vh->data_len = vh->nblocks * vh->block_size;
	rc = region_next(vh, "data", prev, vh->data_off, vh->data_len, vh->block_size, &end, why,
			 whylen);
	if (rc)
		return rc;
	if (vmfs_addr_check(vh, vh->root_fd, VMFS_RT_FD, NULL, 0))
		return vmfs__bad(why, whylen, "%s: bad root FD address 0x%016" PRIx64, w,
				 vh->root_fd);
	return 0;
}

static void vh_get(const uint8_t *b, struct vmfs_vh *vh)
{
	vh->major = le16_get(b + REC_MAJOR);
	vh->minor = le16_get(b + REC_MINOR);
	memcpy(vh->uuid, b + VH_UUID, 16);
	memcpy(vh->label, b + VH_LABEL, VMFS_LABEL_LEN);
	vh->vol_size = le64_get(b + VH_VOL_SIZE);
	vh->created_ns = le64_get(b + VH_CREATED);
	vh->lsec = le32_get(b + VH_LSEC);
	vh->unit = le32_get(b + VH_UNIT);
	vh->block_size = le32_get(b + VH_BLOCK_SIZE);
	vh->max_hosts = le32_get(b + VH_MAX_HOSTS);
	vh->hb_interval_ms = le32_get(b + VH_HB_INTERVAL);
	vh->hb_timeout_ms = le32_get(b + VH_HB_TIMEOUT);
	vh->nlocks = le32_get(b + VH_NLOCKS);
	vh->compat = le32_get(b + VH_COMPAT);
	vh->incompat = le32_get(b + VH_INCOMPAT);
	vh->ro_compat = le32_get(b + VH_RO_COMPAT);
	vh->journal_size = le64_get(b + VH_JOURNAL_SIZE);
	vh->vol_lock_off = le64_get(b + VH_VOL_LOCK_OFF);
	vh->hb_off = le64_get(b + VH_HB_OFF);
	vh->lock_off = le64_get(b + VH_LOCK_OFF);
	vh->journal_off = le64_get(b + VH_JOURNAL_OFF);
	vh->data_off = le64_get(b + VH_DATA_OFF);
	vh->nblocks = le64_get(b + VH_NBLOCKS);
	vh->backup_off = le64_get(b + VH_BACKUP_OFF);
	vh->root_fd = le64_get(b + VH_ROOT_FD);
	vh->xtab_off = le64_get(b + VH_XTAB_OFF);
	vh->xtab_nblk = le32_get(b + VH_XTAB_NBLK);
	for (unsigned i = 0; i < 4; i++) {
		struct vmfs_res_region *r = &vh->res[res_order[i]];
		const uint8_t *e = b + VH_RES + i * RR_SIZE;

		r->off = le64_get(e + RR_OFF);
		r->ncl = le32_get(e + RR_NCL);
		r->per_cl = le32_get(e + RR_PER_CL);
		r->res_size = le32_get(e + RR_RES_SIZE);
		r->cl_size = le32_get(e + RR_CL_SIZE);
	}
}

static int vh_decode_as(const void *buf, uint64_t dev_size, int backup, struct vmfs_vh *vh,
			char *why, size_t whylen)
{
	const uint8_t *b = buf;
	const char *w = backup ? "backup volume header" : "volume header";
	int rc;

	memset(vh, 0, sizeof(*vh));
	vh->from_backup = backup;
	rc = vmfs__rec_check(b, VMFS_VH_MAGIC, VMFS_VH_SIZE, w, why, whylen);
	if (rc)
		return rc;
	if (!memchr(b + VH_LABEL, 0, VMFS_LABEL_LEN))
		return vmfs__bad(why, whylen, "%s: label is not NUL-terminated", w);
	if (!vmfs__zero(b, VH_LABEL + strlen((const char *)b + VH_LABEL),
			VH_LABEL + VMFS_LABEL_LEN))
		return vmfs__bad(why, whylen, "%s: label padding is not zero", w);
	if (!vmfs__zero(b, VH_XTAB_PAD, VMFS_VH_SIZE))
		return vmfs__bad(why, whylen, "%s: reserved bytes are not zero", w);
	for (unsigned i = 0; i < 4; i++) {
		const uint8_t *e = b + VH_RES + i * RR_SIZE;

		if (le32_get(e + RR_TYPE) != res_order[i] || le32_get(e + RR_PAD))
			return vmfs__bad(why, whylen, "%s: region table entry %u: bad type", w, i);
	}
	vh_get(b, vh);
	rc = vh_check_fields(vh, why, whylen);
	if (!rc)
		rc = vh_check_layout(vh, dev_size, why, whylen);
	return rc;
}

int vmfs_vh_decode(const void *buf, uint64_t dev_size, struct vmfs_vh *vh, char *why, size_t whylen)
{
	return vh_decode_as(buf, dev_size, 0, vh, why, whylen);
}

static int read_block(struct bdev *bd, uint64_t off, void *buf)
{
	if (off < VMFS_VH_OFF || off > bd->size || bd->size - off < VMFS_UNIT)
		return -ERANGE;
	return bdev_read(bd, buf, off, VMFS_UNIT);
}

int vmfs_vh_read(struct bdev *bd, struct vmfs_vh *vh, char *why, size_t whylen)
{
	char pwhy[256], bwhy[256];
	uint8_t *buf;
	uint64_t boff;
	int rc;

	if (bd->lsec > VMFS_MAX_LSEC || VMFS_UNIT % bd->lsec)
		return vmfs__bad(why, whylen, "unsupported logical sector size %" PRIu32, bd->lsec);
	if (bd->size < VMFS_VH_OFF + VMFS_UNIT)
		return vmfs__bad(why, whylen,
				 "volume header: device too small (%" PRIu64 " bytes) to hold one",
				 bd->size);
	buf = bdev_alloc(VMFS_UNIT);
	if (!buf)
		return -ENOMEM;
	rc = read_block(bd, VMFS_VH_OFF, buf);
	if (rc == 0)
		rc = vh_decode_as(buf, bd->size, 0, vh, pwhy, sizeof(pwhy));
	if (rc != -EUCLEAN)
		goto out;
	boff = vmfs_backup_off(bd->size);
	rc = read_block(bd, boff, buf);
	if (rc == -ERANGE) {
		rc = vmfs__bad(bwhy, sizeof(bwhy), "backup volume header: device too small");
	} else if (rc == 0) {
		rc = vh_decode_as(buf, bd->size, 1, vh, bwhy, sizeof(bwhy));
		if (rc == 0 && vh->backup_off != boff)
			rc = vmfs__bad(bwhy, sizeof(bwhy), "backup volume header: not at the end");
	}
	if (rc == 0)
		snprintf(why, whylen, "%s", pwhy);
	else if (rc == -EUCLEAN)
		snprintf(why, whylen, "%s; %s", pwhy, bwhy);
out:
	bdev_free(buf);
	return rc;
}

/* ---- a header that changed under a mount (grow, tune) -------------------- */

static pthread_mutex_t adopt_mu = PTHREAD_MUTEX_INITIALIZER;

int vmfs_vh_same_volume(const struct vmfs_vh *vh, const struct vmfs_vh *nv, char *why,
			size_t whylen)
{
	const char *w = "volume header";

	if (memcmp(vh->uuid, nv->uuid, 16) || vh->created_ns != nv->created_ns)
		return vmfs__bad(why, whylen, "%s: another volume (UUID or creation time)", w);
	if (vh->lsec != nv->lsec || vh->block_size != nv->block_size ||
	    vh->max_hosts != nv->max_hosts || vh->nlocks != nv->nlocks ||
	    vh->journal_size != nv->journal_size || vh->hb_off != nv->hb_off ||
	    vh->lock_off != nv->lock_off || vh->journal_off != nv->journal_off ||
	    vh->data_off != nv->data_off || vh->root_fd != nv->root_fd ||
	    vh->xtab_off != nv->xtab_off || vh->xtab_nblk != nv->xtab_nblk ||
	    vh->compat != nv->compat || vh->ro_compat != nv->ro_compat ||
	    (vh->incompat | VMFS_INCOMPAT_FBX) != (nv->incompat | VMFS_INCOMPAT_FBX))
		return vmfs__bad(why, whylen, "%s: layout changed under the mount", w);
	for (unsigned t = VMFS_RT_FB; t <= VMFS_RT_MAX; t++)
		if (memcmp(&vh->res[t], &nv->res[t], sizeof(vh->res[t])))
			return vmfs__bad(why, whylen, "%s: %s region changed under the mount", w,
					 vmfs_rtype_name(t));
	if (nv->vol_size < vh->vol_size || nv->nblocks < vh->nblocks)
		return vmfs__bad(why, whylen,
				 "%s: volume shrinks from %" PRIu64 " to %" PRIu64
				 " bytes (%" PRIu64 " to %" PRIu64 " blocks): refused",
				 w, vh->vol_size, nv->vol_size, vh->nblocks, nv->nblocks);
	if ((vh->incompat & VMFS_INCOMPAT_FBX) && !(nv->incompat & VMFS_INCOMPAT_FBX))
		return vmfs__bad(why, whylen, "%s: grown-volume feature cleared", w);
	return 0;
}

int vmfs_vh_adopt(struct vmfs_vh *vh, const struct vmfs_vh *nv, char *why, size_t whylen)
{
	int rc, grew;

	pthread_mutex_lock(&adopt_mu);
	rc = vmfs_vh_same_volume(vh, nv, why, whylen);
	grew = !rc && nv->vol_size != vh->vol_size;
	if (!rc) {
		memcpy(vh->label, nv->label, sizeof(vh->label));
		vh->hb_interval_ms = nv->hb_interval_ms;
		vh->hb_timeout_ms = nv->hb_timeout_ms;
		/* what an address check depends on last: blocks, then size */
		__atomic_store_n(&vh->incompat, nv->incompat, __ATOMIC_RELEASE);
		__atomic_store_n(&vh->backup_off, nv->backup_off, __ATOMIC_RELEASE);
		__atomic_store_n(&vh->vol_size, nv->vol_size, __ATOMIC_RELEASE);
		__atomic_store_n(&vh->data_len, nv->data_len, __ATOMIC_RELEASE);
		__atomic_store_n(&vh->nblocks, nv->nblocks, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&adopt_mu);
	return rc ? rc : grew;
}

int vmfs_vh_refresh(struct bdev *bd, struct vmfs_vh *vh, char *why, size_t whylen)
{
	struct vmfs_vh nv;
	uint8_t *buf;
	int rc = bdev_refresh_size(bd);

	if (rc)
		return rc;
	buf = bdev_alloc(VMFS_UNIT);
	if (!buf)
		return -ENOMEM;
	rc = read_block(bd, VMFS_VH_OFF, buf);
	if (!rc && vh_decode_as(buf, bd->size, 0, &nv, NULL, 0) == 0)
		rc = vmfs_vh_adopt(vh, &nv, why, whylen);
	bdev_free(buf);
	return rc;
}

int vmfs_fbx_find(const struct vmfs_vh *vh, uint64_t off, uint32_t *cl)
{
	uint64_t span = (uint64_t)VMFS_FB_PER_CL * vh->block_size, rel, c;

	if (off < vh->data_off || !(vh->incompat & VMFS_INCOMPAT_FBX))
		return 0;
	rel = off - vh->data_off;
	c = rel / span;
	if (rel % span >= VMFS_CL_HDR || c < vh->res[VMFS_RT_FB].ncl ||
	    c >= vmfs_ncl(vh, VMFS_RT_FB))
		return 0;
	*cl = (uint32_t)c;
	return 1;
}

int vmfs_probe_native(struct bdev *bd)
{
	uint64_t offs[2] = {VMFS_VH_OFF, vmfs_backup_off(bd->size)};
	uint8_t *buf;
	int rc = 0;

	if (bd->lsec > VMFS_MAX_LSEC || bd->size < VMFS_VH_OFF + VMFS_UNIT)
		return 0;
	buf = bdev_alloc(VMFS_UNIT);
	if (!buf)
		return -ENOMEM;
	for (int i = 0; i < 2 && rc == 0; i++) {
		rc = read_block(bd, offs[i], buf);
		if (rc == 0 && le32_get(buf + REC_MAGIC) == VMFS_VH_MAGIC &&
		    le32_get(buf + REC_LEN) == VMFS_VH_SIZE)
			rc = 1;
	}
	bdev_free(buf);
	return rc;
}

/* ---- layout for mkfs ---------------------------------------------------- */

static uint64_t clamp64(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static int layout_opts(const struct vmfs_mkfs_opts *o, struct vmfs_vh *vh, char *why, size_t whylen)
{
	const char *label = o->label ? o->label : "";

	if (strlen(label) >= VMFS_LABEL_LEN)
		return snprintf(why, whylen, "label longer than %u bytes", VMFS_LABEL_LEN - 1),
		       -EINVAL;
	snprintf(vh->label, sizeof(vh->label), "%s", label);
	vh->block_size = o->block_size ? o->block_size : VMFS_BS_DEFAULT;
	vh->max_hosts = o->max_hosts ? o->max_hosts : VMFS_HOSTS_DEFAULT;
	vh->journal_size = o->journal_size ? o->journal_size : VMFS_JOURNAL_DEFAULT;
	vh->hb_interval_ms = o->hb_interval_ms ? o->hb_interval_ms : VMFS_HB_INT_DEFAULT;
	vh->hb_timeout_ms = o->hb_timeout_ms ? o->hb_timeout_ms : VMFS_HB_TMO_DEFAULT;
	vh->nlocks = o->nlocks ? o->nlocks : VMFS_NLOCKS_DEFAULT;
	vh->unit = VMFS_UNIT;
	vh->vol_size = VMFS_VH_OFF + 4 * VMFS_UNIT; /* placeholder for the field checks */
	if (vh_check_fields(vh, why, whylen) == 0)
		return 0;
	/* Reword "volume header: x" as an option error. */
	if (why && whylen && !strncmp(why, "volume header: ", 15))
		memmove(why, why + 15, strlen(why + 15) + 1);
	return -EINVAL;
}

/* Places regions for a volume of vh->vol_size; returns the end of the FB
 * region when it does not fit (0 when it does). */
#define VMFS_FD_NMAX (1u << 24) /* mkfs -N limit: 65536 FD clusters (128 GiB) */

static uint64_t layout_place(struct vmfs_vh *vh, uint32_t nfds)
{
	uint64_t end, avail, fbcl;
	uint32_t bs = vh->block_size;

	vh->vol_lock_off = VMFS_VH_OFF + VMFS_UNIT;
	vh->hb_off = vh->vol_lock_off + VMFS_UNIT;
	vh->hb_len = (uint64_t)vh->max_hosts * VMFS_UNIT;
	vh->lock_off = vh->hb_off + vh->hb_len;
	vh->lock_len = (uint64_t)vh->nlocks * VMFS_UNIT;
	vh->journal_off = vh->lock_off + vh->lock_len;
	vh->journal_len = (uint64_t)vh->max_hosts * vh->journal_size;
	end = vh->journal_off + vh->journal_len;
	if (nfds)
		vh->res[VMFS_RT_FD].ncl = (nfds + VMFS_FD_PER_CL - 1) / VMFS_FD_PER_CL;
	else
		vh->res[VMFS_RT_FD].ncl = (uint32_t)clamp64(vh->vol_size >> 28, 1, 1024);
	vh->res[VMFS_RT_SB].ncl = (uint32_t)clamp64(vh->vol_size >> 30, 1, 1024);
	vh->res[VMFS_RT_PB].ncl = (uint32_t)clamp64(vh->vol_size / bs / 32768, 1, 65536);
	fbcl = (vh->vol_size / bs + VMFS_FB_PER_CL - 1) / VMFS_FB_PER_CL;
	vh->res[VMFS_RT_FB].ncl = (uint32_t)clamp64(fbcl, 1, VMFS_CL_MAX);
	for (unsigned i = 0; i < 4; i++) {
		unsigned t = res_order[i];
		struct vmfs_res_region *r = &vh->res[t];

		r->per_cl = res_per_cl(t);
		r->res_size = res_size_of(t, bs);
		r->cl_size = cl_size_of(t);
		r->off = end;
		r->len = (uint64_t)r->ncl * r->cl_size;
		end += r->len;
	}
	/* the extension table: room for every file block of the volume to
	 * become an extension cluster, up to VMFS_XT_NBLK_MAX blocks a type */
	vh->xtab_nblk = (uint32_t)clamp64(
	    (vh->vol_size / bs + VMFS_XT_PER_BLK - 1) / VMFS_XT_PER_BLK, 1, VMFS_XT_NBLK_MAX);
	vh->xtab_off = end;
	end += vmfs_xtab_len(vh);
	vh->backup_off = vh->vol_size - VMFS_UNIT;
	vh->data_off = (end + bs - 1) / bs * bs;
	if (vh->data_off + bs > vh->backup_off)
		return vh->data_off + bs + VMFS_UNIT;
	avail = (vh->backup_off - vh->data_off) / bs;
	if (avail > (uint64_t)vh->res[VMFS_RT_FB].ncl * VMFS_FB_PER_CL)
		avail = (uint64_t)vh->res[VMFS_RT_FB].ncl * VMFS_FB_PER_CL;
	fbcl = (avail + VMFS_FB_PER_CL - 1) / VMFS_FB_PER_CL;
	if (fbcl < vh->res[VMFS_RT_FB].ncl) { /* shrink the FB region to what is used */
		vh->res[VMFS_RT_FB].ncl = (uint32_t)fbcl;
		vh->res[VMFS_RT_FB].len = fbcl * VMFS_CL_HDR;
		end = vh->res[VMFS_RT_FB].off + vh->res[VMFS_RT_FB].len;
		vh->xtab_off = end;
		end += vmfs_xtab_len(vh);
		vh->data_off = (end + bs - 1) / bs * bs;
		avail = (vh->backup_off - vh->data_off) / bs;
		if (avail > fbcl * VMFS_FB_PER_CL)
			avail = fbcl * VMFS_FB_PER_CL;
	}
	vh->nblocks = avail;
	vh->data_len = avail * bs;
	vh->root_fd = vmfs_addr_make(VMFS_RT_FD, 0, 0);
	return 0;
}

int vmfs_layout(uint64_t dev_size, uint32_t lsec, const struct vmfs_mkfs_opts *o,
		struct vmfs_vh *vh, char *why, size_t whylen)
{
	struct timespec ts;
	uint64_t need;
	int rc;

	memset(vh, 0, sizeof(*vh));
	vh->major = VMFS_MAJOR;
	vh->minor = VMFS_MINOR;
	vh->incompat = VMFS_INCOMPAT_JH2 | VMFS_INCOMPAT_XRES | VMFS_INCOMPAT_IXA;
	vh->lsec = lsec;
	rc = layout_opts(o, vh, why, whylen);
	if (rc)
		return rc;
	if (o->nfds > VMFS_FD_NMAX)
		return snprintf(why, whylen, "%" PRIu32 " file descriptors: at most %u", o->nfds,
				VMFS_FD_NMAX),
		       -EINVAL;
	if (lsec < 512 || lsec > VMFS_MAX_LSEC || !is_pow2(lsec))
		return snprintf(why, whylen, "unsupported logical sector size %" PRIu32, lsec),
		       -EINVAL;
	vh->vol_size = dev_size & ~(uint64_t)(VMFS_UNIT - 1);
	if (vh->vol_size < VMFS_VH_OFF + 4 * VMFS_UNIT)
		vh->vol_size = VMFS_VH_OFF + 4 * VMFS_UNIT;
	need = layout_place(vh, o->nfds);
	if (need || vh->vol_size > dev_size) {
		struct vmfs_vh tmp = *vh;

		tmp.vol_size = VMFS_VH_OFF + 4 * VMFS_UNIT;
		need = layout_place(&tmp, o->nfds);
		snprintf(why, whylen,
			 "device too small (%" PRIu64 " bytes): these parameters need at least "
			 "%" PRIu64 " bytes (%" PRIu64 " MiB)",
			 dev_size, need, (need + (1 << 20) - 1) >> 20);
		return -ENOSPC;
	}
	rc = vh_check_layout(vh, dev_size, why, whylen);
	if (rc)
		return -EINVAL;
	if (o->uuid)
		memcpy(vh->uuid, o->uuid, 16);
	else if (getrandom(vh->uuid, 16, 0) != 16)
		return snprintf(why, whylen, "cannot get random bytes for the UUID"), -EIO;
	vh->uuid[6] = (uint8_t)((vh->uuid[6] & 0x0f) | 0x40); /* RFC 4122 version 4 */
	vh->uuid[8] = (uint8_t)((vh->uuid[8] & 0x3f) | 0x80);
	clock_gettime(CLOCK_REALTIME, &ts);
	vh->created_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	return 0;
}
