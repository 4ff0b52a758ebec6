/*
 * iscsi_ns_host.c - one host of test_iscsi_netns.sh (each runs in a network
 * namespace of its own, reaching the target over a veth link).
 *
 *   hold URL PATH HOST   mounts as HOST, writes PATH (1 MiB of 'A'), fsyncs,
 *                        keeps it open for writing and prints "held"; then
 *                        obeys lines on stdin:
 *                          write  vmfs_write + fsync of 4 KiB of 'Z' at 0:
 *                                 prints "write RC MESSAGE"
 *                          raw    bdev_write of 4 KiB of 'Z' straight to the
 *                                 device block under PATH's first 4 KiB, on
 *                                 the mount's own session: no lease check,
 *                                 no file system (the late write of a thread
 *                                 paused between check and write): prints
 *                                 "raw RC MESSAGE"
 *                        and exits 0 at end of input.
 *   take URL PATH HOST   mounts as HOST, opens PATH for writing (waits for
 *                        the holder's lock: takeover and journal replay),
 *                        checks it holds the holder's 1 MiB of 'A', writes
 *                        1 MiB of 'B', fsyncs, prints "taken", unmounts.
 *   check URL PATH HOST  mounts read-only and checks PATH is 1 MiB of 'B':
 *                        prints "intact".
 *   work URL DIR HOST    (test_iscsi_fs_lost.sh) mounts, then creates
 *                        DIR/f0, f1, ... (64 KiB each, fsync'd), printing
 *                        "ok I" after each; at the first error prints
 *                        "err I MS MESSAGE" (MS since the last success),
 *                        tries to unmount and exits 3.
 *   verify URL DIR HOST K  mounts (replaying a dead host's journal) and
 *                        checks DIR/f0..f(K-1): prints "verified K".
 * Exit 1 with a message on any failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"
#include "vmfs.h"

#define LEN (1u << 20)

static int fail(const char *what, int rc, struct vmfs *fs)
{
	fprintf(stderr, "iscsi_ns_host: %s: %s (%s)\n", what, vmfs_strerror(rc),
		fs ? vmfs_errmsg(fs) : vmfs_errmsg(NULL));
	return 1;
}

static int all(const uint8_t *buf, size_t len, uint8_t c)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != c)
			return 0;
	return 1;
}

static int hold(struct bdev *bd, const char *path, const char *host)
{
	struct vmfs_mount_opts o = {.hostname = host};
	uint8_t *buf = bdev_alloc(LEN);
	struct vmfs_file *f;
	struct vmfs *fs;
	uint64_t at = UINT64_MAX;
	char line[64];
	int rc;

	rc = vmfs_mount_bdev(bd, &o, &fs);
	if (rc < 0)
		return fail("mount", rc, NULL);
	rc = vmfs_open(fs, path, O_RDWR | O_CREAT, 0644, &f);
	if (rc < 0)
		return fail("create", rc, fs);
	memset(buf, 'A', LEN);
	if (vmfs_write(f, buf, LEN, 0) != (ssize_t)LEN || vmfs_fsync(f) < 0)
		return fail("write", -EIO, fs);
	/* where PATH's data lies: the only 4 KiB blocks of all 'A' on the LUN */
	for (uint64_t off = 0; off < bd->size && at == UINT64_MAX; off += LEN) {
		size_t len = bd->size - off < LEN ? (size_t)(bd->size - off) : LEN;

		if (bdev_read(bd, buf, off, len) < 0)
			return fail("reading the device", -EIO, fs);
		for (size_t i = 0; i + 4096 <= len && at == UINT64_MAX; i += 4096)
			if (all(buf + i, 4096, 'A'))
				at = off + i;
	}
	if (at == UINT64_MAX)
		return fail("finding the file's data on the device", -EIO, fs);
	printf("held at device offset %llu\n", (unsigned long long)at);
	fflush(stdout);
	memset(buf, 'Z', 4096);
	while (fgets(line, sizeof(line), stdin)) {
		if (!strncmp(line, "write", 5)) {
			ssize_t w = vmfs_write(f, buf, 4096, 0);

			rc = w < 0 ? (int)w : vmfs_fsync(f);
			printf("write %d %s: %s\n", rc, rc < 0 ? vmfs_strerror(rc) : "ok",
			       rc < 0 ? vmfs_errmsg(fs) : "");
		} else if (!strncmp(line, "raw", 3)) {
			rc = bdev_write(bd, buf, at, 4096);
			printf("raw %d %s\n", rc, bdev_strerror(rc));
		}
		fflush(stdout);
	}
	vmfs_close(f); /* fenced: fails, writes nothing */
	vmfs_umount(fs);
	bdev_free(buf);
	return 0;
}

static int take(struct bdev *bd, const char *path, const char *host)
{
	struct vmfs_mount_opts o = {.hostname = host, .lock_timeout_ms = 120000};
	uint8_t *buf = bdev_alloc(LEN);
	struct vmfs_file *f;
	struct vmfs *fs;
	int rc;

	rc = vmfs_mount_bdev(bd, &o, &fs);
	if (rc < 0)
		return fail("mount", rc, NULL);
	rc = vmfs_open(fs, path, O_RDWR, 0, &f);
	if (rc < 0)
		return fail("open for writing", rc, fs);
	if (vmfs_read(f, buf, LEN, 0) != (ssize_t)LEN || !all(buf, LEN, 'A'))
		return fail("the holder's fsync'd data is not there", -EIO, fs);
	memset(buf, 'B', LEN);
	if (vmfs_write(f, buf, LEN, 0) != (ssize_t)LEN || vmfs_fsync(f) < 0)
		return fail("write", -EIO, fs);
	rc = vmfs_close(f);
	if (rc == 0)
		rc = vmfs_umount(fs);
	if (rc < 0)
		return fail("close", rc, NULL);
	printf("taken\n");
	bdev_free(buf);
	return 0;
}

