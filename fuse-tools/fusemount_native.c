/*
 * fusemount_native.c - vmfsmount on a native libvmfs volume: a read-write
 * FUSE mount (libfuse3 high-level API) that is one host of the cluster,
 * implemented directly over the path-based API of libvmfs/vmfs.h.
 *
 * Design note
 *
 *  - One vmfsmount process = one vmfs_mount() = one host: one heartbeat
 *    slot (hostname from -o host=NAME), one journal. Several mounts of one
 *    image (or LUN), in one machine or several, are several hosts and
 *    coordinate through the disk only.
 *
 *  - Coherence between hosts. The kernel caches nothing: entry, attribute
 *    and negative timeouts are 0 (every lookup and stat reaches the
 *    library, which reads the disk under its locks; an entry_timeout,
 *    attr_timeout or negative_timeout the user sets with -o is kept:
 *    faster lookups, other hosts' changes seen up to that late), and
 *    every file is opened with direct_io (no page cache: each read and
 *    write reaches the library, so data written on one host is seen by
 *    the next read on any other). The price: no shared writable mmap and
 *    no exec from the mount (direct_io), and a stat costs a path walk
 *    with shared locks (about 150 stats/s). A VM datastore needs neither
 *    mmap nor exec; correctness across hosts matters more.
 *
 *  - Open files keep VMFS semantics (vmfs.h): a write-open holds the
 *    file's lock exclusively until its last close on this host, so a
 *    write-open on another host fails with EBUSY ("Device or resource
 *    busy"). The library would wait up to its lock timeout (2 x (heartbeat
 *    timeout + interval), 10-18 s) before saying so, with the mount's
 *    mutex held; an interactive open should fail at once. So opens use
 *    VMFS_O_NOWAIT and retry for open_wait ms (default 250: covers another
 *    host's short transaction on the same file). -o open_wait=MS at least
 *    the lock timeout uses the library's waiting open instead, which also
 *    breaks the lock of a host that died holding the file open (otherwise
 *    the first operation that waits for that lock does it).
 *
 *  - Unlinked open files: hard_remove (no .fuse_hidden renames); the
 *    library frees an unlinked file at its last close on this host. FUSE
 *    then passes a NULL path: data, fstat and ftruncate use the handle;
 *    fchmod/fchown/futimens of an unlinked file fail with ESTALE (vmfs.h
 *    has no handle-based calls for them).
 *
 *  - Threads and processes. The FUSE loop is multi-threaded (libfuse's
 *    fuse_loop_mt, at most -o threads=N workers, default 32; -s or
 *    threads=1: fuse_loop): the library serialises metadata operations with
 *    its mount mutex, but reads and overwrites of a file this host holds
 *    open (SH or EX; not MW) run outside it (cached mapping, per-file rw
 *    lock; see
 *    libvmfs/fs_file.c), so concurrent requests on the data path overlap
 *    their device I/O. max_background is raised so that a queue depth of
 *    32 from one process reaches us, and max_write to 1 MiB (fewer, larger
 *    requests). Nothing here keeps state shared between requests but the
 *    mount and the counters of logged errors (atomic). The lock
 *    manager runs a heartbeat thread, which a fork() would lose, so the
 *    library is mounted after daemonising: without -f the process forks
 *    first, the child mounts the volume and then FUSE, and tells the
 *    parent through a pipe; the parent exits 0 once the mount is ready, or
 *    with the child's status after the child printed why it failed.
 *
 *  - Unmount (fusermount3 -u, umount, or SIGTERM/SIGINT/SIGHUP): the loop
 *    ends, FUSE is unmounted, then vmfs_umount() closes the files still
 *    open, releases the locks and leaves the heartbeat slot.
 *
 *  - Operations map one to one onto vmfs.h (fallocate modes and xattr
 *    flags have Linux's values), except POSIX ACL xattrs (fmn_setxattr():
 *    an ACL equal to the mode becomes the mode, others are refused). rename: RENAME_NOREPLACE and
 *    RENAME_EXCHANGE map to vmfs_rename2() (atomic across hosts);
 *    RENAME_WHITEOUT: EINVAL. mknod makes FIFOs, character and block
 *    devices and sockets (vmfs_mknod_as(): type, rdev and owner in one
 *    transaction); the kernel serves their I/O itself (pipe buffers,
 *    device drivers, socket layer) without opening them through us, and
 *    the library refuses to open them (ENXIO). Device nodes work only on
 *    a mount with -o dev (FUSE mounts are nodev unless root asks).
 *    -o ro mounts the library read-only (no heartbeat slot, no locks,
 *    nothing written).
 *
 *  - Owners: a create, mkdir, symlink or mknod passes the caller's uid/gid
 *    to the library (vmfs_create(), vmfs_mkdir_as(), vmfs_symlink_as(),
 *    vmfs_mknod_as()), which sets them in the transaction that makes the
 *    object: one transaction, nothing to undo if a second step failed.
 *
 *  - Errors: negative errnos pass through; -EUCLEAN (corrupt metadata) and
 *    the private codes of the lower layers (fenced host, device errors)
 *    become EIO, logged once with vmfs_errmsg()/vmfs_strerror() on stderr
 *    (in the foreground; a daemon's stderr is /dev/null).
 */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bdev.h"
