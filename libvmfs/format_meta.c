/*
 * format_meta.c - encode/decode of the journal header, journal descriptor and
 * commit, cluster header + bitmap, FD inode block, pointer block and
 * directory block. Every decoder checks magic, version, length and CRC
 * first, then every field, then (when given the volume header) every offset
 * and address against the layout; reserved bytes must be zero, so an encode
 * of a decoded record reproduces it byte for byte.
 */
#include "format_ondisk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "le.h"

/* ---- journal header ------------------------------------------------------ */

uint64_t vmfs_journal_off(const struct vmfs_vh *vh, uint32_t slot)
{
	return vh->journal_off + (uint64_t)slot * vh->journal_size;
}

void vmfs_jh_encode(const struct vmfs_jh *jh, void *out)
{
	uint8_t *b = out;

	memset(b, 0, VMFS_UNIT);
	le32_put(b + JH_SLOT, jh->slot);
	le32_put(b + JH_FLAGS, jh->flags);
	le64_put(b + JH_JOURNAL_OFF, jh->journal_off);
	le64_put(b + JH_JOURNAL_LEN, jh->journal_len);
	le64_put(b + JH_HEAD, jh->head);
	le64_put(b + JH_HEAD_TXID, jh->head_txid);
	le64_put(b + JH_SEQ, jh->seq);
	memcpy(b + JH_OWNER_UUID, jh->owner_uuid, 16);
	le32_put(b + JH_OWNER_GEN, jh->owner_gen);
	vmfs__rec_seal(b, VMFS_JH_MAGIC, VMFS_JH_SIZE);
}

int vmfs_jh_decode(const void *buf, const struct vmfs_vh *vh, uint32_t slot, struct vmfs_jh *jh,
		   char *why, size_t whylen)
{
	const uint8_t *b = buf;
	const char *w = "journal header";
	int rc = vmfs__rec_check(b, VMFS_JH_MAGIC, VMFS_JH_SIZE, w, why, whylen);

	if (rc)
		return rc;
	if (!vmfs__zero(b, JH_RESERVED, VMFS_JH_SIZE))
		return vmfs__bad(why, whylen, "%s: reserved bytes are not zero", w);
	jh->slot = le32_get(b + JH_SLOT);
	jh->flags = le32_get(b + JH_FLAGS);
	jh->journal_off = le64_get(b + JH_JOURNAL_OFF);
	jh->journal_len = le64_get(b + JH_JOURNAL_LEN);
	jh->head = le64_get(b + JH_HEAD);
	jh->head_txid = le64_get(b + JH_HEAD_TXID);
	jh->seq = le64_get(b + JH_SEQ);
	memcpy(jh->owner_uuid, b + JH_OWNER_UUID, 16);
	jh->owner_gen = le32_get(b + JH_OWNER_GEN);
	if (jh->flags & ~VMFS_JHF_KNOWN)
		return vmfs__bad(why, whylen, "%s: unknown flags 0x%" PRIx32, w, jh->flags);
	if (jh->journal_len % VMFS_UNIT || jh->journal_len < VMFS_JOURNAL_MIN ||
	    jh->journal_len > VMFS_JOURNAL_MAX)
		return vmfs__bad(why, whylen, "%s: bad journal length %" PRIu64, w,
				 jh->journal_len);
	if (jh->head >= vmfs_journal_nlog(jh->journal_len))
		return vmfs__bad(why, whylen, "%s: head %" PRIu64 " beyond the log", w, jh->head);
	if (jh->head_txid == 0)
		return vmfs__bad(why, whylen, "%s: head txid is 0", w);
	if (slot != UINT32_MAX && jh->slot != slot)
		return vmfs__bad(why, whylen,
				 "%s: slot %" PRIu32 " in the header of journal %" PRIu32, w,
				 jh->slot, slot);
	if (vh && (jh->slot >= vh->max_hosts || jh->journal_len != vh->journal_size ||
		   jh->journal_off != vmfs_journal_off(vh, jh->slot)))
		return vmfs__bad(why, whylen, "%s: slot/offset/length do not match the volume", w);
	return 0;
}

int vmfs_jh_pick(const void *copy0, const void *copy1, const struct vmfs_vh *vh, uint32_t slot,
		 struct vmfs_jh *jh, unsigned *which, char *why, size_t whylen)
{
	const void *copy[VMFS_JH_COPIES] = {copy0, copy1};
	char w[VMFS_JH_COPIES][160];
	struct vmfs_jh h[VMFS_JH_COPIES];
	int ok[VMFS_JH_COPIES];
	unsigned k;

	for (k = 0; k < VMFS_JH_COPIES; k++) {
		ok[k] = !vmfs_jh_decode(copy[k], vh, slot, &h[k], w[k], sizeof(w[k]));
		if (ok[k] && h[k].seq % VMFS_JH_COPIES != k) {
			snprintf(w[k], sizeof(w[k]), "journal header: seq %" PRIu64 " in copy %u",
				 h[k].seq, k);
			ok[k] = 0;
		}
	}
	if (!ok[0] && !ok[1])
		return vmfs__bad(why, whylen,
				 "both journal header copies are bad: copy 0: %s; copy 1: %s", w[0],
				 w[1]);
	k = !ok[0] || (ok[1] && h[1].seq > h[0].seq);
	*jh = h[k];
	if (which)
		*which = k;
	return 0;
}

/* ---- journal descriptor and commit ------------------------------------------ */

