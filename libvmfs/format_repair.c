/*
 * format_repair.c - the repairs of `vmfsctl fsck -p / -y` (vmfs_check() with
 * VMFS_CHECK_PREEN / VMFS_CHECK_REPAIR). format_check.c finds the problems
 * and decides, through ck_prob(), whether one may be repaired now; the
 * functions here change the device.
 *
 * Design note
 * -----------
 * fsck repairs an unmounted volume: ck_prob() refuses every repair once the
 * heartbeat observation saw a host alive, so nothing here takes file system
 * locks or journals its writes. Repairs write whole encoded records (never
 * a patched byte) and go through the format's encoders, so a repaired
 * record is one the library could have written.
 *
 * Invariants:
 *  1. Host state goes through the lock manager's protocol: a dead host's
 *     journal is replayed by a read-write mount (the library's recovery),
 *     its slot is taken over with lm_takeover_slot() and a lock whose
 *     holders are gone is released by acquiring it (lm_lock_acquire() drops
 *     stale holders and bumps the lock generation). Generations only grow.
 *  2. A unit that does not decode at all is zeroed: "free, never used".
 *  3. Allocation bitmaps are rewritten once per round (rp_bitmaps()) from
 *     the checker's in-memory bitmaps, which repairs changed: a leak clears
 *     a bit, a reference to a free resource sets it, a clone allocates.
 *  4. A repair that drops data (a bad pointer block, a cleared FD, a
 *     directory block that does not decode) is FIX_RISKY: -y only. Files
 *     that lose every name are linked into the root directory as "#C.R"
 *     (cluster C, resource R), like e2fsck's lost+found "#ino".
 *  5. Nothing here knows the journal's header layout beyond
 *     vmfs_jh_encode(): rp_journal_reset() is the one place that writes a
 *     journal (the file system's fs_journal.c owns the format).
 */
#include "format_check_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"
#include "le.h"
#include "lockmgr.h"
#include "vmfs.h"

int rp_write(struct ck *c, const void *buf, uint64_t off, size_t len)
{
	int rc = bdev_write(c->bd, buf, off, len);

	if (rc && !c->err) {
		c->err = rc;
		c->st->err_off = off;
	}
	return rc;
}

int rp_zero_unit(struct ck *c, uint64_t off)
{
	uint8_t *z = bdev_alloc(VMFS_UNIT);
	int rc;

	if (!z)
		return -ENOMEM;
	memset(z, 0, VMFS_UNIT);
	rc = rp_write(c, z, off, VMFS_UNIT);
	bdev_free(z);
	return rc;
}

static int write_block(struct ck *c, uint64_t off, void (*enc)(const void *, void *),
		       const void *rec)
{
	uint8_t *b = bdev_alloc(VMFS_UNIT);
	int rc;

	if (!b)
		return -ENOMEM;
	enc(rec, b);
	rc = rp_write(c, b, off, VMFS_UNIT);
	bdev_free(b);
	return rc;
}

static void enc_fd(const void *r, void *b)
{
	vmfs_fd_encode(r, b);
}
static void enc_db(const void *r, void *b)
{
	vmfs_db_encode(r, b);
}
static void enc_pb(const void *r, void *b)
{
	vmfs_pb_encode(r, b);
}
static void enc_ch(const void *r, void *b)
{
	vmfs_ch_encode(r, b);
}

int rp_fd_store(struct ck *c, const struct vmfs_fd *fd)
{
	return write_block(c, vmfs_addr_off(&c->vh, fd->self) + VMFS_UNIT, enc_fd, fd);
}

int rp_db_store(struct ck *c, uint64_t off, const struct vmfs_db *db)
{
	return write_block(c, off, enc_db, db);
}

/* ---- inodes ------------------------------------------------------------------- */

/* End of the last block an SB- or FB-mode file addresses directly. */
static uint64_t direct_end(const struct vmfs_vh *vh, const uint8_t *raw, uint32_t amode)
{
	uint64_t bs = amode == VMFS_AM_SB ? VMFS_SB_SIZE : vh->block_size;

	for (unsigned i = VMFS_NDIRECT; i-- > 0;)
		if (le64_get(raw + FD_AREA + 8 * i))
			return (uint64_t)(i + 1) * bs;
	return 0;
}

