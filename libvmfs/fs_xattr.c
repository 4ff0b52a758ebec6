/*
 * fs_xattr.c - extended attributes (vmfs_setxattr/getxattr/listxattr/
 * removexattr).
 *
 * Design note. A file's extended attributes live in one place: inline in
 * its inode (120 bytes, INCOMPAT_IXA volumes, while they fit: a POSIX ACL
 * or an SELinux label costs no block and no extra read), or in one 4 KiB
 * extended-attribute block (format.h struct vmfs_xb, magic VMXA), a PB
 * resource named by the FD inode's `xattr` field (0: none). Both use the
 * same entry format. A change that leaves them fitting inline moves them
 * (back) into the inode and frees the block; one that does not moves them
 * into a block. Both are metadata covered by the FD's lock, like the
 * file's pointer blocks: a change loads the FD EX, edits the entries and
 * commits inode (+ block, + the PB cluster header when the block is
 * allocated or freed) in one journaled transaction, so a crash shows the
 * old or the new set, never a mix. The block is allocated by the first
 * set that does not fit inline and freed when the set fits inline again
 * (also empty), and with the FD (fs_free_fd() -> fs_xattr_free()).
 * It is not counted in nalloc / st_blocks. fsck checks it (allocated,
 * referenced once, self/owner, entries well formed and unique).
 *
 * Entries are packed from the start of the area in insertion order (a
 * replacement moves the entry to the end); removal moves the later entries
 * down. Limits: name 1..255 bytes, value <= VMFS_XATTR_VALUE_MAX (3773:
 * any single attribute fits an empty block), all entries <= 4032 bytes
 * (-ENOSPC beyond).
 *
 * Reads take the FD lock shared; a file held exclusively by another host's
 * open (a running VM's disk) is read from a CRC-checked snapshot without
 * the lock, like getattr (fs_core.c), so listing attributes never waits.
 */
#include "fs_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"
#include "le.h"

_Static_assert(VMFS_XATTR_SIZE_MAX == VMFS_XATTR_VALUE_MAX, "vmfs.h limit = format limit");

#define MAX_RETRY 20

static int xb_decode_at(struct vmfs *fs, const uint8_t *blk, const struct vmfs_fd *fd,
			struct vmfs_xb *xb)
{
	char why[256], as[48];
	int rc = vmfs_xb_decode(blk, &fs->vh, xb, why, sizeof(why));

	if (!rc && (xb->self != fd->xattr || xb->owner != fd->self)) {
		snprintf(why, sizeof(why), "xattr block: self/owner do not match its use");
		rc = -EUCLEAN;
	}
	if (rc) {
		vmfs_addr_str(fd->xattr, as, sizeof(as));
		fs_seterr(fs, "%s: %s", as, why);
	}
	return rc;
}

/* The attributes of an FD without an attribute block: those inline in its
 * inode (none on a volume without INCOMPAT_IXA), validated by the decode. */
static void xb_inline(struct vmfs_xb *xb, const struct vmfs_fd *fd)
{
	memset(xb, 0, sizeof(*xb));
	xb->self = fd->xattr;
	xb->owner = fd->self;
	memcpy(xb->area, fd->ixa, fd->ixa_used);
	xb->used = fd->ixa_used;
	for (uint32_t o = 0; o < xb->used;
	     o += vmfs_xe_size(xb->area[o], le16_get(xb->area + o + 2)))
		xb->count++;
}

/* Sets the inode's inline attributes to xb's (NULL: none). */
static void ixa_set(struct vmfs_fd *fd, const struct vmfs_xb *xb)
{
	memset(fd->ixa, 0, sizeof(fd->ixa));
	fd->ixa_used = xb ? xb->used : 0;
	if (xb)
		memcpy(fd->ixa, xb->area, xb->used);
}

/* Offset of the entry named name in xb->area, or -1. */
static long xb_find(const struct vmfs_xb *xb, const char *name, size_t nl)
{
	for (uint32_t o = 0; o < xb->used;) {
		const uint8_t *e = xb->area + o;

		if (e[0] == nl && !memcmp(e + 4, name, nl))
			return (long)o;
		o += vmfs_xe_size(e[0], le16_get(e + 2));
	}
	return -1;
}

