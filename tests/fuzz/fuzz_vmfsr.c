/*
 * fuzz_vmfsr.c - libFuzzer harness: the reader of real VMFS5/VMFS6
 * datastores (libvmfs/vmfsr*.c) over a sparse input (fuzz_img.h; seeds are
 * the real datastores of ../shared/data): probe, open, info, statfs,
 * heartbeats, locks, then the tree: readdir, lookup, stat, readlink and
 * reads of every regular file's head and tail.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"
#include "fuzz_img.h"
#include "vmfsr.h"

#define MAX_NAMES 64
#define MAX_DEPTH 6

struct ent {
	char name[256];
	uint32_t ino;
};
struct names {
	int n;
	struct ent e[MAX_NAMES];
};

static int collect(void *arg, const char *name, uint32_t ino, uint32_t type)
{
	struct names *ns = arg;

	(void)type;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	if (ns->n >= MAX_NAMES)
		return 1;
	snprintf(ns->e[ns->n].name, sizeof(ns->e[0].name), "%s", name);
	ns->e[ns->n++].ino = ino;
	return 0;
}

static int count_hb(void *arg, const struct vmfsr_hb *hb)
{
	(void)hb;
	return ++*(int *)arg > 4096;
}

/* vmfsr_locks() reads every FD of the volume (seconds on a real VMFS6
 * datastore): stop after a few records, enough to exercise the decoder. */
static int count_lock(void *arg, const struct vmfsr_lock *lk)
{
	(void)lk;
	return ++*(int *)arg > 8;
}

static void read_file(struct vmfsr *fs, uint32_t ino)
{
	static uint8_t buf[65536];
	const struct vmfsr_stat *st;
	struct vmfsr_file *f;

	if (vmfsr_fopen(fs, ino, &f))
		return;
	st = vmfsr_fstat(f);
	vmfsr_read(f, 0, buf, sizeof(buf));
	if (st->size > sizeof(buf))
		vmfsr_read(f, st->size - 4096, buf, 4096);
	vmfsr_read(f, st->size / 2, buf, 512);
	vmfsr_fclose(f);
}

static void walk(struct vmfsr *fs, uint32_t dir, const char *path, int depth, int *budget)
{
	struct names *ns = calloc(1, sizeof(*ns));
	char sub[2048], target[256];
	struct vmfsr_stat st;
	uint32_t ino;

	if (!ns)
		return;
	vmfsr_readdir(fs, dir, collect, ns);
	for (int i = 0; i < ns->n && (*budget)-- > 0; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", path, ns->e[i].name);
		vmfsr_lookup(fs, sub, 0, &ino);
		vmfsr_lookup_at(fs, dir, ns->e[i].name, &ino);
		if (vmfsr_stat(fs, ns->e[i].ino, &st))
			continue;
		if (st.type == VMFSR_T_DIR && depth < MAX_DEPTH)
			walk(fs, ns->e[i].ino, sub, depth + 1, budget);
		else if (st.type == VMFSR_T_LNK)
			vmfsr_readlink(fs, ns->e[i].ino, target, sizeof(target));
		else
			read_file(fs, ns->e[i].ino);
	}
	free(ns);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vmfsr_info info;
	struct vmfsr_statfs sf;
	struct bdev *bd;
	struct vmfsr *fs;
	char err[256];
	uint32_t root;
	int version, n = 0, budget = 256;

	if (fuzz_image(data, size, 0, FUZZ_MAX_UNIT, &bd))
		return 0;
	if (vmfsr_probe(bd, &version) == 1 && vmfsr_open(bd, &fs, err, sizeof(err)) == 0) {
		vmfsr_info(fs, &info);
		vmfsr_statfs(fs, &sf);
		vmfsr_heartbeats(fs, count_hb, &n);
		n = 0;
		vmfsr_locks(fs, count_lock, &n);
		if (vmfsr_lookup(fs, "/", 1, &root) == 0)
			walk(fs, root, "", 0, &budget);
		vmfsr_close(fs);
	}
	fuzz_image_put(bd);
	return 0;
}
