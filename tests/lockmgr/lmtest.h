/*
 * lmtest.h - helpers for the lock-manager tests: a scratch image removed at
 * exit, a standard geometry, "hosts" as forked processes that open the image
 * themselves, shared memory for results, and waits with deadlines.
 */
#ifndef LM_TEST_H
#define LM_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bdev.h"
#include "lockmgr.h"

#define T_FN __attribute__((unused)) static

/* Layout of the test image (8 MiB): heartbeat at 1 MiB (up to 128 slots),
 * lock units from 2 MiB, data units from 4 MiB. */
#define T_IMG_SIZE (8u << 20)
#define T_HB_OFF   (1u << 20)
#define T_LOCK_OFF (2u << 20)
#define T_DATA_OFF (4u << 20)
#define T_LOCK(i)  ((uint64_t)T_LOCK_OFF + (uint64_t)(i)*LM_UNIT)
#define T_DATA(i)  ((uint64_t)T_DATA_OFF + (uint64_t)(i)*LM_UNIT)

static char t_img[4096];
static pid_t t_owner;

T_FN void t_cleanup(void)
{
	if (t_img[0] && getpid() == t_owner) {
		unlink(t_img);
		char log[4200];
		snprintf(log, sizeof(log), "%s.trace", t_img);
		unlink(log);
	}
}

/* Creates a fresh zeroed image; returns its path. */
T_FN const char *t_image(const char *tag)
{
	const char *base = getenv("VMFS_TEST_TMP");
	int fd;

	if (!base || !*base)
		base = "/tmp";
	t_cleanup();
	t_owner = getpid();
	snprintf(t_img, sizeof(t_img), "%s/lm-%s-%d.img", base, tag, (int)getpid());
	fd = open(t_img, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, T_IMG_SIZE), 0);
	close(fd);
	static int registered;
	if (!registered++)
		atexit(t_cleanup);
	return t_img;
}

T_FN struct lm_geom t_geom(uint32_t nslots, uint32_t interval_ms, uint32_t timeout_ms)
{
	struct lm_geom g = {T_HB_OFF, nslots, interval_ms, timeout_ms};
	return g;
}

T_FN int64_t t_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

T_FN void t_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* fork() whose child dies with the test process (a failed assertion in the
 * parent must not leave hosts behind). */
T_FN pid_t t_fork(void)
{
	pid_t parent = getpid(), p = fork();

	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
	}
	return p;
}

/* Memory shared with forked children. */
T_FN void *t_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	memset(p, 0, len);
	return p;
}

/* A host inside a child: opens the image, lm_open, lm_join. Exits the child
 * with a code naming the failure when something goes wrong. */
struct t_host {
	struct bdev *bd;
	struct lm *lm;
};

T_FN void t_die(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "[child %d] ", (int)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	_exit(code);
}

T_FN void t_host_open(struct t_host *h, const char *uri, const struct lm_geom *g,
		      const struct lm_opts *o)
{
	int rc = bdev_open(uri, 0, &h->bd);

	if (rc < 0)
		t_die(10, "bdev_open %s: %s", uri, bdev_strerror(rc));
	rc = lm_open(h->bd, g, o, &h->lm);
	if (rc < 0)
		t_die(11, "lm_open: %s", lm_strerror(rc));
	rc = lm_join(h->lm);
	if (rc < 0)
		t_die(12, "lm_join: %s (%s)", lm_strerror(rc), lm_errmsg(h->lm));
}

T_FN void t_host_close(struct t_host *h)
{
	lm_close(h->lm);
	bdev_close(h->bd);
}

/* Waits for every pid; asserts each exited 0 (names the first failure). */
T_FN void t_wait_all(pid_t *pids, int n)
{
	int bad = 0;

	for (int i = 0; i < n; i++) {
		int st = 0;

		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
			fprintf(stderr, "child %d (#%d) ended with status 0x%x\n", (int)pids[i], i,
				st);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* Spins (1 ms sleeps) until *v >= want or timeout; returns 0 or -1. */
T_FN int t_wait_ge(_Atomic int *v, int want, int timeout_ms)
{
	int64_t end = t_now_ns() + (int64_t)timeout_ms * 1000000;

	while (atomic_load(v) < want) {
		if (t_now_ns() > end)
			return -1;
		t_sleep_ms(1);
	}
	return 0;
}

/* Reads a lock record / slot record from a fresh device handle. */
T_FN struct lm_lock_info t_lock_info(const char *uri, uint64_t addr, uint32_t nslots)
{
	struct lm_lock_info li;
	struct bdev *bd;
	char why[128] = "";

	assert_int_equal(bdev_open(uri, BDEV_O_RDONLY, &bd), 0);
	int rc = lm_lock_read(bd, addr, nslots, &li, why, sizeof(why));
	if (rc)
		fprintf(stderr, "lm_lock_read: %s\n", why);
	assert_int_equal(rc, 0);
	bdev_close(bd);
	return li;
}

T_FN struct lm_slot_info t_slot_info(const char *uri, const struct lm_geom *g, uint32_t idx)
{
	struct lm_slot_info si;
	struct bdev *bd;

	assert_int_equal(bdev_open(uri, BDEV_O_RDONLY, &bd), 0);
	assert_int_equal(lm_slot_read(bd, g, idx, &si, NULL, 0), 0);
	bdev_close(bd);
	return si;
}

#endif
