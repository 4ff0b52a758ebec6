/*
 * vmfsr_file.c - file descriptors and file data of a real VMFS5/6 volume.
 *
 * Design note. An FD is one resource of .fdc.sf: a lock record, then at
 * md_align the FD body (type, size, times, mode, zla, ...), then at the end
 * either resident data or the block array. The zla ("addressing mode")
 * says how the block array is read:
 *
 *   zla            block array holds            levels
 *   1 FB           file blocks (VMFS6 also LFB)  direct
 *   2 SB           sub-blocks of .sbc.sf         direct
 *   3 PB           pointer blocks                1 indirect
 *   4301+3         pointer blocks of PBs         2 indirect
 *   4 FD           resident data in the FD       -
 *   5 PB2          .pb2.sf pointer blocks        1 indirect
 *
 * Invariants:
 *  1. vmfsr_fopen() validates the FD body (own address, type, block size,
 *     zla, size against what the block array can address) once; reads
 *     then only validate the addresses they meet.
 *  2. Every address met while reading is range-checked against the volume
 *     (file blocks) or its resource file (sub-blocks, pointer blocks)
 *     before use; a wrong type at any level is -EUCLEAN.
 *  3. Indirection depth is fixed by the zla (at most 2), so no pointer
 *     chain can loop.
 *  4. Holes (address 0) and blocks with a TBZ (to-be-zeroed) flag read as
 *     zeroes.
 */
#include "vmfsr_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bdev.h"
#include "le.h"

static uint64_t addr_at(const struct vmfsr *fs, const uint8_t *arr, uint64_t i)
{
	return fs->asize == 4 ? le32_get(arr + i * 4) : le64_get(arr + i * 8);
}

int vmfsr_fd_load(struct vmfsr *fs, uint32_t addr, uint8_t *raw)
{
	int rc;

	if ((addr & 7) != A_FD)
		return vmfsr_corrupt(fs, "address 0x%08x is not a file descriptor", addr);
	rc = vmfsr_res_read(fs, &fs->fdc, (addr >> 6) & 0xffff, addr >> 22, raw, 0, fs->fd_size);
	if (rc < 0)
		return rc;
	if (le32_get(raw + fs->md_align + FD_O_ADDR) != addr)
		return vmfsr_corrupt(fs,
				     "FD 0x%08x: address field 0x%08x does not match (free or "
				     "stale FD)",
				     addr, le32_get(raw + fs->md_align + FD_O_ADDR));
	return 0;
}

/* Directories (and the system directory .sdd.sf, whose mode says so). */
static uint32_t type_mode(uint32_t type, uint32_t mode)
{
	uint32_t fmt = mode & S_IFMT;

	mode &= 07777;
	if (type == VMFSR_T_DIR || fmt == S_IFDIR)
		return mode | S_IFDIR;
	if (type == VMFSR_T_LNK)
		return mode | S_IFLNK;
	return mode | S_IFREG;
}

int vmfsr_fd_decode(struct vmfsr *fs, uint32_t addr, const uint8_t *raw, struct vmfsr_stat *st)
{
	const uint8_t *d = raw + fs->md_align;

	memset(st, 0, sizeof(*st));
	st->ino = addr;
	st->type = le32_get(d + FD_O_TYPE);
	if (st->type < VMFSR_T_DIR || st->type > VMFSR_T_RDM)
		return vmfsr_corrupt(fs, "FD 0x%08x: unknown file type %u", addr, st->type);
	st->mode = type_mode(st->type, le32_get(d + FD_O_MODE));
	st->nlink = le32_get(d + FD_O_NLINK);
	st->uid = le32_get(d + FD_O_UID);
	st->gid = le32_get(d + FD_O_GID);
	st->size = le64_get(d + FD_O_SIZE);
	st->atime = le32_get(d + FD_O_ATIME);
	st->mtime = le32_get(d + FD_O_MTIME);
	st->ctime = le32_get(d + FD_O_CTIME);
	st->blksize = le64_get(d + FD_O_BSIZE);
	st->nblocks = le64_get(d + FD_O_NBLOCKS);
	st->zla = le32_get(d + FD_O_ZLA);
	if (st->size > (1ull << 56))
		return vmfsr_corrupt(fs, "FD 0x%08x: size 0x%llx out of range", addr,
				     (unsigned long long)st->size);
	return 0;
}

