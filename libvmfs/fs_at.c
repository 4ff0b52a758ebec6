/*
 * fs_at.c - calls by inode (an FD address and its generation) and by
 * (directory inode, name): what a FUSE low-level daemon needs, so a request
 * does not walk a path from the root, and an open file that lost its last
 * name (unlinked, still open) can still be stat'ed, chmod'ed, truncated...
 *
 * DESIGN NOTE
 *
 * Nothing is duplicated: each call runs the path implementation of
 * fs_core.c / fs_xattr.c with a per-thread base. The path it passes starts
 * with FS_AT_BASE0 (or FS_AT_BASE1, the second directory of link and
 * rename), which resolve() (fs_core.c) starts from the base FD instead of
 * the root: "\x01" is the base itself, "\x01/name" a name in it. Retries,
 * lock order and every check of the path calls stay as they are.
 *
 * Invariants
 *  A1. An inode number is the FD's address; its generation is the FD's
 *      generation (set at creation from the clock, so a reused FD gets a
 *      new one). Freeing an FD writes generation 0 in the same transaction
 *      (fs_free_fd()).
 *  A2. Every FD decoded while a call runs (fd_load under a lock before any
 *      write; the optimistic reads and snapshots) that is one of its bases
 *      is checked by fs_at_check(): freed or another generation than the
 *      caller's (0: any) -> -ESTALE (freed with 0 expected: -ENOENT). So a
 *      handle of a file another host removed (and maybe reused) never
 *      touches the FD's new life: e.g. an O_TRUNC open of a stale handle
 *      fails before it truncates anything.
 *  A3. Calls whose bases are directories (lookup, create, mkdir, unlink,
 *      rename...) report a stale directory as -ENOENT, as a removed
 *      directory does on a local file system.
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

struct at_ctx {
	int on;
	uint64_t addr[2], gen[2];
};

static __thread struct at_ctx at;

int fs_at_base(const char **path, uint64_t *addr)
{
	if (!at.on || ((*path)[0] != FS_AT_BASE0 && (*path)[0] != FS_AT_BASE1))
		return 0;
	*addr = at.addr[(*path)[0] == FS_AT_BASE1];
	(*path)++;
	return 1;
}

int fs_at_check(const struct vmfs_fd *fd)
{
	for (int i = 0; at.on && i < 2; i++) {
		if (!at.addr[i] || at.addr[i] != fd->self)
			continue;
		if (fd->generation == 0)
			return at.gen[i] ? -ESTALE : -ENOENT;
		if (at.gen[i] && fd->generation != at.gen[i])
			return -ESTALE;
	}
	return 0;
}

static void at_begin(struct at_ctx *save, uint64_t a0, uint64_t g0, uint64_t a1, uint64_t g1)
{
	*save = at;
	at.on = 1;
	at.addr[0] = a0;
	at.gen[0] = g0;
	at.addr[1] = a1;
	at.gen[1] = g1;
}

static int at_end(const struct at_ctx *save, int rc)
{
	at = *save;
	return rc;
}

/* A3: a stale directory is gone. */
static int at_end_dir(const struct at_ctx *save, int rc)
{
	return at_end(save, rc == -ESTALE ? -ENOENT : rc);
}

/* "\x01/name" (base marker b) in buf; -ENOENT (empty), -EINVAL (a '/'),
 * -ENAMETOOLONG. */