#include "format.h"
#include "fusemount.h"
#include "tool.h"
#include "vmfs.h"

#define FMN_OPEN_WAIT_MS 250
#define FMN_THREADS	 32

struct fmn {
	struct vmfs *fs;
	uint32_t uid, gid; /* owner the library gives new files */
	uint32_t blksize;
	long open_wait_ms;
	unsigned lock_tmo_ms; /* the library's lock timeout */
	int ro;
	int threads;	   /* most FUSE workers (1: single-threaded loop) */
	const char *fopts; /* the FUSE options given with -o */
	int logged_fatal;  /* atomic */
};

struct fmn_file {
	struct vmfs_file *f;
	int append;
};

static struct fmn *fmn(void)
{
	return fuse_get_context()->private_data;
}

static struct fmn_file *fh_of(const struct fuse_file_info *fi)
{
	return (struct fmn_file *)(uintptr_t)fi->fh;
}

/* Maps a library error to an errno the kernel accepts. */
static int err(int rc, const char *op, const char *path)
{
	struct fmn *m = fmn();

	if (rc >= 0 || (rc > -512 && rc != -EUCLEAN))
		return rc;
	if (rc == -EUCLEAN)
		fprintf(stderr, "vmfsmount: %s %s: %s\n", op, path ? path : "(open file)",
			vmfs_errmsg(m->fs));
	else if (!__atomic_fetch_add(&m->logged_fatal, 1, __ATOMIC_RELAXED))
		fprintf(stderr, "vmfsmount: %s %s: %s\n", op, path ? path : "(open file)",
			vmfs_strerror(rc));
	return -EIO;
}

static void ts_of(uint64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / 1000000000u);
	ts->tv_nsec = (long)(ns % 1000000000u);
}

static void to_stat(const struct vmfs_stat *s, uint32_t blksize, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = s->ino;
	st->st_mode = s->mode;
	st->st_nlink = s->nlink;
	st->st_uid = s->uid;
	st->st_gid = s->gid;
	st->st_size = (off_t)s->size;
	st->st_blocks = (blkcnt_t)s->blocks;
	st->st_blksize = (blksize_t)blksize;
	st->st_rdev = (dev_t)s->rdev;
	ts_of(s->atime_ns, &st->st_atim);
	ts_of(s->mtime_ns, &st->st_mtim);
	ts_of(s->ctime_ns, &st->st_ctim);
}

/* ---- attributes ---------------------------------------------------------------------- */

static int fmn_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct fmn *m = fmn();
	struct vmfs_stat s;
	int rc;

	if (fi && fi->fh)
		rc = vmfs_fstat(fh_of(fi)->f, &s);
	else if (path)
		rc = vmfs_getattr(m->fs, path, &s);
	else
		rc = -ESTALE;
	if (!rc)
		to_stat(&s, m->blksize, st);
	return err(rc, "stat", path);
}

static int fmn_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)fi;
	if (!path)
		return -ESTALE; /* an unlinked open file: the library is path-based */
	return err(vmfs_chmod(fmn()->fs, path, mode & 07777), "chmod", path);
}

static int fmn_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	(void)fi;
	if (!path)
		return -ESTALE;
	return err(vmfs_chown(fmn()->fs, path, (uint32_t)uid, (uint32_t)gid), "chown", path);
}