void vmfs_jd_encode(const struct vmfs_jd *jd, void *out)
{
	uint8_t *b = out;
	uint32_t n = jd->nblocks <= VMFS_JD_MAX ? jd->nblocks : VMFS_JD_MAX;

	memset(b, 0, VMFS_JD_SIZE);
	le64_put(b + JD_TXID, jd->txid);
	le32_put(b + JD_NBLOCKS, jd->nblocks);
	le32_put(b + JD_SLOT, jd->slot);
	le64_put(b + JD_JOURNAL_OFF, jd->journal_off);
	for (uint32_t i = 0; i < n; i++)
		le64_put(b + JD_TARGET + 8 * i, jd->target[i]);
	vmfs__rec_seal(b, VMFS_JD_MAGIC, VMFS_JD_SIZE);
}

/* A journaled block's home: metadata outside heartbeat, lock and journal
 * regions (those are never journaled), i.e. the resource clusters, or a
 * 4 KiB block inside the data area (a directory block of an FB-mode
 * directory: replay checks that its image is one, fs_journal.c). */
static int jd_target_ok(const struct vmfs_vh *vh, uint64_t t)
{
	if (t % VMFS_UNIT)
		return 0;
	if (t == VMFS_VH_OFF || t == vh->backup_off)
		return 1; /* the volume header (grow, tune: replay checks the image) */
	if (t >= vh->res[VMFS_RT_FD].off && t < vh->data_off)
		return 1;
	return t >= vh->data_off && t - vh->data_off < vh->data_len &&
	       t + VMFS_UNIT <= vh->backup_off;
}

int vmfs_jd_decode(const void *buf, const struct vmfs_vh *vh, struct vmfs_jd *jd, char *why,
		   size_t whylen)
{
	const uint8_t *b = buf;
	const char *w = "journal descriptor";
	int rc = vmfs__rec_check(b, VMFS_JD_MAGIC, VMFS_JD_SIZE, w, why, whylen);

	if (rc)
		return rc;
	if (!vmfs__zero(b, JD_RESERVED, JD_TARGET))
		return vmfs__bad(why, whylen, "%s: reserved bytes are not zero", w);
	jd->txid = le64_get(b + JD_TXID);
	jd->nblocks = le32_get(b + JD_NBLOCKS);
	jd->slot = le32_get(b + JD_SLOT);
	jd->journal_off = le64_get(b + JD_JOURNAL_OFF);
	if (jd->txid == 0)
		return vmfs__bad(why, whylen, "%s: txid is 0", w);
	if (jd->nblocks < 1 || jd->nblocks > VMFS_JD_MAX)
		return vmfs__bad(why, whylen, "%s: block count %" PRIu32 " not in 1..%u", w,
				 jd->nblocks, VMFS_JD_MAX);
	if (!vmfs__zero(b, JD_TARGET + 8 * jd->nblocks, VMFS_JD_SIZE))
		return vmfs__bad(why, whylen, "%s: unused targets are not zero", w);
	memset(jd->target, 0, sizeof(jd->target));
	for (uint32_t i = 0; i < jd->nblocks; i++)
		jd->target[i] = le64_get(b + JD_TARGET + 8 * i);
	if (!vh)
		return 0;
	if (jd->slot >= vh->max_hosts || jd->journal_off != vmfs_journal_off(vh, jd->slot))
		return vmfs__bad(why, whylen, "%s: slot/journal offset do not match the volume", w);
	if ((uint64_t)jd->nblocks + 2 > vmfs_journal_nlog(vh->journal_size))
		return vmfs__bad(why, whylen, "%s: %" PRIu32 " blocks do not fit the journal", w,
				 jd->nblocks);
	for (uint32_t i = 0; i < jd->nblocks; i++)
		if (!jd_target_ok(vh, jd->target[i]))
			return vmfs__bad(why, whylen,
					 "%s: target %" PRIu32 " (0x%" PRIx64
					 ") is not a journaled metadata block",
					 w, i, jd->target[i]);
	return 0;
}

void vmfs_jc_encode(const struct vmfs_jc *jc, void *out)
{
	uint8_t *b = out;

	memset(b, 0, VMFS_UNIT);
	le64_put(b + JC_TXID, jc->txid);
	le32_put(b + JC_NBLOCKS, jc->nblocks);
	le32_put(b + JC_DATA_CRC, jc->data_crc);
	le64_put(b + JC_COMMIT_NS, jc->commit_ns);
	vmfs__rec_seal(b, VMFS_JC_MAGIC, VMFS_JC_SIZE);
}

int vmfs_jc_decode(const void *buf, struct vmfs_jc *jc, char *why, size_t whylen)
{
	const uint8_t *b = buf;
	const char *w = "journal commit";
	int rc = vmfs__rec_check(b, VMFS_JC_MAGIC, VMFS_JC_SIZE, w, why, whylen);

	if (rc)
		return rc;
	if (!vmfs__zero(b, JC_RESERVED, VMFS_JC_SIZE))
		return vmfs__bad(why, whylen, "%s: reserved bytes are not zero", w);
	jc->txid = le64_get(b + JC_TXID);
	jc->nblocks = le32_get(b + JC_NBLOCKS);
	jc->data_crc = le32_get(b + JC_DATA_CRC);
	jc->commit_ns = le64_get(b + JC_COMMIT_NS);
	if (jc->txid == 0)
		return vmfs__bad(why, whylen, "%s: txid is 0", w);
	if (jc->nblocks < 1 || jc->nblocks > VMFS_JD_MAX)
		return vmfs__bad(why, whylen, "%s: block count %" PRIu32 " not in 1..%u", w,
				 jc->nblocks, VMFS_JD_MAX);
	return 0;
}

