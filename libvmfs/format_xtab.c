/*
 * format_xtab.c - the extension table: FD, PB and SB clusters that grow
 * into file blocks (INCOMPAT_XRES, docs/FORMAT.md "Resources that grow").
 *
 * On disk: at vh->xtab_off a lock unit, then xtab_nblk table blocks for
 * each of FD, PB, SB. Block i of a type holds entries i * 504 .. i * 504 +
 * count - 1; a block has entries only when every block before it is full.
 * Entry k is the FB address of extension cluster ncl + k of that type.
 *
 * In memory (struct vmfs_xtab, hung on vh->xt): per type, an array sized
 * for the table's capacity and a published count. Invariants:
 *   - entries below the count never change (appended only, never removed
 *     once their transaction committed), so readers index the array
 *     without a lock after an acquire load of the count;
 *   - writers (refresh, push, pop) hold xt->mu;
 *   - push publishes before the growing transaction commits, so that
 *     transaction can allocate from the new cluster; if it is abandoned,
 *     pop takes the entries back before anything else could use them (the
 *     mount serialises its transactions and other hosts only learn of an
 *     entry from the disk, after the commit).
 */
#include "format_ondisk.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"
#include "le.h"

struct vmfs_xtab {
	pthread_mutex_t mu;
	struct bdev *bd;
	uint32_t cap;			     /* entries per type */
	uint64_t *fb[VMFS_RT_MAX + 1];	     /* FD, PB, SB: FB addresses */
	_Atomic uint32_t n[VMFS_RT_MAX + 1]; /* published entries */
};

static int grows(unsigned t)
{
	return t == VMFS_RT_FD || t == VMFS_RT_PB || t == VMFS_RT_SB;
}

/* Position of a type in the table region: FD, PB, SB. */
static unsigned tpos(unsigned t)
{
	return t == VMFS_RT_FD ? 0 : t == VMFS_RT_PB ? 1 : 2;
}

uint64_t vmfs_xtab_len(const struct vmfs_vh *vh)
{
	return VMFS_UNIT + 3ull * vh->xtab_nblk * VMFS_UNIT;
}

uint64_t vmfs_xt_blk_off(const struct vmfs_vh *vh, unsigned type, uint32_t i)
{
	return vh->xtab_off + VMFS_UNIT + ((uint64_t)tpos(type) * vh->xtab_nblk + i) * VMFS_UNIT;
}

uint32_t vmfs_xt_nres(const struct vmfs_vh *vh, unsigned type)
{
	const struct vmfs_res_region *r = &vh->res[type];
	uint32_t n;

	if (!(vh->incompat & VMFS_INCOMPAT_XRES) || !grows(type))
		return 0;
	n = (vh->block_size - VMFS_CL_HDR) / r->res_size;
	return n < r->per_cl ? n : r->per_cl;
}

uint32_t vmfs_ncl(const struct vmfs_vh *vh, unsigned type)
{
	uint32_t n = vh->res[type].ncl;

	if (type == VMFS_RT_FB) /* the region's, and (FBX) those in the data area */
		return (uint32_t)((__atomic_load_n(&vh->nblocks, __ATOMIC_ACQUIRE) +
				   VMFS_FB_PER_CL - 1) /
				  VMFS_FB_PER_CL);

	if (vh->xt && grows(type))
		n += atomic_load_explicit(&vh->xt->n[type], memory_order_acquire);
	return n;
}

uint32_t vmfs_ncl_max(const struct vmfs_vh *vh, unsigned type)
{
	if (type == VMFS_RT_FB)
		return vmfs_ncl(vh, type);
	if (!(vh->incompat & VMFS_INCOMPAT_XRES) || !grows(type))
		return vh->res[type].ncl;
	return vh->res[type].ncl + vh->xtab_nblk * VMFS_XT_PER_BLK;
}

struct bdev *vmfs__xt_bdev(const struct vmfs_vh *vh)
{
	return vh->xt ? vh->xt->bd : NULL;
}

