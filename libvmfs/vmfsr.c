/*
 * vmfsr.c - real VMFS5/VMFS6 reader: volume open, LVM and FS descriptor
 * decoding, resource files, volume I/O.
 *
 * Design note. A real datastore is read in four steps, each validating what
 * the next one relies on:
 *   1. LVM device header at 1 MiB: magic 0xc001d00d, data offset, volume
 *      descriptor (logical volume size). Only single-extent volumes are
 *      supported (one device, first PE 0): the logical volume is the device
 *      shifted by the data offset.
 *   2. FS3 descriptor at logical 2 MiB: magic, version, block sizes,
 *      metadata alignment. These fix the geometry (FD size, block array,
 *      heartbeat slot size, address formats).
 *   3. Bootstrap: the FDC (.fdc.sf) starts right after the heartbeat region;
 *      its header and first cluster, enough to hold the system files' FDs,
 *      are read straight from the volume. The .fdc.sf FD then describes the
 *      whole FDC, and every later FD is read through it.
 *   4. The other resource files (.sbc.sf sub-blocks, .pbc.sf and .pb2.sf
 *      pointer blocks, .fbb.sf file-block bitmaps) are opened as files.
 *
 * Invariants:
 *  1. Every logical offset is checked against the volume size and every
 *     physical one against the device size before a read (vmfsr_vol_read).
 *  2. Every resource address is checked against its resource file's
 *     geometry (group, cluster, resource counts and the file size) before
 *     its offset is computed (vmfsr_res_read); geometry products are
 *     computed in 64 bits and bounded at open, so they cannot overflow.
 *  3. A failed check sets fs->err ("vmfs5: what: why") and returns
 *     -EUCLEAN; nothing is cached from a failed read.
 */
#include "vmfsr_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"
#include "le.h"

#define MAX_BOUNCE (1u << 20)

int vmfsr_corrupt(struct vmfsr *fs, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(fs->err, sizeof(fs->err), "vmfs%d: ", fs->version ? fs->version : 5);

	va_start(ap, fmt);
	vsnprintf(fs->err + n, sizeof(fs->err) - (size_t)n, fmt, ap);
	va_end(ap);
	return -EUCLEAN;
}

const char *vmfsr_errmsg(const struct vmfsr *fs)
{
	return fs->err[0] ? fs->err : "no error";
}

void vmfsr_uuid_fmt(const uint8_t *p, char out[36])
{
	snprintf(out, 36, "%08x-%08x-%04x-%02x%02x%02x%02x%02x%02x", le32_get(p), le32_get(p + 4),
		 le16_get(p + 8), p[10], p[11], p[12], p[13], p[14], p[15]);
}

/* Reads [off, off+len) of the device, at any alignment. */
static int dev_read(struct bdev *bd, uint64_t off, void *buf, size_t len)
{
	uint8_t *out = buf;

	if (off % bd->lsec == 0 && len % bd->lsec == 0)
		return bdev_read(bd, buf, off, len);
	while (len) {
		uint64_t start = off - off % bd->lsec;
		size_t skip = (size_t)(off - start);
		size_t chunk = len < MAX_BOUNCE ? len : MAX_BOUNCE;
		size_t alen = (skip + chunk + bd->lsec - 1) / bd->lsec * bd->lsec;
		uint8_t *b;
		int rc;

		if (start + alen > bd->size)
			return -ERANGE;
		b = bdev_alloc(alen);
		if (!b)
			return -ENOMEM;
		rc = bdev_read(bd, b, start, alen);
		if (!rc)
			memcpy(out, b + skip, chunk);
		bdev_free(b);
		if (rc)
			return rc;
		out += chunk;
		off += chunk;
		len -= chunk;
	}
	return 0;
}

int vmfsr_vol_read(struct vmfsr *fs, uint64_t off, void *buf, size_t len, const char *what)
{
	uint64_t phys;
	int rc;

	if (off > fs->vol_size || len > fs->vol_size - off)
		return vmfsr_corrupt(
		    fs, "%s at 0x%llx+0x%zx lies beyond the end of the volume (0x%llx)", what,
		    (unsigned long long)off, len, (unsigned long long)fs->vol_size);
	phys = fs->data_off + off;
	if (phys > fs->bd->size || len > fs->bd->size - phys)
		return vmfsr_corrupt(
		    fs, "%s at 0x%llx lies beyond the end of the device (truncated image?)", what,
		    (unsigned long long)off);
	rc = dev_read(fs->bd, phys, buf, len);
	if (rc < 0)
		snprintf(fs->err, sizeof(fs->err), "vmfs%d: reading %s at 0x%llx: %s", fs->version,
			 what, (unsigned long long)off, bdev_strerror(rc));
	return rc;
}

