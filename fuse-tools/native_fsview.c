/*
 * native_fsview.c - the fsview of native libvmfs volumes (see fsview.h), over
 * the path-based API of libvmfs/vmfs.h.
 *
 * Design note
 *  - A view opened read-only mounts read-only (no heartbeat slot, no locks,
 *    nothing written); a read-write view joins the heartbeat like any host,
 *    so copying into a volume other hosts have mounted is safe.
 *  - fsview names files by inode number; vmfs.h by path. The view keeps a
 *    hash table inode -> path, filled by lookup() and readdir(), so every inode
 *    the callers can know of has a path. An inode reached by two paths
 *    (hard links) keeps the first; either names the same file.
 *  - Symbolic links are resolved here (vmfs.h never follows them): every
 *    component but the last always, the last when asked, at most
 *    NV_MAX_LINKS links per lookup (-ELOOP beyond).
 *  - import() writes runs of zero bytes as holes: a thin VM disk copied in
 *    stays thin.
 */
#include "fsview.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdev.h"
#include "vmfs.h"

#define NV_MAX_LINKS 40
#define NV_CHUNK     (1u << 20)

struct nv_ent {
	uint64_t ino;
	char *path; /* NULL: empty slot */
};

struct nv {
	struct vmfs *fs;
	struct nv_ent *tab; /* open addressing by inode, cap a power of two */
	size_t n, cap;
	char err[512];
};

#define NV(v) ((struct nv *)(v)->priv)

/* The slot of ino in tab: where it is, or the empty slot where it goes. */
static struct nv_ent *nv_slot(struct nv_ent *tab, size_t cap, uint64_t ino)
{
	size_t i = (size_t)((ino * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);

	while (tab[i].path && tab[i].ino != ino)
		i = (i + 1) & (cap - 1);
	return &tab[i];
}

static const char *nv_path(struct fsview *v, uint64_t ino)
{
	struct nv *nv = NV(v);

	return nv->cap ? nv_slot(nv->tab, nv->cap, ino)->path : NULL;
}

/* Doubles the table (kept at most half full, so probes stay short). */
static int nv_grow(struct nv *nv)
{
	size_t cap = nv->cap ? nv->cap * 2 : 64;
	struct nv_ent *t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < nv->cap; i++)
		if (nv->tab[i].path)
			*nv_slot(t, cap, nv->tab[i].ino) = nv->tab[i];
	free(nv->tab);
	nv->tab = t;
	nv->cap = cap;
	return 0;
}

static int nv_remember(struct fsview *v, uint64_t ino, const char *path)
{
	struct nv *nv = NV(v);
	struct nv_ent *e;

	if (nv_path(v, ino))
		return 0;
	if (2 * (nv->n + 1) > nv->cap && nv_grow(nv) < 0)
		return -ENOMEM;
	e = nv_slot(nv->tab, nv->cap, ino);
	e->path = strdup(path);
	if (!e->path)
		return -ENOMEM;
	e->ino = ino;
	nv->n++;
	return 0;
}

static int nv_err(struct fsview *v, int rc)
{
	if (rc == -EUCLEAN)
		snprintf(NV(v)->err, sizeof(NV(v)->err), "%s", vmfs_errmsg(NV(v)->fs));
	return rc;
}

/* Drops the last component of path in place ("/a/b" -> "/a", "/a" -> "/"). */
static void nv_dirname(char *path)
{
	char *slash = strrchr(path, '/');

	if (slash == path)
		path[1] = '\0';
	else if (slash)
		*slash = '\0';
}

/* Resolves path into out (PATH_MAX bytes), following symlinks as described
 * at the top of this file. */
