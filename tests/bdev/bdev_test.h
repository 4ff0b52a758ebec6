/*
 * bdev_test.h - helpers shared by the tests in tests/bdev/: a scratch
 * directory removed at exit (even when a test fails), image files, and
 * reproducible data patterns.
 */
#ifndef BDEV_TEST_H
#define BDEV_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bdev.h"

#define T_FN __attribute__((unused)) static

static char t_dir[4096];
static pid_t t_owner;

T_FN int t_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

T_FN void t_cleanup(void)
{
	if (t_dir[0] && getpid() == t_owner)
		nftw(t_dir, t_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The scratch directory: $VMFS_TEST_TMP/bdev-XXXXXX (or /tmp/bdev-...). */
T_FN const char *t_tmpdir(void)
{
	const char *base = getenv("VMFS_TEST_TMP");

	if (t_dir[0])
		return t_dir;
	if (!base || !*base)
		base = "/tmp";
	mkdir(base, 0755);
	snprintf(t_dir, sizeof(t_dir), "%s/bdev-XXXXXX", base);
	if (!mkdtemp(t_dir)) {
		fprintf(stderr, "mkdtemp %s: %s\n", t_dir, strerror(errno));
		exit(1);
	}
	t_owner = getpid();
	atexit(t_cleanup);
	return t_dir;
}

/* Path of a scratch file NAME (static buffer rotation: 4 at a time). */
T_FN const char *t_path(const char *name)
{
	static char bufs[4][4200];
	static unsigned k;
	char *p = bufs[k++ % 4];

	if (strlen(t_tmpdir()) + strlen(name) + 2 > sizeof(bufs[0]))
		abort();
	snprintf(p, sizeof(bufs[0]), "%.4000s/%.190s", t_tmpdir(), name);
	return p;
}

/* Creates (or truncates) a sparse image of `size` bytes. */
T_FN void t_image(const char *path, uint64_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

/* Sets the size of an existing image (it keeps its content). */
T_FN void t_image_resize(const char *path, uint64_t size)
{
	assert_int_equal(truncate(path, (off_t)size), 0);
}

/* A reproducible pattern: byte i of the buffer written at device offset
 * `off` with `seed`. Different seeds or offsets give different bytes. */
T_FN void t_fill(void *buf, size_t len, uint64_t off, uint32_t seed)
{
	unsigned char *b = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		uint64_t x = (off + i) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)seed << 32 | seed);

		x ^= x >> 29;
		b[i] = (unsigned char)(x * 0xbf58476d1ce4e5b9ull >> 56);
	}
}

T_FN int t_check(const void *buf, size_t len, uint64_t off, uint32_t seed)
{
	unsigned char *want = malloc(len ? len : 1);
	int same;

	t_fill(want, len, off, seed);
	same = memcmp(want, buf, len) == 0;
	free(want);
	return same;
}

T_FN int t_is_zero(const void *buf, size_t len)
{
	const unsigned char *b = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i])
			return 0;
	return 1;
}

/* Opens, failing the test with the error's name. */
T_FN struct bdev *t_open(const char *uri, unsigned flags)
{
	struct bdev *bd = NULL;
	int rc = bdev_open(uri, flags, &bd);

	if (rc < 0)
		fail_msg("bdev_open(%s): %s", uri, bdev_strerror(rc));
	return bd;
}

#endif