int vmfsr_res_read(struct vmfsr *fs, struct vmfsr_res *r, uint64_t cluster, uint64_t res, void *buf,
		   uint32_t off, uint32_t len)
{
	uint64_t grp, rel, foff;

	if (!r->present)
		return vmfsr_corrupt(fs, "%s is unusable (%s)", r->name,
				     r->why[0] ? r->why : "missing");
	if (res >= r->per_cluster || cluster >= (uint64_t)r->ngrps * r->cl_per_grp ||
	    cluster * r->per_cluster + res >= r->nres)
		return vmfsr_corrupt(fs, "%s: resource c%llu r%llu out of range", r->name,
				     (unsigned long long)cluster, (unsigned long long)res);
	if (off > r->res_size || len > r->res_size - off)
		return vmfsr_corrupt(fs, "%s: read beyond a resource", r->name);
	grp = cluster / r->cl_per_grp;
	rel = cluster % r->cl_per_grp;
	foff = r->first_grp + grp * r->grp_size + r->res_area +
	       (rel * r->per_cluster + res) * r->res_size + off;
	if (r->file) {
		ssize_t n = vmfsr_read(r->file, foff, buf, len);

		if (n < 0)
			return (int)n;
		if ((size_t)n != len)
			return vmfsr_corrupt(
			    fs, "%s: resource c%llu r%llu beyond the end of the file", r->name,
			    (unsigned long long)cluster, (unsigned long long)res);
		return 0;
	}
	if (foff + len > r->boot_len)
		return vmfsr_corrupt(fs, "%s: system FD c%llu r%llu lies outside the first block",
				     r->name, (unsigned long long)cluster, (unsigned long long)res);
	return vmfsr_vol_read(fs, r->boot_off + foff, buf, len, r->name);
}

/* Decodes and validates a resource file header (the first 0x40 bytes). */
/* empty_ok: resource size 0 is allowed (.fbb.sf: only cluster bitmaps). */
static int res_decode(struct vmfsr *fs, struct vmfsr_res *r, const uint8_t *h, int empty_ok)
{
	uint64_t cl_bytes, total;

	r->per_cluster = le32_get(h + RES_O_PER_CLUSTER);
	r->cl_per_grp = le32_get(h + RES_O_CL_PER_GRP);
	r->first_grp = le32_get(h + RES_O_FIRST_GRP);
	r->res_size = le32_get(h + RES_O_RES_SIZE);
	r->grp_size = le32_get(h + RES_O_GRP_SIZE);
	r->ngrps = le32_get(h + RES_O_NUM_GRPS);
	r->nres = (uint64_t)le32_get(h + RES_O_NUM_HI) << 32 | le32_get(h + RES_O_NUM_LO);
	if (fs->version == 6 && le32_get(h + RES_O_SIGNATURE) != RES_SIGNATURE)
		return vmfsr_corrupt(fs, "%s: bad resource header signature 0x%08x", r->name,
				     le32_get(h + RES_O_SIGNATURE));
	if (!r->per_cluster || r->per_cluster > (1u << 16) || !r->cl_per_grp ||
	    r->cl_per_grp > (1u << 16) || (!r->res_size && !empty_ok) || r->res_size > (1u << 26) ||
	    !r->ngrps || r->ngrps > (1u << 24))
		return vmfsr_corrupt(fs, "%s: resource header geometry out of range", r->name);
	r->res_area = fs->version == 6 ? (uint64_t)r->cl_per_grp * 2 * fs->md_align
				       : (uint64_t)r->cl_per_grp << 10;
	cl_bytes = (uint64_t)r->per_cluster * r->res_size;
	if (r->grp_size < r->res_area + r->cl_per_grp * cl_bytes)
		return vmfsr_corrupt(fs, "%s: cluster group size 0x%x too small for its clusters",
				     r->name, r->grp_size);
	total = (uint64_t)r->ngrps * r->cl_per_grp * r->per_cluster;
	if (r->nres > total)
		return vmfsr_corrupt(fs, "%s: %llu resources exceed the %llu the groups hold",
				     r->name, (unsigned long long)r->nres,
				     (unsigned long long)total);
	r->present = 1;
	return 0;
}

