/*
 * vdisk_admin.c - managing virtual disks (what vmkfstools does): create
 * thin / lazily / eagerly zeroed disks with their descriptors, delete, info
 * with lock holders, grow, inflate and clone.
 *
 * Design note
 * -----------
 *  1. Create makes the flat file first, then the descriptor (O_EXCL for
 *     both): a descriptor never names a missing flat file. Any failure
 *     removes what was made. The provisioning is recorded on the flat file
 *     (xattr VDISK_XATTR_PROV) and, for thin disks, in the descriptor
 *     (ddb.thinProvisioned = "1", as vmkfstools writes it).
 *  2. Eager zeroing, inflate and clone work in steps of STEP bytes and call
 *     the progress callback after each, so a terminal shows progress and a
 *     caller can cancel (-ECANCELED) between steps.
 *  3. Grow enlarges the flat file before the descriptor says so; a rewritten
 *     descriptor replaces the old one atomically (vmfs_rename()), so a crash
 *     leaves either descriptor, each naming a flat file at least as large.
 *  4. Clone never writes holes or all-zero runs of the source: the target
 *     keeps them as holes (thin) or TBZ blocks (zeroedthick) or already
 *     zeroed blocks (eagerzeroedthick).
 */
#include "vdisk_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STEP	 (256ull << 20) /* bytes per progress step */
#define COPY_BUF (1u << 20)

static int progress(vdisk_progress_cb cb, void *arg, uint64_t done, uint64_t total)
{
	return cb && cb(arg, done, total) ? -ECANCELED : 0;
}

static int ends_with(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n >= m && !strcmp(s + n - m, suf);
}

/* ---- descriptors on the volume ---------------------------------------------------------- */

static int write_file(struct vmfs *fs, const char *path, const char *buf, size_t len, int excl)
{
	struct vmfs_file *f;
	int rc = vmfs_open(fs, path, O_CREAT | O_RDWR | O_TRUNC | (excl ? O_EXCL : 0), 0644, &f);
	ssize_t n;

	if (rc)
		return rc;
	n = vmfs_write(f, buf, len, 0);
	rc = n < 0 ? (int)n : (size_t)n != len ? -EIO : 0;
	if (!rc)
		rc = vmfs_fsync(f);
	if (vmfs_close(f) && !rc)
		rc = -EIO;
	return rc;
}

int vd_write_desc(struct vmfs *fs, const char *path, const struct vdisk_desc *d, int replace)
{
	char *buf = malloc(VDISK_DESC_MAX), tmp[VDISK_PATH_MAX + 16];
	int n = buf ? vdisk_desc_format(d, buf, VDISK_DESC_MAX) : -ENOMEM, rc;
	const char *slash = strrchr(path, '/');

	if (n < 0) {
		free(buf);
		return n;
	}
	if (!replace) {
		rc = write_file(fs, path, buf, (size_t)n, 1);
		free(buf);
		return rc;
	}
	/* "/dir/.NAME.tmp": a name no disk uses, renamed over the old one */
	snprintf(tmp, sizeof(tmp), "%.*s/.%s.tmp", (int)(slash - path), path, slash + 1);
	vmfs_unlink(fs, tmp);
	rc = write_file(fs, tmp, buf, (size_t)n, 1);
	if (!rc)
		rc = vmfs_rename(fs, tmp, path);
	if (rc)
		vmfs_unlink(fs, tmp);
	free(buf);
	return rc;
}

/* ---- create / delete --------------------------------------------------------------------- */

