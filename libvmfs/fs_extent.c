/*
 * fs_extent.c - public additions for the hypervisor glue (vmfs.h, last
 * block): the extent map of an open file (NBD block status, qemu-img map),
 * discard that passes freed blocks down to the device, eagerly zeroed
 * preallocation, and the holders of a file's lock by host name.
 *
 * Design note
 * -----------
 * This file only reads the core's structures (fs_int.h) and calls its
 * exported helpers (fs_enter/fs_leave/fs_resolve/fs_fallocate); it never
 * changes metadata itself. Invariants:
 *
 *  1. The extent walk runs under the mount's mutex and reads the FD inode and
 *     pointer blocks straight from the device. While this host has the file
 *     open it holds the FD lock (EX, SH or MW); the mapping of a file can
 *     only change under the lock alone, i.e. by this host, whose changes are
 *     serialised by the same mutex: the map read is consistent. On a
 *     read-only mount no lock is held and the map may be stale (documented).
 *  2. Nothing read is trusted: the inode and every pointer block go through
 *     the format decoders (magic, CRC, every address checked against the
 *     layout), then self/owner/level and the type of every address used are
 *     checked here (-EUCLEAN naming the block otherwise).
 *  3. Discard passes a block's device range down (bdev_discard) only while
 *     the block is still linked to this file and this host holds the file's
 *     lock exclusively, and before the transaction that frees it: after the
 *     free, another host may allocate and write the block at once, so a
 *     later discard could destroy its data. A crash between the two leaves
 *     an allocated block with discarded content, which is what a trim
 *     promises anyway (the range's content is undefined until rewritten;
 *     file blocks are never exposed to another file before being written in
 *     full).
 *  4. Lock holders are read from the lock record and filtered by their
 *     heartbeat slot: a holder entry is reported only when its slot is LIVE
 *     with the same generation (an entry whose slot was freed or reused is
 *     stale and grants nothing).
 */
#include "fs_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"

#define PBN	     ((uint64_t)VMFS_PB_NADDR)
#define SINGLE_FIRST ((uint64_t)VMFS_NDIRECT)
#define DOUBLE_FIRST (SINGLE_FIRST + VMFS_NSINGLE * PBN)
#define LBN_END	     (DOUBLE_FIRST + VMFS_NDOUBLE * PBN * PBN)

/* Compile-time check that the lock constants of vmfs.h follow lockmgr.h. */
_Static_assert(VMFS_LOCK_EX == LM_MODE_EX && VMFS_LOCK_SH == LM_MODE_SH &&
		   VMFS_LOCK_MW == LM_MODE_MW && VMFS_LOCK_FREE == LM_MODE_FREE,
	       "lock modes");
_Static_assert(VMFS_LOCK_MAX_HOLDERS == LM_MAX_HOLDERS, "holder count");

/* ---- the walk ------------------------------------------------------------------ */

struct walk {
	struct vmfs *fs;
	struct vmfs_fd fd;
	uint64_t unit;
	uint8_t *blk;
	uint64_t a1, a2; /* cached PBs: a1 top level (single or double), a2 below a double */
	struct vmfs_pb pb1, pb2;
};

static int walk_read_pb(struct walk *w, uint64_t a, uint32_t level, struct vmfs_pb *pb)
{
	char why[256] = "", as[48];
	int rc = vmfs_addr_check(&w->fs->vh, a, VMFS_RT_PB, why, sizeof(why));

	if (!rc)
		rc = fs_meta_read(w->fs, w->blk, vmfs_addr_off(&w->fs->vh, a), VMFS_UNIT);
	if (!rc)
		rc = vmfs_pb_decode(w->blk, &w->fs->vh, pb, why, sizeof(why));
	if (!rc && (pb->self != a || pb->owner != w->fd.self || pb->level != level)) {
		snprintf(why, sizeof(why), "pointer block: self/owner/level do not match its use");
		rc = -EUCLEAN;
	}
	if (rc == -EUCLEAN) {
		vmfs_addr_str(a, as, sizeof(as));
		fs_seterr(w->fs, "%s: %s", as, why);
	}
	return rc;
}

static int walk_pb(struct walk *w, int top, uint64_t a, uint32_t level, struct vmfs_pb **out)
{
	uint64_t *cached = top ? &w->a1 : &w->a2;
	struct vmfs_pb *pb = top ? &w->pb1 : &w->pb2;
	int rc = 0;

	if (*cached != a) {
		*cached = 0;
		rc = walk_read_pb(w, a, level, pb);
		if (!rc)
			*cached = a;
	}
	*out = pb;
	return rc;
}