static int nv_resolve(struct fsview *v, const char *path, int follow, char *out, int *links)
{
	char rest[PATH_MAX], target[PATH_MAX], tmp[PATH_MAX];
	struct vmfs_stat st;
	char *p, *next;
	int rc, n;

	if (path[0] != '/' || strlen(path) >= sizeof(rest))
		return path[0] != '/' ? -EINVAL : -ENAMETOOLONG;
	strcpy(rest, path);
	strcpy(out, "/");
	for (p = rest; *p; p = next) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		next = strchr(p, '/');
		if (next)
			*next++ = '\0';
		else
			next = p + strlen(p);
		if (!strcmp(p, "."))
			continue;
		if (!strcmp(p, "..")) {
			nv_dirname(out);
			continue;
		}
		if (strlen(out) + strlen(p) + 2 > PATH_MAX)
			return -ENAMETOOLONG;
		if (strcmp(out, "/"))
			strcat(out, "/");
		strcat(out, p);
		rc = vmfs_getattr(NV(v)->fs, out, &st);
		if (rc < 0)
			return nv_err(v, rc);
		if (!S_ISLNK(st.mode) || (!*next && !follow))
			continue;
		if (++*links > NV_MAX_LINKS)
			return -ELOOP;
		rc = vmfs_readlink(NV(v)->fs, out, target, sizeof(target));
		if (rc < 0)
			return nv_err(v, rc);
		if ((size_t)rc >= sizeof(target))
			return -ENAMETOOLONG;
		nv_dirname(out);
		/* Continue with target + the components not yet walked (next
		 * points into rest: build the new path aside first). */
		n = target[0] == '/' ? snprintf(tmp, sizeof(tmp), "%s/%s", target, next)
				     : snprintf(tmp, sizeof(tmp), "%s/%s/%s", out, target, next);
		if (n < 0 || (size_t)n >= sizeof(tmp))
			return -ENAMETOOLONG;
		memcpy(rest, tmp, (size_t)n + 1);
		strcpy(out, "/");
		next = rest;
	}
	return 0;
}

static int nv_lookup(struct fsview *v, const char *path, int follow, uint64_t *ino)
{
	char real[PATH_MAX];
	struct vmfs_stat st;
	int links = 0, rc;

	rc = nv_resolve(v, path, follow, real, &links);
	if (!rc)
		rc = nv_err(v, vmfs_getattr(NV(v)->fs, real, &st));
	if (!rc)
		rc = nv_remember(v, st.ino, real);
	if (!rc)
		*ino = st.ino;
	return rc;
}

static int nv_getattr(struct fsview *v, uint64_t ino, struct fsview_stat *out)
{
	const char *path = nv_path(v, ino);
	struct vmfs_stat st;
	int rc;

	if (!path)
		return -ENOENT;
	rc = vmfs_getattr(NV(v)->fs, path, &st);
	if (rc < 0)
		return nv_err(v, rc);
	memset(out, 0, sizeof(*out));
	out->ino = st.ino;
	out->mode = st.mode;
	out->nlink = st.nlink;
	out->uid = st.uid;
	out->gid = st.gid;
	out->size = st.size;
	out->blocks = st.blocks;
	out->blksize = 4096;
	out->rdev_major = major((dev_t)st.rdev);
	out->rdev_minor = minor((dev_t)st.rdev);
	out->atime = (int64_t)(st.atime_ns / 1000000000u);
	out->mtime = (int64_t)(st.mtime_ns / 1000000000u);
	out->ctime = (int64_t)(st.ctime_ns / 1000000000u);
	return 0;
}

/* vmfs_readdir()'s callback must not call back into the mount: collect. */
struct nv_names {
	struct fsview_dir d;
	int err;
};

static int nv_collect(void *arg, const char *name, unsigned type, uint64_t ino)
{
	struct nv_names *c = arg;
	struct fsview_dent *e;

	(void)type;
	if (c->d.n == c->d.cap) {
		size_t cap = c->d.cap ? c->d.cap * 2 : 64;

		e = realloc(c->d.e, cap * sizeof(*e));
		if (!e)
			return c->err = -ENOMEM;
		c->d.e = e;
		c->d.cap = cap;
	}
	e = &c->d.e[c->d.n];
	e->name = strdup(name);
	if (!e->name)
		return c->err = -ENOMEM;
	e->ino = ino;
	c->d.n++;
	return 0;
}