/* Opens resource file r from its system FD. */
static int res_open(struct vmfsr *fs, struct vmfsr_res *r, uint32_t addr, uint32_t want_size)
{
	uint8_t h[0x40];
	ssize_t n;
	int rc;

	rc = vmfsr_fopen(fs, addr, &r->file);
	if (rc < 0)
		return rc;
	if (r->file->st.type != VMFSR_T_SYS)
		return vmfsr_corrupt(fs, "%s: FD 0x%08x is not a system file", r->name, addr);
	n = vmfsr_read(r->file, 0, h, sizeof(h));
	if (n < 0)
		return (int)n;
	if (n != sizeof(h))
		return vmfsr_corrupt(fs, "%s: file too short for its header", r->name);
	rc = res_decode(fs, r, h, r == &fs->fbb);
	if (rc < 0)
		return rc;
	if (want_size && r->res_size != want_size)
		return vmfsr_corrupt(fs, "%s: resource size 0x%x, expected 0x%x", r->name,
				     r->res_size, want_size);
	return 0;
}

static int lvm_decode(struct vmfsr *fs, const uint8_t *h, const uint8_t *vd)
{
	uint64_t size = le64_get(vd + LVD_O_SIZE);

	fs->lvm_minor = le32_get(h + LVM_O_MINOR);
	fs->data_off = le64_get(h + LVM_O_DATA_OFF);
	vmfsr_uuid_fmt(vd + LVD_O_UUID, fs->lvm_uuid);
	if (fs->data_off < LVM_HDR_OFF + 0x1000 || fs->data_off % 512 ||
	    fs->data_off >= fs->bd->size)
		return vmfsr_corrupt(fs, "LVM header: data offset 0x%llx out of range",
				     (unsigned long long)fs->data_off);
	if (le32_get(h + LVM_O_NUM_VOLUMES) != 1 || le32_get(vd + LVD_O_NUM_DEVS) > 1 ||
	    le64_get(vd + LVD_O_FIRST_PE) != 0)
		return vmfsr_corrupt(fs, "LVM header: spanned (multi-extent) volumes are not "
					 "supported");
	if (size < FSD_OFF + 0x1000 || size % 512)
		return vmfsr_corrupt(fs, "LVM volume descriptor: volume size 0x%llx out of range",
				     (unsigned long long)size);
	/* A volume larger than the device reads as truncated: keep the device
	 * bound (vmfsr_vol_read checks both). */
	fs->vol_size = size;
	return 0;
}

static int lvm_read(struct vmfsr *fs)
{
	uint8_t h[0x200], vd[0x200];
	uint32_t vdoff;
	int rc;

	rc = dev_read(fs->bd, LVM_HDR_OFF, h, sizeof(h));
	if (rc < 0)
		return rc;
	if (le32_get(h + LVM_O_MAGIC) != LVM_MAGIC)
		return vmfsr_corrupt(fs, "LVM header: bad magic 0x%08x", le32_get(h));
	fs->lvm_major = le32_get(h + LVM_O_MAJOR);
	if (fs->lvm_major < 3 || fs->lvm_major > 6)
		return vmfsr_corrupt(fs, "LVM header: unsupported version %u", fs->lvm_major);
	vdoff = LVM5_VOLDESC_OFF;
	if (fs->lvm_major == 6) {
		vdoff = le32_get(h + LVM_O_MD_ALIGN);
		if (vdoff < 0x200 || vdoff > 0x10000 || vdoff % 0x200)
			return vmfsr_corrupt(fs,
					     "LVM header: volume descriptor offset 0x%x "
					     "out of range",
					     vdoff);
	}
	if (LVM_HDR_OFF + vdoff + sizeof(vd) > fs->bd->size)
		return vmfsr_corrupt(fs, "LVM header: device too small");
	rc = dev_read(fs->bd, LVM_HDR_OFF + vdoff, vd, sizeof(vd));
	if (rc < 0)
		return rc;
	return lvm_decode(fs, h, vd);
}