/* Address (with flags) of logical block lbn, and *run >= 1: how many blocks
 * from lbn on are known to share a missing pointer block (holes). */
static int walk_get(struct walk *w, uint64_t lbn, uint64_t *addr, uint64_t *run)
{
	struct vmfs_pb *pb;
	uint64_t l;
	int rc;

	*addr = 0;
	*run = 1;
	if (lbn < SINGLE_FIRST) {
		*addr = w->fd.u.addr[lbn];
		return 0;
	}
	if (w->fd.amode != VMFS_AM_FB || lbn >= LBN_END) {
		*run = UINT64_MAX / 2;
		return 0;
	}
	if (lbn < DOUBLE_FIRST) {
		l = lbn - SINGLE_FIRST;
		uint64_t top = w->fd.u.addr[VMFS_NDIRECT + l / PBN];
		if (!top) {
			*run = PBN - l % PBN;
			return 0;
		}
		rc = walk_pb(w, 1, top, 1, &pb);
		if (!rc)
			*addr = pb->addr[l % PBN];
		return rc;
	}
	l = lbn - DOUBLE_FIRST;
	uint64_t top = w->fd.u.addr[VMFS_NDIRECT + VMFS_NSINGLE + l / (PBN * PBN)];
	if (!top) {
		*run = PBN * PBN - l % (PBN * PBN);
		return 0;
	}
	rc = walk_pb(w, 1, top, 2, &pb);
	if (rc)
		return rc;
	uint64_t mid = pb->addr[l / PBN % PBN];
	if (!mid) {
		*run = PBN - l % PBN;
		return 0;
	}
	rc = walk_pb(w, 0, mid, 1, &pb);
	if (!rc)
		*addr = pb->addr[l % PBN];
	return rc;
}

/* Checks a data address found in the map (type of the file's mode). */
static int walk_check(struct walk *w, uint64_t a)
{
	unsigned want = w->fd.amode == VMFS_AM_SB ? VMFS_RT_SB : VMFS_RT_FB;
	char why[256] = "", as[48];

	if (!a || (vmfs_addr_type(a) == want &&
		   !vmfs_addr_check(&w->fs->vh, a & ~VMFS_ADDR_FLAGS, want, why, sizeof(why)) &&
		   (!(a & VMFS_ADDR_TBZ) || want == VMFS_RT_FB)))
		return 0;
	vmfs_addr_str(a, as, sizeof(as));
	fs_seterr(w->fs, "FD %llu: block address %s: %s", (unsigned long long)w->fd.self, as,
		  why[0] ? why : "wrong type for the file's addressing mode");
	return -EUCLEAN;
}

/* Loads the inode of an open file (under the mutex). */
static int walk_begin(struct walk *w, struct vmfs_file *f)
{
	char why[256] = "", as[48];
	int rc;

	memset(w, 0, sizeof(*w));
	w->fs = f->fs;
	w->blk = bdev_alloc(VMFS_UNIT);
	if (!w->blk)
		return -ENOMEM;
	rc = fs_meta_read(w->fs, w->blk, vmfs_addr_off(&w->fs->vh, f->ino->addr) + VMFS_UNIT,
			  VMFS_UNIT);
	if (!rc)
		rc = vmfs_fd_decode(w->blk, &w->fs->vh, &w->fd, why, sizeof(why));
	if (!rc && w->fd.self != f->ino->addr) {
		snprintf(why, sizeof(why), "FD inode: self address does not match its place");
		rc = -EUCLEAN;
	}
	if (rc == -EUCLEAN) {
		vmfs_addr_str(f->ino->addr, as, sizeof(as));
		fs_seterr(w->fs, "%s: %s", as, why);
	}
	w->unit = w->fd.amode == VMFS_AM_SB ? VMFS_SB_SIZE : w->fs->vh.block_size;
	return rc;
}

static void walk_end(struct walk *w)
{
	bdev_free(w->blk);
}

/* ---- vmfs_file_extents ------------------------------------------------------------ */

static int ext_add(struct vmfs_extent *ext, unsigned max, unsigned *n, uint64_t off, uint64_t len,
		   uint32_t flags)
{
	if (*n && ext[*n - 1].flags == flags && ext[*n - 1].off + ext[*n - 1].len == off) {
		ext[*n - 1].len += len;
		return 0;
	}
	if (*n == max)
		return 1;
	ext[*n] = (struct vmfs_extent){.off = off, .len = len, .flags = flags};
	(*n)++;
	return 0;
}

