/*
 * vmfsr_dir.c - directories, symlinks and path lookup on real VMFS5/6.
 *
 * Design note. A VMFS5 directory is a file holding an array of 0x8c-byte
 * entries (type, FD address, generation, name[128]); "." and ".." are
 * ordinary entries; a free entry has address 0. A VMFS6 directory starts
 * with a 64 KiB header (version 0xf50001, entry counts, a hash area, the
 * "." and ".." entries at 0x3b8 and 0x4d8), followed by md_align-sized
 * blocks each with a 0x40-byte header; blocks of kind 0x10001 hold
 * 0x120-byte entries, others are hash and allocation blocks. This reader
 * scans the entry blocks linearly, which is correct whatever the hash says.
 *
 * Invariants:
 *  1. Every entry is validated (address type FD, file type, NUL-terminated
 *     non-empty name without '/') before it reaches a callback.
 *  2. Path lookup follows at most VMFSR_MAX_SYMLINKS symlinks, so symlink
 *     cycles end with -ELOOP; directory cycles cannot hang a lookup since
 *     each component is one bounded directory scan.
 */
#include "vmfsr_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "le.h"

#define VMFSR_MAX_SYMLINKS 40
#define PATH_MAX_LEN	   4096
#define DIR_MAX_SIZE	   (1ull << 30)
#define DIR5_CHUNK	   64

static int dent_check(struct vmfsr *fs, uint32_t dir, const char *name, uint32_t addr,
		      uint32_t type)
{
	if (!name[0])
		return vmfsr_corrupt(fs, "directory FD 0x%08x: entry with an empty name", dir);
	if (strchr(name, '/'))
		return vmfsr_corrupt(fs, "directory FD 0x%08x: entry name contains '/'", dir);
	if ((addr & 7) != A_FD)
		return vmfsr_corrupt(fs,
				     "directory FD 0x%08x: entry '%.64s' points to 0x%08x, "
				     "not a file descriptor",
				     dir, name, addr);
	if (type < VMFSR_T_DIR || type > VMFSR_T_RDM)
		return vmfsr_corrupt(fs, "directory FD 0x%08x: entry '%.64s' has unknown type %u",
				     dir, name, type);
	return 0;
}

/* Decodes one entry with a name field of namelen bytes at name_off. */
static int dent_emit(struct vmfsr *fs, uint32_t dir, const uint8_t *e, size_t name_off,
		     size_t namelen, vmfsr_dir_cb cb, void *arg)
{
	char name[DIR6_NAME + 1];
	uint32_t type = le32_get(e), addr = le32_get(e + 4);
	int rc;

	if (addr == 0)
		return 0;
	memcpy(name, e + name_off, namelen);
	name[namelen] = 0;
	if (strlen(name) == namelen)
		return vmfsr_corrupt(fs, "directory FD 0x%08x: entry name not terminated", dir);
	rc = dent_check(fs, dir, name, addr, type);
	if (rc < 0)
		return rc;
	return cb(arg, name, addr, type);
}

static int readdir5(struct vmfsr_file *f, vmfsr_dir_cb cb, void *arg)
{
	uint8_t buf[DIR5_CHUNK * DIR5_ENTRY];
	uint64_t off = 0, end = f->st.size - f->st.size % DIR5_ENTRY;
	int rc = 0;

	while (off < end && !rc) {
		ssize_t n = vmfsr_read(f, off, buf, sizeof(buf));

		if (n < 0)
			return (int)n;
		if (n < DIR5_ENTRY)
			break;
		for (ssize_t i = 0; i + DIR5_ENTRY <= n && !rc; i += DIR5_ENTRY)
			rc = dent_emit(f->fs, f->st.ino, buf + i, 12, DIR5_NAME, cb, arg);
		off += (uint64_t)n;
	}
	return rc;
}

static int readdir6_block(struct vmfsr_file *f, const uint8_t *b, size_t len, vmfsr_dir_cb cb,
			  void *arg)
{
	int rc = 0;

	if (len < DIR6_BLK_HDR || le32_get(b) != DIR6_BLK_DENT)
		return 0;
	for (size_t i = DIR6_BLK_HDR; i + DIR6_ENTRY <= len && !rc; i += DIR6_ENTRY)
		rc = dent_emit(f->fs, f->st.ino, b + i, 0x18, DIR6_NAME, cb, arg);
	return rc;
}

static int readdir6(struct vmfsr_file *f, vmfsr_dir_cb cb, void *arg)
{
	struct vmfsr *fs = f->fs;
	uint8_t *b = malloc(fs->md_align > 0x600 ? fs->md_align : 0x600);
	uint32_t ver;
	ssize_t n;
	int rc;

	if (!b)
		return -ENOMEM;
	n = vmfsr_read(f, 0, b, 0x600);
	rc = n < 0 ? (int)n : 0;
	if (!rc && n < 0x600)
		rc = vmfsr_corrupt(fs, "directory FD 0x%08x: too short for its header", f->st.ino);
	ver = rc ? 0 : le32_get(b);
	if (!rc && ver != DIR6_VERSION && ver != DIR6_VERSION_F)
		rc = vmfsr_corrupt(fs, "directory FD 0x%08x: bad directory header version 0x%x",
				   f->st.ino, ver);
	if (!rc)
		rc = dent_emit(fs, f->st.ino, b + DIR6_SELF, 0x18, DIR6_NAME, cb, arg);
	if (!rc)
		rc = dent_emit(fs, f->st.ino, b + DIR6_SELF + DIR6_ENTRY, 0x18, DIR6_NAME, cb, arg);
	for (uint64_t off = DIR6_BLOCKS; !rc && off < f->st.size; off += fs->md_align) {
		n = vmfsr_read(f, off, b, fs->md_align);
		if (n < 0)
			rc = (int)n;
		else
			rc = readdir6_block(f, b, (size_t)n, cb, arg);
	}
	free(b);
	return rc;
}