static uint32_t xe_size_at(const struct vmfs_xb *xb, uint32_t o)
{
	return vmfs_xe_size(xb->area[o], le16_get(xb->area + o + 2));
}

static void xb_del(struct vmfs_xb *xb, uint32_t o)
{
	uint32_t sz = xe_size_at(xb, o);

	memmove(xb->area + o, xb->area + o + sz, xb->used - o - sz);
	xb->used -= sz;
	memset(xb->area + xb->used, 0, sz);
	xb->count--;
}

static void xb_add(struct vmfs_xb *xb, const char *name, size_t nl, const void *val, size_t vl)
{
	uint8_t *e = xb->area + xb->used;

	e[0] = (uint8_t)nl;
	e[1] = 0;
	le16_put(e + 2, (uint16_t)vl);
	memcpy(e + 4, name, nl);
	if (vl)
		memcpy(e + 4 + nl, val, vl);
	xb->used += vmfs_xe_size((uint32_t)nl, (uint32_t)vl);
	xb->count++;
}

static int name_check(const char *name, size_t *nl)
{
	if (!name)
		return -EINVAL;
	*nl = strnlen(name, VMFS_XATTR_NAME_MAX + 1);
	return *nl == 0 || *nl > VMFS_XATTR_NAME_MAX ? -ERANGE : 0;
}

int fs_xattr_free(struct tx *tx, struct vmfs_fd *fd)
{
	int rc = fd->xattr ? fs_free(tx, fd->xattr) : 0;

	if (!rc) {
		fd->xattr = 0;
		ixa_set(fd, NULL);
	}
	return rc;
}

/* ---- changes ------------------------------------------------------------------ */

struct xop {
	const char *name;
	size_t nl;
	const void *val; /* NULL: remove */
	size_t vl;
	int flags;
};

/* Applies op to xb: 0, or -EEXIST / -ENODATA / -ENOSPC. */
static int xb_apply(struct vmfs_xb *xb, const struct xop *op)
{
	long o = xb_find(xb, op->name, op->nl);
	uint32_t used = xb->used;

	if (o >= 0 && (op->flags & VMFS_XATTR_CREATE) && op->val)
		return -EEXIST;
	if (o < 0 && (!op->val || (op->flags & VMFS_XATTR_REPLACE)))
		return -ENODATA;
	if (o >= 0)
		used -= xe_size_at(xb, (uint32_t)o);
	if (op->val && used + vmfs_xe_size((uint32_t)op->nl, (uint32_t)op->vl) > VMFS_XB_AREA)
		return -ENOSPC;
	if (o >= 0)
		xb_del(xb, (uint32_t)o);
	if (op->val)
		xb_add(xb, op->name, op->nl, op->val, op->vl);
	return 0;
}

/* One transaction of a change on the FD at addr. */
static int xattr_change_tx(struct vmfs *fs, uint64_t addr, const struct xop *op, struct vmfs_fd *fd,
			   struct vmfs_xb *xb)
{
	uint8_t *blk = NULL;
	struct tx tx;
	int rc;

	tx_begin(fs, &tx);
	rc = tx_lock_fd(&tx, addr, LM_MODE_EX);
	if (!rc)
		rc = fd_load(&tx, addr, fd);
	if (!rc && fd->xattr) {
		rc = tx_write_own(&tx, vmfs_addr_off(&fs->vh, fd->xattr), 0,
				  vmfs_addr_off(&fs->vh, addr), &blk);
		if (!rc)
			rc = xb_decode_at(fs, blk, fd, xb);
	} else if (!rc) {
		xb_inline(xb, fd);
	}
	if (!rc)
		rc = xb_apply(xb, op);
	if (!rc && (fs->vh.incompat & VMFS_INCOMPAT_IXA) && xb->used <= VMFS_IXA_SIZE) {
		/* fits in the inode: there, and a block goes (also when empty) */
		rc = fd->xattr ? fs_xattr_free(&tx, fd) : 0;
		if (!rc)
			ixa_set(fd, xb);
	} else if (!rc) {
		ixa_set(fd, NULL);
		if (!fd->xattr && xb->count) { /* into a block of its own */
			rc = fs_alloc(&tx, VMFS_RT_PB, &fd->xattr);
			xb->self = fd->xattr;
			if (!rc)
				rc = tx_write_own(&tx, vmfs_addr_off(&fs->vh, fd->xattr), 1,
						  vmfs_addr_off(&fs->vh, addr), &blk);
		}
		if (!rc && fd->xattr && !xb->count) /* the last one went */
			rc = fs_xattr_free(&tx, fd);
		else if (!rc && fd->xattr)
			vmfs_xb_encode(xb, blk);
	}
	if (!rc) {
		fd->ctime_ns = fs_now_ns();
		rc = fd_store(&tx, fd);
	}
	if (!rc)
		return tx_commit(&tx);
	tx_abort(&tx);
	return rc;
}