static void note(char *what, size_t len, const char *field)
{
	size_t n = strlen(what);

	snprintf(what + n, len - n, "%s%s", n ? ", " : "salvaged: ", field);
}

/* Special files and symlinks out of their bounds: a device number on a
 * non-device is dropped; a special file with inline bytes or a size is
 * emptied; one that owns blocks, and a symlink too long or in FB mode,
 * becomes a regular file (its blocks stay reachable). */
static void salvage_special(uint8_t *b, uint32_t type, char *what, size_t whatlen)
{
	uint32_t amode = le32_get(b + FD_AMODE);

	if (!vmfs_ft_device(type) && (le32_get(b + FD_RDEV_MAJOR) || le32_get(b + FD_RDEV_MINOR))) {
		le32_put(b + FD_RDEV_MAJOR, 0);
		le32_put(b + FD_RDEV_MINOR, 0);
		note(what, whatlen, "device number");
	}
	if (vmfs_ft_special(type) && amode == VMFS_AM_INLINE && !le64_get(b + FD_NALLOC) &&
	    (le64_get(b + FD_SIZE) || !vmfs__zero(b, FD_AREA, VMFS_FD_INODE_SIZE))) {
		le64_put(b + FD_SIZE, 0);
		memset(b + FD_AREA, 0, VMFS_FD_INODE_SIZE - FD_AREA);
		note(what, whatlen, "size (special file)");
	} else if ((vmfs_ft_special(type) &&
		    (amode != VMFS_AM_INLINE || le64_get(b + FD_NALLOC))) ||
		   (type == VMFS_FT_LNK &&
		    (amode == VMFS_AM_FB || le64_get(b + FD_SIZE) > VMFS_SYMLINK_MAX))) {
		le32_put(b + FD_TYPE, VMFS_FT_REG);
		le32_put(b + FD_RDEV_MAJOR, 0);
		le32_put(b + FD_RDEV_MINOR, 0);
		note(what, whatlen, "type (file: had data)");
	}
}

/* Resets the fields of a damaged inode that can be re-derived, reseals it
 * and keeps it if it then decodes. Only a block that still carries the FD
 * magic is an inode to salvage. */
/* Are the inode's inline attribute bytes usable as they are? */
static int ixa_ok(const struct vmfs_vh *vh, const uint8_t *b)
{
	int used = vmfs_ixa_used(b + FD_IXA);
	uint32_t n;

	return (vh->incompat & VMFS_INCOMPAT_IXA) && !le64_get(b + FD_XATTR) && used >= 0 &&
	       vmfs__zero(b + FD_IXA, (size_t)used, VMFS_IXA_SIZE) &&
	       !vmfs_xe_check(b + FD_IXA, (uint32_t)used, &n, "", NULL, 0);
}