static uint32_t addr_flags(uint64_t a)
{
	if (!a)
		return VMFS_EXT_HOLE | VMFS_EXT_ZERO;
	return (a & VMFS_ADDR_TBZ) ? VMFS_EXT_ZERO : 0;
}

static int extents_locked(struct walk *w, uint64_t off, uint64_t len, struct vmfs_extent *ext,
			  unsigned max)
{
	uint64_t end = off + len < off ? UINT64_MAX : off + len, pos = off;
	unsigned n = 0;
	int rc = 0;

	if (end > w->fd.size)
		end = w->fd.size;
	if (w->fd.type != VMFS_FT_REG)
		return -EISDIR;
	if (w->fd.amode == VMFS_AM_INLINE) {
		if (pos < end)
			ext_add(ext, max, &n, pos, end - pos, 0);
		return (int)n;
	}
	while (pos < end && !rc) {
		uint64_t lbn = pos / w->unit, a, run, stop;

		rc = walk_get(w, lbn, &a, &run);
		if (!rc)
			rc = walk_check(w, a);
		if (rc)
			break;
		stop = run > (UINT64_MAX - pos) / w->unit ? end : (lbn + run) * w->unit;
		if (stop > end)
			stop = end;
		if (ext_add(ext, max, &n, pos, stop - pos, addr_flags(a)))
			break;
		pos = stop;
	}
	return rc ? rc : (int)n;
}

int vmfs_file_extents(struct vmfs_file *f, uint64_t off, uint64_t len, struct vmfs_extent *ext,
		      unsigned max)
{
	struct walk w;
	int rc;

	if (!f || !ext || !max || max > INT32_MAX)
		return -EINVAL;
	rc = fs_enter(f->fs, 0);
	if (rc)
		return rc;
	rc = walk_begin(&w, f);
	if (!rc)
		rc = extents_locked(&w, off, len, ext, max);
	walk_end(&w);
	return fs_leave(f->fs, rc);
}

/* ---- vmfs_discard ---------------------------------------------------------------- */

#define DISCARD_CHUNK 4096u /* blocks per round: discard, then free */

/* Passes down the device ranges of the allocated blocks [lb, le). */
static int discard_blocks(struct walk *w, uint64_t lb, uint64_t le)
{
	struct vmfs *fs = w->fs;
	uint64_t run_off = 0, run_len = 0;
	int rc = 0;

	for (uint64_t lbn = lb; lbn < le && !rc;) {
		uint64_t a, run;

		rc = walk_get(w, lbn, &a, &run);
		if (!rc)
			rc = walk_check(w, a);
		if (rc)
			break;
		if (a) {
			uint64_t d = vmfs_addr_off(&fs->vh, a & ~VMFS_ADDR_FLAGS);

			if (run_len && run_off + run_len == d) {
				run_len += w->unit;
			} else {
				if (run_len)
					rc = bdev_discard(fs->bd, run_off, run_len);
				run_off = d;
				run_len = w->unit;
			}
		}
		lbn = run > le - lbn ? le : lbn + run;
	}
	if (!rc && run_len)
		rc = bdev_discard(fs->bd, run_off, run_len);
	return rc;
}

static int discard_locked(struct vmfs_file *f, uint64_t off, uint64_t len)
{
	struct vmfs *fs = f->fs;
	uint64_t end = off + len, pos = off;
	struct walk w;
	int rc;

	if (!f->wr)
		return -EBADF;
	if (f->ino->mode != LM_MODE_EX)
		return -EBUSY;
	if (!len)
		return -EINVAL;
	if (end < off)
		return -EFBIG;
	rc = walk_begin(&w, f);
	while (!rc && pos < end) {
		uint64_t u = w.unit, step = (uint64_t)DISCARD_CHUNK * u;
		uint64_t next = end - pos > step ? (pos / u + DISCARD_CHUNK) * u : end;
		uint64_t lb = (pos + u - 1) / u, le = next / u;

		if (w.fd.amode == VMFS_AM_FB && lb < le && (fs->bd->caps & BDEV_CAP_DISCARD)) {
			rc = lm_write_guard(fs->lm);
			if (!rc)
				rc = discard_blocks(&w, lb, le);
		}
		if (!rc)
			rc = fs_fallocate(fs, f->ino->addr,
					  VMFS_FALLOC_PUNCH_HOLE | VMFS_FALLOC_KEEP_SIZE, pos,
					  next - pos);
		pos = next;
		if (!rc && pos < end) { /* the punch changed the map: reload it */
			walk_end(&w);
			rc = walk_begin(&w, f);
		}
	}
	walk_end(&w);
	return rc;
}