/* Device offset of extension cluster k of a type (k < published). */
uint64_t vmfs__xt_cl_off(const struct vmfs_vh *vh, unsigned type, uint32_t k)
{
	return vmfs_addr_off(vh, vh->xt->fb[type][k]);
}

void vmfs_xt_encode(const struct vmfs_xt_blk *xb, void *buf)
{
	uint8_t *b = buf;

	memset(b, 0, VMFS_UNIT);
	le32_put(b + XT_TYPE, xb->type);
	le32_put(b + XT_INDEX, xb->index);
	le32_put(b + XT_COUNT, xb->count);
	for (uint32_t i = 0; i < xb->count && i < VMFS_XT_PER_BLK; i++)
		le64_put(b + XT_FB + 8 * i, xb->fb[i]);
	vmfs__rec_seal(b, VMFS_XT_MAGIC, VMFS_UNIT);
}

int vmfs_xt_decode(const void *buf, const struct vmfs_vh *vh, unsigned type, uint32_t index,
		   struct vmfs_xt_blk *xb, char *why, size_t whylen)
{
	const uint8_t *b = buf;
	char w[64];
	int rc;

	snprintf(w, sizeof(w), "extension table %s block %" PRIu32, vmfs_rtype_name(type), index);
	rc = vmfs__rec_check(b, VMFS_XT_MAGIC, VMFS_UNIT, w, why, whylen);
	if (rc)
		return rc;
	memset(xb, 0, sizeof(*xb));
	xb->type = le32_get(b + XT_TYPE);
	xb->index = le32_get(b + XT_INDEX);
	xb->count = le32_get(b + XT_COUNT);
	if (xb->type != type || xb->index != index)
		return vmfs__bad(why, whylen, "%s: says it is %s block %" PRIu32, w,
				 vmfs_rtype_name(xb->type), xb->index);
	if (xb->count > VMFS_XT_PER_BLK)
		return vmfs__bad(why, whylen, "%s: count %" PRIu32 " beyond %u", w, xb->count,
				 VMFS_XT_PER_BLK);
	if (!vmfs__zero(b, XT_RESERVED, XT_FB) ||
	    !vmfs__zero(b, XT_FB + 8 * (size_t)xb->count, VMFS_UNIT))
		return vmfs__bad(why, whylen, "%s: reserved bytes are not zero", w);
	for (uint32_t i = 0; i < xb->count; i++) {
		char r[160];

		xb->fb[i] = le64_get(b + XT_FB + 8 * i);
		if (vmfs_addr_check(vh, xb->fb[i], VMFS_RT_FB, r, sizeof(r)) ||
		    (xb->fb[i] & VMFS_ADDR_FLAGS))
			return vmfs__bad(why, whylen, "%s: entry %" PRIu32 ": %s", w, i,
					 (xb->fb[i] & VMFS_ADDR_FLAGS) ? "flags set" : r);
	}
	return 0;
}

/* Reads the table of one type from the disk; publishes entries beyond the
 * count. Caller holds xt->mu. Returns entries added or <0. */
