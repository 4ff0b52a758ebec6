/*
 * bdev_file.c - image files and block devices ("/path" or "file:/path?opts").
 *
 * Design note
 *  - Opened with O_DIRECT when the underlying file system allows it (tmpfs
 *    does not: then the page cache is used and BDEV_CAP_DIRECT is clear).
 *    Unaligned caller buffers are bounced through aligned memory: a buffer
 *    per thread, kept between calls (up to BOUNCE_KEEP bytes; larger
 *    requests get their own) and freed at the thread's exit, so a data
 *    path serving unaligned FUSE buffers does not allocate per request.
 *  - ATS is emulated: an OFD byte-range write lock (F_OFD_SETLKW) on exactly
 *    the sector, then read, compare, write, unlock. OFD locks belong to the
 *    open file description, so two bdevs opened by two processes (or twice
 *    in one process) exclude each other; threads sharing one bdev are
 *    serialised by ats_mu[] in addition, because they share the description;
 *    the mutexes are striped by sector so unrelated sectors never contend.
 *    Invariant: a sector changed by ats() is only ever changed by ats(), so
 *    the OFD lock is the only writer's gate it needs.
 *  - The logical sector size presented is 512 for image files (option
 *    sector=4096 presents 4Kn), the device's own for block devices; it must
 *    be a multiple of the device's real logical block size.
 *  - I/O engines: "sync" (pread/pwrite) is always there; bdev_file_engine.c
 *    adds "uring" and "aio" for bdev_submit() batches when the kernel
 *    allows them, chosen at open time (engine=auto tries uring, then aio,
 *    then sync).
 */
#include "bdev.h"
#include "bdev_file.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define ALIGN	    4096u
#define BOUNCE_KEEP (4u << 20)

static int is_aligned(const void *buf)
{
	return ((uintptr_t)buf & (ALIGN - 1)) == 0;
}

struct bounce {
	void *p;
	size_t cap;
};

static pthread_key_t bounce_key;
static pthread_once_t bounce_once = PTHREAD_ONCE_INIT;
static int bounce_ok;

static void bounce_free(void *arg)
{
	struct bounce *b = arg;

	free(b->p);
	free(b);
}

static void bounce_init(void)
{
	bounce_ok = pthread_key_create(&bounce_key, bounce_free) == 0;
}

/* An aligned buffer of len bytes (content undefined): this thread's kept
 * one, or (*own set) a new one the caller frees. NULL: out of memory. */
static void *bounce_get(size_t len, int *own)
{
	struct bounce *b;
	void *p = NULL;

	pthread_once(&bounce_once, bounce_init);
	b = bounce_ok ? pthread_getspecific(bounce_key) : NULL;
	*own = 0;
	if (bounce_ok && !b && len <= BOUNCE_KEEP && (b = calloc(1, sizeof(*b))) &&
	    pthread_setspecific(bounce_key, b)) {
		free(b);
		b = NULL;
	}
	if (!b || len > BOUNCE_KEEP) {
		*own = 1;
		return posix_memalign(&p, ALIGN, len ? len : ALIGN) ? NULL : p;
	}
	if (b->cap < len) {
		free(b->p);
		b->p = NULL;
		b->cap = 0;
		if (posix_memalign(&p, ALIGN, len))
			return NULL;
		b->p = p;
		b->cap = len;
	}
	return b->p;
}

int file_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* the device shrank under us */
		done += (size_t)n;
	}
	return 0;
}

int file_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

static int file_read(struct bdev *bd, void *buf, uint64_t off, size_t len)
{
	struct file_priv *p = bd->priv;
	void *bounce;
	int rc, own;

	if (!p->direct || is_aligned(buf))
		return file_pread_all(p->fd, buf, len, off);
	bounce = bounce_get(len, &own);
	if (!bounce)
		return -ENOMEM;
	rc = file_pread_all(p->fd, bounce, len, off);
	if (rc == 0)
		memcpy(buf, bounce, len);
	if (own)
		free(bounce);
	return rc;
}

