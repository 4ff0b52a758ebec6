/*
 * fs_bench.c - creates N files in one directory of a fresh image and prints
 * creates/s, then the median getattr time of the first and the last
 * created names, and readdir time; with each phase, the device I/Os it took
 * per operation (counted by a fault: wrapper that injects nothing; they
 * include the heartbeat's one ATS per second and the reclaim sweep's slot
 * reads, a small share over these phases).
 *   fs_bench IMAGE [NFILES] [SIZE_MIB]
 * FS_BENCH_DIRECT=0 mounts through the page cache (file:IMAGE?direct=0).
 * FS_BENCH_KEEP=1 mounts with keep_locks (kept locks, deferred checkpoints).
 * The image is (re)created sparse and formatted; it is left in place.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bdev.h"
#include "format.h"
#include "vmfs.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median_getattr(struct vmfs *fs, const char *path, int reps)
{
	double *t = malloc(sizeof(double) * (size_t)reps), m;
	struct vmfs_stat st;

	for (int i = 0; i < reps; i++) {
		double t0 = now_s();

		if (vmfs_getattr(fs, path, &st)) {
			fprintf(stderr, "fs_bench: getattr %s failed\n", path);
			exit(1);
		}
		t[i] = now_s() - t0;
	}
	qsort(t, (size_t)reps, sizeof(double), cmp_d);
	m = t[reps / 2];
	free(t);
	return m;
}

static int count_cb(void *arg, const char *name, unsigned type, uint64_t ino)
{
	(void)name;
	(void)type;
	(void)ino;
	(*(uint64_t *)arg)++;
	return 0;
}

/* Device I/Os since the last call, per operation, as one line. */
static void io_line(struct bdev *bd, const char *what, double nops)
{
	struct bdev_fault_counts c;

	if (bdev_fault_counts(bd, &c))
		return;
	printf("  I/O per %s: %.1f reads, %.1f writes, %.1f flushes, %.1f ATS\n", what,
	       (double)c.ops[BDEV_FAULT_READ] / nops, (double)c.ops[BDEV_FAULT_WRITE] / nops,
	       (double)c.ops[BDEV_FAULT_FLUSH] / nops, (double)c.ops[BDEV_FAULT_ATS] / nops);
	bdev_fault_arm(bd, ""); /* counts from zero again */
}

static int mkimg(const char *img, uint64_t size, uint32_t nfiles)
{
	struct vmfs_mkfs_opts o = {
	    .label = "bench", .max_hosts = 8, .journal_size = 1u << 20, .nfds = nfiles + 256};
	struct vmfs_vh vh;
	struct bdev *bd;
	char why[256];
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600), rc;

	if (fd < 0 || ftruncate(fd, (off_t)size) || close(fd))
		return -errno;
	rc = bdev_open(img, 0, &bd);
	if (rc)
		return rc;
	rc = vmfs_layout(bd->size, bd->lsec, &o, &vh, why, sizeof(why));
	if (!rc)
		rc = vmfs_mkfs_write(bd, &vh, &o, why, sizeof(why));
	if (rc)
		fprintf(stderr, "fs_bench: mkfs: %s\n", why);
	bdev_close(bd);
	return rc;
}

int main(int argc, char **argv)
{
	uint32_t n = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 20000;
	uint64_t size = (argc > 3 ? strtoull(argv[3], NULL, 0) : 4096) << 20, cnt = 0;
	struct vmfs *fs;
	struct bdev *bd;
	const char *direct = getenv("FS_BENCH_DIRECT"), *keep = getenv("FS_BENCH_KEEP");
	struct vmfs_mount_opts mo = {0};
	char path[64], uri[4200];
	double t0, dt, first, last;
	int rc;

	if (argc < 2 || n == 0) {
		fprintf(stderr, "usage: fs_bench IMAGE [NFILES] [SIZE_MIB]\n");
		return 2;
	}
	if (mkimg(argv[1], size, n))
		return 1;
	snprintf(uri, sizeof(uri), "fault::file:%s?direct=%s", argv[1], direct ? direct : "1");
	rc = bdev_open(uri, 0, &bd);
	if (rc) {
		fprintf(stderr, "fs_bench: %s: %s\n", uri, bdev_strerror(rc));
		return 1;
	}
	mo.keep_locks = keep && atoi(keep) > 0;
	printf("keep_locks=%d\n", mo.keep_locks);
	rc = vmfs_mount_bdev(bd, &mo, &fs);
	if (rc) {
		fprintf(stderr, "fs_bench: mount: %s\n", vmfs_errmsg(NULL));
		return 1;
	}
	vmfs_mkdir(fs, "/d", 0755);
	bdev_fault_arm(bd, "");
	t0 = now_s();
	for (uint32_t i = 0; i < n; i++) {
		struct vmfs_file *f;

		snprintf(path, sizeof(path), "/d/f%07" PRIu32, i);
		rc = vmfs_open(fs, path, O_CREAT | O_RDWR | O_EXCL, 0644, &f);
		if (!rc)
			rc = vmfs_close(f);
		if (rc) {
			fprintf(stderr, "fs_bench: create %s: %s (%s)\n", path, vmfs_strerror(rc),
				vmfs_errmsg(fs));
			return 1;
		}
	}
	dt = now_s() - t0;
	printf("creates: %" PRIu32 " in %.1f s = %.0f creates/s\n", n, dt, n / dt);
	io_line(bd, "create (open O_CREAT|O_EXCL + close)", n);
	first = median_getattr(fs, "/d/f0000000", 201);
	snprintf(path, sizeof(path), "/d/f%07" PRIu32, n - 1);
	last = median_getattr(fs, path, 201);
	printf("getattr median: first %.1f us, last %.1f us (ratio %.2f)\n", first * 1e6,
	       last * 1e6, last / first);
	io_line(bd, "getattr of /d/NAME (warm)", 2 * 201);
	t0 = now_s();
	vmfs_readdir(fs, "/d", count_cb, &cnt);
	printf("readdir: %" PRIu64 " entries in %.3f s\n", cnt, now_s() - t0);
	rc = vmfs_umount(fs);
	bdev_close(bd);
	return rc ? 1 : 0;
}