/* ---- cluster header + bitmap ------------------------------------------------ */

void vmfs_ch_encode(const struct vmfs_ch *ch, void *out)
{
	uint8_t *b = out;

	memset(b, 0, VMFS_CH_SIZE);
	le32_put(b + CH_TYPE, ch->type);
	le32_put(b + CH_INDEX, ch->index);
	le32_put(b + CH_NRES, ch->nres);
	le32_put(b + CH_NFREE, ch->nfree);
	le64_put(b + CH_CL_OFF, ch->cl_off);
	le64_put(b + CH_RES_OFF, ch->res_off);
	le32_put(b + CH_RES_SIZE, ch->res_size);
	memcpy(b + CH_BITMAP, ch->bitmap, VMFS_BITMAP_BYTES);
	vmfs__rec_seal(b, VMFS_CH_MAGIC, VMFS_CH_SIZE);
}

static int ch_check_layout(const struct vmfs_ch *ch, const struct vmfs_vh *vh, char *why,
			   size_t whylen)
{
	const char *w = "cluster header";
	const struct vmfs_res_region *r = &vh->res[ch->type];
	uint64_t res_off;

	if (ch->index >= vmfs_ncl(vh, ch->type) && ch->index < vmfs_ncl_max(vh, ch->type))
		vmfs_xtab_refresh(vh, ch->type);
	if (ch->index >= vmfs_ncl(vh, ch->type))
		return vmfs__bad(why, whylen, "%s: index %" PRIu32 " beyond %" PRIu32 " clusters",
				 w, ch->index, vmfs_ncl(vh, ch->type));
	if (ch->nres != vmfs_cl_nres(vh, ch->type, ch->index))
		return vmfs__bad(why, whylen, "%s: %" PRIu32 " resources, layout says %" PRIu32, w,
				 ch->nres, vmfs_cl_nres(vh, ch->type, ch->index));
	if (ch->cl_off != vmfs_cl_off(vh, ch->type, ch->index))
		return vmfs__bad(why, whylen, "%s: cluster offset 0x%" PRIx64 " is not its own", w,
				 ch->cl_off);
	res_off = vmfs_addr_off(vh, vmfs_addr_make(ch->type, ch->index, 0));
	if (ch->res_off != res_off || ch->res_size != r->res_size)
		return vmfs__bad(why, whylen, "%s: resource offset/size do not match the layout",
				 w);
	return 0;
}

int vmfs_ch_decode(const void *buf, const struct vmfs_vh *vh, struct vmfs_ch *ch, char *why,
		   size_t whylen)
{
	const uint8_t *b = buf;
	const char *w = "cluster header";
	uint32_t used = 0;
	int rc = vmfs__rec_check(b, VMFS_CH_MAGIC, VMFS_CH_SIZE, w, why, whylen);

	if (rc)
		return rc;
	if (!vmfs__zero(b, CH_RESERVED, CH_BITMAP))
		return vmfs__bad(why, whylen, "%s: reserved bytes are not zero", w);
	ch->type = le32_get(b + CH_TYPE);
	ch->index = le32_get(b + CH_INDEX);
	ch->nres = le32_get(b + CH_NRES);
	ch->nfree = le32_get(b + CH_NFREE);
	ch->cl_off = le64_get(b + CH_CL_OFF);
	ch->res_off = le64_get(b + CH_RES_OFF);
	ch->res_size = le32_get(b + CH_RES_SIZE);
	memcpy(ch->bitmap, b + CH_BITMAP, VMFS_BITMAP_BYTES);
	if (ch->type < VMFS_RT_FB || ch->type > VMFS_RT_MAX)
		return vmfs__bad(why, whylen, "%s: bad type %" PRIu32, w, ch->type);
	if (ch->nres < 1 || ch->nres > VMFS_BITMAP_BYTES * 8)
		return vmfs__bad(why, whylen, "%s: bad resource count %" PRIu32, w, ch->nres);
	for (uint32_t i = 0; i < VMFS_BITMAP_BYTES * 8; i++) {
		if (!vmfs_bit_get(ch->bitmap, i))
			continue;
		if (i >= ch->nres)
			return vmfs__bad(why, whylen,
					 "%s: bitmap bit %" PRIu32 " set beyond %" PRIu32
					 " resources",
					 w, i, ch->nres);
		used++;
	}
	if (ch->nfree != ch->nres - used)
		return vmfs__bad(why, whylen,
				 "%s: free count %" PRIu32 " but bitmap has %" PRIu32 " free", w,
				 ch->nfree, ch->nres - used);
	return vh ? ch_check_layout(ch, vh, why, whylen) : 0;
}

/* ---- FD inode block ------------------------------------------------------------ */

uint64_t vmfs_fd_max_size(uint32_t bs)
{
	uint64_t n = VMFS_PB_NADDR;

	return ((uint64_t)VMFS_NDIRECT + VMFS_NSINGLE * n + VMFS_NDOUBLE * n * n) * bs;
}

