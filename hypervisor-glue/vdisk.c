/*
 * vdisk.c - open virtual disks: locks with VMware's semantics, I/O, the
 * asynchronous queue, and errors that name the host holding a lock.
 *
 * Design note
 * -----------
 * A disk is its flat file; the descriptor (if any) only names it and gives
 * the guest-visible size (extent sectors x 512) and geometry. Invariants:
 *
 *  1. The flat file's FD lock is the disk's lock and is held from
 *     vdisk_open() to vdisk_close(): exclusive (O_RDWR), read-only shared
 *     (O_RDONLY) or multi-writer (O_RDWR | VMFS_O_MULTIWRITER). The
 *     descriptor is opened only for a moment to be read or replaced.
 *  2. An open first tries the lock once (VMFS_O_NOWAIT): a live holder
 *     means -EBUSY at once, with the holder's host name read from the lock
 *     record (vmfs_lock_query()). Only with opts.wait does it then wait up to
 *     the mount's lock timeout, during which the file system takes a dead
 *     holder over (its heartbeat stopped for the timeout) and replays its
 *     journal: that is how a VM restarts on another host.
 *  3. The guest sees exactly `size` bytes; every request is checked against
 *     it before it reaches the file system. The flat file is never smaller
 *     than size (checked at open: -EUCLEAN otherwise).
 *  4. Discard frees blocks only on thin disks opened exclusively (thick
 *     disks keep their reservation, as on ESXi; multi-writer and shared
 *     opens cannot free). It is advisory: where it does nothing it returns 0.
 *  5. Asynchronous requests are executed by up to queue_depth worker
 *     threads calling the same synchronous functions; struct vmfs is
 *     thread-safe, so requests may run in any order. A flush makes durable
 *     every write that completed before it was submitted (NBD's rule).
 *     vdisk_close() drains the queue before releasing the lock.
 *
 * States of an open disk:
 *
 *     vdisk_open --> OPEN --(first vdisk_submit)--> OPEN + workers
 *                     |                                 |
 *                     +------------ vdisk_close --------+--> drained, lock
 *                                                            released, freed
 */
#include "vdisk_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static _Thread_local char errbuf[512];

int vd_err(int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return rc;
}

const char *vdisk_errmsg(void)
{
	return errbuf;
}

const char *vdisk_strerror(int err)
{
	return vmfs_strerror(err);
}

/* ---- paths and descriptors ---------------------------------------------------------- */

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