static int at_path(char *buf, char b, const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (!len)
		return -ENOENT;
	if (len > VMFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (memchr(name, '/', len))
		return -EINVAL;
	buf[0] = b;
	buf[1] = '/';
	memcpy(buf + 2, name, len + 1);
	return 0;
}

#define AT_PATH_MAX (VMFS_NAME_MAX + 3)
static const char base0[] = {FS_AT_BASE0, 0};

/* ---- by inode ------------------------------------------------------------------- */

int vmfs_lookup(struct vmfs *fs, uint64_t dir, uint64_t dir_gen, const char *name,
		struct vmfs_stat *st)
{
	char p[AT_PATH_MAX];
	struct at_ctx s;
	int rc = at_path(p, FS_AT_BASE0, name);

	if (rc)
		return rc;
	at_begin(&s, dir, dir_gen, 0, 0);
	rc = vmfs_getattr(fs, p, st);
	if (!rc && st->generation == 0)
		rc = -ENOENT; /* freed since the entry was read */
	return at_end_dir(&s, rc);
}

int vmfs_getattr_ino(struct vmfs *fs, uint64_t ino, uint64_t gen, struct vmfs_stat *st)
{
	struct at_ctx s;

	at_begin(&s, ino, gen, 0, 0);
	return at_end(&s, vmfs_getattr(fs, base0, st));
}

int vmfs_setattr_ino(struct vmfs *fs, uint64_t ino, uint64_t gen, const struct vmfs_setattr *sa)
{
	struct at_ctx s;
	int rc = 0;

	if (sa->valid & ~(unsigned)(VMFS_SET_MODE | VMFS_SET_UID | VMFS_SET_GID | VMFS_SET_SIZE |
				    VMFS_SET_ATIME | VMFS_SET_MTIME))
		return -EINVAL;
	at_begin(&s, ino, gen, 0, 0);
	if (sa->valid & VMFS_SET_SIZE) /* first: a truncate sets mtime */
		rc = vmfs_truncate(fs, base0, sa->size);
	if (!rc && (sa->valid & VMFS_SET_MODE))
		rc = vmfs_chmod(fs, base0, sa->mode);
	if (!rc && (sa->valid & (VMFS_SET_UID | VMFS_SET_GID)))
		rc = vmfs_chown(fs, base0, sa->valid & VMFS_SET_UID ? sa->uid : UINT32_MAX,
				sa->valid & VMFS_SET_GID ? sa->gid : UINT32_MAX);
	if (!rc && (sa->valid & (VMFS_SET_ATIME | VMFS_SET_MTIME)))
		rc = vmfs_utimens(fs, base0,
				  sa->valid & VMFS_SET_ATIME ? sa->atime_ns : VMFS_TIME_OMIT,
				  sa->valid & VMFS_SET_MTIME ? sa->mtime_ns : VMFS_TIME_OMIT);
	return at_end(&s, rc);
}

int vmfs_open_ino(struct vmfs *fs, uint64_t ino, uint64_t gen, int flags, struct vmfs_file **out)
{
	struct at_ctx s;

	at_begin(&s, ino, gen, 0, 0);
	return at_end(&s, vmfs_open(fs, base0, flags & ~(O_CREAT | O_EXCL), 0, out));
}

int vmfs_readdir_ino(struct vmfs *fs, uint64_t ino, uint64_t gen, vmfs_readdir_cb cb, void *arg)
{
	struct at_ctx s;

	at_begin(&s, ino, gen, 0, 0);
	return at_end(&s, vmfs_readdir(fs, base0, cb, arg));
}

int vmfs_readlink_ino(struct vmfs *fs, uint64_t ino, uint64_t gen, char *buf, size_t size)
{
	struct at_ctx s;

	at_begin(&s, ino, gen, 0, 0);
	return at_end(&s, vmfs_readlink(fs, base0, buf, size));
}

int vmfs_setxattr_ino(struct vmfs *fs, uint64_t ino, uint64_t gen, const char *name,
		      const void *value, size_t size, int flags)
{
	struct at_ctx s;

	at_begin(&s, ino, gen, 0, 0);
	return at_end(&s, vmfs_setxattr(fs, base0, name, value, size, flags));
}

ssize_t vmfs_getxattr_ino(struct vmfs *fs, uint64_t ino, uint64_t gen, const char *name,
			  void *value, size_t size)
{
	struct at_ctx s;
	ssize_t rc;

	at_begin(&s, ino, gen, 0, 0);
	rc = vmfs_getxattr(fs, base0, name, value, size);
	at_end(&s, 0);
	return rc;
}

ssize_t vmfs_listxattr_ino(struct vmfs *fs, uint64_t ino, uint64_t gen, char *list, size_t size)
{
	struct at_ctx s;
	ssize_t rc;

	at_begin(&s, ino, gen, 0, 0);
	rc = vmfs_listxattr(fs, base0, list, size);
	at_end(&s, 0);
	return rc;
}

int vmfs_removexattr_ino(struct vmfs *fs, uint64_t ino, uint64_t gen, const char *name)
{
	struct at_ctx s;

	at_begin(&s, ino, gen, 0, 0);
	return at_end(&s, vmfs_removexattr(fs, base0, name));
}

/* ---- by (directory, name) ---------------------------------------------------------- */

int vmfs_create_at(struct vmfs *fs, uint64_t dir, uint64_t dir_gen, const char *name, int flags,
		   uint32_t mode, const struct vmfs_owner *own, struct vmfs_file **out)
{
	char p[AT_PATH_MAX];
	struct at_ctx s;
	int rc = at_path(p, FS_AT_BASE0, name);

	if (rc)
		return rc;
	at_begin(&s, dir, dir_gen, 0, 0);
	return at_end_dir(&s, vmfs_create(fs, p, flags, mode, own, out));
}

int vmfs_mkdir_at(struct vmfs *fs, uint64_t dir, uint64_t dir_gen, const char *name, uint32_t mode,
		  const struct vmfs_owner *own)
{
	char p[AT_PATH_MAX];
	struct at_ctx s;
	int rc = at_path(p, FS_AT_BASE0, name);

	if (rc)
		return rc;
	at_begin(&s, dir, dir_gen, 0, 0);
	return at_end_dir(&s, vmfs_mkdir_as(fs, p, mode, own));
}

int vmfs_symlink_at(struct vmfs *fs, const char *target, uint64_t dir, uint64_t dir_gen,
		    const char *name, const struct vmfs_owner *own)
{
	char p[AT_PATH_MAX];
	struct at_ctx s;
	int rc = at_path(p, FS_AT_BASE0, name);

	if (rc)
		return rc;
	at_begin(&s, dir, dir_gen, 0, 0);
	return at_end_dir(&s, vmfs_symlink_as(fs, target, p, own));
}

int vmfs_mknod_at(struct vmfs *fs, uint64_t dir, uint64_t dir_gen, const char *name, uint32_t mode,
		  uint64_t rdev, const struct vmfs_owner *own)
{
	char p[AT_PATH_MAX];
	struct at_ctx s;
	int rc = at_path(p, FS_AT_BASE0, name);

	if (rc)
		return rc;
	at_begin(&s, dir, dir_gen, 0, 0);
	return at_end_dir(&s, vmfs_mknod_as(fs, p, mode, rdev, own));
}

int vmfs_unlink_at(struct vmfs *fs, uint64_t dir, uint64_t dir_gen, const char *name)
{
	char p[AT_PATH_MAX];
	struct at_ctx s;
	int rc = at_path(p, FS_AT_BASE0, name);

	if (rc)
		return rc;
	at_begin(&s, dir, dir_gen, 0, 0);
	return at_end_dir(&s, vmfs_unlink(fs, p));
}

int vmfs_rmdir_at(struct vmfs *fs, uint64_t dir, uint64_t dir_gen, const char *name)
{
	char p[AT_PATH_MAX];
	struct at_ctx s;
	int rc = at_path(p, FS_AT_BASE0, name);

	if (rc)
		return rc;
	at_begin(&s, dir, dir_gen, 0, 0);
	return at_end_dir(&s, vmfs_rmdir(fs, p));
}

int vmfs_link_at(struct vmfs *fs, uint64_t ino, uint64_t gen, uint64_t dir, uint64_t dir_gen,
		 const char *name)
{
	char p[AT_PATH_MAX];
	struct at_ctx s;
	int rc = at_path(p, FS_AT_BASE1, name);

	if (rc)
		return rc;
	at_begin(&s, ino, gen, dir, dir_gen);
	return at_end(&s, vmfs_link(fs, base0, p));
}

int vmfs_rename_at(struct vmfs *fs, uint64_t dir, uint64_t dir_gen, const char *name,
		   uint64_t newdir, uint64_t newdir_gen, const char *newname, unsigned flags)
{
	char p[AT_PATH_MAX], q[AT_PATH_MAX];
	struct at_ctx s;
	int rc = at_path(p, FS_AT_BASE0, name);

	if (!rc)
		rc = at_path(q, FS_AT_BASE1, newname);
	if (rc)
		return rc;
	at_begin(&s, dir, dir_gen, newdir, newdir_gen);
	return at_end_dir(&s, vmfs_rename2(fs, p, q, flags));
}