static int read_type(const struct vmfs_vh *vh, unsigned t, char *why, size_t whylen)
{
	struct vmfs_xtab *xt = vh->xt;
	struct vmfs_xt_blk *xb = malloc(sizeof(*xb));
	uint8_t *buf = bdev_alloc(VMFS_UNIT);
	uint32_t have = atomic_load_explicit(&xt->n[t], memory_order_relaxed), total = 0;
	int rc = xb && buf ? 0 : -ENOMEM, more = 1;

	for (uint32_t i = 0; !rc && more && i < vh->xtab_nblk; i++) {
		rc = bdev_read(xt->bd, buf, vmfs_xt_blk_off(vh, t, i), VMFS_UNIT);
		if (!rc)
			rc = vmfs_xt_decode(buf, vh, t, i, xb, why, whylen);
		for (uint32_t k = 0; !rc && k < xb->count; k++) {
			uint32_t e = i * VMFS_XT_PER_BLK + k;

			if (e < have && xt->fb[t][e] != xb->fb[k]) {
				rc = vmfs__bad(why, whylen,
					       "extension table %s entry %" PRIu32
					       " changed under a running mount",
					       vmfs_rtype_name(t), e);
				break;
			}
			for (uint32_t j = 0; j < e && !rc; j++)
				if (xt->fb[t][j] == xb->fb[k])
					rc = vmfs__bad(why, whylen,
						       "extension table %s entries %" PRIu32
						       " and %" PRIu32 " name the same block",
						       vmfs_rtype_name(t), j, e);
			if (!rc && e >= have)
				xt->fb[t][e] = xb->fb[k];
		}
		if (!rc) {
			total = i * VMFS_XT_PER_BLK + xb->count;
			more = xb->count == VMFS_XT_PER_BLK;
		}
	}
	/* the blocks read whole before an error are published too (a block
	 * torn by a crash is rewritten by the journal's replay; until then the
	 * clusters it lists stay unknown) */
	if (total > have) {
		atomic_store_explicit(&xt->n[t], total, memory_order_release);
		if (!rc)
			rc = (int)(total - have);
	}
	free(xb);
	bdev_free(buf);
	return rc;
}

int vmfs_xtab_load(struct bdev *bd, struct vmfs_vh *vh, char *why, size_t whylen)
{
	static const unsigned types[3] = {VMFS_RT_FD, VMFS_RT_PB, VMFS_RT_SB};
	struct vmfs_xtab *xt;
	int rc = 0;

	vmfs_xtab_free(vh);
	if (!(vh->incompat & VMFS_INCOMPAT_XRES))
		return 0;
	xt = calloc(1, sizeof(*xt));
	if (!xt)
		return -ENOMEM;
	pthread_mutex_init(&xt->mu, NULL);
	xt->bd = bd;
	xt->cap = vh->xtab_nblk * VMFS_XT_PER_BLK;
	for (unsigned i = 0; i < 3 && !rc; i++)
		if (!(xt->fb[types[i]] = calloc(xt->cap, sizeof(uint64_t))))
			rc = -ENOMEM;
	if (rc) {
		vh->xt = xt;
		vmfs_xtab_free(vh);
		return rc;
	}
	vh->xt = xt;
	for (unsigned i = 0; i < 3; i++) {
		int r;

		pthread_mutex_lock(&xt->mu);
		r = read_type(vh, types[i], rc < 0 ? NULL : why, rc < 0 ? 0 : whylen);
		pthread_mutex_unlock(&xt->mu);
		if (r < 0 && rc >= 0)
			rc = r;
	}
	return rc < 0 ? rc : 0;
}

void vmfs_xtab_free(struct vmfs_vh *vh)
{
	struct vmfs_xtab *xt = vh->xt;

	if (!xt)
		return;
	for (unsigned t = 0; t <= VMFS_RT_MAX; t++)
		free(xt->fb[t]);
	pthread_mutex_destroy(&xt->mu);
	free(xt);
	vh->xt = NULL;
}

int vmfs_xtab_refresh(const struct vmfs_vh *vh, unsigned type)
{
	char why[256];
	int rc;

	if (!vh->xt || !grows(type))
		return 0;
	pthread_mutex_lock(&vh->xt->mu);
	rc = read_type(vh, type, why, sizeof(why));
	pthread_mutex_unlock(&vh->xt->mu);
	return rc;
}

int64_t vmfs_xtab_push(const struct vmfs_vh *vh, unsigned type, uint64_t fb)
{
	struct vmfs_xtab *xt = vh->xt;
	int64_t k;

	if (!xt || !grows(type))
		return -EINVAL;
	pthread_mutex_lock(&xt->mu);
	k = atomic_load_explicit(&xt->n[type], memory_order_relaxed);
	if (k >= xt->cap) {
		k = -ENOSPC;
	} else {
		xt->fb[type][k] = fb;
		atomic_store_explicit(&xt->n[type], (uint32_t)k + 1, memory_order_release);
		k += vh->res[type].ncl;
	}
	pthread_mutex_unlock(&xt->mu);
	return k;
}