static int xattr_change(struct vmfs *fs, const char *path, const struct xop *op)
{
	struct vmfs_fd *fd = malloc(sizeof(*fd));
	struct vmfs_xb *xb = malloc(sizeof(*xb));
	uint64_t addr;
	int rc = fs_enter(fs, 1);

	if (rc) {
		free(fd);
		free(xb);
		return rc;
	}
	rc = fd && xb ? fs_resolve(fs, path, &addr) : -ENOMEM;
	for (int tries = 0; !rc || (rc == -EAGAIN && tries < MAX_RETRY); tries++) {
		if (rc == -EAGAIN)
			fs_backoff(fs, tries);
		rc = xattr_change_tx(fs, addr, op, fd, xb);
		if (rc != -EAGAIN)
			break;
	}
	free(fd);
	free(xb);
	return fs_leave(fs, rc);
}

int vmfs_setxattr(struct vmfs *fs, const char *path, const char *name, const void *value,
		  size_t size, int flags)
{
	struct xop op = {.name = name, .val = value ? value : "", .vl = size, .flags = flags};
	int rc = name_check(name, &op.nl);

	if (!rc && (flags & ~(VMFS_XATTR_CREATE | VMFS_XATTR_REPLACE)))
		rc = -EINVAL;
	if (!rc && size > VMFS_XATTR_VALUE_MAX)
		rc = -E2BIG;
	if (!rc && size && !value)
		rc = -EINVAL;
	return rc ? rc : xattr_change(fs, path, &op);
}

int vmfs_removexattr(struct vmfs *fs, const char *path, const char *name)
{
	struct xop op = {.name = name};
	int rc = name_check(name, &op.nl);

	return rc ? rc : xattr_change(fs, path, &op);
}

/* ---- reads -------------------------------------------------------------------- */

/* Reads the FD's attribute block without its lock (CRC-checked snapshot). */
static int xattr_peek(struct vmfs *fs, uint64_t addr, struct vmfs_fd *fd, struct vmfs_xb *xb)
{
	uint8_t *blk;
	int rc = fd_peek(fs, addr, fd);

	if (rc)
		return rc;
	if (!fd->xattr) {
		xb_inline(xb, fd);
		return 0;
	}
	blk = bdev_alloc(VMFS_UNIT);
	rc = blk ? fs_meta_read(fs, blk, vmfs_addr_off(&fs->vh, fd->xattr), VMFS_UNIT) : -ENOMEM;
	if (!rc)
		rc = xb_decode_at(fs, blk, fd, xb);
	bdev_free(blk);
	return rc;
}

static int xattr_in(struct tx *tx, uint64_t addr, struct vmfs_fd *fd, struct vmfs_xb *xb)
{
	uint8_t *blk;
	int rc = fd_load(tx, addr, fd);

	if (!rc && fd->xattr) {
		rc = tx_read_own(tx, vmfs_addr_off(&tx->fs->vh, fd->xattr),
				 vmfs_addr_off(&tx->fs->vh, addr), &blk);
		if (!rc)
			rc = xb_decode_at(tx->fs, blk, fd, xb);
	} else if (!rc) {
		xb_inline(xb, fd);
	}
	return rc;
}

