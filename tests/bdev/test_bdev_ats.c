/*
 * test_bdev_ats.c - atomicity of bdev_ats(): processes (fork) that each open
 * the image, threads sharing one bdev, 4096-byte sectors and the crash
 * wrapper all increment one 64-bit counter by read + compare-and-write retry
 * loops; any lost update shows as a final count below the expected total.
 * Also the miscompare contract (-BDEV_E_MISCOMPARE, `actual`, no write).
 */
#include "bdev_test.h"

#include <pthread.h>
#include <sys/wait.h>

#define CTR_SECTOR 3 /* the counter lives in this sector; neighbours must not change */

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* Adds `n` to the counter by read + ats retry loops; returns 0 or the first
 * unexpected error. The sector also carries the adder's id. */
static int add_n(struct bdev *bd, unsigned n, unsigned id, unsigned long *retries)
{
	uint32_t ls = bd->lsec;
	uint64_t off = CTR_SECTOR * (uint64_t)ls;
	unsigned char *cur = bdev_alloc(ls), *nw = bdev_alloc(ls);
	int rc = bdev_read(bd, cur, off, ls);
	unsigned i;

	for (i = 0; i < n && rc == 0; i++) {
		for (;;) {
			memcpy(nw, cur, ls);
			put64(nw, get64(cur) + 1);
			put64(nw + 8, id);
			rc = bdev_ats(bd, off, cur, nw, id % 2 ? NULL : cur);
			if (rc != -BDEV_E_MISCOMPARE)
				break;
			(*retries)++;
			/* Odd adders re-read (what another process's ats wrote
			 * must be visible), even ones use `actual`. */
			if (id % 2 && (rc = bdev_read(bd, cur, off, ls)) < 0)
				break;
		}
		if (rc == 0)
			memcpy(cur, nw, ls);
	}
	bdev_free(cur);
	bdev_free(nw);
	return rc;
}

/* Checks the counter and that the sectors around it are still zero. */
static void check_counter(const char *uri, uint64_t want)
{
	struct bdev *bd = t_open(uri, BDEV_O_RDONLY);
	uint32_t ls = bd->lsec;
	unsigned char *b = bdev_alloc(8 * ls);

	assert_int_equal(bdev_read(bd, b, 0, 8 * ls), 0);
	assert_int_equal(get64(b + CTR_SECTOR * ls), want);
	assert_true(t_is_zero(b, CTR_SECTOR * ls));
	assert_true(t_is_zero(b + CTR_SECTOR * ls + 16, ls - 16));
	assert_true(t_is_zero(b + (CTR_SECTOR + 1) * ls, 4 * ls));
	bdev_free(b);
	bdev_close(bd);
}

static void run_procs(const char *uri, unsigned nproc, unsigned n)
{
	pid_t pids[64];
	unsigned i;
	int status;

	for (i = 0; i < nproc; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct bdev *bd = NULL;
			unsigned long retries = 0;
			int rc = bdev_open(uri, 0, &bd);

			if (rc == 0)
				rc = add_n(bd, n, i + 1, &retries);
			if (rc)
				fprintf(stderr, "child %u: %s\n", i, bdev_strerror(rc));
			bdev_close(bd);
			_exit(rc ? 1 : 0);
		}
	}
	for (i = 0; i < nproc; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
}

static void procs_case(const char *fmt, unsigned nproc, unsigned n)
{
	const char *img = t_path("ats.img");
	char uri[4200];

	t_image(img, 64 * 1024);
	snprintf(uri, sizeof(uri), fmt, img);
	run_procs(uri, nproc, n);
	check_counter(uri, (uint64_t)nproc * n);
}

static void test_procs_512(void **state)
{
	(void)state;
	procs_case("file:%s", 8, 10000);
}

static void test_procs_4096(void **state)
{
	(void)state;
	procs_case("file:%s?sector=4096", 4, 2500);
}

static void test_procs_buffered(void **state)
{
	(void)state;
	procs_case("file:%s?direct=0", 4, 2500);
}

/* ats() through the crash wrapper is write-through: still atomic. */
static void test_procs_crash_wrapper(void **state)
{
	(void)state;
	procs_case("crash:mode=drop:trace:/dev/null:file:%s", 4, 1000);
}

struct thr {
	struct bdev *bd;
	unsigned id, n;
	int rc;
	unsigned long retries;
};

static void *thr_main(void *arg)
{
	struct thr *t = arg;

	t->rc = add_n(t->bd, t->n, t->id, &t->retries);
	return NULL;
}

static void threads_case(const char *uri, unsigned nthr, unsigned n)
{
	struct thr th[16];
	pthread_t tid[16];
	struct bdev *bd = t_open(uri, 0);
	unsigned long retries = 0;
	unsigned i;

	for (i = 0; i < nthr; i++) {
		th[i] = (struct thr){bd, i + 1, n, 0, 0};
		assert_int_equal(pthread_create(&tid[i], NULL, thr_main, &th[i]), 0);
	}
	for (i = 0; i < nthr; i++) {
		pthread_join(tid[i], NULL);
		assert_int_equal(th[i].rc, 0);
		retries += th[i].retries;
	}
	print_message("%s: %u x %u increments, %lu miscompare retries\n", uri, nthr, n, retries);
	if (strncmp(uri, "mem:", 4) == 0) {
		unsigned char *b = bdev_alloc(bd->lsec);

		assert_int_equal(bdev_read(bd, b, CTR_SECTOR * (uint64_t)bd->lsec, bd->lsec), 0);
		assert_int_equal(get64(b), (uint64_t)nthr * n);
		bdev_free(b);
		bdev_close(bd);
		return;
	}
	bdev_close(bd);
	check_counter(uri, (uint64_t)nthr * n);
}