static int fmn_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (size < 0)
		return -EINVAL;
	if (fi && fi->fh)
		return err(vmfs_ftruncate(fh_of(fi)->f, (uint64_t)size), "truncate", path);
	if (!path)
		return -ESTALE;
	return err(vmfs_truncate(fmn()->fs, path, (uint64_t)size), "truncate", path);
}

static uint64_t ns_of(const struct timespec *ts)
{
	if (ts->tv_nsec == UTIME_NOW)
		return VMFS_TIME_NOW;
	if (ts->tv_nsec == UTIME_OMIT)
		return VMFS_TIME_OMIT;
	return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

static int fmn_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};

	(void)fi;
	if (!path)
		return -ESTALE;
	if (!tv)
		tv = now;
	for (int i = 0; i < 2; i++)
		if (tv[i].tv_nsec != UTIME_NOW && tv[i].tv_nsec != UTIME_OMIT && tv[i].tv_sec < 0)
			return -EINVAL; /* the format stores unsigned ns since 1970 */
	return err(vmfs_utimens(fmn()->fs, path, ns_of(&tv[0]), ns_of(&tv[1])), "utimens", path);
}

static int fmn_statfs(const char *path, struct statvfs *sv)
{
	struct fmn *m = fmn();
	struct vmfs_statfs s;
	int rc = vmfs_statfs(m->fs, &s);

	if (rc < 0)
		return err(rc, "statfs", path);
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = sv->f_frsize = s.block_size;
	sv->f_blocks = s.blocks;
	sv->f_bfree = sv->f_bavail = s.blocks_free;
	sv->f_files = s.files;
	sv->f_ffree = sv->f_favail = s.files_free;
	sv->f_namemax = s.name_max;
	sv->f_flag = m->ro ? ST_RDONLY : 0;
	return 0;
}

/* ---- names --------------------------------------------------------------------------- */

/* New objects belong to the caller, not to the mount's owner: the owner
 * goes into the transaction that creates them. */
static struct vmfs_owner *caller(struct vmfs_owner *own)
{
	struct fuse_context *c = fuse_get_context();

	own->uid = (uint32_t)c->uid;
	own->gid = (uint32_t)c->gid;
	return own;
}

static int fmn_mkdir(const char *path, mode_t mode)
{
	struct vmfs_owner own;

	return err(vmfs_mkdir_as(fmn()->fs, path, mode & 07777, caller(&own)), "mkdir", path);
}

static int fmn_rmdir(const char *path)
{
	return err(vmfs_rmdir(fmn()->fs, path), "rmdir", path);
}

static int fmn_unlink(const char *path)
{
	return err(vmfs_unlink(fmn()->fs, path), "unlink", path);
}

static int fmn_symlink(const char *target, const char *path)
{
	struct vmfs_owner own;

	return err(vmfs_symlink_as(fmn()->fs, target, path, caller(&own)), "symlink", path);
}

static int fmn_readlink(const char *path, char *buf, size_t len)
{
	int rc;

	if (!len)
		return -EINVAL;
	rc = vmfs_readlink(fmn()->fs, path, buf, len); /* truncates as FUSE wants */
	return rc < 0 ? err(rc, "readlink", path) : 0;
}

static int fmn_link(const char *from, const char *to)
{
	return err(vmfs_link(fmn()->fs, from, to), "link", to);
}

static int fmn_rename(const char *from, const char *to, unsigned int flags)
{
	unsigned f = 0;

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL; /* RENAME_WHITEOUT: not supported */
	f |= flags & RENAME_NOREPLACE ? VMFS_RENAME_NOREPLACE : 0;
	f |= flags & RENAME_EXCHANGE ? VMFS_RENAME_EXCHANGE : 0;
	/* Onto another link of the same file: the library does nothing, as
	 * POSIX wants (tests/fuse/posix.py checks it). */
	return err(vmfs_rename2(fmn()->fs, from, to, f), "rename", from);
}

struct fill {
	void *buf;
	fuse_fill_dir_t filler;
};

static int fill_cb(void *arg, const char *name, unsigned type, uint64_t ino)
{
	struct fill *f = arg;
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_ino = ino;
	/* d_type: saves ls, find and os.walk a stat per entry */
	st.st_mode = vmfs_ftype_mode(type);
	return f->filler(f->buf, name, &st, 0, 0) ? 1 : 0;
}