struct xload {
	struct vmfs_fd *fd;
	struct vmfs_xb *xb;
};

static int xattr_fn(struct vmfs *fs, uint64_t addr, void *arg)
{
	struct xload *x = arg;
	struct tx tx;
	int rc;

	tx_begin(fs, &tx);
	rc = xattr_in(&tx, addr, x->fd, x->xb);
	tx_abort(&tx);
	return rc;
}

/* An optimistic read (no lock, nothing written); when another host holds
 * the file exclusively (open for writing there), a snapshot of its inode
 * and attribute block; when that fails too, under a shared lock. */
static int xattr_load(struct vmfs *fs, uint64_t addr, struct vmfs_fd *fd, struct vmfs_xb *xb)
{
	struct xload x = {fd, xb};
	struct tx tx;
	int rc = fs_opt_read(fs, addr, xattr_fn, &x);

	if (rc == -EBUSY)
		rc = xattr_peek(fs, addr, fd, xb);
	if (rc == -EUCLEAN && !fs->ro) {
		tx_begin(fs, &tx);
		rc = tx_lock_fd(&tx, addr, LM_MODE_SH); /* wait: replay if dead */
		if (!rc)
			rc = xattr_in(&tx, addr, fd, xb);
		tx_abort(&tx);
	}
	return rc;
}

/* Loads the attributes of path and runs fn on them (mount mutex held). */
static ssize_t xattr_read(struct vmfs *fs, const char *path,
			  ssize_t (*fn)(const struct vmfs_xb *xb, void *arg), void *arg)
{
	struct vmfs_fd *fd = malloc(sizeof(*fd));
	struct vmfs_xb *xb = malloc(sizeof(*xb));
	uint64_t addr;
	ssize_t rc = fs_enter(fs, 0);

	if (rc) {
		free(fd);
		free(xb);
		return rc;
	}
	rc = fd && xb ? fs_resolve(fs, path, &addr) : -ENOMEM;
	if (!rc)
		rc = xattr_load(fs, addr, fd, xb);
	if (!rc)
		rc = fn(xb, arg);
	free(fd);
	free(xb);
	return fs_leave(fs, (int)rc);
}

struct getarg {
	const char *name;
	size_t nl;
	void *buf;
	size_t size;
};

static ssize_t get_fn(const struct vmfs_xb *xb, void *arg)
{
	struct getarg *g = arg;
	long o = xb_find(xb, g->name, g->nl);
	const uint8_t *e;
	size_t vl;

	if (o < 0)
		return -ENODATA;
	e = xb->area + o;
	vl = le16_get(e + 2);
	if (g->size && g->size < vl)
		return -ERANGE;
	if (g->size && vl)
		memcpy(g->buf, e + 4 + e[0], vl);
	return (ssize_t)vl;
}

ssize_t vmfs_getxattr(struct vmfs *fs, const char *path, const char *name, void *value, size_t size)
{
	struct getarg g = {.name = name, .buf = value, .size = size};
	int rc = name_check(name, &g.nl);

	if (!rc && size && !value)
		rc = -EINVAL;
	return rc ? rc : xattr_read(fs, path, get_fn, &g);
}

struct listarg {
	char *buf;
	size_t size;
};

static ssize_t list_fn(const struct vmfs_xb *xb, void *arg)
{
	struct listarg *l = arg;
	size_t total = 0;

	for (uint32_t o = 0; o < xb->used; o += xe_size_at(xb, o))
		total += xb->area[o] + 1u;
	if (!l->size)
		return (ssize_t)total;
	if (l->size < total)
		return -ERANGE;
	total = 0;
	for (uint32_t o = 0; o < xb->used; o += xe_size_at(xb, o)) {
		memcpy(l->buf + total, xb->area + o + 4, xb->area[o]);
		total += xb->area[o];
		l->buf[total++] = '\0';
	}
	return (ssize_t)total;
}

ssize_t vmfs_listxattr(struct vmfs *fs, const char *path, char *list, size_t size)
{
	struct listarg l = {.buf = list, .size = size};

	if (size && !list)
		return -EINVAL;
	return xattr_read(fs, path, list_fn, &l);
}