void vmfs_fd_encode(const struct vmfs_fd *fd, void *out)
{
	uint8_t *b = out;

	memset(b, 0, VMFS_FD_INODE_SIZE);
	le64_put(b + FD_SELF, fd->self);
	le32_put(b + FD_TYPE, fd->type);
	le32_put(b + FD_MODE, fd->mode);
	le32_put(b + FD_UID, fd->uid);
	le32_put(b + FD_GID, fd->gid);
	le64_put(b + FD_SIZE, fd->size);
	le64_put(b + FD_ATIME, fd->atime_ns);
	le64_put(b + FD_MTIME, fd->mtime_ns);
	le64_put(b + FD_CTIME, fd->ctime_ns);
	le64_put(b + FD_BTIME, fd->btime_ns);
	le32_put(b + FD_NLINK, fd->nlink);
	le32_put(b + FD_FLAGS, fd->flags);
	le64_put(b + FD_GEN, fd->generation);
	le32_put(b + FD_AMODE, fd->amode);
	le64_put(b + FD_PARENT, fd->parent);
	le64_put(b + FD_NALLOC, fd->nalloc);
	le64_put(b + FD_XATTR, fd->xattr);
	le32_put(b + FD_RDEV_MAJOR, fd->rdev_major);
	le32_put(b + FD_RDEV_MINOR, fd->rdev_minor);
	memcpy(b + FD_IXA, fd->ixa, fd->ixa_used <= VMFS_IXA_SIZE ? fd->ixa_used : VMFS_IXA_SIZE);
	if (fd->amode == VMFS_AM_INLINE)
		memcpy(b + FD_AREA, fd->u.data, VMFS_INLINE_MAX);
	else
		for (unsigned i = 0; i < VMFS_NADDR; i++)
			le64_put(b + FD_AREA + 8 * i, fd->u.addr[i]);
	vmfs__rec_seal(b, VMFS_FD_MAGIC, VMFS_FD_INODE_SIZE);
}

static int fd_check_addrs(const struct vmfs_fd *fd, const struct vmfs_vh *vh, char *why,
			  size_t whylen)
{
	char r[160];

	for (unsigned i = 0; i < VMFS_NADDR; i++) {
		uint64_t a = fd->u.addr[i];
		unsigned want = fd->amode == VMFS_AM_SB ? VMFS_RT_SB
				: i < VMFS_NDIRECT	? VMFS_RT_FB
							: VMFS_RT_PB;

		if (!a)
			continue;
		if (fd->amode == VMFS_AM_SB && i >= VMFS_NDIRECT)
			return vmfs__bad(why, whylen, "FD inode: indirect slot %u used in SB mode",
					 i);
		if (vmfs_addr_check(vh, a, want, r, sizeof(r)))
			return vmfs__bad(why, whylen, "FD inode: addr[%u]: %s", i, r);
	}
	return 0;
}

static int fd_check(const struct vmfs_fd *fd, const uint8_t *b, const struct vmfs_vh *vh, char *why,
		    size_t whylen)
{
	const char *w = "FD inode";
	uint64_t max;

	if (fd->type < VMFS_FT_REG || fd->type > VMFS_FT_MAX)
		return vmfs__bad(why, whylen, "%s: bad type %" PRIu32, w, fd->type);
	if (!vmfs_ft_device(fd->type) && (fd->rdev_major || fd->rdev_minor))
		return vmfs__bad(why, whylen,
				 "%s: device number on a non-device (type %" PRIu32 ")", w,
				 fd->type);
	if (vmfs_ft_special(fd->type) && (fd->amode != VMFS_AM_INLINE || fd->size || fd->nalloc))
		return vmfs__bad(why, whylen, "%s: special file (type %" PRIu32 ") with data", w,
				 fd->type);
	if (fd->type == VMFS_FT_LNK && (fd->size > VMFS_SYMLINK_MAX || fd->amode == VMFS_AM_FB))
		return vmfs__bad(why, whylen,
				 "%s: symlink target of %" PRIu64 " bytes (mode %" PRIu32 ")", w,
				 fd->size, fd->amode);
	if (fd->mode & ~07777u)
		return vmfs__bad(why, whylen, "%s: bad mode 0%" PRIo32, w, fd->mode);
	if (fd->flags & ~VMFS_FDF_KNOWN)
		return vmfs__bad(why, whylen, "%s: unknown flags 0x%" PRIx32, w, fd->flags);
	if ((fd->nlink == 0) != !!(fd->flags & VMFS_FDF_UNLINKED))
		return vmfs__bad(why, whylen, "%s: link count %" PRIu32 " with UNLINKED flag %s", w,
				 fd->nlink, (fd->flags & VMFS_FDF_UNLINKED) ? "set" : "clear");
	if (fd->amode > VMFS_AM_FB)
		return vmfs__bad(why, whylen, "%s: bad addressing mode %" PRIu32, w, fd->amode);
	if (fd->type == VMFS_FT_DIR && fd->amode == VMFS_AM_INLINE)
		return vmfs__bad(why, whylen, "%s: inline directory", w);
	if ((fd->type == VMFS_FT_DIR) != (fd->parent != 0))
		return vmfs__bad(why, whylen, "%s: parent set on a non-directory or missing", w);
	if (fd->amode == VMFS_AM_INLINE) {
		if (fd->size > VMFS_INLINE_MAX)
			return vmfs__bad(why, whylen, "%s: inline size %" PRIu64 " > %u", w,
					 fd->size, VMFS_INLINE_MAX);
		if (!vmfs__zero(b, FD_AREA + fd->size, VMFS_FD_INODE_SIZE))
			return vmfs__bad(why, whylen, "%s: bytes past the inline data", w);
		if (fd->nalloc)
			return vmfs__bad(why, whylen, "%s: inline file owns blocks", w);
	}
	max = fd->amode == VMFS_AM_SB ? (uint64_t)VMFS_NDIRECT * VMFS_SB_SIZE
	      : vh		      ? vmfs_fd_max_size(vh->block_size)
				      : vmfs_fd_max_size(VMFS_BS_MAX);
	if (fd->amode != VMFS_AM_INLINE && fd->size > max)
		return vmfs__bad(why, whylen, "%s: size %" PRIu64 " > %" PRIu64, w, fd->size, max);
	if (fd->ixa_used) {
		uint32_t n;

		if (vmfs_xe_check(fd->ixa, fd->ixa_used, &n, "inline xattrs", why, whylen))
			return -EUCLEAN;
		if (fd->xattr)
			return vmfs__bad(why, whylen, "%s: inline xattrs and an xattr block", w);
	}
	if (!vh)
		return 0;
	if (fd->ixa_used && !(vh->incompat & VMFS_INCOMPAT_IXA))
		return vmfs__bad(why, whylen, "%s: inline xattrs on a volume without IXA", w);
	if (vmfs_addr_check(vh, fd->self, VMFS_RT_FD, NULL, 0))
		return vmfs__bad(why, whylen, "%s: bad self address 0x%016" PRIx64, w, fd->self);
	if (fd->parent && vmfs_addr_check(vh, fd->parent, VMFS_RT_FD, NULL, 0))
		return vmfs__bad(why, whylen, "%s: bad parent address 0x%016" PRIx64, w,
				 fd->parent);
	if (fd->xattr && vmfs_addr_check(vh, fd->xattr, VMFS_RT_PB, NULL, 0))
		return vmfs__bad(why, whylen, "%s: bad xattr block address 0x%016" PRIx64, w,
				 fd->xattr);
	return fd->amode == VMFS_AM_INLINE ? 0 : fd_check_addrs(fd, vh, why, whylen);
}

