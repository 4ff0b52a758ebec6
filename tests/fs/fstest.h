/*
 * fstest.h - helpers for the file-system tests: a scratch image formatted
 * with small parameters (8 hosts unless t_max_hosts, 1 MiB journals, 250 ms heartbeat / 2 s
 * timeout by default), removed at exit; mount/check wrappers.
 */
#ifndef FS_TEST_H
#define FS_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bdev.h"
#include "format.h"
#include "vmfs.h"

#define T_FN __attribute__((unused)) static

static char t_img[4096];
static pid_t t_owner;
static uint64_t t_journal = 1u << 20; /* journal size of the next t_mkfs() */
/* Heartbeat of the next t_mkfs(): relaxed by default (the lease is half the
 * timeout: a loaded 2-core CI machine under ASan must not fence a host);
 * tests that wait for a dead host to be judged dead shorten it. */
static uint32_t t_hb_int = 250, t_hb_tmo = 2000;
static uint32_t t_nfds;		 /* FDs of the next t_mkfs() (0: mkfs default) */
static uint32_t t_max_hosts = 8; /* heartbeat slots of the next t_mkfs() */
static int t_keep_locks;	 /* vmfs_mount_opts.keep_locks of t_mount() */

T_FN void t_cleanup(void)
{
	if (t_img[0] && getpid() == t_owner)
		unlink(t_img);
}

/* Formats a fresh sparse image of `size` bytes; returns its path. */
T_FN const char *t_mkfs(const char *tag, uint64_t size, uint32_t block_size)
{
	const char *base = getenv("VMFS_TEST_TMP");
	struct vmfs_mkfs_opts o = {.label = tag,
				   .block_size = block_size,
				   .max_hosts = t_max_hosts,
				   .journal_size = t_journal,
				   .hb_interval_ms = t_hb_int,
				   .hb_timeout_ms = t_hb_tmo,
				   .nfds = t_nfds};
	struct vmfs_vh vh;
	struct bdev *bd;
	char why[256];
	int fd, rc;

	if (!base || !*base)
		base = "/tmp";
	if (!t_img[0]) {
		snprintf(t_img, sizeof(t_img), "%s/fs-%s-%d.img", base, tag, (int)getpid());
		t_owner = getpid();
		atexit(t_cleanup);
	}
	fd = open(t_img, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
	assert_int_equal(bdev_open(t_img, 0, &bd), 0);
	rc = vmfs_layout(bd->size, bd->lsec, &o, &vh, why, sizeof(why));
	if (rc)
		fprintf(stderr, "layout: %s\n", why);
	assert_int_equal(rc, 0);
	rc = vmfs_mkfs_write(bd, &vh, &o, why, sizeof(why));
	if (rc)
		fprintf(stderr, "mkfs: %s\n", why);
	assert_int_equal(rc, 0);
	bdev_close(bd);
	return t_img;
}

T_FN struct vmfs *t_mount(const char *uri, const char *host)
{
	struct vmfs_mount_opts o = {.hostname = host, .keep_locks = t_keep_locks};
	struct vmfs *fs = NULL;
	int rc = vmfs_mount(uri, &o, &fs);

	if (rc)
		fprintf(stderr, "mount %s: %s: %s\n", uri, vmfs_strerror(rc), vmfs_errmsg(NULL));
	assert_int_equal(rc, 0);
	return fs;
}

/* A vmfs_readdir() callback counting entries into the int at arg. */
T_FN int t_count_cb(void *arg, const char *name, unsigned type, uint64_t ino)
{
	(void)name;
	(void)type;
	(void)ino;
	(*(int *)arg)++;
	return 0;
}

/* A growing text snapshot of a tree (crash tests compare them). */
struct snap {
	char *s;
	size_t len, cap;
};

T_FN void snap_add(struct snap *sn, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (sn->len + (size_t)n + 1 > sn->cap) {
		sn->cap = (sn->cap + (size_t)n + 1) * 2;
		sn->s = realloc(sn->s, sn->cap);
		assert_non_null(sn->s);
	}
	memcpy(sn->s + sn->len, line, (size_t)n + 1);
	sn->len += (size_t)n;
}

static void t_problem(void *arg, const char *region, const char *msg)
{
	(void)arg;
	fprintf(stderr, "fsck: %s: %s\n", region, msg);
}

/* Runs the offline checker; returns the number of problems. */
T_FN int t_fsck(const char *img)
{
	struct vmfs_check_stats st;
	struct bdev *bd;
	unsigned fixed;
	int rc;

	assert_int_equal(bdev_open(img, 0, &bd), 0);
	rc = vmfs_check(bd, 0, t_problem, NULL, &st, &fixed);
	bdev_close(bd);
	return rc;
}

T_FN void t_fill(uint8_t *buf, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (uint8_t)(seed >> 56);
	}
}

T_FN void t_write_file(struct vmfs *fs, const char *path, const void *buf, size_t len, uint64_t off)
{
	struct vmfs_file *f;

	int rc = vmfs_open(fs, path, O_RDWR | O_CREAT, 0644, &f);

	if (rc)
		fprintf(stderr, "open %s: %s: %s\n", path, vmfs_strerror(rc), vmfs_errmsg(fs));
	assert_int_equal(rc, 0);
	rc = (int)vmfs_write(f, buf, len, off);
	if (rc < 0)
		fprintf(stderr, "write %s: %s: %s\n", path, vmfs_strerror(rc), vmfs_errmsg(fs));
	assert_int_equal(rc, (int)len);
	assert_int_equal(vmfs_close(f), 0);
}

T_FN void t_check_file(struct vmfs *fs, const char *path, const void *want, size_t len,
		       uint64_t off)
{
	struct vmfs_file *f;
	uint8_t *got = malloc(len ? len : 1);

	assert_non_null(got);
	assert_int_equal(vmfs_open(fs, path, O_RDONLY, 0, &f), 0);
	assert_int_equal(vmfs_read(f, got, len, off), (ssize_t)len);
	assert_memory_equal(got, want, len);
	assert_int_equal(vmfs_close(f), 0);
	free(got);
}

#endif
