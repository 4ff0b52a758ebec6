/*
 * test_lm_waits.c - waits for a slot to die sleep, they do not spin (issue 9
 * defect 4): with a heartbeat interval of 4 s, lm_takeover_slot() on a live
 * slot and lm_recover() each wait 3 s reading the heartbeat region a bounded
 * number of times (counted by the fault backend). The old code set tv_nsec to
 * interval x 250000 = 10^9, nanosleep() failed at once and the loops issued
 * thousands of reads.
 */
#include "lmtest.h"

struct shm {
	_Atomic int joined;
	uint32_t slot;
};

static void victim(const char *img, const struct lm_geom *g, struct shm *m)
{
	struct t_host h;

	t_host_open(&h, img, g, NULL);
	lm_slot(h.lm, &m->slot, NULL);
	atomic_store(&m->joined, 1);
	for (;;)
		pause();
}

static uint64_t reads(struct bdev *bd)
{
	struct bdev_fault_counts c;

	assert_int_equal(bdev_fault_counts(bd, &c), 0);
	return c.ops[BDEV_FAULT_READ];
}

static void waits_sleep(void **state)
{
	struct lm_geom g = t_geom(4, 4000, 16000);
	const char *img = t_image("waits");
	struct shm *m = t_shared(sizeof(*m));
	char uri[4200];
	struct bdev *bd;
	struct lm *lm;
	int64_t t0, dt;
	uint64_t n;
	pid_t v;
	int st;

	(void)state;
	v = t_fork();
	assert_true(v >= 0);
	if (v == 0)
		victim(img, &g, m);
	assert_int_equal(t_wait_ge(&m->joined, 1, 60000), 0);
	snprintf(uri, sizeof(uri), "fault:errno=EIO:%s", img);
	assert_int_equal(bdev_open(uri, 0, &bd), 0);
	assert_int_equal(lm_open(bd, &g, NULL, &lm), 0);
	assert_int_equal(lm_join(lm), 0);

	assert_int_equal(bdev_fault_arm(bd, "errno=EIO"), 0); /* counts from 0 */
	t0 = t_now_ns();
	assert_int_equal(lm_takeover_slot(lm, m->slot, 3000), -ETIMEDOUT);
	dt = t_now_ns() - t0;
	n = reads(bd);
	fprintf(stderr, "lm_takeover_slot: %llu reads in %lld ms\n", (unsigned long long)n,
		(long long)(dt / 1000000));
	assert_true(dt >= 2900000000ll);
	assert_true(n >= 2 && n <= 40); /* one read per look, a look per <= 250 ms */

	assert_int_equal(bdev_fault_arm(bd, "errno=EIO"), 0);
	t0 = t_now_ns();
	assert_int_equal(lm_recover(lm, 3000), 0); /* the victim lives: nothing to do */
	dt = t_now_ns() - t0;
	n = reads(bd);
	fprintf(stderr, "lm_recover: %llu reads in %lld ms\n", (unsigned long long)n,
		(long long)(dt / 1000000));
	assert_true(dt >= 2900000000ll);
	assert_true(n >= 3 && n <= 40 * (g.nslots - 1));

	kill(v, SIGKILL);
	waitpid(v, &st, 0);
	lm_close(lm);
	bdev_close(bd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(waits_sleep)};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
