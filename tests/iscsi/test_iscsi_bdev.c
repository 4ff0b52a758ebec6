/*
 * test_iscsi_bdev.c - the iSCSI backend at the bdev level, against targets
 * started by test_iscsi_bdev.sh (URLs in the environment):
 *   ISTGT_URL      istgt, 512-byte blocks, COMPARE AND WRITE, reservations
 *   ISTGT4K_URL    istgt, 4096-byte blocks
 *   ISTGT_CHAP     host:port/iqn/lun of an istgt LUN that needs CHAP
 *                  (user CHAP_USER, secret CHAP_SECRET)
 *   TGT_URL        tgt: no COMPARE AND WRITE (reservation fallback)
 * A missing variable fails the test (never a silent pass).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bdev.h"

#define CHAP_USER   "vmfsuser"
#define CHAP_SECRET "vmfssecret12"

static const char *env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v)
		fail_msg("%s is not set (run through test_iscsi_bdev.sh)", name);
	return v;
}

static struct bdev *open_ok(const char *uri)
{
	struct bdev *bd = NULL;
	int rc = bdev_open(uri, 0, &bd);

	if (rc)
		fail_msg("bdev_open(%s) = %d (%s)", uri, rc, bdev_strerror(rc));
	return bd;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 2654435761u + seed * 40503u) >> 13);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- geometry and data path ---- */

static void check_geometry(const char *uri, uint32_t lsec)
{
	struct bdev *bd = open_ok(uri);

	assert_int_equal(bd->lsec, lsec);
	assert_true(bd->psec >= lsec);
	assert_int_equal(bd->size, 64u << 20);
	assert_string_equal(bd->engine, "iscsi");
	assert_true(bd->caps & BDEV_CAP_ATS_NATIVE);
	assert_true(bd->caps & BDEV_CAP_PR);
	assert_int_equal(bd->ats_method, BDEV_ATS_CAW);
	assert_string_equal(bdev_ats_method_name(bd), "compare-and-write");
	bdev_close(bd);
}

static void test_geometry(void **state)
{
	(void)state;
	check_geometry(env("ISTGT_URL"), 512);
	check_geometry(env("ISTGT4K_URL"), 4096);
}

/* Large I/O (split into several commands), a 64-request batch with
 * misaligned buffers, flush, range checks, and a second session reading
 * what the first wrote. */