int rp_fd_salvage(struct ck *c, uint64_t a, uint8_t *raw, struct vmfs_fd *fd, char *what,
		  size_t whatlen)
{
	uint8_t *b = bdev_alloc(VMFS_UNIT);
	uint32_t type, amode, flags;
	uint64_t size, max;
	int rc = -EUCLEAN;

	what[0] = '\0';
	if (!b)
		return -ENOMEM;
	if (le32_get(raw + REC_MAGIC) != VMFS_FD_MAGIC)
		goto out;
	memcpy(b, raw, VMFS_UNIT);
	if (le64_get(b + FD_SELF) != a) {
		le64_put(b + FD_SELF, a);
		note(what, whatlen, "self address");
	}
	type = le32_get(b + FD_TYPE);
	if (type < VMFS_FT_REG || type > VMFS_FT_MAX) {
		type = le64_get(b + FD_PARENT) ? VMFS_FT_DIR : VMFS_FT_REG;
		le32_put(b + FD_TYPE, type);
		note(what, whatlen, type == VMFS_FT_DIR ? "type (directory)" : "type (file)");
	}
	salvage_special(b, type, what, whatlen);
	if (le32_get(b + FD_MODE) & ~07777u) {
		le32_put(b + FD_MODE, le32_get(b + FD_MODE) & 07777u);
		note(what, whatlen, "mode");
	}
	flags = le32_get(b + FD_FLAGS);
	if (flags & ~VMFS_FDF_KNOWN) {
		le32_put(b + FD_FLAGS, flags & VMFS_FDF_KNOWN);
		note(what, whatlen, "flags");
	}
	if (le32_get(b + FD_NLINK) == 0 && !(flags & VMFS_FDF_UNLINKED)) {
		le32_put(b + FD_NLINK, 1);
		note(what, whatlen, "link count");
	}
	amode = le32_get(b + FD_AMODE);
	size = le64_get(b + FD_SIZE);
	max = amode == VMFS_AM_INLINE ? VMFS_INLINE_MAX
	      : amode == VMFS_AM_SB   ? (uint64_t)VMFS_NDIRECT * VMFS_SB_SIZE
				      : vmfs_fd_max_size(c->vh.block_size);
	if (amode <= VMFS_AM_FB && size > max) {
		uint64_t end = amode == VMFS_AM_INLINE ? max : direct_end(&c->vh, b, amode);

		le64_put(b + FD_SIZE, end && end < max ? end : max);
		note(what, whatlen, "size (beyond its blocks)");
	}
	if (le32_get(b + FD_PAD)) {
		le32_put(b + FD_PAD, 0);
		note(what, whatlen, "reserved bytes");
	}
	if (!vmfs__zero(b, FD_IXA, FD_AREA) && !ixa_ok(&c->vh, b)) {
		memset(b + FD_IXA, 0, FD_AREA - FD_IXA);
		note(what, whatlen, "inline xattrs (dropped)");
	}
	if (!what[0])
		snprintf(what, whatlen, "CRC rewritten");
	vmfs__rec_seal(b, VMFS_FD_MAGIC, VMFS_FD_INODE_SIZE);
	if (vmfs_fd_decode(b, &c->vh, fd, NULL, 0) || fd->self != a)
		goto out;
	rc = rp_write(c, b, vmfs_addr_off(&c->vh, a) + VMFS_UNIT, VMFS_UNIT);
out:
	bdev_free(b);
	return rc;
}

/* Frees an FD whose inode cannot be used: what it owned becomes unreferenced
 * (freed by the leak pass), entries naming it dangle (removed next round). */
int rp_fd_clear(struct ck *c, uint64_t a)
{
	ck_mark_alloc(c, a, 0);
	return 0;
}

/* ---- directories ---------------------------------------------------------------- */

/* A bucket/overflow block that does not decode: resealed if it then decodes
 * as the expected block (returns 0), else replaced by an empty one (returns
 * 1: its entries' files become orphans, linked into the root by the link
 * pass). */
int rp_db_salvage(struct ck *c, uint64_t off, uint8_t *raw, uint64_t dir, uint32_t index,
		  uint32_t bucket, struct vmfs_db *db)
{
	uint8_t *b = bdev_alloc(VMFS_UNIT);
	int rc;

	if (!b)
		return -ENOMEM;
	memcpy(b, raw, VMFS_UNIT);
	vmfs__rec_seal(b, VMFS_DB_MAGIC, VMFS_DB_SIZE);
	if (le32_get(raw + REC_MAGIC) == VMFS_DB_MAGIC && !vmfs_db_decode(b, &c->vh, db, NULL, 0) &&
	    db->dir == dir && db->index == index && db->bucket == bucket &&
	    db->kind == (index % 2 ? VMFS_DB_BUCKET : VMFS_DB_OVERFLOW)) {
		rc = rp_write(c, b, off, VMFS_UNIT);
		bdev_free(b);
		return rc;
	}
	bdev_free(b);
	memset(db, 0, sizeof(*db));
	db->kind = index % 2 ? VMFS_DB_BUCKET : VMFS_DB_OVERFLOW;
	db->index = index;
	db->dir = dir;
	db->bucket = bucket;
	rc = rp_db_store(c, off, db);
	return rc ? rc : 1;
}

/* Inserts an entry into a directory (the root) whose block map is known:
 * first block of its bucket's chain with room; the header's total + 1. */