/* The flat file of a new disk at `path` with descriptor (has_desc) or not. */
static int new_paths(const char *path, int *has_desc, char *flat, char *fname)
{
	size_t n = strlen(path);
	const char *slash = strrchr(path, '/');

	if (path[0] != '/' || n >= VDISK_PATH_MAX - 16 || !slash || !slash[1])
		return vd_err(-EINVAL, "%s: not an absolute path to a file", path);
	*has_desc = ends_with(path, ".vmdk") && !ends_with(path, VDISK_FLAT_SUFFIX) &&
		    strlen(slash + 1) > 5;
	if (!*has_desc) {
		memcpy(flat, path, n + 1);
		snprintf(fname, VDISK_NAME_MAX + 1, "%s", slash + 1);
		return 0;
	}
	if (strlen(slash + 1) - 5 + strlen(VDISK_FLAT_SUFFIX) > VDISK_NAME_MAX)
		return vd_err(-ENAMETOOLONG, "%s: name too long for its -flat.vmdk", path);
	snprintf(flat, VDISK_PATH_MAX, "%.*s%s", (int)(n - 5), path, VDISK_FLAT_SUFFIX);
	snprintf(fname, VDISK_NAME_MAX + 1, "%s", flat + (slash + 1 - path));
	return 0;
}

/* Allocates [0, size) eagerly zeroed, in steps with progress. */
static int eager_fill(struct vmfs_file *f, uint64_t from, uint64_t size, vdisk_progress_cb cb,
		      void *arg)
{
	int rc = 0;

	for (uint64_t pos = from; pos < size && !rc;) {
		uint64_t n = size - pos < STEP ? size - pos : STEP;

		rc = vmfs_fallocate_eager(f, pos, n);
		pos += n;
		if (!rc)
			rc = progress(cb, arg, pos - from, size - from);
	}
	return rc;
}

static int create_flat(struct vmfs *fs, const char *flat, uint64_t size,
		       const struct vdisk_create_opts *o)
{
	struct vmfs_file *f;
	uint32_t mode = o->mode ? o->mode : 0600;
	int rc, r;

	if (o->prov == VDISK_ZEROEDTHICK)
		return vmfs_create_thick(fs, flat, mode, size, 0);
	rc = vmfs_open(fs, flat, O_CREAT | O_EXCL | O_RDWR, mode, &f);
	if (rc)
		return rc;
	rc = o->prov == VDISK_THIN ? vmfs_ftruncate(f, size)
				   : eager_fill(f, 0, size, o->progress, o->progress_arg);
	r = vmfs_close(f);
	rc = rc ? rc : r;
	if (rc)
		vmfs_unlink(fs, flat);
	return rc;
}

int vdisk_create(struct vmfs *fs, const char *path, uint64_t size,
		 const struct vdisk_create_opts *o)
{
	struct vdisk_create_opts def = {0};
	char flat[VDISK_PATH_MAX], fname[VDISK_NAME_MAX + 1];
	struct vdisk_desc *d = NULL;
	struct vmfs_stat st;
	int has_desc = 0, rc;

	o = o ? o : &def;
	if (!size || size % VDISK_SECTOR || size > VDISK_SIZE_MAX)
		return vd_err(-EINVAL,
			      "bad size %llu: a non-zero multiple of 512 bytes, at most "
			      "62 TiB",
			      (unsigned long long)size);
	if ((unsigned)o->prov > VDISK_EAGERZEROEDTHICK || (unsigned)o->adapter > VDISK_IDE)
		return vd_err(-EINVAL, "bad provisioning or adapter type");
	rc = new_paths(path, &has_desc, flat, fname);
	if (rc)
		return rc;
	if (has_desc && !vmfs_getattr(fs, path, &st))
		return vd_err(-EEXIST, "%s: %s", path, vmfs_strerror(-EEXIST));
	if (has_desc) {
		d = malloc(sizeof(*d));
		rc = d ? vdisk_desc_init(d, fname, size, o->adapter, o->prov == VDISK_THIN)
		       : -ENOMEM;
		if (rc) {
			free(d);
			return vd_err(rc, "%s: %s", path, vmfs_strerror(rc));
		}
	}
	rc = create_flat(fs, flat, size, o);
	if (rc) {
		free(d);
		return rc == -ECANCELED ? vd_err(rc, "%s: cancelled", path)
					: vd_err(rc, "%s: %s", flat, vmfs_strerror(rc));
	}
	rc = vd_prov_set(fs, flat, o->prov);
	if (!rc && has_desc)
		rc = vd_write_desc(fs, path, d, 0);
	free(d);
	if (rc) {
		vd_err(rc, "%s: %s", path, vmfs_strerror(rc));
		vmfs_unlink(fs, flat);
	}
	return rc;
}