int vmfs_fd_decode(const void *buf, const struct vmfs_vh *vh, struct vmfs_fd *fd, char *why,
		   size_t whylen)
{
	const uint8_t *b = buf;
	int rc = vmfs__rec_check(b, VMFS_FD_MAGIC, VMFS_FD_INODE_SIZE, "FD inode", why, whylen);

	if (rc)
		return rc;
	if (le32_get(b + FD_PAD))
		return vmfs__bad(why, whylen, "FD inode: reserved bytes are not zero");
	fd->self = le64_get(b + FD_SELF);
	fd->type = le32_get(b + FD_TYPE);
	fd->mode = le32_get(b + FD_MODE);
	fd->uid = le32_get(b + FD_UID);
	fd->gid = le32_get(b + FD_GID);
	fd->size = le64_get(b + FD_SIZE);
	fd->atime_ns = le64_get(b + FD_ATIME);
	fd->mtime_ns = le64_get(b + FD_MTIME);
	fd->ctime_ns = le64_get(b + FD_CTIME);
	fd->btime_ns = le64_get(b + FD_BTIME);
	fd->nlink = le32_get(b + FD_NLINK);
	fd->flags = le32_get(b + FD_FLAGS);
	fd->generation = le64_get(b + FD_GEN);
	fd->amode = le32_get(b + FD_AMODE);
	fd->parent = le64_get(b + FD_PARENT);
	fd->nalloc = le64_get(b + FD_NALLOC);
	fd->xattr = le64_get(b + FD_XATTR);
	fd->rdev_major = le32_get(b + FD_RDEV_MAJOR);
	fd->rdev_minor = le32_get(b + FD_RDEV_MINOR);
	memcpy(fd->ixa, b + FD_IXA, VMFS_IXA_SIZE);
	rc = vmfs_ixa_used(fd->ixa);
	fd->ixa_used = rc < 0 ? VMFS_IXA_SIZE : (uint32_t)rc;
	if (rc < 0 || !vmfs__zero(fd->ixa, fd->ixa_used, VMFS_IXA_SIZE))
		return vmfs__bad(why, whylen, "FD inode: inline xattrs: bad entry lengths");
	if (fd->amode == VMFS_AM_INLINE)
		memcpy(fd->u.data, b + FD_AREA, VMFS_INLINE_MAX);
	else
		for (unsigned i = 0; i < VMFS_NADDR; i++)
			fd->u.addr[i] = le64_get(b + FD_AREA + 8 * i);
	return fd_check(fd, b, vh, why, whylen);
}

/* ---- pointer block ------------------------------------------------------------- */

void vmfs_pb_encode(const struct vmfs_pb *pb, void *out)
{
	uint8_t *b = out;

	memset(b, 0, VMFS_PB_BLOCK_SIZE);
	le64_put(b + PB_SELF, pb->self);
	le64_put(b + PB_OWNER, pb->owner);
	le32_put(b + PB_LEVEL, pb->level);
	for (unsigned i = 0; i < VMFS_PB_NADDR; i++)
		le64_put(b + PB_ADDR + 8 * i, pb->addr[i]);
	vmfs__rec_seal(b, VMFS_PB_MAGIC, VMFS_PB_BLOCK_SIZE);
}

