/*
 * fusemount.c - vmfsmount: a read-only FUSE mount (libfuse3, high-level
 * API) of a real VMFS5/6 datastore, through the format-neutral fsview, so
 * the native file system can be mounted the same way once it has a view.
 *
 *   vmfsmount [-f] [-d] [-s] [-o OPT[,OPT...]] DEVICE MOUNTPOINT
 *
 * Design note: the view is opened (and the device checked) before
 * fuse_main(), so a missing device or an unknown file system is a clear
 * one-line error, not a failed mount. The mount is always read-only ("ro"
 * is forced; opens for writing get EROFS). One mutex serialises calls
 * into the view, which is not thread-safe; reads of a datastore are
 * bounded by the disk anyway.
 */
#define FUSE_USE_VERSION 312

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bdev.h"
#include "fsview.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static struct fsview *view(void)
{
	return fuse_get_context()->private_data;
}

static void to_stat(const struct fsview_stat *s, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = s->ino;
	st->st_mode = s->mode;
	st->st_nlink = s->nlink;
	st->st_uid = s->uid;
	st->st_gid = s->gid;
	st->st_size = (off_t)s->size;
	st->st_blocks = (blkcnt_t)s->blocks;
	st->st_blksize = (blksize_t)(s->blksize > (1u << 20) ? (1u << 20) : s->blksize);
	st->st_atim.tv_sec = s->atime;
	st->st_mtim.tv_sec = s->mtime;
	st->st_ctim.tv_sec = s->ctime;
}

static int fm_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct fsview *v = view();
	struct fsview_stat s;
	uint64_t ino;
	int rc;

	(void)fi;
	pthread_mutex_lock(&lock);
	rc = v->ops->lookup(v, path, 0, &ino);
	if (!rc)
		rc = v->ops->getattr(v, ino, &s);
	pthread_mutex_unlock(&lock);
	if (!rc)
		to_stat(&s, st);
	return rc == -EUCLEAN ? -EIO : rc;
}

static int fm_readlink(const char *path, char *buf, size_t len)
{
	struct fsview *v = view();
	uint64_t ino;
	int rc;

	pthread_mutex_lock(&lock);
	rc = v->ops->lookup(v, path, 0, &ino);
	if (!rc)
		rc = v->ops->readlink(v, ino, buf, len);
	pthread_mutex_unlock(&lock);
	if (rc == -ENAMETOOLONG && len) { /* FUSE wants a truncated target */
		buf[len - 1] = 0;
		rc = 0;
	}
	return rc < 0 ? (rc == -EUCLEAN ? -EIO : rc) : 0;
}

struct fill {
	void *buf;
	fuse_fill_dir_t filler;
};

static int fill_cb(void *arg, const char *name, uint64_t ino)
{
	struct fill *f = arg;

	(void)ino;
	return f->filler(f->buf, name, NULL, 0, 0) ? 1 : 0;
}

static int fm_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct fsview *v = view();
	struct fill f = {buf, filler};
	uint64_t ino;
	int rc;

	(void)off;
	(void)fi;
	(void)flags;
	pthread_mutex_lock(&lock);
	rc = v->ops->lookup(v, path, 0, &ino);
	if (!rc)
		rc = v->ops->readdir(v, ino, fill_cb, &f);
	pthread_mutex_unlock(&lock);
	if (rc > 0)
		rc = 0;
	return rc == -EUCLEAN ? -EIO : rc;
}

static int fm_open(const char *path, struct fuse_file_info *fi)
{
	struct fsview *v = view();
	uint64_t ino;
	void *fh = NULL;
	int rc;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return -EROFS;
	pthread_mutex_lock(&lock);
	rc = v->ops->lookup(v, path, 1, &ino);
	if (!rc)
		rc = v->ops->open(v, ino, &fh);
	pthread_mutex_unlock(&lock);
	if (rc < 0)
		return rc == -EUCLEAN ? -EIO : rc;
	fi->fh = (uint64_t)(uintptr_t)fh;
	fi->keep_cache = 1;
	return 0;
}

static int fm_read(const char *path, char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	struct fsview *v = view();
	ssize_t n;

	(void)path;
	if (off < 0)
		return -EINVAL;
	pthread_mutex_lock(&lock);
	n = v->ops->pread(v, (void *)(uintptr_t)fi->fh, (uint64_t)off, buf, len);
	pthread_mutex_unlock(&lock);
	if (n == -EUCLEAN)
		fprintf(stderr, "vmfsmount: %s: %s\n", path, v->ops->errmsg(v));
	return n == -EUCLEAN ? -EIO : (int)n;
}

static int fm_release(const char *path, struct fuse_file_info *fi)
{
	struct fsview *v = view();

	(void)path;
	pthread_mutex_lock(&lock);
	v->ops->release(v, (void *)(uintptr_t)fi->fh);
	pthread_mutex_unlock(&lock);
	return 0;
}

