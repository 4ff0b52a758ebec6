/*
 * test_lm_contend.c - 16 hosts (processes) contend for one exclusive lock;
 * under it each increments a counter stored in the unit beside the lock
 * 1,000 times (acquire, read, increment, guarded write, release). The final
 * count must be exactly 16,000 and the lock generation must have been bumped
 * once per acquisition (16,000).
 */
#include "lmtest.h"

#define NHOSTS 16
#define NITER  1000

static const struct lm_geom *g_geom;

static void host(const char *img, int id)
{
	struct t_host h;
	uint8_t *buf;

	t_host_open(&h, img, g_geom, NULL);
	buf = bdev_alloc(512);
	for (int i = 0; i < NITER; i++) {
		struct lm_lock *lk;
		int rc = lm_lock_acquire(h.lm, T_LOCK(0), LM_MODE_EX, 60000, &lk);

		if (rc < 0)
			t_die(20, "host %d iter %d acquire: %s", id, i, lm_strerror(rc));
		rc = bdev_read(h.bd, buf, T_DATA(0), 512);
		if (rc < 0)
			t_die(21, "read: %s", bdev_strerror(rc));
		uint64_t v = 0;
		memcpy(&v, buf, 8);
		v++;
		memcpy(buf, &v, 8);
		rc = lm_guarded_write(h.lm, buf, T_DATA(0), 512);
		if (rc < 0)
			t_die(22, "write: %s", lm_strerror(rc));
		rc = lm_lock_release(lk);
		if (rc < 0)
			t_die(23, "release: %s", lm_strerror(rc));
	}
	bdev_free(buf);
	t_host_close(&h);
	_exit(0);
}

static void contend_16x1000(void **state)
{
	struct lm_geom g = t_geom(32, 250, 3000);
	const char *img = t_image("contend");
	pid_t pids[NHOSTS];
	int64_t t0 = t_now_ns();

	(void)state;
	g_geom = &g;
	for (int i = 0; i < NHOSTS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0)
			host(img, i);
	}
	t_wait_all(pids, NHOSTS);

	struct bdev *bd;
	uint8_t *buf = bdev_alloc(512);
	uint64_t v = 0;

	assert_int_equal(bdev_open(img, 0, &bd), 0);
	assert_int_equal(bdev_read(bd, buf, T_DATA(0), 512), 0);
	memcpy(&v, buf, 8);
	bdev_close(bd);
	bdev_free(buf);
	fprintf(stderr, "16 hosts x 1000 increments: %.1f s\n", (t_now_ns() - t0) / 1e9);
	assert_int_equal(v, NHOSTS * NITER);

	struct lm_lock_info li = t_lock_info(img, T_LOCK(0), g.nslots);
	assert_int_equal(li.mode, LM_MODE_FREE);
	assert_int_equal(li.nholders, 0);
	assert_int_equal(li.gen, NHOSTS * NITER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(contend_16x1000)};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
