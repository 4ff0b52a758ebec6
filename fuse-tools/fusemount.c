/*
 * fusemount.c - vmfsmount: a FUSE mount (libfuse3).
 *
 *   vmfsmount [-f] [-d] [-s] [-o OPT[,OPT...]] DEVICE MOUNTPOINT
 *
 * This file parses the command line, detects what the device holds and
 * dispatches:
 *  - a native libvmfs volume: mounted read-write (read-only with -o ro) as
 *    one host of the cluster by fusemount_native.c, over vmfs.h (libfuse's
 *    low-level API, by inode);
 *  - a real VMFS5/6 datastore: mounted read-only here, through the
 *    format-neutral fsview (libfuse's high-level API, by path).
 *
 * Design note (real VMFS): the view is opened (and the device checked)
 * before fuse_main(), so a missing device or an unknown file system is a
 * clear one-line error, not a failed mount. The mount is always read-only
 * ("ro" is forced; opens for writing get EROFS). One mutex serialises
 * calls into the view, which is not thread-safe; reads of a datastore are
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
#include "fusemount.h"

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
	fprintf(
	    f, "Usage: vmfsmount [-f] [-d] [-s] [-o OPT[,OPT...]] DEVICE MOUNTPOINT\n"
	       "Mount a native libvmfs volume (read-write, as one host of the cluster) or a\n"
	       "real VMFS5/VMFS6 datastore (read-only) with FUSE.\n"
	       "  -f              stay in the foreground\n"
	       "  -d              debug output (implies -f)\n"
	       "  -s              single-threaded (same as -o threads=1)\n"
	       "  -o ro           mount read-only (native: no heartbeat slot, no locks)\n"
	       "  -o host=NAME    native: the host name in this mount's heartbeat slot\n"
	       "                  (default: the machine's host name)\n"
	       "  -o open_wait=MS native: how long an open waits for a file locked by another\n"
	       "                  host before failing with EBUSY (default 250; a value of at\n"
	       "                  least the volume's lock timeout also breaks a dead host's lock)\n"
	       "  -o cache_mb=N   native: metadata cache of N MiB, checked against the lock\n"
	       "                  generations before each use (default 32; -1: none)\n"
	       "  -o keep_locks   native: keep locks after each change, commit changes in\n"
	       "                  groups (durable within 10 ms, or at fsync) and write in place\n"
	       "                  at checkpoints; another host asking gets them (hand-over)\n"
	       "  -o threads=N    native: serve up to N requests at once (default 32, 1 to\n"
	       "                  256; real datastores: always 1)\n"
	       "  -o entry_timeout=S,attr_timeout=S,negative_timeout=S\n"
	       "                  native: let the kernel cache names and attributes for S\n"
	       "                  seconds (default 0: other hosts' changes are seen at once)\n"
	       "  -o OPTS         other FUSE mount options (allow_other, default_permissions...)\n"
	       "  -V, --version   print the version\n"
	       "Unmount with: fusermount3 -u MOUNTPOINT (or send SIGTERM to vmfsmount)\n");
}

static int add_fopt(struct fm_args *a, const char *opt)
{
	size_t n = strlen(a->fopts);

	if (n + strlen(opt) + 2 > sizeof(a->fopts)) {
		tool_err(NULL, "mount options too long");
		return -1;
	}
	snprintf(a->fopts + n, sizeof(a->fopts) - n, "%s%s", n ? "," : "", opt);
	return 0;
}

/* The value v of option NAME=v: a decimal in [lo, hi] ("expected WHAT"). */
static int parse_num(const char *name, const char *v, long lo, long hi, const char *what, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < lo || n > hi) {
		tool_err(NULL, "%s=%s: expected %s (%ld to %ld)", name, v, what, lo, hi);
		return -1;
	}
	*out = n;
	return 0;
}

static int parse_wait(struct fm_args *a, const char *v)
{
	return parse_num("open_wait", v, 0, 3600000, "milliseconds", &a->open_wait_ms);
}

static int parse_threads(struct fm_args *a, const char *v)
{
	long n;

	if (parse_num("threads", v, 1, 256, "a number of threads", &n) < 0)
		return -1;
	a->threads = (int)n;
	return 0;
}