static int dir_insert(struct ck *c, uint64_t dir, const uint64_t *map, uint64_t nmap,
		      const char *name, uint64_t fd, uint8_t type)
{
	struct vmfs_db *h = malloc(sizeof(*h)), *db = malloc(sizeof(*db));
	uint8_t *b = bdev_alloc(VMFS_UNIT);
	size_t len = strlen(name);
	uint64_t blk;
	int rc = -ENOMEM, steps = 0;

	if (!h || !db || !b)
		goto out;
	rc = -EUCLEAN;
	if (nmap < 2 || !map[0] || ck_read(c, b, map[0], VMFS_UNIT) ||
	    vmfs_db_decode(b, &c->vh, h, NULL, 0) || h->kind != VMFS_DB_HEADER || h->dir != dir)
		goto out;
	blk = 1 + 2 * (uint64_t)vmfs_dir_bucket(vmfs_name_hash(name, len), h->level, h->split);
	rc = -ENOSPC;
	while (blk && blk < nmap && map[blk] && steps++ <= (int)h->novf + 1) {
		if (ck_read(c, b, map[blk], VMFS_UNIT) || vmfs_db_decode(b, &c->vh, db, NULL, 0)) {
			rc = -EUCLEAN;
			break;
		}
		if (vmfs_db_add(db, fd, type, name, len) == 0) {
			h->total++;
			rc = rp_db_store(c, map[blk], db);
			if (rc == 0)
				rc = rp_db_store(c, map[0], h);
			break;
		}
		blk = db->next;
	}
out:
	free(h);
	free(db);
	bdev_free(b);
	return rc;
}

int rp_orphan_link(struct ck *c, struct vmfs_fd *fd, const char *name)
{
	int rc;

	if (!c->root_map)
		return -ENOENT;
	if (fd->type == VMFS_FT_DIR && fd->parent != c->vh.root_fd) {
		fd->parent = c->vh.root_fd;
		rc = rp_fd_store(c, fd);
		if (rc)
			return rc;
	}
	return dir_insert(c, c->vh.root_fd, c->root_map, c->root_nmap, name, fd->self,
			  (uint8_t)fd->type);
}

/* ---- pointers, doubly referenced blocks ------------------------------------------ */

int rp_set_addr(struct ck *c, uint64_t where, int in_pb, uint32_t slot, uint64_t addr)
{
	uint8_t *b = bdev_alloc(VMFS_UNIT);
	struct vmfs_fd *fd = NULL;
	struct vmfs_pb *pb = NULL;
	int rc = -ENOMEM;

	if (!b || ck_read(c, b, where, VMFS_UNIT))
		goto out;
	rc = -EUCLEAN;
	if (in_pb) {
		pb = malloc(sizeof(*pb));
		if (pb && !vmfs_pb_decode(b, &c->vh, pb, NULL, 0) && slot < VMFS_PB_NADDR) {
			pb->addr[slot] = addr;
			rc = write_block(c, where, enc_pb, pb);
		}
	} else {
		fd = malloc(sizeof(*fd));
		if (fd && !vmfs_fd_decode(b, &c->vh, fd, NULL, 0) && slot < VMFS_NADDR) {
			fd->u.addr[slot] = addr;
			rc = write_block(c, where, enc_fd, fd);
		}
	}
out:
	bdev_free(b);
	free(fd);
	free(pb);
	return rc;
}

/* A free resource of type t (neither allocated nor referenced), or 0. */
static uint64_t find_free(struct ck *c, unsigned t)
{
	const struct ck_type *ct = &c->t[t];
	uint32_t per = c->vh.res[t].per_cl;

	for (uint64_t i = 0; i < ct->nres; i++) {
		uint32_t cl = (uint32_t)(i / per), r = (uint32_t)(i % per);

		if (ct->valid[cl] && r < vmfs_cl_nres(&c->vh, t, cl) && !ck_bit(ct->alloc, i) &&
		    !ck_bit(ct->ref, i))
			return vmfs_addr_make(t, cl, r);
	}
	return 0;
}