static int fmn_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct fill f = {buf, filler};
	int rc;

	(void)off;
	(void)fi;
	(void)flags;
	rc = vmfs_readdir(fmn()->fs, path, fill_cb, &f);
	return rc > 0 ? 0 : err(rc, "readdir", path);
}

/* ---- files --------------------------------------------------------------------------- */

static int open_nowait(struct fmn *m, const char *path, int flags, uint32_t mode,
		       const struct vmfs_owner *own, struct vmfs_file **out)
{
	struct timespec t0, t;
	long waited = 0, pause_us = 2000;
	int rc;

	if (m->open_wait_ms >= (long)m->lock_tmo_ms)
		return vmfs_create(m->fs, path, flags, mode, own, out);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		/* -EBUSY means nothing was created (vmfs_create), so a retry
		 * of an O_EXCL create cannot meet its own file */
		rc = vmfs_create(m->fs, path, flags | VMFS_O_NOWAIT, mode, own, out);
		if (rc != -EBUSY || waited >= m->open_wait_ms)
			return rc;
		usleep((useconds_t)pause_us);
		pause_us = pause_us < 64000 ? pause_us * 2 : pause_us;
		clock_gettime(CLOCK_MONOTONIC, &t);
		waited = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
	}
}

static int do_open(const char *path, struct fuse_file_info *fi, int create, mode_t mode)
{
	struct fmn *m = fmn();
	int flags = fi->flags & (O_ACCMODE | O_TRUNC | (create ? O_CREAT | O_EXCL : 0));
	struct fmn_file *h = calloc(1, sizeof(*h));
	int rc;

	if (!h)
		return -ENOMEM;
	struct vmfs_owner own;

	if (create)
		flags |= O_CREAT;
	rc = open_nowait(m, path, flags, mode & 07777, create ? caller(&own) : NULL, &h->f);
	if (rc < 0) {
		free(h);
		return err(rc, create ? "create" : "open", path);
	}
	h->append = !!(fi->flags & O_APPEND);
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	return 0;
}

static int fmn_open(const char *path, struct fuse_file_info *fi)
{
	return do_open(path, fi, 0, 0);
}

static int fmn_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return do_open(path, fi, 1, mode);
}

/* Regular files (the kernel uses create for those), FIFOs, character and
 * block devices, sockets: the node with its mode, rdev and the caller as
 * owner, in one transaction. */
static int fmn_mknod(const char *path, mode_t mode, dev_t rdev)
{
	struct vmfs_owner own;

	return err(vmfs_mknod_as(fmn()->fs, path, (uint32_t)mode, (uint64_t)rdev, caller(&own)),
		   "mknod", path);
}

static int fmn_read(const char *path, char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	ssize_t n;

	if (off < 0)
		return -EINVAL;
	n = vmfs_read(fh_of(fi)->f, buf, len, (uint64_t)off);
	return n < 0 ? err((int)n, "read", path) : (int)n;
}

/* A write by an unprivileged process clears setuid and setgid, as on
 * ext4 (the kernel leaves it to us with direct_io). An unlinked file
 * (path NULL) keeps its bits: nobody can exec it any more. */
static void kill_suid(struct fmn_file *h, const char *path)
{
	struct vmfs_stat st;

	if (fuse_get_context()->uid == 0 || !path || vmfs_fstat(h->f, &st) ||
	    !(st.mode & (S_ISUID | S_ISGID)))
		return;
	vmfs_chmod(fmn()->fs, path, st.mode & 07777 & ~(uint32_t)(S_ISUID | S_ISGID));
}

static int fmn_write(const char *path, const char *buf, size_t len, off_t off,
		     struct fuse_file_info *fi)
{
	struct fmn_file *h = fh_of(fi);
	ssize_t n;

	if (off < 0)
		return -EINVAL;
	if (h->append) {
		/* The kernel's idea of the size may be stale (another host). */
		struct vmfs_stat st;
		int rc = vmfs_fstat(h->f, &st);

		if (rc < 0)
			return err(rc, "write", path);
		off = (off_t)st.size;
	}
	n = vmfs_write(h->f, buf, len, (uint64_t)off);
	if (n > 0)
		kill_suid(h, path);
	return n < 0 ? err((int)n, "write", path) : (int)n;
}