static void check_rw(const char *uri)
{
	struct bdev *bd = open_ok(uri), *bd2 = open_ok(uri);
	size_t big = (3u << 20) + bd->lsec, s = bd->lsec;
	unsigned char *w = malloc(big), *r = malloc(big), *mem = malloc(64 * (4 * s + 1));
	struct bdev_io ios[64];

	fill(w, big, 1);
	assert_int_equal(bdev_write(bd, w, 5 * s, big), 0);
	assert_int_equal(bdev_read(bd2, r, 5 * s, big), 0);
	assert_memory_equal(w, r, big);
	/* last sector, and past the end */
	assert_int_equal(bdev_write(bd, w, bd->size - s, s), 0);
	assert_int_equal(bdev_read(bd, r, bd->size - s, s), 0);
	assert_memory_equal(w, r, s);
	assert_int_equal(bdev_read(bd, r, bd->size, s), -ERANGE);
	assert_int_equal(bdev_write(bd, w, 1, s), -EINVAL);
	/* batch: 64 writes of 1..4 sectors from odd addresses, then reads */
	for (int i = 0; i < 64; i++) {
		unsigned char *b = mem + i * (4 * s + 1) + 1;
		size_t len = (size_t)(1 + i % 4) * s;

		fill(b, len, 100u + (unsigned)i);
		ios[i] = (struct bdev_io){BDEV_OP_WRITE, b, (uint64_t)(8192 + i * 4) * s, len, 1};
	}
	assert_int_equal(bdev_submit(bd, ios, 64), 0);
	for (int i = 0; i < 64; i++)
		assert_int_equal(ios[i].result, 0);
	assert_int_equal(bdev_flush(bd), 0);
	for (int i = 0; i < 64; i++) {
		unsigned char *b = mem + i * (4 * s + 1) + 1;

		memset(b, 0, ios[i].len);
		ios[i].op = BDEV_OP_READ;
	}
	assert_int_equal(bdev_submit(bd2, ios, 64), 0);
	for (int i = 0; i < 64; i++) {
		fill(w, ios[i].len, 100u + (unsigned)i);
		assert_int_equal(ios[i].result, 0);
		assert_memory_equal(w, mem + i * (4 * s + 1) + 1, ios[i].len);
	}
	/* write_zeroes and discard read back as zeroes; both targets accept
	 * WRITE SAME (the backend drops BDEV_CAP_ZEROES when one refuses) */
	assert_true(bd->caps & BDEV_CAP_ZEROES);
	assert_int_equal(bdev_write_zeroes(bd, 5 * s, 1u << 20), 0);
	assert_true(bd->caps & BDEV_CAP_ZEROES);
	assert_int_equal(bdev_read(bd2, r, 5 * s, 1u << 20), 0);
	memset(w, 0, 1u << 20);
	assert_memory_equal(w, r, 1u << 20);
	fill(w, 16 * s, 9);
	assert_int_equal(bdev_write(bd, w, 9000 * s, 16 * s), 0);
	assert_int_equal(bdev_discard(bd, 9000 * s, 16 * s), 0);
	assert_int_equal(bdev_read(bd2, r, 9000 * s, 16 * s), 0);
	memset(w, 0, 16 * s);
	assert_memory_equal(w, r, 16 * s);
	free(w);
	free(r);
	free(mem);
	bdev_close(bd);
	bdev_close(bd2);
}

static void test_rw_512(void **state)
{
	(void)state;
	check_rw(env("ISTGT_URL"));
}

static void test_rw_4096(void **state)
{
	(void)state;
	check_rw(env("ISTGT4K_URL"));
}

static void test_rw_tgt(void **state)
{
	(void)state;
	check_rw(env("TGT_URL"));
}

/* ---- ATS ---- */

/* Success changes the sector; a miscompare writes nothing and returns the
 * current content, also when the sector was changed by another session. */
static void check_ats(const char *uri)
{
	struct bdev *a = open_ok(uri), *b = open_ok(uri);
	size_t s = a->lsec;
	uint64_t off = 77 * s;
	unsigned char *x = malloc(s), *y = malloc(s), *z = malloc(s), *act = malloc(s);

	fill(x, s, 1);
	fill(y, s, 2);
	fill(z, s, 3);
	assert_int_equal(bdev_write(a, x, off, s), 0);
	assert_int_equal(bdev_ats(a, off, x, y, act), 0);
	assert_int_equal(bdev_read(b, act, off, s), 0);
	assert_memory_equal(act, y, s);
	memset(act, 0, s);
	assert_int_equal(bdev_ats(b, off, x, z, act), -BDEV_E_MISCOMPARE);
	assert_memory_equal(act, y, s);
	assert_int_equal(bdev_read(a, act, off, s), 0);
	assert_memory_equal(act, y, s); /* nothing written */
	assert_int_equal(bdev_ats(b, off, y, z, NULL), 0);
	assert_int_equal(bdev_ats(a, off, y, x, NULL), -BDEV_E_MISCOMPARE);
	assert_int_equal(bdev_read(a, act, off, s), 0);
	assert_memory_equal(act, z, s);
	free(x);
	free(y);
	free(z);
	free(act);
	bdev_close(a);
	bdev_close(b);
}

static void test_ats_512(void **state)
{
	(void)state;
	check_ats(env("ISTGT_URL"));
}

static void test_ats_4096(void **state)
{
	(void)state;
	check_ats(env("ISTGT4K_URL"));
}