int vdisk_delete(struct vmfs *fs, const char *path)
{
	struct vpath *vp = malloc(sizeof(*vp));
	int rc = vp ? vd_resolve(fs, path, vp) : -ENOMEM;

	if (!rc) {
		rc = vmfs_unlink(fs, vp->flat_path);
		if (rc == -ENOENT && vp->has_desc)
			rc = 0; /* a descriptor whose flat file is gone: remove it too */
		if (rc == -EBUSY)
			rc = vd_busy(fs, vp->flat_path, vp->name);
		else if (rc)
			vd_err(rc, "%s: %s", vp->flat_path, vmfs_strerror(rc));
	}
	if (!rc && vp->has_desc) {
		rc = vmfs_unlink(fs, vp->desc_path);
		if (rc)
			vd_err(rc, "%s: %s", vp->desc_path, vmfs_strerror(rc));
	}
	free(vp);
	return rc;
}

/* ---- info ----------------------------------------------------------------------------------- */

/* Bytes of data / TBZ / holes of an open flat file. */
static void info_extents(struct vmfs_file *f, struct vdisk_info *in)
{
	struct vmfs_extent ext[128];
	uint64_t pos = 0;

	while (pos < in->size) {
		int n = vmfs_file_extents(f, pos, in->size - pos, ext, 128);

		if (n <= 0)
			break;
		for (int i = 0; i < n; i++) {
			if (ext[i].flags & VMFS_EXT_HOLE)
				in->hole += ext[i].len;
			else if (ext[i].flags & VMFS_EXT_ZERO)
				in->zero += ext[i].len;
			else
				in->data += ext[i].len;
		}
		pos = ext[n - 1].off + ext[n - 1].len;
	}
	if (pos < in->size)
		in->hole += in->size - pos; /* beyond the flat file's end */
}

static void info_lock(struct vmfs *fs, struct vdisk_info *in)
{
	struct vmfs_lockinfo *li = malloc(sizeof(*li));

	if (!li || vmfs_lock_query(fs, in->flat_path, li)) {
		in->lock_mode = -1;
		free(li);
		return;
	}
	in->lock_mode = li->mode;
	in->lock_gen = li->gen;
	in->lock_off = li->lock_off;
	in->nholders = li->nholders;
	for (unsigned i = 0; i < li->nholders && i < 48; i++) {
		memcpy(in->holders[i].hostname, li->holders[i].hostname,
		       sizeof(in->holders[i].hostname));
		in->holders[i].slot = li->holders[i].slot;
		in->holders[i].self = li->holders[i].self;
	}
	free(li);
}

int vdisk_info(struct vmfs *fs, const char *path, struct vdisk_info *in)
{
	struct vpath *vp = malloc(sizeof(*vp));
	struct vmfs_file *f = NULL;
	struct vmfs_stat st;
	int rc = vp ? vd_resolve(fs, path, vp) : -ENOMEM, prov;

	memset(in, 0, sizeof(*in));
	if (!rc) {
		rc = vmfs_getattr(fs, vp->flat_path, &st);
		if (rc)
			vd_err(rc, "%s: %s", vp->flat_path, vmfs_strerror(rc));
	}
	if (rc) {
		free(vp);
		return rc;
	}
	in->has_desc = vp->has_desc;
	memcpy(in->desc_path, vp->desc_path, sizeof(in->desc_path));
	memcpy(in->flat_path, vp->flat_path, sizeof(in->flat_path));
	in->desc = vp->desc;
	in->flat_size = st.size;
	in->allocated = st.blocks * 512;
	in->size = vp->has_desc ? vp->desc.sectors * VDISK_SECTOR : st.size;
	in->adapter = vp->has_desc ? vp->desc.adapter : VDISK_LSILOGIC;
	if (vp->has_desc) {
		in->cylinders = vp->desc.cylinders;
		in->heads = vp->desc.heads;
		in->spt = vp->desc.spt;
	} else {
		vdisk_geometry(in->size / VDISK_SECTOR, in->adapter, &in->cylinders, &in->heads,
			       &in->spt);
	}
	/* extents need an open handle: a shared open, which a writer elsewhere
	 * refuses (then only the recorded provisioning is known) */
	if (!vmfs_open(fs, vp->flat_path, O_RDONLY | VMFS_O_NOWAIT, 0, &f)) {
		info_extents(f, in);
		vmfs_close(f);
	}
	prov = vd_prov_get(fs, vp->flat_path);
	if (prov < 0)
		prov = in->hole || (vp->has_desc && vp->desc.thin) ? VDISK_THIN
		       : in->zero				   ? VDISK_ZEROEDTHICK
								   : VDISK_EAGERZEROEDTHICK;
	in->prov = (enum vdisk_prov)prov;
	info_lock(fs, in);
	free(vp);
	return 0;
}