int vmfsr_stat(struct vmfsr *fs, uint32_t ino, struct vmfsr_stat *st)
{
	struct vmfsr_file *f;
	int rc = vmfsr_fopen(fs, ino, &f);

	if (rc < 0)
		return rc;
	*st = f->st;
	vmfsr_fclose(f);
	return 0;
}

/* Blocks the block array can address for this zla (0 for resident). */
static uint64_t capacity(const struct vmfsr_file *f)
{
	const struct vmfsr *fs = f->fs;
	uint64_t n = fs->fd_nblk;

	switch (f->zla) {
	case A_FB:
	case A_SB: return n;
	case A_PB: return f->ext ? n * fs->pb_per * fs->pb_per : n * fs->pb_per;
	case A_PB2: return fs->pb2.present ? n * (fs->pb2.res_size / fs->asize) : 0;
	default: return 0;
	}
}

static int file_check(struct vmfsr_file *f)
{
	struct vmfsr *fs = f->fs;
	uint32_t addr = f->st.ino;
	unsigned bshift = f->raw[fs->md_align + FD_O_BSHIFT];
	uint64_t need;

	f->zla = f->st.zla;
	if (f->zla >= ZLA_EXT_BASE) {
		f->ext = 1;
		f->zla -= ZLA_EXT_BASE;
	}
	if (f->zla > A_PB2 || (f->ext && f->zla != A_PB && f->zla != A_FD))
		return vmfsr_corrupt(fs, "FD 0x%08x: unknown addressing mode (zla %u)", addr,
				     f->st.zla);
	if (f->zla == A_FD || f->zla == A_NONE) {
		if (f->st.size > fs->fd_res_size)
			return vmfsr_corrupt(fs, "FD 0x%08x: resident size 0x%llx exceeds 0x%x",
					     addr, (unsigned long long)f->st.size, fs->fd_res_size);
		return 0;
	}
	f->bsize = f->st.blksize;
	if (f->bsize < 512 || f->bsize > (1ull << 40) || (f->bsize & (f->bsize - 1)))
		return vmfsr_corrupt(fs, "FD 0x%08x: block size 0x%llx invalid", addr,
				     (unsigned long long)f->bsize);
	f->shift = (unsigned)__builtin_ctzll(f->bsize);
	if (bshift && bshift != f->shift)
		return vmfsr_corrupt(fs, "FD 0x%08x: block shift %u disagrees with block size",
				     addr, bshift);
	if (f->zla == A_PB2 && !fs->pb2.present)
		return vmfsr_corrupt(fs,
				     "FD 0x%08x: addressed through .pb2.sf, which is unusable (%s)",
				     addr, fs->pb2.why);
	need = (f->st.size + f->bsize - 1) >> f->shift;
	if (need > capacity(f))
		return vmfsr_corrupt(fs,
				     "FD 0x%08x: size 0x%llx exceeds what its block array "
				     "addresses",
				     addr, (unsigned long long)f->st.size);
	return 0;
}

int vmfsr_fopen(struct vmfsr *fs, uint32_t ino, struct vmfsr_file **out)
{
	struct vmfsr_file *f = calloc(1, sizeof(*f));
	int rc;

	*out = NULL;
	if (!f)
		return -ENOMEM;
	f->fs = fs;
	f->raw = malloc(fs->fd_size);
	if (!f->raw) {
		free(f);
		return -ENOMEM;
	}
	rc = vmfsr_fd_load(fs, ino, f->raw);
	if (!rc)
		rc = vmfsr_fd_decode(fs, ino, f->raw, &f->st);
	if (!rc)
		rc = file_check(f);
	if (rc < 0) {
		vmfsr_fclose(f);
		return rc;
	}
	*out = f;
	return 0;
}

void vmfsr_fclose(struct vmfsr_file *f)
{
	if (!f)
		return;
	free(f->cache[0]);
	free(f->cache[1]);
	free(f->raw);
	free(f);
}

const struct vmfsr_stat *vmfsr_fstat(const struct vmfsr_file *f)
{
	return &f->st;
}

/* Reads pointer block pb (level 0 or 1) into that level's one-entry cache
 * and points *arr at it; the caller indexes it below the block's size. */