static int fsd_geometry(struct vmfsr *fs, const uint8_t *d)
{
	if (fs->version == 5) {
		fs->md_align = 0x200;
		fs->fd_size = 0x800;
		fs->fd_nblk = 256;
		fs->fd_blk_off = 0x400;
		fs->fd_res_off = 0x400;
		fs->fd_res_size = 0x400;
		fs->asize = 4;
		fs->pb_per = 1024;
		fs->hb_slot = 0x200;
		fs->hb_count = 2048;
		return 0;
	}
	fs->md_align = le32_get(d + FSD_O_MD_ALIGN);
	if (fs->md_align < 0x200 || fs->md_align > 0x100000 || (fs->md_align & (fs->md_align - 1)))
		return vmfsr_corrupt(fs, "FS descriptor: metadata alignment 0x%x invalid",
				     fs->md_align);
	fs->fd_size = 2 * fs->md_align;
	fs->fd_res_size = fs->md_align - 0x200;
	fs->fd_res_off = fs->fd_size - fs->fd_res_size;
	fs->fd_nblk = fs->md_align <= 0x1000 ? 320 : fs->md_align >> 4;
	fs->fd_blk_off = fs->fd_size - fs->fd_nblk * 8;
	fs->asize = 8;
	fs->pb_per = fs->md_align <= 0x10000 ? 0x2000 : fs->md_align >> 3;
	fs->hb_slot = fs->disk_block > 0x1000 ? fs->disk_block : 0x1000;
	fs->hb_count = 1024;
	fs->lfb_shift = le16_get(d + FSD_O_LFB_SHIFT);
	if (fs->lfb_shift > 16 || fs->bshift + fs->lfb_shift > 40)
		return vmfsr_corrupt(fs, "FS descriptor: LFB shift %u invalid", fs->lfb_shift);
	fs->lfb_shift += fs->bshift;
	fs->lfb_size = 1ull << fs->lfb_shift;
	fs->sfb_per_cluster = 0x20000000 / fs->bsize <= 0x2000 ? 0x20000000 / fs->bsize : 0x2000;
	if (!fs->sfb_per_cluster)
		fs->sfb_per_cluster = 1;
	return 0;
}

static int fsd_decode(struct vmfsr *fs, const uint8_t *d)
{
	uint32_t magic = le32_get(d + FSD_O_MAGIC);

	if (magic != FSD_MAGIC && magic != FSD_MAGIC_L)
		return vmfsr_corrupt(fs, "FS descriptor: bad magic 0x%08x", magic);
	fs->fs_major = le32_get(d + FSD_O_MAJOR);
	fs->fs_minor = d[FSD_O_MINOR];
	if (fs->fs_major < 3 || fs->fs_major > 0x40)
		return vmfsr_corrupt(fs, "FS descriptor: unsupported version 0x%x", fs->fs_major);
	fs->version = fs->fs_major >= FSD_VMFS6_MAJOR ? 6 : fs->lvm_major >= 5 ? 5 : 3;
	fs->config = le32_get(d + FSD_O_CONFIG);
	memcpy(fs->label, d + FSD_O_LABEL, 128);
	fs->label[128] = 0;
	vmfsr_uuid_fmt(d + FSD_O_UUID, fs->uuid);
	fs->ctime = le32_get(d + FSD_O_CTIME);
	fs->disk_block = le32_get(d + FSD_O_DISK_BLOCK);
	fs->bsize = le64_get(d + FSD_O_BLOCK_SIZE);
	fs->sbsize = le32_get(d + FSD_O_SUB_BLOCK);
	if (fs->bsize < 0x10000 || fs->bsize > (1ull << 30) || (fs->bsize & (fs->bsize - 1)))
		return vmfsr_corrupt(fs, "FS descriptor: block size 0x%llx invalid",
				     (unsigned long long)fs->bsize);
	if (fs->disk_block < 512 || fs->disk_block > 0x10000 ||
	    (fs->disk_block & (fs->disk_block - 1)))
		return vmfsr_corrupt(fs, "FS descriptor: disk block size %u invalid",
				     fs->disk_block);
	fs->bshift = (unsigned)__builtin_ctzll(fs->bsize);
	fs->nblocks = fs->vol_size >> fs->bshift;
	return fsd_geometry(fs, d);
}

/* Reads the FDC header from the first block after the heartbeat region and
 * sets the FDC up for reading the system FDs from there. */