static int nv_readdir(struct fsview *v, uint64_t ino, fsview_dir_cb cb, void *arg)
{
	const char *dir = nv_path(v, ino);
	struct nv_names c = {{NULL, 0, 0}, 0};
	char path[PATH_MAX];
	int rc;

	if (!dir)
		return -ENOENT;
	rc = vmfs_readdir(NV(v)->fs, dir, nv_collect, &c);
	if (rc < 0)
		rc = c.err ? c.err : nv_err(v, rc);
	for (size_t i = 0; i < c.d.n && rc == 0; i++) {
		const char *name = c.d.e[i].name;

		if (strcmp(name, ".") && strcmp(name, "..")) {
			rc = fsview_join(path, sizeof(path), nv_path(v, ino), name);
			if (!rc)
				rc = nv_remember(v, c.d.e[i].ino, path);
		}
		if (!rc)
			rc = cb(arg, name, c.d.e[i].ino);
	}
	fsview_dir_free(&c.d);
	return rc;
}

static int nv_readlink(struct fsview *v, uint64_t ino, char *buf, size_t len)
{
	const char *path = nv_path(v, ino);
	int rc;

	if (!path)
		return -ENOENT;
	rc = vmfs_readlink(NV(v)->fs, path, buf, len);
	if (rc >= 0 && (size_t)rc >= len)
		return -ENAMETOOLONG;
	return rc < 0 ? nv_err(v, rc) : rc;
}

static int nv_open(struct fsview *v, uint64_t ino, void **fh)
{
	const char *path = nv_path(v, ino);
	struct vmfs_file *f;
	int rc;

	if (!path)
		return -ENOENT;
	rc = vmfs_open(NV(v)->fs, path, O_RDONLY, 0, &f);
	if (rc < 0)
		return nv_err(v, rc);
	*fh = f;
	return 0;
}

static ssize_t nv_pread(struct fsview *v, void *fh, uint64_t off, void *buf, size_t len)
{
	ssize_t n = vmfs_read(fh, buf, len, off);

	return n < 0 ? nv_err(v, (int)n) : n;
}

static void nv_release(struct fsview *v, void *fh)
{
	(void)v;
	vmfs_close(fh);
}

static int nv_statfs(struct fsview *v, struct fsview_statfs *out)
{
	struct vmfs_statfs st;
	int rc = vmfs_statfs(NV(v)->fs, &st);

	if (rc < 0)
		return nv_err(v, rc);
	out->bsize = st.block_size;
	out->blocks = st.blocks;
	out->bfree = st.blocks_free;
	out->files = st.files;
	out->ffree = st.files_free;
	out->namemax = st.name_max;
	return 0;
}