static void test_ats_tgt(void **state)
{
	struct bdev *bd = open_ok(env("TGT_URL"));

	(void)state;
	assert_int_equal(bd->ats_method, BDEV_ATS_PR);
	assert_string_equal(bdev_ats_method_name(bd), "reservation");
	assert_false(bd->caps & BDEV_CAP_ATS_NATIVE);
	assert_true(bd->caps & BDEV_CAP_PR);
	bdev_close(bd);
	check_ats(env("TGT_URL"));
}

/* ats=pr on istgt: the fallback path also works on a target that has
 * COMPARE AND WRITE; ats=caw on tgt fails the open. */
static void test_ats_forced(void **state)
{
	char uri[512];
	struct bdev *bd = NULL;

	(void)state;
	snprintf(uri, sizeof(uri), "%s?ats=pr&timeout=10", env("ISTGT_URL"));
	bd = open_ok(uri);
	assert_int_equal(bd->ats_method, BDEV_ATS_PR);
	bdev_close(bd);
	check_ats(uri);
	snprintf(uri, sizeof(uri), "%s?ats=caw", env("TGT_URL"));
	assert_int_equal(bdev_open(uri, 0, &bd), -EOPNOTSUPP);
	assert_null(bd);
}

/* ---- CHAP ---- */

static void test_chap(void **state)
{
	const char *loc = env("ISTGT_CHAP");
	char uri[512];
	struct bdev *bd = NULL;
	unsigned char buf[512];
	double t0;
	int rc;

	(void)state;
	snprintf(uri, sizeof(uri), "iscsi://%s%%%s@%s", CHAP_USER, CHAP_SECRET, loc);
	bd = open_ok(uri);
	assert_int_equal(bdev_read(bd, buf, 0, sizeof(buf)), 0);
	bdev_close(bd);
	bd = NULL;
	snprintf(uri, sizeof(uri), "iscsi://%s%%wrongsecret12@%s?timeout=10", CHAP_USER, loc);
	t0 = now_s();
	rc = bdev_open(uri, 0, &bd);
	assert_int_equal(rc, -EACCES);
	assert_null(bd);
	assert_true(now_s() - t0 < 8.0); /* refused, not retried to the timeout */
	snprintf(uri, sizeof(uri), "iscsi://%s?timeout=10", loc);
	rc = bdev_open(uri, 0, &bd);
	assert_true(rc < 0);
	assert_null(bd);
}

/* ---- persistent reservations ---- */

/* Leaves no registration and no reservation: bd registers and CLEARs
 * (from its own key, or from a fresh one if it was not registered). */
static void pr_reset(struct bdev *bd, uint64_t mykey)
{
	unsigned n = 1;
	int held = 1;

	if (bdev_pr_clear(bd, mykey) != 0) {
		assert_int_equal(bdev_pr_register(bd, 0xfeed), 0);
		assert_int_equal(bdev_pr_clear(bd, 0xfeed), 0);
	}
	assert_int_equal(bdev_pr_read_keys(bd, NULL, 0, &n, NULL), 0);
	assert_int_equal(bdev_pr_read_reservation(bd, &held, NULL, NULL), 0);
	assert_int_equal(n, 0);
	assert_int_equal(held, 0);
}

static int has_key(struct bdev *bd, uint64_t key)
{
	uint64_t keys[16];
	unsigned n = 0;

	assert_int_equal(bdev_pr_read_keys(bd, keys, 16, &n, NULL), 0);
	for (unsigned i = 0; i < n && i < 16; i++)
		if (keys[i] == key)
			return 1;
	return 0;
}

/* Two sessions registered under WRITE EXCLUSIVE - ALL REGISTRANTS both
 * write; after B preempts A's key, A's WRITE, batch write and COMPARE AND
 * WRITE get RESERVATION CONFLICT (the pause window is closed), A can still
 * read, and an unregistered session cannot write either. */