static void test_threads_one_bdev(void **state)
{
	const char *img = t_path("ats-thr.img");

	(void)state;
	t_image(img, 64 * 1024);
	threads_case(img, 8, 2500);
}

static void test_threads_mem(void **state)
{
	(void)state;
	threads_case("mem:64K?sector=4096", 8, 5000);
}

/* Threads with their own bdev each: OFD locks of one process must exclude
 * each other too (they are per open file description, not per process). */
static void test_threads_own_bdev(void **state)
{
	const char *img = t_path("ats-own.img");
	struct thr th[4];
	pthread_t tid[4];
	unsigned i;

	(void)state;
	t_image(img, 64 * 1024);
	for (i = 0; i < 4; i++) {
		th[i] = (struct thr){t_open(img, 0), i + 1, 2500, 0, 0};
		assert_int_equal(pthread_create(&tid[i], NULL, thr_main, &th[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(tid[i], NULL);
		assert_int_equal(th[i].rc, 0);
		bdev_close(th[i].bd);
	}
	check_counter(img, 4 * 2500);
}

static void miscompare_case(const char *uri)
{
	struct bdev *bd = t_open(uri, 0);
	uint32_t ls = bd->lsec;
	uint64_t off = 5 * (uint64_t)ls;
	unsigned char *v1 = bdev_alloc(ls), *v2 = bdev_alloc(ls), *wrong = bdev_alloc(ls);
	unsigned char *act = bdev_alloc(ls), *rd = bdev_alloc(ls);

	t_fill(v1, ls, off, 1);
	t_fill(v2, ls, off, 2);
	t_fill(wrong, ls, off, 3);
	/* Device holds zeroes: expecting v1 miscompares, actual = zeroes. */
	memset(act, 0xAA, ls);
	assert_int_equal(bdev_ats(bd, off, v1, v2, act), -BDEV_E_MISCOMPARE);
	assert_true(t_is_zero(act, ls));
	assert_int_equal(bdev_read(bd, rd, off, ls), 0);
	assert_true(t_is_zero(rd, ls));
	/* zeroes -> v1 succeeds; then expecting `wrong` fails with actual = v1. */
	assert_int_equal(bdev_ats(bd, off, rd, v1, act), 0);
	assert_int_equal(bdev_read(bd, rd, off, ls), 0);
	assert_memory_equal(rd, v1, ls);
	memcpy(wrong, v1, ls);
	wrong[ls - 1] ^= 1; /* differs only in the last byte */
	assert_int_equal(bdev_ats(bd, off, wrong, v2, act), -BDEV_E_MISCOMPARE);
	assert_memory_equal(act, v1, ls);
	assert_int_equal(bdev_ats(bd, off, wrong, v2, NULL), -BDEV_E_MISCOMPARE);
	assert_int_equal(bdev_read(bd, rd, off, ls), 0);
	assert_memory_equal(rd, v1, ls);
	/* Unaligned expect/new/actual buffers work. */
	{
		unsigned char *u = malloc(3 * ls + 3);

		memcpy(u + 1, v1, ls);
		memcpy(u + ls + 2, v2, ls);
		assert_int_equal(bdev_ats(bd, off, u + 1, u + ls + 2, NULL), 0);
		assert_int_equal(bdev_ats(bd, off, u + 1, u + ls + 2, u + 2 * ls + 3),
				 -BDEV_E_MISCOMPARE);
		assert_memory_equal(u + 2 * ls + 3, v2, ls);
		free(u);
	}
	bdev_free(v1);
	bdev_free(v2);
	bdev_free(wrong);
	bdev_free(act);
	bdev_free(rd);
	bdev_close(bd);
}

static void test_miscompare(void **state)
{
	const char *img = t_path("mis.img");
	char uri[4200];

	(void)state;
	t_image(img, 64 * 1024);
	miscompare_case(img);
	t_image(img, 64 * 1024);
	snprintf(uri, sizeof(uri), "file:%s?sector=4096&engine=sync", img);
	miscompare_case(uri);
	miscompare_case("mem:64K");
	t_image(img, 64 * 1024);
	snprintf(uri, sizeof(uri), "crash::fault::%s", img);
	miscompare_case(uri);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_miscompare),		cmocka_unit_test(test_procs_512),
	    cmocka_unit_test(test_procs_4096),		cmocka_unit_test(test_procs_buffered),
	    cmocka_unit_test(test_procs_crash_wrapper), cmocka_unit_test(test_threads_one_bdev),
	    cmocka_unit_test(test_threads_own_bdev),	cmocka_unit_test(test_threads_mem),
	};

	unsetenv("BDEV_WRAP");
	if (argc > 1)
		cmocka_set_test_filter(argv[1]); /* e.g. "test_procs*" */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