static int is_zero(const unsigned char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Reads up to len bytes (less only at end of input, e.g. from a pipe). */
static ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static int nv_copy(struct vmfs_file *f, int src, unsigned char *buf)
{
	uint64_t off = 0;
	ssize_t n;
	int rc = 0;

	while ((n = read_full(src, buf, NV_CHUNK)) > 0) {
		if (!is_zero(buf, (size_t)n)) {
			ssize_t w = vmfs_write(f, buf, (size_t)n, off);

			if (w < 0)
				return (int)w;
		}
		off += (uint64_t)n;
		tool_progress_add(tool_progress_in, (uint64_t)n);
	}
	if (n < 0)
		return (int)n;
	rc = vmfs_ftruncate(f, off); /* a trailing hole sets the size */
	return rc < 0 ? rc : vmfs_fsync(f);
}

static int nv_import(struct fsview *v, const char *path, int src, uint32_t mode)
{
	unsigned char *buf = malloc(NV_CHUNK);
	struct vmfs_file *f;
	int rc, rc2;

	if (!buf)
		return -ENOMEM;
	rc = vmfs_open(NV(v)->fs, path, O_WRONLY | O_CREAT | O_TRUNC, mode & 07777, &f);
	if (rc == 0) {
		rc = nv_copy(f, src, buf);
		rc2 = vmfs_close(f);
		if (!rc)
			rc = rc2;
	}
	free(buf);
	return rc < 0 ? nv_err(v, rc) : 0;
}

static int nv_mkdir(struct fsview *v, const char *path, uint32_t mode)
{
	return nv_err(v, vmfs_mkdir(NV(v)->fs, path, mode & 07777));
}

static int nv_unlink(struct fsview *v, const char *path)
{
	return nv_err(v, vmfs_unlink(NV(v)->fs, path));
}

static int nv_rmdir(struct fsview *v, const char *path)
{
	return nv_err(v, vmfs_rmdir(NV(v)->fs, path));
}

/* An eagerly zeroed file is zeroed MKFILE_STEP bytes at a time when a
 * progress line counts (vmfsctl mkfile -t eager on a terminal). */
#define MKFILE_STEP (64ULL << 20)

static int nv_mkfile(struct fsview *v, const char *path, uint32_t mode, uint64_t size, int kind)
{
	struct vmfs_file *f;
	int rc, rc2;

	if (kind == FSVIEW_LAZY ||
	    (kind == FSVIEW_EAGER && !(tool_progress_in && tool_progress_in->on)))
		return nv_err(v, vmfs_create_thick(NV(v)->fs, path, mode & 07777, size,
						   kind == FSVIEW_EAGER));
	rc = vmfs_open(NV(v)->fs, path, O_RDWR | O_CREAT | O_EXCL, mode & 07777, &f);
	if (rc < 0)
		return nv_err(v, rc);
	if (kind == FSVIEW_THIN) {
		rc = vmfs_ftruncate(f, size);
	} else { /* eager, in steps that the progress line counts */
		uint64_t off = 0, step;

		rc = 0;
		while (!rc && off < size) {
			step = size - off < MKFILE_STEP ? size - off : MKFILE_STEP;
			rc = vmfs_fallocate_eager(f, off, step);
			off += step;
			tool_progress_set(tool_progress_in, off);
		}
	}
	rc2 = vmfs_close(f);
	if (rc < 0)
		vmfs_unlink(NV(v)->fs, path); /* no half-made file left behind */
	return nv_err(v, rc < 0 ? rc : rc2);
}

static const char *nv_errmsg(struct fsview *v)
{
	return NV(v)->err[0] ? NV(v)->err : "corrupt volume";
}

static void nv_close(struct fsview *v)
{
	struct nv *nv = NV(v);

	vmfs_umount(nv->fs);
	for (size_t i = 0; i < nv->cap; i++)
		free(nv->tab[i].path);
	free(nv->tab);
	free(nv);
	bdev_close(v->bd);
	free(v);
}

static const struct fsview_ops nv_ops = {
    .lookup = nv_lookup,
    .getattr = nv_getattr,
    .readdir = nv_readdir,
    .readlink = nv_readlink,
    .open = nv_open,
    .pread = nv_pread,
    .release = nv_release,
    .statfs = nv_statfs,
    .import = nv_import,
    .mkdir = nv_mkdir,
    .unlink = nv_unlink,
    .rmdir = nv_rmdir,
    .mkfile = nv_mkfile,
    .errmsg = nv_errmsg,
    .close = nv_close,
};

int native_fsview_open(struct bdev *bd, struct fsview **out, char *err, size_t errlen)
{
	struct vmfs_mount_opts mo;
	struct vmfs_stat root;
	struct fsview *v = calloc(1, sizeof(*v));
	struct nv *nv = calloc(1, sizeof(*nv));
	int rc = -ENOMEM;

	if (!v || !nv)
		goto fail;
	memset(&mo, 0, sizeof(mo));
	mo.read_only = (bd->caps & BDEV_CAP_READONLY) != 0;
	mo.uid = (uint32_t)getuid();
	mo.gid = (uint32_t)getgid();
	rc = vmfs_mount_bdev(bd, &mo, &nv->fs);
	if (rc < 0) {
		snprintf(err, errlen, "cannot mount: %s",
			 vmfs_errmsg(NULL)[0] ? vmfs_errmsg(NULL) : vmfs_strerror(rc));
		goto fail;
	}
	v->ops = &nv_ops;
	v->bd = bd;
	v->fmt = TOOL_FMT_NATIVE;
	v->kind = "native";
	v->priv = nv;
	rc = vmfs_getattr(nv->fs, "/", &root);
	if (!rc)
		rc = nv_remember(v, root.ino, "/");
	if (rc < 0) {
		snprintf(err, errlen, "root directory: %s", vmfs_strerror(rc));
		nv_close(v);
		return rc;
	}
	v->root = root.ino;
	*out = v;
	return 0;
fail:
	free(nv);
	free(v);
	bdev_close(bd);
	return rc;
}