static int file_write(struct bdev *bd, const void *buf, uint64_t off, size_t len)
{
	struct file_priv *p = bd->priv;
	void *bounce;
	int rc, own;

	if (!p->direct || is_aligned(buf))
		return file_pwrite_all(p->fd, buf, len, off);
	bounce = bounce_get(len, &own);
	if (!bounce)
		return -ENOMEM;
	memcpy(bounce, buf, len);
	rc = file_pwrite_all(p->fd, bounce, len, off);
	if (own)
		free(bounce);
	return rc;
}

static int file_flush(struct bdev *bd)
{
	struct file_priv *p = bd->priv;

	if (p->nosync)
		return 0;
	return fdatasync(p->fd) < 0 ? -errno : 0;
}

static int ofd_lock(int fd, short type, uint64_t off, uint64_t len)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)off;
	fl.l_len = (off_t)len;
	while (fcntl(fd, F_OFD_SETLKW, &fl) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static int file_ats(struct bdev *bd, uint64_t off, const void *expect, const void *newdata,
		    void *actual)
{
	struct file_priv *p = bd->priv;
	/* Fibonacci hash of the sector number: units 4 KiB apart spread over
	 * every stripe. */
	uint64_t h = (off / bd->lsec) * 0x9E3779B97F4A7C15ull;
	pthread_mutex_t *mu = &p->ats_mu[h >> 58];

	_Static_assert(FILE_ATS_STRIPES == 64, "h >> 58 picks one of 64 stripes");
	unsigned char *cur = bdev_alloc(bd->lsec);
	int rc;

	if (!cur)
		return -ENOMEM;
	pthread_mutex_lock(mu);
	rc = ofd_lock(p->fd, F_WRLCK, off, bd->lsec);
	if (rc == 0) {
		rc = file_read(bd, cur, off, bd->lsec);
		if (rc == 0 && memcmp(cur, expect, bd->lsec) != 0) {
			if (actual)
				memcpy(actual, cur, bd->lsec);
			rc = -BDEV_E_MISCOMPARE;
		} else if (rc == 0) {
			rc = file_write(bd, newdata, off, bd->lsec);
		}
		ofd_lock(p->fd, F_UNLCK, off, bd->lsec);
	}
	pthread_mutex_unlock(mu);
	bdev_free(cur);
	return rc;
}

/* Punching a hole reads back as zeroes on files and, since Linux 4.9, on block
 * devices too (unlike BLKDISCARD, whose data afterwards is unspecified). */
static int file_discard(struct bdev *bd, uint64_t off, uint64_t len)
{
	struct file_priv *p = bd->priv;
	int mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;

	if (fallocate(p->fd, mode, (off_t)off, (off_t)len) < 0)
		return errno == EOPNOTSUPP ? -EOPNOTSUPP : -errno;
	return 0;
}

static int file_write_zeroes(struct bdev *bd, uint64_t off, uint64_t len)
{
	struct file_priv *p = bd->priv;
	uint64_t range[2] = {off, len};
	int mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;

	if (p->is_blk)
		return ioctl(p->fd, BLKZEROOUT, &range) < 0 ? -EOPNOTSUPP : 0;
	if (fallocate(p->fd, mode, (off_t)off, (off_t)len) < 0)
		return errno == EOPNOTSUPP ? -EOPNOTSUPP : -errno;
	return 0;
}

static void file_close(struct bdev *bd)
{
	struct file_priv *p = bd->priv;

	if (!p)
		return;
	file_engine_fini(p);
	if (p->fd >= 0)
		close(p->fd);
	for (int i = 0; i < FILE_ATS_STRIPES; i++)
		pthread_mutex_destroy(&p->ats_mu[i]);
	free(p);
}

static int probe_geometry(struct file_priv *p, uint64_t *size, uint32_t *dev_lsec,
			  uint32_t *dev_psec);

/* An image file or block device that grew: fstat / BLKGETSIZE64 again. */
static int file_refresh_size(struct bdev *bd, uint64_t *size)
{
	uint32_t ls, ps;

	return probe_geometry(bd->priv, size, &ls, &ps);
}

static const struct bdev_ops file_ops = {
    .version = BDEV_OPS_VERSION,
    .name = "file",
    .read = file_read,
    .write = file_write,
    .submit = file_engine_submit,
    .flush = file_flush,
    .ats = file_ats,
    .discard = file_discard,
    .write_zeroes = file_write_zeroes,
    .close = file_close,
    .refresh_size = file_refresh_size,
};

static int open_fd(const char *path, unsigned flags, int want_direct, int *direct)
{
	int mode = (flags & BDEV_O_RDONLY) ? O_RDONLY : O_RDWR;
	int fd = -1;

	*direct = 0;
	if (want_direct) {
		fd = open(path, mode | O_DIRECT | O_CLOEXEC);
		if (fd >= 0)
			*direct = 1;
		else if (errno != EINVAL)
			return -errno;
	}
	if (fd < 0)
		fd = open(path, mode | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Size and sector sizes of what fd refers to. */
static int probe_geometry(struct file_priv *p, uint64_t *size, uint32_t *dev_lsec,
			  uint32_t *dev_psec)
{
	struct stat st;

	if (fstat(p->fd, &st) < 0)
		return -errno;
	*dev_lsec = 512;
	*dev_psec = 512;
	if (S_ISBLK(st.st_mode)) {
		int ls = 0;
		unsigned int ps = 0;

		p->is_blk = 1;
		if (ioctl(p->fd, BLKGETSIZE64, size) < 0)
			return -errno;
		if (ioctl(p->fd, BLKSSZGET, &ls) == 0 && ls > 0)
			*dev_lsec = (uint32_t)ls;
		if (ioctl(p->fd, BLKPBSZGET, &ps) == 0 && ps > 0)
			*dev_psec = ps;
		return 0;
	}
	if (S_ISDIR(st.st_mode))
		return -EISDIR; /* a read-only open of a directory succeeds */
	if (!S_ISREG(st.st_mode))
		return -ENOTBLK;
	*size = (uint64_t)st.st_size;
	return 0;
}

/* Every key of "a=1&b=2" must be one of `keys` (a typo must not be ignored)
 * and every value shorter than OPT_MAX. */
#define OPT_MAX 32
static int check_keys(const char *opts, const char *const *keys)
{
	const char *p = opts;

	while (p && *p) {
		size_t len = strcspn(p, "=&");
		const char *const *k;

		for (k = keys; *k; k++)
			if (strlen(*k) == len && strncmp(p, *k, len) == 0 && p[len] == '=')
				break;
		if (!*k || strcspn(p + len + 1, "&") >= OPT_MAX)
			return -BDEV_E_URI;
		p = strchr(p, '&');
		p = p ? p + 1 : NULL;
	}
	return 0;
}

static int parse_bool(const char *val, int *out)
{
	if (strcmp(val, "0") != 0 && strcmp(val, "1") != 0)
		return -BDEV_E_URI;
	*out = val[0] == '1';
	return 0;
}

struct file_opts {
	uint32_t lsec; /* 0 = the device's */
	int direct;
	int ro;
	int nosync; /* flush is a no-op: tests that prove no durability only */
	char engine[16];
	size_t maxio;
};

static int parse_opts(const char *opts, struct file_opts *o)
{
	static const char *const keys[] = {"sector", "engine", "direct", "ro",
					   "maxio",  "nosync", NULL};
	char val[OPT_MAX], *end;

	if (check_keys(opts, keys) < 0)
		return -BDEV_E_URI;
	if (bdev_opt(opts, "sector", val, sizeof(val)) == 0) {
		if (strcmp(val, "512") != 0 && strcmp(val, "4096") != 0)
			return -BDEV_E_URI;
		o->lsec = (uint32_t)atoi(val);
	}
	if (bdev_opt(opts, "direct", val, sizeof(val)) == 0 && parse_bool(val, &o->direct) < 0)
		return -BDEV_E_URI;
	if (bdev_opt(opts, "ro", val, sizeof(val)) == 0 && parse_bool(val, &o->ro) < 0)
		return -BDEV_E_URI;
	if (bdev_opt(opts, "nosync", val, sizeof(val)) == 0 && parse_bool(val, &o->nosync) < 0)
		return -BDEV_E_URI;
	if (bdev_opt(opts, "engine", val, sizeof(val)) == 0) {
		if (strlen(val) >= sizeof(o->engine))
			return -BDEV_E_URI;
		strcpy(o->engine, val);
	}
	if (bdev_opt(opts, "maxio", val, sizeof(val)) == 0) {
		errno = 0;
		o->maxio = (size_t)strtoull(val, &end, 10);
		if (errno || *end || o->maxio == 0 || val[0] < '0' || val[0] > '9')
			return -BDEV_E_URI;
	}
	return 0;
}

/* O_DIRECT may need more alignment than lsec (a file system on a 4Kn disk):
 * try one aligned read of lsec bytes and fall back to buffered I/O. */
static int probe_direct(struct file_priv *p, const char *path, unsigned flags, uint32_t lsec,
			uint64_t size)
{
	void *buf;
	ssize_t n;
	int fd;

	if (!p->direct || size < lsec)
		return 0;
	buf = bdev_alloc(lsec);
	if (!buf)
		return -ENOMEM;
	n = pread(p->fd, buf, lsec, 0);
	bdev_free(buf);
	if (n >= 0 || errno != EINVAL)
		return 0;
	fd = open(path, ((flags & BDEV_O_RDONLY) ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	close(p->fd);
	p->fd = fd;
	p->direct = 0;
	return 0;
}

int bdev_file_open(const char *path, const char *opts, unsigned flags, struct bdev **out)
{
	struct file_opts o = {.direct = 1, .engine = "auto"};
	uint32_t lsec, dev_lsec, dev_psec;
	struct file_priv *p;
	struct bdev *bd;
	uint64_t size = 0;
	int rc;

	rc = parse_opts(opts, &o);
	if (rc < 0)
		return rc;
	if (o.ro)
		flags |= BDEV_O_RDONLY;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (int i = 0; i < FILE_ATS_STRIPES; i++)
		pthread_mutex_init(&p->ats_mu[i], NULL);
	p->nosync = o.nosync;
	p->fd = open_fd(path, flags, o.direct, &p->direct);
	if (p->fd < 0) {
		rc = p->fd;
		goto fail;
	}
	rc = probe_geometry(p, &size, &dev_lsec, &dev_psec);
	if (rc < 0)
		goto fail;
	lsec = o.lsec ? o.lsec : dev_lsec;
	rc = -EINVAL;
	if (lsec % dev_lsec || o.maxio % lsec)
		goto fail;
	rc = probe_direct(p, path, flags, lsec, size);
	if (rc < 0)
		goto fail;
	p->maxio = o.maxio;
	rc = -ENOMEM;
	bd = bdev_new(&file_ops, path);
	if (!bd)
		goto fail;
	bd->priv = p;
	bd->lsec = lsec;
	bd->psec = dev_psec > lsec ? dev_psec : lsec;
	bd->size = size - size % lsec;
	bd->caps = BDEV_CAP_DISCARD | BDEV_CAP_ZEROES | (p->direct ? BDEV_CAP_DIRECT : 0) |
		   ((flags & BDEV_O_RDONLY) ? BDEV_CAP_READONLY : 0);
	rc = file_engine_init(p, o.engine, bd->engine, sizeof(bd->engine));
	if (rc < 0) {
		bdev_close(bd);
		return rc;
	}
	*out = bd;
	return 0;
fail:
	if (p->fd >= 0)
		close(p->fd);
	for (int i = 0; i < FILE_ATS_STRIPES; i++)
		pthread_mutex_destroy(&p->ats_mu[i]);
	free(p);
	return rc;
}