static int fdc_boot(struct vmfsr *fs)
{
	uint64_t hb_end = HB_OFF + (uint64_t)fs->hb_slot * fs->hb_count;
	uint8_t h[0x40];
	int rc;

	fs->fdc.boot_off = (hb_end + fs->bsize - 1) & ~(fs->bsize - 1);
	fs->fdc.boot_len = fs->bsize;
	rc = vmfsr_vol_read(fs, fs->fdc.boot_off, h, sizeof(h), "FDC header");
	if (rc < 0)
		return rc;
	rc = res_decode(fs, &fs->fdc, h, 0);
	if (rc < 0)
		return rc;
	if (fs->fdc.res_size != fs->fd_size)
		return vmfsr_corrupt(fs, ".fdc.sf: FD size 0x%x, expected 0x%x", fs->fdc.res_size,
				     fs->fd_size);
	return 0;
}

/* Remembers why an optional resource file could not be opened. */
static void res_unusable(struct vmfsr *fs, struct vmfsr_res *r)
{
	r->present = 0;
	snprintf(r->why, sizeof(r->why), "%.150s", fs->err[0] ? fs->err : "cannot be read");
	fs->err[0] = 0;
}

static int open_resources(struct vmfsr *fs)
{
	int rc;

	rc = fdc_boot(fs);
	if (rc < 0)
		return rc;
	/* Reads the .fdc.sf FD through the bootstrap block, then switches the
	 * FDC over to the file it describes. */
	rc = res_open(fs, &fs->fdc, SYS_FDC, fs->fd_size);
	if (rc < 0)
		return rc;
	/* .pb2.sf first: VMFS6 addresses .sbc.sf through it. Files needing a
	 * missing .pb2.sf or .fbb.sf fail alone, so those two are optional. */
	if (res_open(fs, &fs->pb2, SYS_PB2, 0) < 0)
		res_unusable(fs, &fs->pb2);
	rc = res_open(fs, &fs->sbc, SYS_SBC, (uint32_t)fs->sbsize);
	if (rc < 0)
		return rc;
	/* Pointer blocks: VMFS5 keeps them in .pbc.sf, VMFS6 in sub-blocks. */
	if (fs->version != 6)
		rc = res_open(fs, &fs->pbc, SYS_PBC, fs->pb_per * 4);
	if (rc < 0)
		return rc;
	if (res_open(fs, &fs->fbb, SYS_FBB, 0) < 0)
		res_unusable(fs, &fs->fbb);
	fs->err[0] = 0;
	return 0;
}

/* The FDC bootstrap keeps fs->fdc.file NULL so vmfsr_res_read() reads the
 * first block directly; res_open() then attaches the real file. */
static int fs_load(struct vmfsr *fs)
{
	uint8_t d[0x200];
	int rc;

	rc = lvm_read(fs);
	if (rc < 0)
		return rc;
	fs->version = 5;
	rc = vmfsr_vol_read(fs, FSD_OFF, d, sizeof(d), "FS descriptor");
	if (rc < 0)
		return rc;
	rc = fsd_decode(fs, d);
	if (rc < 0)
		return rc;
	if (fs->sbsize < 0x400 || fs->sbsize > (1u << 24) || (fs->sbsize & (fs->sbsize - 1)))
		return vmfsr_corrupt(fs, "FS descriptor: sub-block size 0x%llx invalid",
				     (unsigned long long)fs->sbsize);
	return open_resources(fs);
}

static void res_close(struct vmfsr_res *r)
{
	if (r->file)
		vmfsr_fclose(r->file);
	r->file = NULL;
}

void vmfsr_close(struct vmfsr *fs)
{
	if (!fs)
		return;
	res_close(&fs->fbb);
	res_close(&fs->pb2);
	res_close(&fs->pbc);
	res_close(&fs->sbc);
	res_close(&fs->fdc);
	free(fs);
}

int vmfsr_open(struct bdev *bd, struct vmfsr **out, char *errbuf, size_t errlen)
{
	struct vmfsr *fs = calloc(1, sizeof(*fs));
	int rc;

	*out = NULL;
	if (!fs)
		return -ENOMEM;
	fs->bd = bd;
	fs->fdc.name = ".fdc.sf";
	fs->sbc.name = ".sbc.sf";
	fs->pbc.name = ".pbc.sf";
	fs->pb2.name = ".pb2.sf";
	fs->fbb.name = ".fbb.sf";
	rc = fs_load(fs);
	if (rc < 0) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "%s", fs->err[0] ? fs->err : bdev_strerror(rc));
		vmfsr_close(fs);
		return rc;
	}
	*out = fs;
	return 0;
}