static int read_small(struct vmfs *fs, const char *path, char *buf, size_t len, size_t *got)
{
	struct vmfs_file *f;
	ssize_t n = 0;
	size_t done = 0;
	int rc = vmfs_open(fs, path, O_RDONLY | VMFS_O_NOWAIT, 0, &f);

	if (rc)
		return rc;
	while (done < len) {
		n = vmfs_read(f, buf + done, len - done, done);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	vmfs_close(f);
	*got = done;
	return n < 0 ? (int)n : 0;
}

int vd_resolve(struct vmfs *fs, const char *path, struct vpath *vp)
{
	struct vmfs_stat st;
	char why[256], *text;
	size_t got = 0, dlen;
	const char *slash;
	int rc;

	memset(vp, 0, sizeof(*vp));
	if (!path || path[0] != '/' || strlen(path) >= VDISK_PATH_MAX)
		return vd_err(-EINVAL, "%s: not an absolute path", path ? path : "(null)");
	memcpy(vp->name, base_name(path), strnlen(base_name(path), sizeof(vp->name) - 1));
	rc = vmfs_getattr(fs, path, &st);
	if (rc)
		return vd_err(rc, "%s: %s", path, vmfs_strerror(rc));
	if (!S_ISREG(st.mode))
		return vd_err(-EISDIR, "%s: not a regular file", path);
	memcpy(vp->flat_path, path, strlen(path) + 1);
	if (st.size > VDISK_DESC_MAX || st.size < 21)
		return 0; /* a flat or raw disk */
	text = malloc(VDISK_DESC_MAX);
	if (!text)
		return -ENOMEM;
	rc = read_small(fs, path, text, (size_t)st.size, &got);
	if (rc == -EBUSY) {
		free(text);
		return vd_busy(fs, path, vp->name);
	}
	if (rc || !vdisk_desc_sniff(text, got)) {
		free(text);
		return rc ? vd_err(rc, "%s: %s", path, vmfs_strerror(rc)) : 0;
	}
	rc = vdisk_desc_parse(text, got, &vp->desc, why, sizeof(why));
	free(text);
	if (rc)
		return vd_err(rc, "%s: bad descriptor: %s", path, why);
	slash = strrchr(path, '/');
	dlen = (size_t)(slash - path) + 1;
	if (dlen + strlen(vp->desc.flat) >= VDISK_PATH_MAX)
		return vd_err(-ENAMETOOLONG, "%s: extent path too long", path);
	vp->has_desc = 1;
	memcpy(vp->desc_path, path, strlen(path) + 1);
	memcpy(vp->flat_path, path, dlen);
	memcpy(vp->flat_path + dlen, vp->desc.flat, strlen(vp->desc.flat) + 1);
	if (!strcmp(vp->flat_path, vp->desc_path))
		return vd_err(-EINVAL, "%s: bad descriptor: the extent names the descriptor itself",
			      path);
	return 0;
}

int vd_busy(struct vmfs *fs, const char *lockpath, const char *name)
{
	struct vmfs_lockinfo *li = malloc(sizeof(*li));
	char hosts[400] = "";
	size_t n = 0;
	unsigned shown = 0;
	const char *mode;

	if (!li || vmfs_lock_query(fs, lockpath, li) || li->nholders == 0) {
		free(li);
		return vd_err(-EBUSY, "%s is locked by another host", name);
	}
	for (unsigned i = 0; i < li->nholders && n < sizeof(hosts) - 80; i++) {
		int w = snprintf(hosts + n, sizeof(hosts) - n, "%s%s", shown ? ", " : "",
				 li->holders[i].hostname[0] ? li->holders[i].hostname : "?");

		if (w > 0)
			n += (size_t)w;
		shown++;
	}
	mode = li->mode == VMFS_LOCK_EX	  ? "exclusive"
	       : li->mode == VMFS_LOCK_SH ? "read-only shared"
					  : "multi-writer";
	vd_err(-EBUSY, "%s is locked by host%s %s (%s)", name, li->nholders > 1 ? "s" : "", hosts,
	       mode);
	free(li);
	return -EBUSY;
}

int vd_prov_get(struct vmfs *fs, const char *flat)
{
	char v[32];
	ssize_t n = vmfs_getxattr(fs, flat, VDISK_XATTR_PROV, v, sizeof(v) - 1);

	if (n < 0)
		return (int)n == -ERANGE ? -ENODATA : (int)n;
	v[n] = '\0';
	n = vdisk_prov_parse(v);
	return n < 0 ? -ENODATA : (int)n;
}

int vd_prov_set(struct vmfs *fs, const char *flat, enum vdisk_prov p)
{
	const char *s = vdisk_prov_name(p);

	return vmfs_setxattr(fs, flat, VDISK_XATTR_PROV, s, strlen(s), 0);
}

/* ---- open / close --------------------------------------------------------------------- */

static int open_flags(enum vdisk_mode m)
{
	return m == VDISK_SHARED	? O_RDONLY
	       : m == VDISK_MULTIWRITER ? O_RDWR | VMFS_O_MULTIWRITER
					: O_RDWR;
}

/* Provisioning of an open disk: recorded, else from the descriptor, else
 * from the extents (a hole: thin; a TBZ block: zeroedthick). */
static enum vdisk_prov guess_prov(struct vdisk *d)
{
	struct vmfs_extent ext[64];
	uint64_t pos = 0;
	int rc = vd_prov_get(d->fs, d->vp.flat_path), thick = VDISK_EAGERZEROEDTHICK;

	if (rc >= 0)
		return (enum vdisk_prov)rc;
	if (d->vp.has_desc && d->vp.desc.thin)
		return VDISK_THIN;
	while (pos < d->size) {
		int n = vmfs_file_extents(d->f, pos, d->size - pos, ext, 64);

		if (n <= 0)
			break;
		for (int i = 0; i < n; i++) {
			if (ext[i].flags & VMFS_EXT_HOLE)
				return VDISK_THIN;
			if (ext[i].flags & VMFS_EXT_ZERO)
				thick = VDISK_ZEROEDTHICK;
		}
		pos = ext[n - 1].off + ext[n - 1].len;
	}
	return (enum vdisk_prov)thick;
}

static int open_lock(struct vmfs *fs, struct vpath *vp, const struct vdisk_open_opts *o,
		     struct vmfs_file **f)
{
	int fl = open_flags(o->mode);
	int rc = vmfs_open(fs, vp->flat_path, fl | VMFS_O_NOWAIT, 0, f);

	if (rc == -EBUSY && o->wait)
		rc = vmfs_open(fs, vp->flat_path, fl, 0, f);
	if (rc == -EBUSY)
		return vd_busy(fs, vp->flat_path, vp->name);
	if (rc)
		return vd_err(rc, "%s: %s", vp->flat_path, vmfs_strerror(rc));
	return 0;
}

int vdisk_open(struct vmfs *fs, const char *path, const struct vdisk_open_opts *o,
	       struct vdisk **out)
{
	struct vdisk_open_opts def = {0};
	struct vdisk *d;
	struct vmfs_stat st;
	int rc;

	*out = NULL;
	o = o ? o : &def;
	if ((unsigned)o->mode > VDISK_MULTIWRITER || o->queue_depth > 64)
		return vd_err(-EINVAL, "bad open mode or queue depth");
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->fs = fs;
	d->mode = o->mode;
	d->qd = o->queue_depth ? o->queue_depth : 8;
	rc = vd_resolve(fs, path, &d->vp);
	if (!rc && d->vp.has_desc && d->vp.desc.rdonly && o->mode != VDISK_SHARED)
		rc = vd_err(-EROFS, "%s: the descriptor's extent is read-only (RDONLY)", path);
	if (!rc)
		rc = open_lock(fs, &d->vp, o, &d->f);
	if (!rc) {
		rc = vmfs_fstat(d->f, &st);
		if (rc)
			vd_err(rc, "%s: %s", d->vp.flat_path, vmfs_strerror(rc));
	}
	if (!rc) {
		d->size = d->vp.has_desc ? d->vp.desc.sectors * VDISK_SECTOR : st.size;
		if (st.size < d->size)
			rc = vd_err(-EUCLEAN,
				    "%s: the flat file %s is %llu bytes, the descriptor says %llu "
				    "sectors (%llu bytes)",
				    path, d->vp.desc.flat, (unsigned long long)st.size,
				    (unsigned long long)d->vp.desc.sectors,
				    (unsigned long long)d->size);
	}
	if (rc) {
		if (d->f)
			vmfs_close(d->f);
		free(d);
		return rc;
	}
	d->prov = guess_prov(d);
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->work, NULL);
	pthread_cond_init(&d->idle, NULL);
	*out = d;
	return 0;
}