static void test_pr_fence(void **state)
{
	const char *url = env("ISTGT_URL");
	struct bdev *a = open_ok(url), *b = open_ok(url), *c = open_ok(url);
	unsigned char x[512], y[512];
	struct bdev_io io = {BDEV_OP_WRITE, x, 4096, 512, 1};
	enum bdev_pr_type type = 0;
	uint64_t holder = 0;
	uint32_t gen0 = 0, gen1 = 0;
	unsigned n = 0;
	int held = 0;

	(void)state;
	pr_reset(a, 0);
	fill(x, sizeof(x), 5);
	assert_int_equal(bdev_pr_register(a, 0xa1), 0);
	assert_int_equal(bdev_pr_register(b, 0xb2), 0);
	assert_int_equal(bdev_pr_read_keys(a, NULL, 0, NULL, &gen0), 0);
	assert_true(has_key(b, 0xa1) && has_key(b, 0xb2));
	assert_int_equal(bdev_pr_reserve(a, 0xa1, BDEV_PR_WE_ALL_REGISTRANTS), 0);
	assert_int_equal(bdev_pr_read_reservation(b, &held, &holder, &type), 0);
	assert_int_equal(held, 1);
	assert_int_equal(type, BDEV_PR_WE_ALL_REGISTRANTS);
	assert_int_equal(bdev_write(a, x, 4096, 512), 0);
	assert_int_equal(bdev_write(b, x, 4096, 512), 0);
	assert_int_equal(bdev_write(c, x, 4096, 512), -BDEV_E_RESV_CONFLICT);
	/* B preempts A */
	assert_int_equal(bdev_pr_preempt(b, 0xb2, 0xa1, BDEV_PR_WE_ALL_REGISTRANTS), 0);
	assert_int_equal(bdev_pr_read_keys(b, NULL, 0, &n, &gen1), 0);
	assert_true(gen1 != gen0);
	/* One registration left. (istgt's READ KEYS lists stale key values
	 * after a removal, here 0xa1 instead of 0xb2, while it enforces the
	 * right ones: see docs/BLOCKDEV.md. So only the count is checked.) */
	assert_int_equal(n, 1);
	assert_int_equal(bdev_write(a, x, 4096, 512), -BDEV_E_RESV_CONFLICT);
	assert_int_equal(bdev_submit(a, &io, 1), -BDEV_E_RESV_CONFLICT);
	assert_int_equal(io.result, -BDEV_E_RESV_CONFLICT);
	assert_int_equal(bdev_read(a, y, 4096, 512), 0);
	assert_int_equal(bdev_ats(a, 4096, y, x, NULL), -BDEV_E_RESV_CONFLICT);
	assert_int_equal(bdev_write(b, x, 4096, 512), 0);
	assert_string_equal(
	    bdev_strerror(-BDEV_E_RESV_CONFLICT),
	    "reservation conflict (this host's registration was preempted: fenced)");
	/* A target lets a preempted session register again: the lock manager
	 * must only do so as part of a fresh join. */
	assert_int_equal(bdev_pr_register(a, 0xa3), 0);
	assert_int_equal(bdev_write(a, x, 4096, 512), 0);
	pr_reset(b, 0xb2);
	assert_int_equal(bdev_write(c, x, 4096, 512), 0); /* no reservation left */
	bdev_close(a);
	bdev_close(b);
	bdev_close(c);
}

