/*
 * fuzz_native.c - libFuzzer harness: a native volume (sparse input, see
 * fuzz_img.h) mounted read-only, then the whole tree walked: path lookups
 * (getattr), readdir, readlink, and reads of every regular file (its head
 * and its tail). Every operation may fail; none may crash, hang or leak.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bdev.h"
#include "fuzz_img.h"
#include "vmfs.h"

#define MAX_NAMES 64
#define MAX_DEPTH 6

struct names {
	int n;
	char name[MAX_NAMES][256];
};

static int collect(void *arg, const char *name, unsigned type, uint64_t ino)
{
	struct names *ns = arg;

	(void)type;
	(void)ino;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	if (ns->n >= MAX_NAMES)
		return 1; /* stop */
	snprintf(ns->name[ns->n++], sizeof(ns->name[0]), "%s", name);
	return 0;
}

static void read_file(struct vmfs *fs, const char *path, uint64_t size)
{
	static uint8_t buf[65536];
	struct vmfs_file *f;

	if (vmfs_open(fs, path, O_RDONLY, 0, &f))
		return;
	vmfs_read(f, buf, sizeof(buf), 0);
	if (size > sizeof(buf))
		vmfs_read(f, buf, 4096, size - 4096);
	vmfs_read(f, buf, 512, size / 2);
	vmfs_close(f);
}

static void walk(struct vmfs *fs, const char *dir, int depth, int *budget)
{
	struct names *ns = calloc(1, sizeof(*ns));
	char path[2048], target[256];
	struct vmfs_stat st;

	if (!ns)
		return;
	vmfs_readdir(fs, dir, collect, ns);
	for (int i = 0; i < ns->n && (*budget)-- > 0; i++) {
		snprintf(path, sizeof(path), "%s/%s", strcmp(dir, "/") ? dir : "", ns->name[i]);
		if (vmfs_getattr(fs, path, &st))
			continue;
		if (S_ISDIR(st.mode) && depth < MAX_DEPTH)
			walk(fs, path, depth + 1, budget);
		else if (S_ISREG(st.mode))
			read_file(fs, path, st.size);
		else if (S_ISLNK(st.mode))
			vmfs_readlink(fs, path, target, sizeof(target));
	}
	free(ns);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmfs_mount_opts o = {.read_only = 1};
	struct vmfs_statfs sf;
	struct vmfs_stat st;
	struct bdev *bd;
	struct vmfs *fs;
	int budget = 256;

	if (fuzz_image(data, size, 0, FUZZ_MAX_UNIT, &bd))
		return 0;
	if (vmfs_mount_bdev(bd, &o, &fs) == 0) {
		vmfs_statfs(fs, &sf);
		vmfs_getattr(fs, "/", &st);
		vmfs_getattr(fs, "/no/such/path", &st);
		walk(fs, "/", 0, &budget);
		vmfs_umount(fs);
	}
	fuzz_image_put(bd);
	return 0;
}