/* Gives the second file its own copy of a shared data block. */
static int clone_block(struct ck *c, const struct ck_dup *d)
{
	unsigned t = vmfs_addr_type(d->addr);
	size_t len = t == VMFS_RT_FB ? c->vh.block_size : VMFS_SB_SIZE;
	uint64_t na = find_free(c, t);
	uint8_t *b;
	int rc;

	if (!na)
		return -ENOSPC;
	b = bdev_alloc(len);
	if (!b)
		return -ENOMEM;
	rc = ck_read(c, b, vmfs_addr_off(&c->vh, d->addr), len);
	if (rc == 0)
		rc = rp_write(c, b, vmfs_addr_off(&c->vh, na), len);
	bdev_free(b);
	if (rc)
		return rc;
	ck_mark_alloc(c, na, 1);
	ck_setbit(c->t[t].ref, ck_res_idx(c, na), 1);
	return rp_set_addr(c, d->where, d->in_pb, d->slot, na | (d->addr & VMFS_ADDR_FLAGS));
}

void rp_dups(struct ck *c)
{
	for (size_t i = 0; i < c->ndups && !c->err; i++) {
		const struct ck_dup *d = &c->dups[i];
		int rc;

		if (d->drop || vmfs_addr_type(d->addr) == VMFS_RT_PB)
			rc = rp_set_addr(c, d->where, d->in_pb, d->slot, 0);
		else
			rc = clone_block(c, d);
		if (rc && !c->err)
			c->err = rc; /* announced as fixed: failing now is operational */
	}
}

/* ---- bitmaps -------------------------------------------------------------------- */

void rp_bitmaps(struct ck *c)
{
	struct vmfs_ch *ch = malloc(sizeof(*ch));

	for (unsigned t = VMFS_RT_FB; ch && t <= VMFS_RT_MAX && !c->err; t++) {
		const struct ck_type *ct = &c->t[t];

		for (uint32_t cl = 0; cl < vmfs_ncl(&c->vh, t) && !c->err; cl++) {
			uint64_t base = (uint64_t)cl * c->vh.res[t].per_cl;

			if (!ct->dirty[cl])
				continue;
			memset(ch, 0, sizeof(*ch));
			ch->type = t;
			ch->index = cl;
			ch->nres = vmfs_cl_nres(&c->vh, t, cl);
			ch->cl_off = vmfs_cl_off(&c->vh, t, cl);
			ch->res_off = vmfs_addr_off(&c->vh, vmfs_addr_make(t, cl, 0));
			ch->res_size = c->vh.res[t].res_size;
			for (uint32_t i = 0; i < ch->nres; i++) {
				int v = ck_bit(ct->alloc, base + i);

				vmfs_bit_set(ch->bitmap, i, v);
				ch->nfree += !v;
			}
			write_block(c, ch->cl_off + VMFS_UNIT, enc_ch, ch);
		}
	}
	if (!ch)
		c->err = -ENOMEM;
	free(ch);
}

/* ---- journals --------------------------------------------------------------------- */

/* A journal whose header is lost: emptied and given a fresh header, as mkfs
 * leaves it (the log is zeroed so no old transaction can match the new
 * head). The one function to adapt when the header format changes. */
int rp_journal_reset(struct ck *c, uint32_t slot)
{
	struct vmfs_jh jh;
	uint8_t *b;
	int rc;

	memset(&jh, 0, sizeof(jh));
	jh.slot = slot;
	jh.journal_off = vmfs_journal_off(&c->vh, slot);
	jh.journal_len = c->vh.journal_size;
	jh.head_txid = 1;
	rc = bdev_write_zeroes(c->bd, jh.journal_off, c->vh.journal_size);
	if (rc) {
		if (!c->err)
			c->err = rc;
		return rc;
	}
	b = bdev_alloc(VMFS_UNIT);
	if (!b)
		return -ENOMEM;
	/* both header copies, as mkfs writes them (seq s in copy s % 2) */
	for (jh.seq = 0; jh.seq < VMFS_JH_COPIES && !rc; jh.seq++) {
		vmfs_jh_encode(&jh, b);
		rc = rp_write(c, b, jh.journal_off + jh.seq * VMFS_UNIT, VMFS_UNIT);
	}
	bdev_free(b);
	return rc;
}

/* ---- hosts and locks ------------------------------------------------------------ */

/* Takeover callback of fsck's own host: the journal must be empty by now
 * (a read-write mount replayed it); otherwise the slot stays for the
 * file system's recovery. */