static int fm_statfs(const char *path, struct statvfs *sv)
{
	struct fsview *v = view();
	struct fsview_statfs s;
	int rc;

	(void)path;
	pthread_mutex_lock(&lock);
	rc = v->ops->statfs(v, &s);
	pthread_mutex_unlock(&lock);
	if (rc < 0)
		return rc == -EUCLEAN ? -EIO : rc;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = sv->f_frsize = (unsigned long)s.bsize;
	sv->f_blocks = s.blocks;
	sv->f_bfree = sv->f_bavail = s.bfree;
	sv->f_files = s.files;
	sv->f_ffree = sv->f_favail = s.ffree;
	sv->f_namemax = s.namemax;
	sv->f_flag = ST_RDONLY;
	return 0;
}

static void *fm_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->use_ino = 1;
	cfg->kernel_cache = 1;
	return fuse_get_context()->private_data;
}

static const struct fuse_operations fm_ops = {
    .init = fm_init,
    .getattr = fm_getattr,
    .readlink = fm_readlink,
    .open = fm_open,
    .read = fm_read,
    .release = fm_release,
    .readdir = fm_readdir,
    .statfs = fm_statfs,
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmfsmount [-f] [-d] [-s] [-o OPT[,OPT...]] DEVICE MOUNTPOINT\n"
		   "Mount a real VMFS5/VMFS6 datastore read-only with FUSE.\n"
		   "  -f         stay in the foreground\n"
		   "  -d         debug output (implies -f)\n"
		   "  -s         single-threaded\n"
		   "  -o OPTS    FUSE mount options (allow_other, default_permissions, ...);\n"
		   "             the mount is always read-only\n"
		   "Unmount with: fusermount3 -u MOUNTPOINT\n");
}

struct margs {
	const char *dev, *mnt;
	char *fargv[64];
	int fargc;
};

static int add_arg(struct margs *m, char *a)
{
	if (m->fargc >= 62) {
		tool_err(NULL, "too many arguments");
		return -1;
	}
	m->fargv[m->fargc++] = a;
	return 0;
}

/* Returns -1 on a usage error, 1 for --help, 0 to mount. */
static int parse(int argc, char **argv, struct margs *m)
{
	memset(m, 0, sizeof(*m));
	m->fargv[m->fargc++] = argv[0];
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return 1;
		if (!strcmp(a, "-f") || !strcmp(a, "-d") || !strcmp(a, "-s")) {
			if (add_arg(m, argv[i]) < 0)
				return -1;
		} else if (!strcmp(a, "-o")) {
			if (i + 1 >= argc) {
				tool_err(NULL, "-o needs an argument");
				return -1;
			}
			if (add_arg(m, argv[i]) < 0 || add_arg(m, argv[++i]) < 0)
				return -1;
		} else if (a[0] == '-') {
			tool_err(NULL, "unknown option '%s' (try 'vmfsmount --help')", a);
			return -1;
		} else if (!m->dev) {
			m->dev = a;
		} else if (!m->mnt) {
			m->mnt = a;
		} else {
			tool_err(NULL, "unexpected argument '%s'", a);
			return -1;
		}
	}
	if (!m->dev || !m->mnt) {
		tool_err(NULL, "expected DEVICE MOUNTPOINT (try 'vmfsmount --help')");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	/* Single-threaded (-s): calls are serialised anyway, and libfuse 3.14's
	 * multi-threaded loop warns about its own max_threads default. */
	static char ro[] = "-o", roopt[] = "ro", single[] = "-s";
	char fsname[4200];
	struct margs m;
	struct fsview *v;
	struct stat st;
	int rc;

	tool_prog = "vmfsmount";
	rc = parse(argc, argv, &m);

	if (rc) {
		if (rc > 0)
			usage(stdout);
		return rc > 0 ? 0 : 2;
	}
	if (stat(m.mnt, &st) < 0 || !S_ISDIR(st.st_mode)) {
		tool_err(NULL, "%s: mount point is not a directory", m.mnt);
		return 1;
	}
	if (fsview_open(NULL, m.dev, 0, &v) < 0)
		return 1;
	/* A ',' in the device name would split the option: replace it. */
	snprintf(fsname, sizeof(fsname), "fsname=%s", m.dev);
	for (char *c = fsname; *c; c++)
		if (*c == ',')
			*c = '_';
	snprintf(fsname + strlen(fsname), sizeof(fsname) - strlen(fsname), ",subtype=vmfs");
	if (add_arg(&m, single) < 0 || add_arg(&m, ro) < 0 || add_arg(&m, roopt) < 0 ||
	    add_arg(&m, ro) < 0 || add_arg(&m, fsname) < 0 || add_arg(&m, (char *)m.mnt) < 0) {
		fsview_close(v);
		return 2;
	}
	m.fargv[m.fargc] = NULL;
	rc = fuse_main(m.fargc, m.fargv, &fm_ops, v);
	fsview_close(v);
	return rc;
}