int vmfsr_readdir(struct vmfsr *fs, uint32_t ino, vmfsr_dir_cb cb, void *arg)
{
	struct vmfsr_file *f;
	int rc = vmfsr_fopen(fs, ino, &f);

	if (rc < 0)
		return rc;
	if (!S_ISDIR(f->st.mode))
		rc = -ENOTDIR;
	else if (f->st.size > DIR_MAX_SIZE)
		rc = vmfsr_corrupt(fs, "directory FD 0x%08x: size 0x%llx is implausible", ino,
				   (unsigned long long)f->st.size);
	else if (fs->version == 6)
		rc = readdir6(f, cb, arg);
	else
		rc = readdir5(f, cb, arg);
	vmfsr_fclose(f);
	return rc;
}

struct find {
	const char *name;
	uint32_t ino;
};

static int find_cb(void *arg, const char *name, uint32_t ino, uint32_t type)
{
	struct find *fd = arg;

	(void)type;
	if (strcmp(name, fd->name))
		return 0;
	fd->ino = ino;
	return 1;
}

int vmfsr_lookup_at(struct vmfsr *fs, uint32_t dir, const char *name, uint32_t *ino)
{
	struct find fd = {name, 0};
	int rc;

	if (strlen(name) > DIR6_NAME - 1)
		return -ENAMETOOLONG;
	rc = vmfsr_readdir(fs, dir, find_cb, &fd);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return -ENOENT;
	*ino = fd.ino;
	return 0;
}

int vmfsr_readlink(struct vmfsr *fs, uint32_t ino, char *buf, size_t len)
{
	struct vmfsr_file *f;
	ssize_t n;
	int rc = vmfsr_fopen(fs, ino, &f);

	if (rc < 0)
		return rc;
	if (f->st.type != VMFSR_T_LNK)
		rc = -EINVAL;
	else if (f->st.size >= len || f->st.size >= PATH_MAX_LEN)
		rc = f->st.size >= PATH_MAX_LEN
			 ? vmfsr_corrupt(fs, "symlink FD 0x%08x: target length %llu too long", ino,
					 (unsigned long long)f->st.size)
			 : -ENAMETOOLONG;
	if (rc < 0)
		goto out;
	n = vmfsr_read(f, 0, buf, (size_t)f->st.size);
	if (n < 0) {
		rc = (int)n;
		goto out;
	}
	buf[n] = 0;
	rc = strlen(buf) == (size_t)n
		 ? (int)n
		 : vmfsr_corrupt(fs, "symlink FD 0x%08x: target contains a NUL byte", ino);
	if (n == 0)
		rc = vmfsr_corrupt(fs, "symlink FD 0x%08x: empty target", ino);
out:
	vmfsr_fclose(f);
	return rc;
}

/* Walk state: the path still to resolve lives in path[pos..]. */
struct walk {
	char path[PATH_MAX_LEN * 2];
	size_t pos;
	uint32_t cur;
	int links;
};

/* Replaces the walk's path by target + "/" + rest. */
static int walk_splice(struct walk *w, const char *target, const char *rest)
{
	char tmp[PATH_MAX_LEN * 2];
	int n = snprintf(tmp, sizeof(tmp), "%s/%s", target, rest);

	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(w->path, tmp, (size_t)n + 1);
	w->pos = 0;
	if (target[0] == '/')
		w->cur = VMFSR_ROOT;
	return 0;
}

static int walk_step(struct vmfsr *fs, struct walk *w, int follow)
{
	char comp[DIR6_NAME + 1], target[PATH_MAX_LEN];
	const char *p = w->path + w->pos, *rest;
	struct vmfsr_stat st;
	uint32_t child;
	size_t len = strcspn(p, "/");
	int rc;

	if (len > DIR6_NAME - 1)
		return -ENAMETOOLONG;
	memcpy(comp, p, len);
	comp[len] = 0;
	rest = p + len + strspn(p + len, "/");
	rc = vmfsr_lookup_at(fs, w->cur, comp, &child);
	if (rc == 0)
		rc = vmfsr_stat(fs, child, &st);
	if (rc < 0)
		return rc;
	if (st.type == VMFSR_T_LNK && (*rest || follow)) {
		if (++w->links > VMFSR_MAX_SYMLINKS)
			return -ELOOP;
		rc = vmfsr_readlink(fs, child, target, sizeof(target));
		return rc < 0 ? rc : walk_splice(w, target, rest);
	}
	if (*rest && !S_ISDIR(st.mode))
		return -ENOTDIR;
	w->cur = child;
	w->pos = (size_t)(rest - w->path);
	return 0;
}

int vmfsr_lookup(struct vmfsr *fs, const char *path, int follow, uint32_t *ino)
{
	struct walk *w;
	int rc = 0;

	if (strlen(path) >= PATH_MAX_LEN)
		return -ENAMETOOLONG;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	strcpy(w->path, path);
	w->cur = VMFSR_ROOT;
	while (!rc) {
		w->pos += strspn(w->path + w->pos, "/");
		if (!w->path[w->pos])
			break;
		rc = walk_step(fs, w, follow);
	}
	if (!rc)
		*ino = w->cur;
	free(w);
	return rc;
}