static int check(struct bdev *bd, const char *path, const char *host)
{
	struct vmfs_mount_opts o = {.hostname = host, .read_only = 1};
	uint8_t *buf = bdev_alloc(LEN + 4096);
	struct vmfs_file *f;
	struct vmfs *fs;
	ssize_t got;
	int rc;

	rc = vmfs_mount_bdev(bd, &o, &fs);
	if (rc < 0)
		return fail("mount", rc, NULL);
	rc = vmfs_open(fs, path, O_RDONLY, 0, &f);
	if (rc < 0)
		return fail("open", rc, fs);
	got = vmfs_read(f, buf, LEN + 4096, 0);
	if (got != (ssize_t)LEN || !all(buf, LEN, 'B')) {
		fprintf(stderr, "iscsi_ns_host: %s: %zd bytes, first byte '%c': not the taker's\n",
			path, got, got > 0 ? buf[0] : '?');
		return 1;
	}
	vmfs_close(f);
	vmfs_umount(fs);
	printf("intact\n");
	bdev_free(buf);
	return 0;
}

#include <time.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#define WLEN (64u << 10)

static int work(struct bdev *bd, const char *dir, const char *host)
{
	struct vmfs_mount_opts o = {.hostname = host};
	uint8_t *buf = bdev_alloc(WLEN);
	double last;
	struct vmfs *fs;
	char path[256];
	int rc;

	rc = vmfs_mount_bdev(bd, &o, &fs);
	if (rc < 0)
		return fail("mount", rc, NULL);
	rc = vmfs_mkdir(fs, dir, 0755);
	if (rc < 0)
		return fail("mkdir", rc, fs);
	last = now_ms();
	for (unsigned i = 0;; i++) {
		struct vmfs_file *f = NULL;
		ssize_t w = 0;

		snprintf(path, sizeof(path), "%s/f%u", dir, i);
		memset(buf, (int)(i % 251 + 1), WLEN);
		rc = vmfs_open(fs, path, O_RDWR | O_CREAT | O_EXCL, 0644, &f);
		if (rc == 0) {
			w = vmfs_write(f, buf, WLEN, 0);
			rc = w < 0 ? (int)w : w != (ssize_t)WLEN ? -EIO : vmfs_fsync(f);
			if (rc == 0)
				rc = vmfs_close(f);
			else
				vmfs_close(f);
		}
		if (rc < 0) {
			printf("err %u %.0f %s: %s\n", i, now_ms() - last, vmfs_strerror(rc),
			       vmfs_errmsg(fs));
			rc = vmfs_umount(fs);
			printf("umount %d %s\n", rc, vmfs_strerror(rc));
			bdev_free(buf);
			return 3;
		}
		last = now_ms();
		printf("ok %u\n", i);
	}
}

static int verify(struct bdev *bd, const char *dir, const char *host, unsigned k)
{
	struct vmfs_mount_opts o = {.hostname = host, .lock_timeout_ms = 120000};
	uint8_t *buf = bdev_alloc(WLEN + 4096);
	struct vmfs *fs;
	char path[256];
	int rc;

	rc = vmfs_mount_bdev(bd, &o, &fs);
	if (rc < 0)
		return fail("mount", rc, NULL);
	for (unsigned i = 0; i < k; i++) {
		struct vmfs_file *f;
		ssize_t got;

		snprintf(path, sizeof(path), "%s/f%u", dir, i);
		rc = vmfs_open(fs, path, O_RDONLY, 0, &f);
		if (rc < 0)
			return fail(path, rc, fs);
		got = vmfs_read(f, buf, WLEN + 4096, 0);
		vmfs_close(f);
		if (got != (ssize_t)WLEN || !all(buf, WLEN, (uint8_t)(i % 251 + 1))) {
			fprintf(stderr, "iscsi_ns_host: %s: %zd bytes, not its fsync'd content\n",
				path, got);
			return 1;
		}
	}
	rc = vmfs_umount(fs);
	if (rc < 0)
		return fail("umount", rc, NULL);
	printf("verified %u\n", k);
	bdev_free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	struct bdev *bd;
	int rc;

	if (argc != 5 && !(argc == 6 && !strcmp(argv[1], "verify"))) {
		fprintf(stderr, "usage: iscsi_ns_host hold|take|check|work URL PATH HOST\n"
				"       iscsi_ns_host verify URL DIR HOST K\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = bdev_open(argv[2], !strcmp(argv[1], "check") ? BDEV_O_RDONLY : 0, &bd);
	if (rc < 0) {
		fprintf(stderr, "iscsi_ns_host: %s: %s\n", argv[2], bdev_strerror(rc));
		return 1;
	}
	if (!strcmp(argv[1], "hold"))
		rc = hold(bd, argv[3], argv[4]);
	else if (!strcmp(argv[1], "take"))
		rc = take(bd, argv[3], argv[4]);
	else if (!strcmp(argv[1], "check"))
		rc = check(bd, argv[3], argv[4]);
	else if (!strcmp(argv[1], "work"))
		rc = work(bd, argv[3], argv[4]);
	else if (!strcmp(argv[1], "verify"))
		rc = verify(bd, argv[3], argv[4], (unsigned)strtoul(argv[5], NULL, 10));
	else
		rc = 2;
	bdev_close(bd);
	return rc;
}