int vmfsr_probe(struct bdev *bd, int *version)
{
	struct vmfsr fs;
	uint8_t d[0x200];
	int rc;

	memset(&fs, 0, sizeof(fs));
	fs.bd = bd;
	if (bd->size < LVM_HDR_OFF + 0x1000)
		return 0;
	rc = lvm_read(&fs);
	if (rc == -EUCLEAN)
		return 0;
	if (rc < 0)
		return rc;
	rc = vmfsr_vol_read(&fs, FSD_OFF, d, sizeof(d), "FS descriptor");
	if (rc == -EUCLEAN)
		return 0;
	if (rc < 0)
		return rc;
	if (le32_get(d) != FSD_MAGIC && le32_get(d) != FSD_MAGIC_L)
		return 0;
	*version = le32_get(d + FSD_O_MAJOR) >= FSD_VMFS6_MAJOR ? 6 : fs.lvm_major >= 5 ? 5 : 3;
	return 1;
}

int vmfsr_info(struct vmfsr *fs, struct vmfsr_info *in)
{
	memset(in, 0, sizeof(*in));
	in->version = fs->version;
	in->fs_major = fs->fs_major;
	in->fs_minor = fs->fs_minor;
	in->lvm_major = fs->lvm_major;
	in->lvm_minor = fs->lvm_minor;
	memcpy(in->label, fs->label, sizeof(in->label));
	memcpy(in->uuid, fs->uuid, sizeof(in->uuid));
	memcpy(in->lvm_uuid, fs->lvm_uuid, sizeof(in->lvm_uuid));
	in->ctime = fs->ctime;
	in->block_size = fs->bsize;
	in->sub_block_size = fs->sbsize;
	in->lfb_size = fs->lfb_size;
	in->md_align = fs->md_align;
	in->vol_size = fs->vol_size;
	in->data_off = fs->data_off;
	in->dev_size = fs->bd->size;
	in->disk_block = fs->disk_block;
	in->hb_slots = fs->hb_count;
	in->hb_slot_size = fs->hb_slot;
	return 0;
}

/* VMFS5 only: each .fbb.sf cluster header (1 KiB, after its 512-byte lock
 * record) counts its total and free file blocks. VMFS6 cluster headers
 * count resource clusters, not blocks, so free space stays unknown there. */
static int fbb_free(struct vmfsr *fs, uint64_t *free_blocks)
{
	struct vmfsr_res *r = &fs->fbb;
	uint64_t ncl = (r->nres + r->per_cluster - 1) / r->per_cluster, sum = 0;
	uint8_t h[12];

	if (ncl > (1u << 20))
		return vmfsr_corrupt(fs, ".fbb.sf: %llu clusters is implausible",
				     (unsigned long long)ncl);
	for (uint64_t cl = 0; cl < ncl; cl++) {
		uint64_t off = r->first_grp + cl / r->cl_per_grp * r->grp_size +
			       (cl % r->cl_per_grp) * 0x400 + 0x200;
		ssize_t n = vmfsr_read(r->file, off, h, sizeof(h));
		uint32_t total = le32_get(h + 4), free = le32_get(h + 8);

		if (n < 0)
			return (int)n;
		if (n != sizeof(h))
			return vmfsr_corrupt(fs, ".fbb.sf: cluster %llu header beyond the file",
					     (unsigned long long)cl);
		if (total > r->per_cluster || free > total)
			return vmfsr_corrupt(fs, ".fbb.sf: cluster %llu counts %u free of %u",
					     (unsigned long long)cl, free, total);
		sum += free;
	}
	*free_blocks = sum;
	return 0;
}

int vmfsr_statfs(struct vmfsr *fs, struct vmfsr_statfs *st)
{
	memset(st, 0, sizeof(*st));
	st->block_size = fs->bsize;
	st->blocks = fs->nblocks;
	st->files = fs->fdc.nres;
	if (fs->version != 6 && fs->fbb.present && fs->fbb.nres <= (1ull << 32) &&
	    fbb_free(fs, &st->free) == 0 && st->free <= st->blocks)
		st->free_known = 1;
	else
		st->free = 0;
	fs->err[0] = 0;
	return 0;
}