/* Splits one -o argument: our options are kept, the rest go to FUSE. */
static int parse_opts(struct fm_args *a, char *list)
{
	for (char *save = NULL, *o = strtok_r(list, ",", &save); o;
	     o = strtok_r(NULL, ",", &save)) {
		if (!strncmp(o, "host=", 5)) {
			if (!o[5] || strlen(o + 5) > 63) {
				tool_err(NULL, "host=NAME: NAME must have 1 to 63 characters");
				return -1;
			}
			a->host = o + 5;
			continue;
		}
		if (!strncmp(o, "open_wait=", 10)) {
			if (parse_wait(a, o + 10) < 0)
				return -1;
			continue;
		}
		if (!strncmp(o, "cache_mb=", 9)) {
			if (parse_num("cache_mb", o + 9, -1, 65536, "MiB", &a->cache_mb) < 0)
				return -1;
			continue;
		}
		if (!strcmp(o, "keep_locks")) {
			a->keep_locks = 1;
			continue;
		}
		if (!strncmp(o, "threads=", 8)) {
			if (parse_threads(a, o + 8) < 0)
				return -1;
			continue;
		}
		if (!strcmp(o, "ro"))
			a->ro = 1;
		if (!strcmp(o, "rw"))
			a->ro = 0;
		if (strcmp(o, "ro") && strcmp(o, "rw") && add_fopt(a, o) < 0)
			return -1;
	}
	return 0;
}

/* Returns -1 on a usage error, 1 for --help, 2 for --version, 0 to mount. */
static int parse(int argc, char **argv, struct fm_args *a)
{
	memset(a, 0, sizeof(*a));
	a->argv0 = argv[0];
	a->open_wait_ms = -1;
	for (int i = 1; i < argc; i++) {
		char *s = argv[i];

		if (!strcmp(s, "-h") || !strcmp(s, "--help"))
			return 1;
		if (!strcmp(s, "-V") || !strcmp(s, "--version"))
			return 2;
		if (!strcmp(s, "-f")) {
			a->foreground = 1;
		} else if (!strcmp(s, "-d")) {
			a->debug = a->foreground = 1;
		} else if (!strcmp(s, "-s")) {
			a->threads = 1;
		} else if (!strncmp(s, "-o", 2)) {
			char *list = s[2] ? s + 2 : (i + 1 < argc ? argv[++i] : NULL);

			if (!list) {
				tool_err(NULL, "-o needs an argument");
				return -1;
			}
			if (parse_opts(a, list) < 0)
				return -1;
		} else if (s[0] == '-') {
			tool_err(NULL, "unknown option '%s' (try 'vmfsmount --help')", s);
			return -1;
		} else if (!a->dev) {
			a->dev = s;
		} else if (!a->mnt) {
			a->mnt = s;
		} else {
			tool_err(NULL, "unexpected argument '%s'", s);
			return -1;
		}
	}
	if (!a->dev || !a->mnt) {
		tool_err(NULL, "expected DEVICE MOUNTPOINT (try 'vmfsmount --help')");
		return -1;
	}
	return 0;
}

/* Real VMFS5/6: read-only through fsview and fuse_main(). */
static int real_main(struct fm_args *a)
{
	/* Single-threaded (-s): calls are serialised anyway, and libfuse 3.14's
	 * multi-threaded loop warns about its own max_threads default. */
	static char o[] = "-o", single[] = "-s", fg[] = "-f", dbg[] = "-d";
	char fsname[4200], opts[FM_OPTS_MAX + 8];
	char *fargv[16];
	int fargc = 0, rc;
	struct fsview *v;

	if (fsview_open(NULL, a->dev, 0, &v) < 0)
		return 1;
	/* A ',' in the device name would split the option: replace it. */
	snprintf(fsname, sizeof(fsname), "fsname=%s", a->dev);
	for (char *c = fsname; *c; c++)
		if (*c == ',')
			*c = '_';
	snprintf(fsname + strlen(fsname), sizeof(fsname) - strlen(fsname), ",subtype=vmfs");
	snprintf(opts, sizeof(opts), "ro%s%s", a->fopts[0] ? "," : "", a->fopts);
	fargv[fargc++] = a->argv0;
	if (a->foreground)
		fargv[fargc++] = fg;
	if (a->debug)
		fargv[fargc++] = dbg;
	fargv[fargc++] = single;
	fargv[fargc++] = o;
	fargv[fargc++] = opts;
	fargv[fargc++] = o;
	fargv[fargc++] = fsname;
	fargv[fargc++] = (char *)a->mnt;
	fargv[fargc] = NULL;
	rc = fuse_main(fargc, fargv, &fm_ops, v);
	fsview_close(v);
	return rc;
}

int main(int argc, char **argv)
{
	struct fm_args a;
	struct bdev *bd;
	enum tool_fmt fmt;
	struct stat st;
	int rc;

	tool_prog = "vmfsmount";
	rc = parse(argc, argv, &a);
	if (rc) {
		if (rc == 1)
			usage(stdout);
		if (rc == 2)
			tool_version();
		return rc > 0 ? 0 : 2;
	}
	if (stat(a.mnt, &st) < 0 || !S_ISDIR(st.st_mode)) {
		tool_err(NULL, "%s: mount point is not a directory", a.mnt);
		return 1;
	}
	if (tool_open(NULL, a.dev, 1, &bd) < 0)
		return 1;
	fmt = tool_detect(bd);
	bdev_close(bd);
	if (fmt == TOOL_FMT_NATIVE)
		return fm_native_main(&a);
	return real_main(&a);
}
