/*
 * real_fsview.c - the fsview (fsview.h) of real VMFS5/6 datastores, over
 * the read-only reader libvmfs/vmfsr.h. Inode numbers are FD addresses.
 * Read-only: import is NULL, so cp into a real VMFS is refused.
 */
#include "fsview.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"
#include "vmfsr.h"

static struct vmfsr *R(struct fsview *v)
{
	return v->priv;
}

static int rv_lookup(struct fsview *v, const char *path, int follow, uint64_t *ino)
{
	uint32_t i;
	int rc = vmfsr_lookup(R(v), path, follow, &i);

	if (!rc)
		*ino = i;
	return rc;
}

static int rv_getattr(struct fsview *v, uint64_t ino, struct fsview_stat *st)
{
	struct vmfsr_stat s;
	int rc;

	if (ino > UINT32_MAX)
		return -ENOENT;
	rc = vmfsr_stat(R(v), (uint32_t)ino, &s);
	if (rc < 0)
		return rc;
	memset(st, 0, sizeof(*st));
	st->ino = s.ino;
	st->mode = s.mode;
	st->nlink = s.nlink;
	st->uid = s.uid;
	st->gid = s.gid;
	st->size = s.size;
	st->blksize = s.blksize;
	st->blocks =
	    s.blksize && s.nblocks <= UINT64_MAX / s.blksize ? s.nblocks * s.blksize / 512 : 0;
	st->atime = s.atime;
	st->mtime = s.mtime;
	st->ctime = s.ctime;
	return 0;
}

struct rv_dir {
	fsview_dir_cb cb;
	void *arg;
};

static int rv_dir_cb(void *arg, const char *name, uint32_t ino, uint32_t type)
{
	struct rv_dir *d = arg;

	(void)type;
	return d->cb(d->arg, name, ino);
}

static int rv_readdir(struct fsview *v, uint64_t ino, fsview_dir_cb cb, void *arg)
{
	struct rv_dir d = {cb, arg};

	if (ino > UINT32_MAX)
		return -ENOENT;
	return vmfsr_readdir(R(v), (uint32_t)ino, rv_dir_cb, &d);
}

static int rv_readlink(struct fsview *v, uint64_t ino, char *buf, size_t len)
{
	if (ino > UINT32_MAX)
		return -ENOENT;
	return vmfsr_readlink(R(v), (uint32_t)ino, buf, len);
}

static int rv_open(struct fsview *v, uint64_t ino, void **fh)
{
	struct vmfsr_file *f;
	int rc;

	if (ino > UINT32_MAX)
		return -ENOENT;
	rc = vmfsr_fopen(R(v), (uint32_t)ino, &f);
	if (rc < 0)
		return rc;
	if (vmfsr_fstat(f)->type == VMFSR_T_DIR) {
		vmfsr_fclose(f);
		return -EISDIR;
	}
	*fh = f;
	return 0;
}

static ssize_t rv_pread(struct fsview *v, void *fh, uint64_t off, void *buf, size_t len)
{
	(void)v;
	return vmfsr_read(fh, off, buf, len);
}

static void rv_release(struct fsview *v, void *fh)
{
	(void)v;
	vmfsr_fclose(fh);
}

static int rv_statfs(struct fsview *v, struct fsview_statfs *st)
{
	struct vmfsr_statfs s;
	int rc = vmfsr_statfs(R(v), &s);

	if (rc < 0)
		return rc;
	memset(st, 0, sizeof(*st));
	st->bsize = s.block_size;
	st->blocks = s.blocks;
	st->bfree = s.free;
	st->files = s.files;
	st->ffree = s.free_files;
	st->namemax = 255;
	return 0;
}

static const char *rv_errmsg(struct fsview *v)
{
	return vmfsr_errmsg(R(v));
}

static void rv_close(struct fsview *v)
{
	vmfsr_close(R(v));
	bdev_close(v->bd);
	free(v);
}

static const struct fsview_ops real_ops = {
    .lookup = rv_lookup,
    .getattr = rv_getattr,
    .readdir = rv_readdir,
    .readlink = rv_readlink,
    .open = rv_open,
    .pread = rv_pread,
    .release = rv_release,
    .statfs = rv_statfs,
    .import = NULL, /* real VMFS datastores are read-only */
    .errmsg = rv_errmsg,
    .close = rv_close,
};

int real_fsview_open(struct bdev *bd, enum tool_fmt fmt, struct fsview **out, char *err,
		     size_t errlen)
{
	struct fsview *v = calloc(1, sizeof(*v));
	struct vmfsr *fs;
	int rc;

	*out = NULL;
	if (!v) {
		bdev_close(bd);
		return -ENOMEM;
	}
	rc = vmfsr_open(bd, &fs, err, errlen);
	if (rc < 0) {
		bdev_close(bd);
		free(v);
		return rc;
	}
	v->ops = &real_ops;
	v->bd = bd;
	v->fmt = fmt;
	v->kind = fmt == TOOL_FMT_VMFS6 ? "VMFS6" : "VMFS5";
	v->root = VMFSR_ROOT;
	v->priv = fs;
	*out = v;
	return 0;
}