static void workers_stop(struct vdisk *d)
{
	pthread_mutex_lock(&d->mu);
	while (d->pending)
		pthread_cond_wait(&d->idle, &d->mu);
	d->stop = 1;
	pthread_cond_broadcast(&d->work);
	pthread_mutex_unlock(&d->mu);
	for (unsigned i = 0; i < d->nworkers; i++)
		pthread_join(d->workers[i], NULL);
	free(d->workers);
}

int vdisk_close(struct vdisk *d)
{
	int rc;

	if (!d)
		return -EINVAL;
	workers_stop(d);
	rc = vmfs_close(d->f);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->work);
	pthread_cond_destroy(&d->idle);
	free(d);
	return rc;
}

uint64_t vdisk_size(const struct vdisk *d)
{
	return d->size;
}
enum vdisk_mode vdisk_mode(const struct vdisk *d)
{
	return d->mode;
}
enum vdisk_prov vdisk_prov(const struct vdisk *d)
{
	return d->prov;
}

/* ---- synchronous I/O ------------------------------------------------------------------ */

static int in_range(const struct vdisk *d, uint64_t off, uint64_t len)
{
	return off <= d->size && len <= d->size - off;
}

ssize_t vdisk_pread(struct vdisk *d, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	if (!in_range(d, off, len))
		return -EINVAL;
	while (done < len) {
		ssize_t n = vmfs_read(d->f, (char *)buf + done, len - done, off + done);

		if (n < 0)
			return n;
		if (n == 0) { /* the flat file shrank under us: cannot happen while locked */
			memset((char *)buf + done, 0, len - done);
			break;
		}
		done += (size_t)n;
	}
	return (ssize_t)len;
}

