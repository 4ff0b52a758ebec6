/*
 * fs_falloc.c - vmfs_fallocate() and thick files (vmfs_create_thick()).
 *
 * The block work is fs_fallocate() in fs_file.c (next to the mapping code
 * it shares). Here: argument checks and the thick-file recipe.
 *
 * Thick files. VMFS distinguishes "lazily zeroed thick" (every block
 * allocated at creation, marked TBZ: reads return zeroes, the first write
 * into a block zeroes the rest of it) from "eagerly zeroed thick" (every
 * block zeroed on the device at creation: no first-write cost later).
 * vmfs_create_thick() creates the file (O_CREAT|O_EXCL) and preallocates
 * [0, size) in transactions of many blocks; eager blocks are zeroed with
 * bdev_write_zeroes() before the transaction linking them commits, so no
 * state ever exposes an unzeroed block. A crash midway leaves a shorter
 * thick file (the size follows the blocks allocated so far); a failure
 * removes the file again.
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>

#define FALLOC_KNOWN (VMFS_FALLOC_KEEP_SIZE | VMFS_FALLOC_PUNCH_HOLE | VMFS_FALLOC_ZERO_RANGE)

static int falloc_check(int mode, uint64_t len)
{
	if (mode & ~FALLOC_KNOWN)
		return -EOPNOTSUPP;
	if ((mode & VMFS_FALLOC_PUNCH_HOLE) &&
	    (!(mode & VMFS_FALLOC_KEEP_SIZE) || (mode & VMFS_FALLOC_ZERO_RANGE)))
		return -EOPNOTSUPP;
	return len ? 0 : -EINVAL;
}

int vmfs_fallocate(struct vmfs_file *f, int mode, uint64_t off, uint64_t len)
{
	int rc;

	if (!f)
		return -EINVAL;
	rc = fs_enter(f->fs, 1);
	if (rc)
		return rc;
	rc = f->wr ? falloc_check(mode, len) : -EBADF;
	if (!rc)
		rc = fs_fallocate(f->fs, f->ino->addr, mode, off, len);
	return fs_leave(f->fs, rc);
}

int vmfs_create_thick(struct vmfs *fs, const char *path, uint32_t mode, uint64_t size, int eager)
{
	struct vmfs_file *f;
	int rc, r;

	if (size > vmfs_fd_max_size(fs->vh.block_size))
		return -EFBIG;
	rc = vmfs_open(fs, path, O_CREAT | O_EXCL | O_RDWR, mode, &f);
	if (rc)
		return rc;
	if (size) {
		rc = fs_enter(fs, 1);
		if (!rc)
			rc = fs_leave(fs, fs_fallocate(fs, f->ino->addr,
						       eager ? FS_FALLOC_EAGER : 0, 0, size));
	}
	r = vmfs_close(f);
	rc = rc ? rc : r;
	if (rc)
		vmfs_unlink(fs, path);
	return rc;
}