/* Files and memory devices have no reservations; wrappers pass them on. */
static void test_pr_other_backends(void **state)
{
	char uri[1024], dir[] = "/tmp/iscsi-pr-XXXXXX";
	struct bdev *bd;

	(void)state;
	bd = open_ok("mem:1M");
	assert_int_equal(bdev_pr_register(bd, 1), -EOPNOTSUPP);
	assert_int_equal(bdev_pr_read_keys(bd, NULL, 0, NULL, NULL), -EOPNOTSUPP);
	assert_int_equal(bdev_pr_preempt(bd, 1, 2, BDEV_PR_WE_ALL_REGISTRANTS), -EOPNOTSUPP);
	assert_false(bd->caps & BDEV_CAP_PR);
	assert_string_equal(bdev_ats_method_name(bd), "emulated");
	bdev_close(bd);
	assert_non_null(mkdtemp(dir));
	snprintf(uri, sizeof(uri), "trace:%s/log:fault::crash::%s", dir, env("ISTGT_URL"));
	bd = open_ok(uri);
	assert_int_equal(bd->ats_method, BDEV_ATS_CAW);
	assert_true(bd->caps & BDEV_CAP_PR);
	assert_int_equal(bdev_pr_register(bd, 0xc0ffee), 0);
	assert_true(has_key(bd, 0xc0ffee));
	assert_int_equal(bdev_pr_register(bd, 0), 0);
	assert_false(has_key(bd, 0xc0ffee));
	assert_int_equal(bdev_pr_reserve(bd, 1, 2 /* not a type */), -EINVAL);
	bdev_close(bd);
	snprintf(uri, sizeof(uri), "%s/log", dir);
	unlink(uri);
	rmdir(dir);
}

/* tgt (fallback): a preempted session's ATS is refused too, and a holder
 * that died inside the ATS critical section (its reservation left behind)
 * is preempted after `stale` seconds, so the others go on. */
static void test_pr_tgt(void **state)
{
	char uri[512];
	struct bdev *a, *b, *dead;
	unsigned char x[512], y[512];
	double t0, dt;
	int held = 0;
	uint64_t holder = 0;

	(void)state;
	snprintf(uri, sizeof(uri), "%s?stale=2&timeout=20", env("TGT_URL"));
	a = open_ok(uri);
	b = open_ok(uri);
	fill(x, sizeof(x), 7);
	fill(y, sizeof(y), 8);
	assert_int_equal(bdev_write(a, x, 100 * 512, 512), 0);
	assert_int_equal(bdev_pr_register(a, 0xaa), 0);
	assert_int_equal(bdev_pr_register(b, 0xbb), 0);
	assert_int_equal(bdev_ats(a, 100 * 512, x, y, NULL), 0);
	assert_int_equal(bdev_pr_preempt(b, 0xbb, 0xaa, BDEV_PR_WE_REGISTRANTS_ONLY), 0);
	assert_int_equal(bdev_ats(a, 100 * 512, y, x, NULL), -BDEV_E_RESV_CONFLICT);
	assert_int_equal(bdev_ats(b, 100 * 512, y, x, NULL), 0);
	/* a holder that never releases */
	dead = open_ok(uri);
	assert_int_equal(bdev_pr_register(dead, 0xdd), 0);
	assert_int_equal(bdev_pr_reserve(dead, 0xdd, BDEV_PR_WE_REGISTRANTS_ONLY), 0);
	assert_int_equal(bdev_pr_read_reservation(b, &held, &holder, NULL), 0);
	assert_int_equal(held, 1);
	assert_int_equal(holder, 0xdd);
	t0 = now_s();
	assert_int_equal(bdev_ats(b, 100 * 512, x, y, NULL), 0);
	dt = now_s() - t0;
	assert_true(dt >= 1.5 && dt < 10.0);
	assert_false(has_key(b, 0xdd)); /* the stale holder was fenced */
	assert_int_equal(bdev_ats(dead, 100 * 512, y, x, NULL), -BDEV_E_RESV_CONFLICT);
	bdev_close(dead);
	pr_reset(b, 0xbb);
	bdev_close(a);
	bdev_close(b);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_geometry),
	    cmocka_unit_test(test_rw_512),
	    cmocka_unit_test(test_rw_4096),
	    cmocka_unit_test(test_rw_tgt),
	    cmocka_unit_test(test_ats_512),
	    cmocka_unit_test(test_ats_4096),
	    cmocka_unit_test(test_ats_tgt),
	    cmocka_unit_test(test_ats_forced),
	    cmocka_unit_test(test_chap),
	    cmocka_unit_test(test_pr_fence),
	    cmocka_unit_test(test_pr_other_backends),
	    cmocka_unit_test(test_pr_tgt),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