int vmfs_pb_decode(const void *buf, const struct vmfs_vh *vh, struct vmfs_pb *pb, char *why,
		   size_t whylen)
{
	const uint8_t *b = buf;
	const char *w = "pointer block";
	char r[160];
	int rc = vmfs__rec_check(b, VMFS_PB_MAGIC, VMFS_PB_BLOCK_SIZE, w, why, whylen);

	if (rc)
		return rc;
	if (!vmfs__zero(b, PB_RESERVED, PB_ADDR))
		return vmfs__bad(why, whylen, "%s: reserved bytes are not zero", w);
	pb->self = le64_get(b + PB_SELF);
	pb->owner = le64_get(b + PB_OWNER);
	pb->level = le32_get(b + PB_LEVEL);
	for (unsigned i = 0; i < VMFS_PB_NADDR; i++)
		pb->addr[i] = le64_get(b + PB_ADDR + 8 * i);
	if (pb->level != 1 && pb->level != 2)
		return vmfs__bad(why, whylen, "%s: bad level %" PRIu32, w, pb->level);
	if (vmfs_addr_check(vh, pb->self, VMFS_RT_PB, r, sizeof(r)))
		return vmfs__bad(why, whylen, "%s: self: %s", w, r);
	if (vmfs_addr_check(vh, pb->owner, VMFS_RT_FD, r, sizeof(r)))
		return vmfs__bad(why, whylen, "%s: owner: %s", w, r);
	for (unsigned i = 0; i < VMFS_PB_NADDR; i++)
		if (pb->addr[i] &&
		    vmfs_addr_check(vh, pb->addr[i], pb->level == 1 ? VMFS_RT_FB : VMFS_RT_PB, r,
				    sizeof(r)))
			return vmfs__bad(why, whylen, "%s: entry %u: %s", w, i, r);
	return 0;
}

/* ---- extended-attribute block ----------------------------------------------------- */

void vmfs_xb_encode(const struct vmfs_xb *xb, void *out)
{
	uint8_t *b = out;

	memset(b, 0, VMFS_XB_SIZE);
	le64_put(b + XB_SELF, xb->self);
	le64_put(b + XB_OWNER, xb->owner);
	le32_put(b + XB_COUNT, xb->count);
	le32_put(b + XB_USED, xb->used);
	memcpy(b + XB_AREA, xb->area, xb->used <= VMFS_XB_AREA ? xb->used : VMFS_XB_AREA);
	vmfs__rec_seal(b, VMFS_XB_MAGIC, VMFS_XB_SIZE);
}

int vmfs_ixa_used(const uint8_t *ixa)
{
	uint32_t o = 0;

	while (o < VMFS_IXA_SIZE && ixa[o])
		o += vmfs_xe_size(ixa[o], le16_get(ixa + o + 2)); /* o <= 112: 8 bytes left */
	return o > VMFS_IXA_SIZE ? -1 : (int)o;
}

int vmfs_xe_check(const uint8_t *area, uint32_t used, uint32_t *count, const char *w, char *why,
		  size_t whylen)
{
	uint32_t o = 0, n = 0;

	while (o < used) {
		const uint8_t *e = area + o;
		uint32_t nl, vl, sz;

		if (used - o < 8)
			return vmfs__bad(why, whylen, "%s: entry at %u truncated", w, o);
		nl = e[0];
		vl = le16_get(e + 2);
		sz = vmfs_xe_size(nl, vl);
		if (nl == 0 || e[1])
			return vmfs__bad(why, whylen, "%s: entry at %u: bad name length/flags", w,
					 o);
		if (used - o >= 4 + nl && memchr(e + 4, 0, nl))
			return vmfs__bad(why, whylen, "%s: entry at %u: NUL in the name", w, o);
		if (vl > VMFS_XATTR_VALUE_MAX || sz > used - o)
			return vmfs__bad(why, whylen, "%s: entry at %u: value length %u", w, o, vl);
		if (!vmfs__zero(e, 4 + nl + vl, sz))
			return vmfs__bad(why, whylen, "%s: entry at %u: padding not zero", w, o);
		for (uint32_t p = 0; p < o;) {
			const uint8_t *f = area + p;

			if (f[0] == nl && !memcmp(f + 4, e + 4, nl))
				return vmfs__bad(why, whylen, "%s: entry at %u: duplicate name", w,
						 o);
			p += vmfs_xe_size(f[0], le16_get(f + 2));
		}
		o += sz;
		n++;
	}
	*count = n;
	return 0;
}

/* Entries: lengths in range, padding zero, names unique, count and used. */
static int xb_check_entries(const struct vmfs_xb *xb, char *why, size_t whylen)
{
	const char *w = "xattr block";
	uint32_t n;

	if (vmfs_xe_check(xb->area, xb->used, &n, w, why, whylen))
		return -EUCLEAN;
	if (n != xb->count)
		return vmfs__bad(why, whylen, "%s: count %u but %u entries", w, xb->count, n);
	return 0;
}