/* ---- grow / inflate ------------------------------------------------------------------------ */

int vdisk_grow(struct vdisk *d, uint64_t new_size)
{
	struct vmfs_stat st;
	int rc;

	if (d->mode != VDISK_EXCLUSIVE)
		return vd_err(-EBADF, "%s: growing needs an exclusive open", d->vp.name);
	if (new_size % VDISK_SECTOR || new_size <= d->size || new_size > VDISK_SIZE_MAX)
		return vd_err(-EINVAL,
			      "%s: new size %llu must be larger than %llu, a multiple of 512 and "
			      "at most 62 TiB",
			      d->vp.name, (unsigned long long)new_size,
			      (unsigned long long)d->size);
	rc = vmfs_fstat(d->f, &st);
	if (!rc && st.size < new_size) {
		if (d->prov == VDISK_THIN)
			rc = vmfs_ftruncate(d->f, new_size);
		else if (d->prov == VDISK_ZEROEDTHICK)
			rc = vmfs_fallocate(d->f, 0, st.size, new_size - st.size);
		else
			rc = eager_fill(d->f, st.size, new_size, NULL, NULL);
	}
	if (!rc)
		rc = vmfs_fsync(d->f);
	if (!rc && d->vp.has_desc) {
		struct vdisk_desc nd = d->vp.desc;

		nd.sectors = new_size / VDISK_SECTOR;
		vdisk_geometry(nd.sectors, nd.adapter, &nd.cylinders, &nd.heads, &nd.spt);
		rc = vd_write_desc(d->fs, d->vp.desc_path, &nd, 1);
		if (!rc)
			d->vp.desc = nd;
	}
	if (rc)
		return vd_err(rc, "%s: %s", d->vp.name, vmfs_strerror(rc));
	d->size = new_size;
	return 0;
}

/* Writes zeroes over the TBZ extents of [off, off + len). */
static int zero_tbz(struct vdisk *d, uint64_t off, uint64_t len, void *zero)
{
	struct vmfs_extent ext[64];
	uint64_t end = off + len;
	int rc = 0;

	while (off < end && !rc) {
		int n = vmfs_file_extents(d->f, off, end - off, ext, 64);

		if (n <= 0)
			return n;
		for (int i = 0; i < n && !rc; i++) {
			if (ext[i].flags != VMFS_EXT_ZERO)
				continue;
			for (uint64_t p = ext[i].off; p < ext[i].off + ext[i].len && !rc;) {
				uint64_t m = ext[i].off + ext[i].len - p;
				ssize_t w;

				m = m < COPY_BUF ? m : COPY_BUF;
				w = vmfs_write(d->f, zero, (size_t)m, p);
				rc = w < 0 ? (int)w : 0;
				p += m;
			}
		}
		off = ext[n - 1].off + ext[n - 1].len;
	}
	return rc;
}