static int pb_get(struct vmfsr_file *f, int level, uint64_t pb, const uint8_t **arr)
{
	struct vmfsr *fs = f->fs;
	struct vmfsr_res *r;
	uint64_t cl, res;
	int rc;

	if (f->cache[level] && f->cache_addr[level] == pb) {
		*arr = f->cache[level];
		return 0;
	}
	if (f->zla == A_PB2) {
		r = &fs->pb2;
		cl = (fs->version == 6 ? pb & 0xffffffffc0ull : pb & 0x0fffffc0) >> 6;
		res = fs->version == 6 ? pb >> 56 : pb >> 28;
		if ((pb & 7) != A_PB2)
			goto badtype;
	} else if (fs->version == 6) {
		r = &fs->sbc;
		cl = (pb & 0xffffffffc0ull) >> 6;
		res = pb >> 56;
		if ((pb & 7) != A_PB && (pb & 7) != A_SB)
			goto badtype;
	} else {
		r = &fs->pbc;
		cl = (pb & 0x0fffffc0) >> 6;
		res = pb >> 28;
		if ((pb & 7) != A_PB)
			goto badtype;
	}
	if (r->res_size < (f->zla == A_PB2 ? fs->asize : fs->pb_per * fs->asize))
		return vmfsr_corrupt(fs, "FD 0x%08x: %s resources too small for pointer blocks",
				     f->st.ino, r->name);
	if (!f->cache[level] || f->cache_len[level] != r->res_size) {
		free(f->cache[level]);
		f->cache[level] = malloc(r->res_size);
		f->cache_len[level] = r->res_size;
		if (!f->cache[level])
			return -ENOMEM;
	}
	f->cache_addr[level] = ~0ull;
	rc = vmfsr_res_read(fs, r, cl, res, f->cache[level], 0, r->res_size);
	if (rc < 0) {
		if (rc == -EUCLEAN)
			vmfsr_corrupt(fs, "FD 0x%08x: pointer block address 0x%llx out of range",
				      f->st.ino, (unsigned long long)pb);
		return rc;
	}
	f->cache_addr[level] = pb;
	*arr = f->cache[level];
	return 0;
badtype:
	return vmfsr_corrupt(fs, "FD 0x%08x: pointer block address 0x%llx has wrong type %u",
			     f->st.ino, (unsigned long long)pb, (unsigned)(pb & 7));
}

/* Maps file block idx to the address of its data (0 for a hole). */
static int map_block(struct vmfsr_file *f, uint64_t idx, uint64_t *leaf)
{
	struct vmfsr *fs = f->fs;
	const uint8_t *blocks = f->raw + fs->fd_blk_off, *arr;
	uint64_t per = fs->pb_per, a;
	int rc;

	if (f->zla == A_FB || f->zla == A_SB) {
		if (idx >= fs->fd_nblk)
			goto range;
		*leaf = addr_at(fs, blocks, idx);
		return 0;
	}
	if (f->zla == A_PB2)
		per = fs->pb2.res_size / fs->asize;
	if (!f->ext) {
		if (idx / per >= fs->fd_nblk)
			goto range;
		a = addr_at(fs, blocks, idx / per);
	} else {
		if (idx / per / per >= fs->fd_nblk)
			goto range;
		a = addr_at(fs, blocks, idx / per / per);
		if (a == 0 || (a & 7) == A_LFB) {
			*leaf = a;
			return 0;
		}
		rc = pb_get(f, 0, a, &arr);
		if (rc < 0)
			return rc;
		a = addr_at(fs, arr, (idx / per) % per);
	}
	if (a == 0 || (fs->version == 6 && (a & 7) == A_LFB)) {
		*leaf = a;
		return 0;
	}
	rc = pb_get(f, 1, a, &arr);
	if (rc < 0)
		return rc;
	*leaf = addr_at(fs, arr, idx % per);
	return 0;
range:
	return vmfsr_corrupt(fs, "FD 0x%08x: block %llu beyond the block array", f->st.ino,
			     (unsigned long long)idx);
}

static int tbz(const struct vmfsr *fs, uint64_t a)
{
	if (fs->version == 6)
		return ((a & 7) == A_FB || (a & 7) == A_LFB) && (a & 0x7f80);
	return (a & 7) == A_FB && (a & 0x20);
}

/* Reads from leaf address a; off is the offset in the file. Returns the
 * bytes read (up to the end of the block containing off) or -errno. */