static int fmn_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	return err(vmfs_fsync(fh_of(fi)->f), "fsync", path);
}

static int fmn_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	return 0; /* nothing is buffered here: writes went to the library */
}

static int fmn_release(const char *path, struct fuse_file_info *fi)
{
	struct fmn_file *h = fh_of(fi);
	int rc = vmfs_close(h->f);

	free(h);
	return err(rc, "close", path);
}

static int fmn_fallocate(const char *path, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	if (off < 0 || len <= 0)
		return -EINVAL;
	if (!fi || !fi->fh)
		return -EBADF;
	return err(vmfs_fallocate(fh_of(fi)->f, mode, (uint64_t)off, (uint64_t)len), "fallocate",
		   path);
}

/* ---- extended attributes (by path; the kernel checks namespaces) -------------------- */

/* POSIX ACLs. This mount does not enforce ACLs (no FUSE_CAP_POSIX_ACL), so
 * an access ACL that only restates the mode (owner, group and other
 * entries: what cp -a, tar and rsync set on every file) is applied as the
 * mode bits, as ext4 does with such an ACL, and not stored; an extended
 * access ACL (named users or groups, a mask) and any default ACL are
 * refused with EOPNOTSUPP instead of being stored and ignored. Returns 1
 * and the permission bits for a minimal ACL, 0 for another, <0 when the
 * value is not an ACL (Linux's xattr form: version 2, then 8-byte
 * entries: tag u16, perm u16, id u32, little-endian). */
#define ACL_USER_OBJ  0x01
#define ACL_GROUP_OBJ 0x04
#define ACL_OTHER     0x20

static int acl_minimal(const uint8_t *v, size_t size, uint32_t *perm)
{
	unsigned seen = 0;

	*perm = 0;
	if (size < 4 || (size - 4) % 8 ||
	    (v[0] | v[1] << 8 | v[2] << 16 | (uint32_t)v[3] << 24) != 2)
		return -EINVAL;
	for (size_t o = 4; o < size; o += 8) {
		unsigned tag = v[o] | v[o + 1] << 8, p = (v[o + 2] | v[o + 3] << 8) & 7;
		unsigned shift = tag == ACL_USER_OBJ ? 6 : tag == ACL_GROUP_OBJ ? 3 : 0;

		if ((tag != ACL_USER_OBJ && tag != ACL_GROUP_OBJ && tag != ACL_OTHER) ||
		    (seen & tag))
			return 0;
		seen |= tag;
		*perm |= p << shift;
	}
	return seen == (ACL_USER_OBJ | ACL_GROUP_OBJ | ACL_OTHER);
}

static int fmn_setxattr(const char *path, const char *name, const char *value, size_t size,
			int flags)
{
	struct vmfs_stat st;
	uint32_t perm;
	int rc;

	if (!strcmp(name, "system.posix_acl_default"))
		return -EOPNOTSUPP;
	if (strcmp(name, "system.posix_acl_access"))
		return err(vmfs_setxattr(fmn()->fs, path, name, value, size, flags), "setxattr",
			   path);
	rc = acl_minimal((const uint8_t *)value, size, &perm);
	if (rc <= 0)
		return rc < 0 ? rc : -EOPNOTSUPP;
	rc = vmfs_getattr(fmn()->fs, path, &st);
	if (!rc)
		rc = vmfs_chmod(fmn()->fs, path, (st.mode & 07000) | perm);
	return err(rc, "setxattr", path);
}

static int fmn_getxattr(const char *path, const char *name, char *value, size_t size)
{
	ssize_t n = vmfs_getxattr(fmn()->fs, path, name, value, size);

	return n < 0 ? err((int)n, "getxattr", path) : (int)n;
}

static int fmn_listxattr(const char *path, char *list, size_t size)
{
	ssize_t n = vmfs_listxattr(fmn()->fs, path, list, size);

	return n < 0 ? err((int)n, "listxattr", path) : (int)n;
}

static int fmn_removexattr(const char *path, const char *name)
{
	return err(vmfs_removexattr(fmn()->fs, path, name), "removexattr", path);
}