static int takeover_cb(void *arg, uint32_t dead_slot, uint32_t dead_gen, const uint8_t uuid[16])
{
	struct ck_run *r = arg;

	(void)dead_gen;
	(void)uuid;
	return ck_journal_pending(r->bd, &r->vh, dead_slot) ? -EAGAIN : 0;
}

static int ensure_lm(struct ck *c)
{
	struct ck_run *r = c->run;
	struct lm_geom g = {c->vh.hb_off, c->vh.max_hosts, c->vh.hb_interval_ms,
			    c->vh.hb_timeout_ms};
	struct lm_opts o = {.hostname = "fsck", .takeover = takeover_cb, .takeover_arg = r};
	int rc;

	if (r->lm)
		return 0;
	rc = lm_open(c->bd, &g, &o, &r->lm);
	if (rc)
		return rc;
	rc = lm_join(r->lm);
	if (rc) {
		lm_close(r->lm);
		r->lm = NULL;
	}
	return rc;
}

static int wait_ms(const struct ck *c)
{
	return (int)(c->vh.hb_timeout_ms + 2 * c->vh.hb_interval_ms);
}

/* Replays dead hosts' journals the way the file system does: a read-write
 * mount (its recovery takes each such slot over and replays it). */
static int replay_dead(struct ck *c)
{
	struct vmfs_mount_opts o = {.hostname = "fsck"};
	struct vmfs *fs;
	int rc = vmfs_mount_bdev(c->bd, &o, &fs);

	if (rc == 0)
		rc = vmfs_umount(fs);
	return rc;
}

static int recover_slot(struct ck *c, uint32_t i)
{
	struct lm_geom g = {c->vh.hb_off, c->vh.max_hosts, c->vh.hb_interval_ms,
			    c->vh.hb_timeout_ms};
	struct ck_run *r = c->run;
	struct lm_slot_info si;
	uint32_t own, gen;
	int rc;

	if (!r->recovered) {
		r->recovered = 1;
		for (uint32_t s = 0; s < r->nslots; s++)
			if (r->slots[s].verdict == HOST_DEAD &&
			    ck_journal_pending(c->bd, &c->vh, s)) {
				rc = replay_dead(c);
				if (rc)
					return rc;
				break;
			}
	}
	/* The mount's recovery may have freed the slot already; fsck's own
	 * host may even have claimed it since (then it is not the dead one). */
	if (lm_slot_read(c->bd, &g, i, &si, NULL, 0) == 0 && si.state == LM_SLOT_FREE)
		return 0;
	rc = ensure_lm(c);
	if (rc)
		return rc;
	if (lm_slot(r->lm, &own, &gen) == 0 && own == i)
		return 0;
	rc = lm_takeover_slot(r->lm, i, wait_ms(c));
	return rc < 0 ? rc : 0;
}

void rp_hosts(struct ck *c)
{
	struct ck_run *r = c->run;

	for (uint32_t i = 0; i < r->nslots && !c->err; i++) {
		const struct lm_slot_info *si = &r->slots[i].si;
		char region[48];
		uint64_t pending;

		if (r->slots[i].verdict != HOST_DEAD)
			continue;
		snprintf(region, sizeof(region), "heartbeat slot %" PRIu32, i);
		pending = ck_journal_pending(c->bd, &c->vh, i);
		if (ck_prob(c, FIX_SAFE, region,
			    "host '%s' (generation %" PRIu32 ") is dead but its slot is %s",
			    si->hostname, si->gen, lm_slot_state_name(si->state)))
			ck_fixed_how(c, recover_slot(c, i),
				     pending ? "its journal replayed, slot taken over and freed"
					     : "slot taken over and freed");
	}
}

int rp_lock_release(struct ck *c, uint64_t off)
{
	struct lm_lock *lk;
	int rc = ensure_lm(c);

	if (rc == 0)
		rc = lm_lock_acquire(c->run->lm, off, LM_MODE_EX, 2 * wait_ms(c), &lk);
	if (rc == 0)
		rc = lm_lock_release(lk);
	return rc;
}

void rp_run_end(struct ck_run *r)
{
	if (r->lm) {
		lm_leave(r->lm);
		lm_close(r->lm);
	}
	free(r->seen);
	free(r->slots);
}