int vmfs_xb_decode(const void *buf, const struct vmfs_vh *vh, struct vmfs_xb *xb, char *why,
		   size_t whylen)
{
	const uint8_t *b = buf;
	const char *w = "xattr block";
	char r[160];
	int rc = vmfs__rec_check(b, VMFS_XB_MAGIC, VMFS_XB_SIZE, w, why, whylen);

	if (rc)
		return rc;
	if (!vmfs__zero(b, XB_RESERVED, XB_AREA))
		return vmfs__bad(why, whylen, "%s: reserved bytes are not zero", w);
	xb->self = le64_get(b + XB_SELF);
	xb->owner = le64_get(b + XB_OWNER);
	xb->count = le32_get(b + XB_COUNT);
	xb->used = le32_get(b + XB_USED);
	if (xb->used > VMFS_XB_AREA || xb->used % 8)
		return vmfs__bad(why, whylen, "%s: bad used %u", w, xb->used);
	memcpy(xb->area, b + XB_AREA, VMFS_XB_AREA);
	if (!vmfs__zero(b, XB_AREA + xb->used, VMFS_XB_SIZE))
		return vmfs__bad(why, whylen, "%s: bytes past used are not zero", w);
	if (vh && vmfs_addr_check(vh, xb->self, VMFS_RT_PB, r, sizeof(r)))
		return vmfs__bad(why, whylen, "%s: self: %s", w, r);
	if (vh && vmfs_addr_check(vh, xb->owner, VMFS_RT_FD, r, sizeof(r)))
		return vmfs__bad(why, whylen, "%s: owner: %s", w, r);
	return xb_check_entries(xb, why, whylen);
}

/* ---- directory block ----------------------------------------------------------- */

void vmfs_db_encode(const struct vmfs_db *db, void *out)
{
	uint8_t *b = out;

	memset(b, 0, VMFS_DB_SIZE);
	le32_put(b + DB_KIND, db->kind);
	le32_put(b + DB_INDEX, db->index);
	le64_put(b + DB_DIR, db->dir);
	le32_put(b + DB_NEXT, db->next);
	le16_put(b + DB_NENTRIES, db->nentries);
	le16_put(b + DB_USED, db->used);
	le32_put(b + DB_BUCKET, db->bucket);
	if (db->kind == VMFS_DB_HEADER) {
		le32_put(b + DBH_LEVEL, db->level);
		le32_put(b + DBH_SPLIT, db->split);
		le32_put(b + DBH_NBUCKETS, db->nbuckets);
		le64_put(b + DBH_TOTAL, db->total);
		le32_put(b + DBH_NOVF, db->novf);
		le32_put(b + DBH_OVF_FREE, db->ovf_free);
	} else {
		memcpy(b + DB_AREA, db->area, VMFS_DB_AREA);
	}
	vmfs__rec_seal(b, VMFS_DB_MAGIC, VMFS_DB_SIZE);
}

static int name_ok(const char *name, size_t len)
{
	if (len < 1 || len > VMFS_NAME_MAX || memchr(name, '/', len) || memchr(name, 0, len))
		return 0;
	return !(len == 1 && name[0] == '.') && !(len == 2 && name[0] == '.' && name[1] == '.');
}

/* Reads the entry at pos (no checks). */
static void de_get(const uint8_t *a, uint32_t pos, struct vmfs_dirent *e)
{
	e->fd = le64_get(a + pos + DE_FD);
	e->hash = le32_get(a + pos + DE_HASH);
	e->type = a[pos + DE_TYPE];
	e->name_len = a[pos + DE_NLEN];
	memcpy(e->name, a + pos + DE_NAME, e->name_len);
	e->name[e->name_len] = '\0';
}

static int db_check_entries(const struct vmfs_db *db, const struct vmfs_vh *vh, char *why,
			    size_t whylen)
{
	const char *w = "directory block";
	struct vmfs_dirent e;
	uint32_t pos = 0, n = 0, len;
	char r[160];

	if (db->used > VMFS_DB_AREA || db->used % 8)
		return vmfs__bad(why, whylen, "%s: bad used size %u", w, db->used);
	while (pos < db->used) {
		if (db->used - pos < VMFS_DIRENT_HDR + 1)
			return vmfs__bad(why, whylen, "%s: entry %" PRIu32 " truncated", w, n);
		len = db->area[pos + DE_NLEN];
		if (pos + vmfs_dirent_reclen(len) > db->used)
			return vmfs__bad(why, whylen, "%s: entry %" PRIu32 " overruns", w, n);
		de_get(db->area, pos, &e);
		if (!name_ok(e.name, len))
			return vmfs__bad(why, whylen, "%s: entry %" PRIu32 ": bad name", w, n);
		if (e.hash != vmfs_name_hash(e.name, len))
			return vmfs__bad(why, whylen, "%s: entry %" PRIu32 ": bad name hash", w, n);
		if (e.type < VMFS_FT_REG || e.type > VMFS_FT_MAX)
			return vmfs__bad(why, whylen, "%s: entry %" PRIu32 ": bad type %u", w, n,
					 e.type);
		if (vmfs_addr_check(vh, e.fd, VMFS_RT_FD, r, sizeof(r)))
			return vmfs__bad(why, whylen, "%s: entry %" PRIu32 ": %s", w, n, r);
		if (!vmfs__zero(db->area, pos + VMFS_DIRENT_HDR + len,
				pos + vmfs_dirent_reclen(len)))
			return vmfs__bad(why, whylen, "%s: entry %" PRIu32 ": padding not zero", w,
					 n);
		pos += vmfs_dirent_reclen(len);
		n++;
	}
	if (n != db->nentries)
		return vmfs__bad(why, whylen, "%s: %" PRIu32 " entries, header says %u", w, n,
				 db->nentries);
	if (!vmfs__zero(db->area, db->used, VMFS_DB_AREA))
		return vmfs__bad(why, whylen, "%s: bytes past the entries", w);
	return 0;
}