static void *fmn_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct fmn *m = fuse_get_context()->private_data;

	cfg->use_ino = 1;
	/* 0 unless the user traded coherence for speed with -o */
	if (!strstr(m->fopts, "entry_timeout="))
		cfg->entry_timeout = 0;
	if (!strstr(m->fopts, "attr_timeout="))
		cfg->attr_timeout = 0;
	if (!strstr(m->fopts, "negative_timeout="))
		cfg->negative_timeout = 0;
	cfg->direct_io = 1;
	cfg->kernel_cache = 0;
	cfg->auto_cache = 0;
	cfg->hard_remove = 1;
	cfg->nullpath_ok = 0; /* paths when named; NULL for an unlinked open file */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC; /* O_TRUNC under the open's lock */
	if (m->threads > 1) {
		/* async direct I/O is background work: let a queue of 32 through */
		conn->max_background = 64;
		conn->congestion_threshold = 48;
	}
	conn->max_write = 1u << 20; /* also sets max_pages: reads of 1 MiB too */
	conn->want &= ~(unsigned)(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_HANDLE_KILLPRIV);
	return fuse_get_context()->private_data;
}

static const struct fuse_operations fmn_ops = {
    .init = fmn_init,
    .getattr = fmn_getattr,
    .readlink = fmn_readlink,
    .mknod = fmn_mknod,
    .mkdir = fmn_mkdir,
    .unlink = fmn_unlink,
    .rmdir = fmn_rmdir,
    .symlink = fmn_symlink,
    .rename = fmn_rename,
    .link = fmn_link,
    .chmod = fmn_chmod,
    .chown = fmn_chown,
    .truncate = fmn_truncate,
    .open = fmn_open,
    .read = fmn_read,
    .write = fmn_write,
    .statfs = fmn_statfs,
    .flush = fmn_flush,
    .release = fmn_release,
    .fsync = fmn_fsync,
    .readdir = fmn_readdir,
    .create = fmn_create,
    .utimens = fmn_utimens,
    .fallocate = fmn_fallocate,
    .setxattr = fmn_setxattr,
    .getxattr = fmn_getxattr,
    .listxattr = fmn_listxattr,
    .removexattr = fmn_removexattr,
};

/* ---- mounting ------------------------------------------------------------------------ */

/* The library's default lock timeout: 2 x (heartbeat timeout + interval)
 * of the volume (vmfs.h does not report it). UINT_MAX if unreadable. */
static unsigned lock_timeout(const char *uri)
{
	struct vmfs_vh vh;
	struct bdev *bd;
	char why[256];
	unsigned t = UINT_MAX;

	if (bdev_open(uri, BDEV_O_RDONLY, &bd) < 0)
		return t;
	if (!vmfs_vh_read(bd, &vh, why, sizeof(why)))
		t = 2 * vh.hb_timeout_ms + 2 * vh.hb_interval_ms;
	bdev_close(bd);
	return t;
}

static int mount_volume(const struct fm_args *a, struct fmn *m)
{
	struct vmfs_mount_opts o;
	struct vmfs_statfs s;
	int rc;

	memset(&o, 0, sizeof(o));
	o.hostname = a->host;
	o.read_only = a->ro;
	o.cache_mb = (int)a->cache_mb;
	o.keep_locks = a->keep_locks;
	o.uid = m->uid = (uint32_t)getuid();
	o.gid = m->gid = (uint32_t)getgid();
	rc = vmfs_mount(a->dev, &o, &m->fs);
	if (rc < 0) {
		const char *why = vmfs_errmsg(NULL);

		tool_err(NULL, "%s: cannot mount: %s%s%s", a->dev, vmfs_strerror(rc),
			 why && *why ? ": " : "", why ? why : "");
		return rc;
	}
	rc = vmfs_statfs(m->fs, &s);
	if (rc < 0) {
		tool_err(NULL, "%s: cannot read the volume: %s", a->dev, vmfs_strerror(rc));
		vmfs_umount(m->fs);
		return rc;
	}
	m->blksize = s.block_size > (1u << 20) ? (1u << 20) : s.block_size;
	m->ro = a->ro;
	m->open_wait_ms = a->open_wait_ms >= 0 ? a->open_wait_ms : FMN_OPEN_WAIT_MS;
	m->threads = a->threads > 0 ? a->threads : FMN_THREADS;
	m->lock_tmo_ms = lock_timeout(a->dev);
	m->fopts = a->fopts;
	return 0;
}