ssize_t vdisk_pwrite(struct vdisk *d, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	if (d->mode == VDISK_SHARED)
		return -EBADF;
	if (!in_range(d, off, len))
		return -EINVAL;
	while (done < len) {
		ssize_t n = vmfs_write(d->f, (const char *)buf + done, len - done, off + done);

		if (n < 0)
			return n;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return (ssize_t)len;
}

int vdisk_flush(struct vdisk *d)
{
	return d->mode == VDISK_SHARED ? 0 : vmfs_fsync(d->f);
}

int vdisk_discard(struct vdisk *d, uint64_t off, uint64_t len)
{
	if (!in_range(d, off, len))
		return -EINVAL;
	if (d->mode == VDISK_SHARED)
		return -EBADF;
	if (!len || d->mode != VDISK_EXCLUSIVE || d->prov != VDISK_THIN)
		return 0;
	return vmfs_discard(d->f, off, len);
}

static int write_zero_buf(struct vdisk *d, uint64_t off, uint64_t len)
{
	size_t chunk = len < (1u << 20) ? (size_t)len : (1u << 20);
	void *z = calloc(1, chunk ? chunk : 1);
	int rc = z ? 0 : -ENOMEM;

	while (!rc && len) {
		size_t n = len < chunk ? (size_t)len : chunk;
		ssize_t w = vdisk_pwrite(d, z, n, off);

		rc = w < 0 ? (int)w : 0;
		off += n;
		len -= n;
	}
	free(z);
	return rc;
}

int vdisk_write_zeroes(struct vdisk *d, uint64_t off, uint64_t len, unsigned flags)
{
	int rc;

	if (d->mode == VDISK_SHARED)
		return -EBADF;
	if (!in_range(d, off, len))
		return -EINVAL;
	if (!len)
		return 0;
	if ((flags & VDISK_ZERO_MAY_TRIM) && d->prov == VDISK_THIN && d->mode == VDISK_EXCLUSIVE)
		return vmfs_discard(d->f, off, len); /* punch: the range reads as zeroes */
	rc = vmfs_fallocate(d->f, VMFS_FALLOC_ZERO_RANGE | VMFS_FALLOC_KEEP_SIZE, off, len);
	if (rc != -EBUSY && rc != -EOPNOTSUPP)
		return rc;
	if (flags & VDISK_ZERO_FAST)
		return -ENOTSUP;
	return write_zero_buf(d, off, len);
}

int vdisk_extents(struct vdisk *d, uint64_t off, uint64_t len, struct vmfs_extent *ext,
		  unsigned max)
{
	if (off >= d->size)
		return off == d->size && !len ? 0 : -EINVAL;
	if (len > d->size - off)
		len = d->size - off;
	return vmfs_file_extents(d->f, off, len, ext, max);
}

/* ---- asynchronous requests ------------------------------------------------------------- */

static ssize_t run_req(struct vdisk *d, struct vdisk_req *r)
{
	switch (r->op) {
	case VDISK_OP_READ: return vdisk_pread(d, r->buf, (size_t)r->len, r->off);
	case VDISK_OP_WRITE: return vdisk_pwrite(d, r->buf, (size_t)r->len, r->off);
	case VDISK_OP_FLUSH: return vdisk_flush(d);
	case VDISK_OP_DISCARD: return vdisk_discard(d, r->off, r->len);
	case VDISK_OP_WRITE_ZEROES: return vdisk_write_zeroes(d, r->off, r->len, r->flags);
	}
	return -EINVAL;
}

static void *worker(void *arg)
{
	struct vdisk *d = arg;

	pthread_mutex_lock(&d->mu);
	for (;;) {
		struct vdisk_req *r;
		ssize_t res;

		while (!d->head && !d->stop)
			pthread_cond_wait(&d->work, &d->mu);
		if (!d->head)
			break;
		r = d->head;
		d->head = r->next_;
		if (!d->head)
			d->tail = NULL;
		pthread_mutex_unlock(&d->mu);
		res = run_req(d, r);
		r->done(r, res);
		pthread_mutex_lock(&d->mu);
		if (--d->pending == 0)
			pthread_cond_broadcast(&d->idle);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

/* Starts the workers (mutex held). */
static int workers_start(struct vdisk *d)
{
	d->workers = calloc(d->qd, sizeof(*d->workers));
	if (!d->workers)
		return -ENOMEM;
	for (unsigned i = 0; i < d->qd; i++) {
		int rc = pthread_create(&d->workers[i], NULL, worker, d);

		if (rc) {
			if (!d->nworkers)
				return -rc;
			break;
		}
		d->nworkers++;
	}
	return 0;
}

int vdisk_submit(struct vdisk *d, struct vdisk_req *r)
{
	int rc = 0;

	if (!r || !r->done || (unsigned)r->op > VDISK_OP_WRITE_ZEROES)
		return -EINVAL;
	pthread_mutex_lock(&d->mu);
	if (d->stop)
		rc = -ESHUTDOWN;
	else if (!d->nworkers)
		rc = workers_start(d);
	if (!rc) {
		r->next_ = NULL;
		if (d->tail)
			d->tail->next_ = r;
		else
			d->head = r;
		d->tail = r;
		d->pending++;
		pthread_cond_signal(&d->work);
	}
	pthread_mutex_unlock(&d->mu);
	return rc;
}

void vdisk_drain(struct vdisk *d)
{
	pthread_mutex_lock(&d->mu);
	while (d->pending)
		pthread_cond_wait(&d->idle, &d->mu);
	pthread_mutex_unlock(&d->mu);
}