void vmfs_xtab_pop(const struct vmfs_vh *vh, unsigned type, uint32_t n)
{
	struct vmfs_xtab *xt = vh->xt;
	uint32_t have;

	if (!xt || !grows(type))
		return;
	pthread_mutex_lock(&xt->mu);
	have = atomic_load_explicit(&xt->n[type], memory_order_relaxed);
	n = n < have ? n : have;
	for (uint32_t i = have - n; i < have; i++)
		xt->fb[type][i] = 0;
	atomic_store_explicit(&xt->n[type], have - n, memory_order_release);
	pthread_mutex_unlock(&xt->mu);
}

int64_t vmfs_xtab_find(const struct vmfs_vh *vh, unsigned type, uint64_t off)
{
	uint32_t n;

	if (!vh->xt || !grows(type))
		return -1;
	n = atomic_load_explicit(&vh->xt->n[type], memory_order_acquire);
	for (uint32_t k = 0; k < n; k++)
		if (vmfs__xt_cl_off(vh, type, k) == off)
			return (int64_t)vh->res[type].ncl + k;
	return -1;
}

/* Extension cluster containing device offset t, from the table known or
 * from an extension table image among a transaction's blocks. */
static int in_xcluster(const struct vmfs_vh *vh, uint64_t cl, const uint64_t *targets,
		       const uint8_t *imgs, uint32_t n)
{
	static const unsigned types[3] = {VMFS_RT_FD, VMFS_RT_PB, VMFS_RT_SB};
	struct vmfs_xt_blk *xb;
	int found = 0;

	for (int pass = 0; pass < 2 && !found; pass++)
		for (unsigned i = 0; i < 3 && !found; i++) {
			if (pass)
				vmfs_xtab_refresh(vh, types[i]);
			found = vmfs_xtab_find(vh, types[i], cl) >= 0;
		}
	xb = found ? NULL : malloc(sizeof(*xb));
	for (uint32_t i = 0; xb && i < n && !found; i++) {
		uint64_t rel = targets[i] - vh->xtab_off;
		uint32_t b, per = vh->xtab_nblk;

		if (targets[i] < vh->xtab_off + VMFS_UNIT || rel >= vmfs_xtab_len(vh))
			continue;
		b = (uint32_t)(rel / VMFS_UNIT - 1);
		if (vmfs_xt_decode(imgs + (size_t)i * VMFS_UNIT, vh, types[b / per], b % per, xb,
				   NULL, 0))
			continue;
		for (uint32_t k = 0; k < xb->count && !found; k++)
			found = vmfs_addr_off(vh, xb->fb[k]) == cl;
	}
	free(xb);
	return found;
}

int vmfs_xt_image_ok(const struct vmfs_vh *vh, uint32_t i, const uint64_t *targets,
		     const uint8_t *imgs, uint32_t n)
{
	static const uint32_t magics[5] = {VMFS_CH_MAGIC, VMFS_FD_MAGIC, VMFS_PB_MAGIC,
					   VMFS_XB_MAGIC, VMFS_DB_MAGIC};
	const uint8_t *im = imgs + (size_t)i * VMFS_UNIT;
	uint64_t t = targets[i], cl;
	uint32_t magic = le32_get(im + REC_MAGIC);
	int known = 0;

	if (!(vh->incompat & VMFS_INCOMPAT_XRES) || t < vh->data_off)
		return 0;
	for (unsigned k = 0; k < 5; k++)
		known |= magic == magics[k];
	if (!known || vmfs__rec_check(im, magic, VMFS_UNIT, "image", NULL, 0))
		return 0;
	cl = vh->data_off + (t - vh->data_off) / vh->block_size * vh->block_size;
	return t >= cl + VMFS_UNIT && in_xcluster(vh, cl, targets, imgs, n);
}