static int db_check_header(const struct vmfs_db *db, const uint8_t *b, char *why, size_t whylen)
{
	const char *w = "directory header";

	if (db->index != 0 || db->next || db->nentries || db->used || db->bucket)
		return vmfs__bad(why, whylen, "%s: bad index/next/count fields", w);
	if (le32_get(b + DBH_SEED) || !vmfs__zero(b, DBH_RESERVED, VMFS_DB_SIZE))
		return vmfs__bad(why, whylen, "%s: reserved bytes are not zero", w);
	if (db->level > 30)
		return vmfs__bad(why, whylen, "%s: bad level %" PRIu32, w, db->level);
	if (db->split >= (1u << db->level) || db->nbuckets != (1u << db->level) + db->split)
		return vmfs__bad(why, whylen,
				 "%s: bucket count %" PRIu32 " / split %" PRIu32
				 " != 2^level + split",
				 w, db->nbuckets, db->split);
	if (db->novf > VMFS_DIR_MAXBKT ||
	    (db->ovf_free && (db->ovf_free % 2 || db->ovf_free >= 2 + 2 * (uint64_t)db->novf)))
		return vmfs__bad(why, whylen, "%s: bad overflow count/free list", w);
	return 0;
}

int vmfs_db_decode(const void *buf, const struct vmfs_vh *vh, struct vmfs_db *db, char *why,
		   size_t whylen)
{
	const uint8_t *b = buf;
	char r[160];
	int rc = vmfs__rec_check(b, VMFS_DB_MAGIC, VMFS_DB_SIZE, "directory block", why, whylen);

	if (rc)
		return rc;
	if (!vmfs__zero(b, DB_RESERVED, DB_AREA))
		return vmfs__bad(why, whylen, "directory block: reserved bytes are not zero");
	memset(db, 0, sizeof(*db));
	db->kind = le32_get(b + DB_KIND);
	db->index = le32_get(b + DB_INDEX);
	db->dir = le64_get(b + DB_DIR);
	db->next = le32_get(b + DB_NEXT);
	db->nentries = le16_get(b + DB_NENTRIES);
	db->used = le16_get(b + DB_USED);
	db->bucket = le32_get(b + DB_BUCKET);
	if (vmfs_addr_check(vh, db->dir, VMFS_RT_FD, r, sizeof(r)))
		return vmfs__bad(why, whylen, "directory block: owner: %s", r);
	if (db->kind == VMFS_DB_HEADER) {
		db->level = le32_get(b + DBH_LEVEL);
		db->split = le32_get(b + DBH_SPLIT);
		db->nbuckets = le32_get(b + DBH_NBUCKETS);
		db->total = le64_get(b + DBH_TOTAL);
		db->novf = le32_get(b + DBH_NOVF);
		db->ovf_free = le32_get(b + DBH_OVF_FREE);
		return db_check_header(db, b, why, whylen);
	}
	if (db->kind != VMFS_DB_BUCKET && db->kind != VMFS_DB_OVERFLOW)
		return vmfs__bad(why, whylen, "directory block: bad kind %" PRIu32, db->kind);
	if (db->index == 0 || db->index % 2 != (db->kind == VMFS_DB_BUCKET) ||
	    (db->kind == VMFS_DB_BUCKET && db->bucket != (db->index - 1) / 2))
		return vmfs__bad(why, whylen,
				 "directory block: index %" PRIu32 " does not match kind",
				 db->index);
	if (db->next && (db->next % 2 || db->next / 2 > VMFS_DIR_MAXBKT))
		return vmfs__bad(why, whylen, "directory block: bad next %" PRIu32, db->next);
	memcpy(db->area, b + DB_AREA, VMFS_DB_AREA);
	return db_check_entries(db, vh, why, whylen);
}

int vmfs_db_next(const struct vmfs_db *db, uint32_t *pos, struct vmfs_dirent *e)
{
	if (*pos >= db->used || db->used - *pos < VMFS_DIRENT_HDR + 1)
		return 0;
	de_get(db->area, *pos, e);
	*pos += vmfs_dirent_reclen(e->name_len);
	return 1;
}

int vmfs_db_add(struct vmfs_db *db, uint64_t fd, uint8_t type, const char *name, size_t len)
{
	uint32_t rl;
	uint8_t *p;

	if (!name_ok(name, len))
		return -EINVAL;
	rl = vmfs_dirent_reclen((unsigned)len);
	if (db->used + rl > VMFS_DB_AREA)
		return -ENOSPC;
	p = db->area + db->used;
	memset(p, 0, rl);
	le64_put(p + DE_FD, fd);
	le32_put(p + DE_HASH, vmfs_name_hash(name, len));
	p[DE_TYPE] = type;
	p[DE_NLEN] = (uint8_t)len;
	memcpy(p + DE_NAME, name, len);
	db->used = (uint16_t)(db->used + rl);
	db->nentries++;
	return 0;
}

int vmfs_db_remove(struct vmfs_db *db, const char *name, size_t len)
{
	struct vmfs_dirent e;
	uint32_t pos = 0, at;

	for (at = pos; vmfs_db_next(db, &pos, &e); at = pos) {
		if (e.name_len != len || memcmp(e.name, name, len))
			continue;
		memmove(db->area + at, db->area + pos, db->used - pos);
		db->used = (uint16_t)(db->used - (pos - at));
		memset(db->area + db->used, 0, VMFS_DB_AREA - db->used);
		db->nentries--;
		return 0;
	}
	return -ENOENT;
}