int vmfs_discard(struct vmfs_file *f, uint64_t off, uint64_t len)
{
	int rc;

	if (!f)
		return -EINVAL;
	rc = fs_enter(f->fs, 1);
	if (rc)
		return rc;
	return fs_leave(f->fs, discard_locked(f, off, len));
}

/* ---- vmfs_fallocate_eager ------------------------------------------------------------ */

int vmfs_fallocate_eager(struct vmfs_file *f, uint64_t off, uint64_t len)
{
	int rc;

	if (!f)
		return -EINVAL;
	rc = fs_enter(f->fs, 1);
	if (rc)
		return rc;
	if (!f->wr)
		rc = -EBADF;
	else if (!len)
		rc = -EINVAL;
	else
		rc = fs_fallocate(f->fs, f->ino->addr, FS_FALLOC_EAGER, off, len);
	return fs_leave(f->fs, rc);
}

/* ---- vmfs_lock_query ------------------------------------------------------------------ */

static int holder_fill(struct vmfs *fs, const struct lm_geom *g, const struct lm_holder *h,
		       struct vmfs_lock_holder *out, int *keep)
{
	struct lm_slot_info si;
	char why[160] = "";
	int rc = lm_slot_read(fs->bd, g, h->slot, &si, why, sizeof(why));

	*keep = 0;
	if (rc == -EUCLEAN) {
		pthread_mutex_lock(&fs->mu);
		fs_seterr(fs, "heartbeat slot %u: %s", h->slot, why);
		pthread_mutex_unlock(&fs->mu);
		return rc;
	}
	if (rc)
		return rc;
	if (si.state != LM_SLOT_LIVE || si.gen != h->gen)
		return 0; /* stale entry: its host left or was taken over */
	memset(out, 0, sizeof(*out));
	out->slot = h->slot;
	out->slot_gen = h->gen;
	out->self = !fs->ro && h->slot == fs->slot && h->gen == fs->gen;
	memcpy(out->hostname, si.hostname, strnlen(si.hostname, sizeof(out->hostname) - 1));
	memcpy(out->uuid, si.uuid, sizeof(out->uuid));
	*keep = 1;
	return 0;
}

int vmfs_lock_query(struct vmfs *fs, const char *path, struct vmfs_lockinfo *out)
{
	struct lm_geom g;
	struct lm_lock_info *li;
	uint64_t addr = 0;
	char why[160] = "";
	int rc;

	if (!fs || !path || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	rc = fs_enter(fs, 0);
	if (rc)
		return rc;
	rc = fs_leave(fs, fs_resolve(fs, path, &addr));
	if (rc)
		return rc;
	li = malloc(sizeof(*li));
	if (!li)
		return -ENOMEM;
	g = (struct lm_geom){.hb_off = fs->vh.hb_off,
			     .nslots = fs->vh.max_hosts,
			     .hb_interval_ms = fs->vh.hb_interval_ms,
			     .hb_timeout_ms = fs->vh.hb_timeout_ms};
	out->lock_off = vmfs_addr_off(&fs->vh, addr);
	rc = lm_lock_read(fs->bd, out->lock_off, fs->vh.max_hosts, li, why, sizeof(why));
	if (rc == -EUCLEAN) {
		pthread_mutex_lock(&fs->mu);
		fs_seterr(fs, "lock record of %s: %s", path, why);
		pthread_mutex_unlock(&fs->mu);
	}
	if (!rc && li->mode != LM_MODE_FREE) {
		unsigned n = li->nholders < LM_MAX_HOLDERS ? li->nholders : LM_MAX_HOLDERS;

		out->gen = li->gen;
		for (unsigned i = 0; i < n && !rc; i++) {
			int keep;

			rc = holder_fill(fs, &g, &li->holders[i], &out->holders[out->nholders],
					 &keep);
			out->nholders += (unsigned)keep;
		}
		out->mode = out->nholders ? (int)li->mode : VMFS_LOCK_FREE;
	}
	free(li);
	return rc;
}