int vdisk_inflate(struct vdisk *d, vdisk_progress_cb cb, void *arg)
{
	void *zero;
	int rc = 0;

	if (d->mode != VDISK_EXCLUSIVE)
		return vd_err(-EBADF, "%s: inflating needs an exclusive open", d->vp.name);
	zero = calloc(1, COPY_BUF);
	if (!zero)
		return -ENOMEM;
	for (uint64_t pos = 0; pos < d->size && !rc;) {
		uint64_t n = d->size - pos < STEP ? d->size - pos : STEP;

		rc = vmfs_fallocate_eager(d->f, pos, n);
		if (!rc)
			rc = zero_tbz(d, pos, n, zero);
		pos += n;
		if (!rc)
			rc = progress(cb, arg, pos, d->size);
	}
	free(zero);
	if (!rc)
		rc = vmfs_fsync(d->f);
	if (!rc)
		rc = vd_prov_set(d->fs, d->vp.flat_path, VDISK_EAGERZEROEDTHICK);
	if (!rc && d->vp.has_desc && d->vp.desc.thin) {
		struct vdisk_desc nd = d->vp.desc;

		nd.thin = 0;
		if (!strcmp(nd.create_type, "vmfsThin"))
			snprintf(nd.create_type, sizeof(nd.create_type), "vmfs");
		rc = vd_write_desc(d->fs, d->vp.desc_path, &nd, 1);
		if (!rc)
			d->vp.desc = nd;
	}
	if (rc)
		return rc == -ECANCELED ? vd_err(rc, "%s: cancelled", d->vp.name)
					: vd_err(rc, "%s: %s", d->vp.name, vmfs_strerror(rc));
	d->prov = VDISK_EAGERZEROEDTHICK;
	return 0;
}

/* ---- clone ----------------------------------------------------------------------------------- */

static int all_zero(const void *buf, size_t len)
{
	const unsigned char *p = buf;

	return len == 0 || (p[0] == 0 && !memcmp(p, p + 1, len - 1));
}

/* Copies the data extents of src into dst (both open). */
static int copy_data(struct vdisk *src, struct vdisk *dst, void *buf,
		     const struct vdisk_create_opts *o)
{
	struct vmfs_extent ext[64];
	uint64_t pos = 0, size = src->size, last = 0;
	int rc = 0;

	while (pos < size && !rc) {
		int n = vdisk_extents(src, pos, size - pos, ext, 64);

		if (n <= 0) {
			rc = n;
			break;
		}
		for (int i = 0; i < n && !rc; i++) {
			for (uint64_t p = ext[i].off;
			     !ext[i].flags && p < ext[i].off + ext[i].len && !rc;) {
				uint64_t m = ext[i].off + ext[i].len - p;
				ssize_t r;

				m = m < COPY_BUF ? m : COPY_BUF;
				r = vdisk_pread(src, buf, (size_t)m, p);
				if (r >= 0 && !all_zero(buf, (size_t)m))
					r = vdisk_pwrite(dst, buf, (size_t)m, p);
				rc = r < 0 ? (int)r : 0;
				p += m;
				if (!rc && p - last >= STEP) {
					last = p;
					rc = progress(o->progress, o->progress_arg, p, size);
				}
			}
		}
		pos = ext[n - 1].off + ext[n - 1].len;
	}
	if (!rc)
		rc = progress(o->progress, o->progress_arg, size, size);
	return rc;
}

int vdisk_clone(struct vdisk *src, struct vmfs *dstfs, const char *dst,
		const struct vdisk_create_opts *o)
{
	struct vdisk_create_opts co = o ? *o : (struct vdisk_create_opts){0};
	struct vdisk_open_opts oo = {.mode = VDISK_EXCLUSIVE};
	struct vdisk *d = NULL;
	void *buf;
	int rc, r;

	co.progress = NULL; /* creation (eager zeroing) is quick next to the copy */
	rc = vdisk_create(dstfs, dst, src->size, &co);
	if (rc)
		return rc;
	buf = malloc(COPY_BUF);
	rc = buf ? vdisk_open(dstfs, dst, &oo, &d) : -ENOMEM;
	if (!rc) {
		rc = copy_data(src, d, buf, o ? o : &co);
		if (!rc)
			rc = vdisk_flush(d);
		if (rc == -ECANCELED)
			vd_err(rc, "%s: cancelled", dst);
		else if (rc)
			vd_err(rc, "%s: copying: %s", dst, vmfs_strerror(rc));
	}
	if (d) {
		r = vdisk_close(d);
		rc = rc ? rc : r;
	}
	free(buf);
	if (rc)
		vdisk_delete(dstfs, dst);
	return rc;
}