/* FUSE arguments: program, [-d], -o OPTIONS. */
static struct fuse *new_fuse(const struct fm_args *a, struct fmn *m)
{
	char opts[FM_OPTS_MAX + 4400], *argv[4];
	struct fuse_args args;
	struct fuse *f;
	int n;

	char dev[4100];

	/* A ',' in the device name would split the option list. */
	snprintf(dev, sizeof(dev), "%s", a->dev);
	for (char *c = dev; *c; c++)
		if (*c == ',')
			*c = '_';
	n = snprintf(opts, sizeof(opts), "%s,fsname=%s,subtype=vmfs%s%s", a->ro ? "ro" : "rw", dev,
		     a->fopts[0] ? "," : "", a->fopts);
	if (n < 0 || (size_t)n >= sizeof(opts)) {
		tool_err(NULL, "mount options too long");
		return NULL;
	}
	argv[0] = a->argv0;
	argv[1] = (char *)"-o";
	argv[2] = opts;
	argv[3] = a->debug ? (char *)"-d" : NULL;
	args = (struct fuse_args)FUSE_ARGS_INIT(a->debug ? 4 : 3, argv);
	f = fuse_new(&args, &fmn_ops, sizeof(fmn_ops), m);
	fuse_opt_free_args(&args);
	if (!f)
		tool_err(NULL, "%s: bad FUSE options '%s'", a->mnt, a->fopts);
	return f;
}

static void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

/* Serves requests until unmounted: fuse_loop_mt with at most `threads`
 * workers (kept once started), or fuse_loop for one. */
static int loop(struct fuse *f, int threads)
{
	struct fuse_loop_config *cfg;
	int rc;

	if (threads <= 1)
		return fuse_loop(f);
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_max_threads(cfg, (unsigned)threads);
	fuse_loop_cfg_set_idle_threads(cfg, (unsigned)threads);
	rc = fuse_loop_mt(f, cfg);
	fuse_loop_cfg_destroy(cfg);
	return rc;
}

/* Mounts, reports readiness on ready_fd (-1: foreground), serves. */
static int serve(const struct fm_args *a, const char *mnt, int ready_fd)
{
	struct fmn m;
	struct fuse *f;
	int rc, urc;

	memset(&m, 0, sizeof(m));
	if (mount_volume(a, &m) < 0)
		return 1;
	f = new_fuse(a, &m);
	if (!f) {
		vmfs_umount(m.fs);
		return 1;
	}
	if (fuse_mount(f, mnt) != 0) {
		tool_err(NULL, "%s: cannot mount on %s", a->dev, mnt);
		fuse_destroy(f);
		vmfs_umount(m.fs);
		return 1;
	}
	rc = fuse_set_signal_handlers(fuse_get_session(f));
	if (ready_fd >= 0) {
		if (chdir("/") < 0)
			rc = rc ? rc : -1;
		detach_stdio();
		if (write(ready_fd, "1", 1) != 1)
			rc = rc ? rc : -1;
		close(ready_fd);
	}
	if (!rc)
		rc = loop(f, m.threads);
	if (rc > 0)
		rc = 0; /* libfuse >= 3.12 returns the signal that ended the loop */
	fuse_remove_signal_handlers(fuse_get_session(f));
	fuse_unmount(f);
	fuse_destroy(f);
	urc = vmfs_umount(m.fs);
	if (urc < 0)
		tool_err(NULL, "%s: unmount: %s", a->dev, vmfs_strerror(urc));
	return rc || urc ? 1 : 0;
}

int fm_native_main(const struct fm_args *a)
{
	char mnt[PATH_MAX];
	int p[2], st;
	pid_t pid;
	char c;

	if (!realpath(a->mnt, mnt)) {
		tool_err(NULL, "%s: mount point: %s", a->mnt, strerror(errno));
		return 1;
	}
	if (a->foreground)
		return serve(a, mnt, -1);
	if (pipe(p) < 0 || (pid = fork()) < 0) {
		tool_err(NULL, "cannot start the daemon: %s", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		close(p[0]);
		setsid();
		_exit(serve(a, mnt, p[1]));
	}
	close(p[1]);
	if (read(p[0], &c, 1) == 1)
		return 0;
	if (waitpid(pid, &st, 0) < 0)
		return 1;
	return WIFEXITED(st) && WEXITSTATUS(st) ? WEXITSTATUS(st) : 1;
}