static ssize_t read_leaf(struct vmfsr_file *f, uint64_t a, uint64_t off, uint8_t *buf, size_t len)
{
	struct vmfsr *fs = f->fs;
	uint64_t in = off & (f->bsize - 1), blk, cl, res;
	unsigned t = (unsigned)(a & 7);
	size_t n = len;
	int rc;

	if (t == A_LFB && fs->version == 6) {
		in = off & (fs->lfb_size - 1);
		if (n > fs->lfb_size - in)
			n = (size_t)(fs->lfb_size - in);
	} else if (n > f->bsize - in) {
		n = (size_t)(f->bsize - in);
	}
	if (a == 0 || tbz(fs, a)) {
		memset(buf, 0, n);
		return (ssize_t)n;
	}
	switch (t) {
	case A_FB:
		if (f->bsize != fs->bsize)
			return vmfsr_corrupt(fs,
					     "FD 0x%08x: file block in a file of block size "
					     "0x%llx",
					     f->st.ino, (unsigned long long)f->bsize);
		if (fs->version == 6) {
			cl = (a >> 15) & 0x7fffffffull;
			res = a >> 51;
			if (res >= fs->sfb_per_cluster)
				goto range;
			blk = cl * fs->sfb_per_cluster + res;
		} else {
			blk = (a & 0xffffffffull) >> 6;
		}
		if (blk >= fs->nblocks)
			goto range;
		rc = vmfsr_vol_read(fs, (blk << fs->bshift) + in, buf, n, "file block");
		return rc < 0 ? rc : (ssize_t)n;
	case A_LFB:
		if (fs->version != 6)
			break;
		blk = (a & 0x3fffffff8000ull) >> 15;
		if (blk >= (fs->vol_size >> fs->lfb_shift))
			goto range;
		rc = vmfsr_vol_read(fs, (blk << fs->lfb_shift) + in, buf, n, "large file block");
		return rc < 0 ? rc : (ssize_t)n;
	case A_SB:
		if (f->bsize != fs->sbc.res_size)
			return vmfsr_corrupt(fs,
					     "FD 0x%08x: sub-block in a file of block size "
					     "0x%llx",
					     f->st.ino, (unsigned long long)f->bsize);
		if (fs->version == 6) {
			cl = (a & 0xffffffffc0ull) >> 6;
			res = a >> 56;
		} else {
			cl = (a & 0x0fffffc0) >> 6;
			res = (a >> 28) & 0xf;
			if (fs->config & FSD_CONFIG_SB_EXT)
				res |= ((a >> 3) & 3) << 4;
		}
		rc = vmfsr_res_read(fs, &fs->sbc, cl, res, buf, (uint32_t)in, (uint32_t)n);
		if (rc == -EUCLEAN)
			vmfsr_corrupt(fs, "FD 0x%08x: sub-block 0x%llx out of range", f->st.ino,
				      (unsigned long long)a);
		return rc < 0 ? rc : (ssize_t)n;
	}
	return vmfsr_corrupt(fs, "FD 0x%08x: data address 0x%llx has unexpected type %u", f->st.ino,
			     (unsigned long long)a, t);
range:
	return vmfsr_corrupt(fs, "FD 0x%08x: file block address 0x%llx out of range", f->st.ino,
			     (unsigned long long)a);
}

ssize_t vmfsr_read(struct vmfsr_file *f, uint64_t off, void *buf, size_t len)
{
	struct vmfsr *fs = f->fs;
	uint8_t *out = buf;
	size_t done = 0;

	if (f->st.type == VMFSR_T_RDM)
		return -EOPNOTSUPP;
	if (off >= f->st.size)
		return 0;
	if (len > f->st.size - off)
		len = (size_t)(f->st.size - off);
	if (f->zla == A_FD || f->zla == A_NONE) {
		memcpy(out, f->raw + fs->fd_res_off + off, len);
		return (ssize_t)len;
	}
	while (done < len) {
		uint64_t leaf = 0;
		ssize_t n;
		int rc = map_block(f, (off + done) >> f->shift, &leaf);

		if (rc < 0)
			return rc;
		n = read_leaf(f, leaf, off + done, out + done, len - done);
		if (n < 0)
			return n;
		done += (size_t)n;
	}
	return (ssize_t)done;
}
