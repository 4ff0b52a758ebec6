/*
 * test_lm_spec.c - speculative compare images (lm_lock.c): a host that
 * alone uses a lock acquires and releases it on the image it remembers,
 * without reading the record first; when another host changed the record
 * meanwhile, the ATS miscompares and the outcome is still exact:
 *  - alone: after the first acquire every acquire and release is
 *    speculative and none misses;
 *  - EX taken by B between A's uses: A's next acquire misses, then gets
 *    the lock with the generation after B's, and B is refused meanwhile;
 *  - SH joined by B while A holds it: A's release misses its remembered
 *    image (which names A alone), then removes A only: B stays holder;
 *  - a stale FREE image whose lock is now held by B never grants A the
 *    lock (try-once -EBUSY; the record still names B alone).
 * Two handles on separate opens of one image act as two hosts.
 */
#include "lmtest.h"

static void only_holder(const char *img, uint64_t addr, struct t_host *h, enum lm_mode mode)
{
	struct lm_lock_info li = t_lock_info(img, addr, 8);
	uint32_t slot, gen;

	assert_int_equal(lm_slot(h->lm, &slot, &gen), 0);
	assert_int_equal(li.mode, mode);
	assert_int_equal(li.nholders, 1);
	assert_int_equal(li.holders[0].slot, slot);
	assert_int_equal(li.holders[0].gen, gen);
}

static void test_spec(void **state)
{
	struct lm_geom g = t_geom(8, 250, 3000);
	const char *img = t_image("spec");
	struct t_host a, b;
	struct lm_lock *la, *lb, *lb2;
	struct lm_stats s0, s1;
	struct lm_lock_info li;
	uint64_t gen_b;

	(void)state;
	t_host_open(&a, img, &g, NULL);
	t_host_open(&b, img, &g, NULL);

	/* alone */
	assert_int_equal(lm_lock_acquire(a.lm, T_LOCK(3), LM_MODE_EX, 0, &la), 0);
	assert_int_equal(lm_lock_release(la), 0);
	lm_stats_get(a.lm, &s0);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(lm_lock_acquire(a.lm, T_LOCK(3), LM_MODE_EX, 0, &la), 0);
		only_holder(img, T_LOCK(3), &a, LM_MODE_EX);
		assert_int_equal(lm_lock_release(la), 0);
	}
	lm_stats_get(a.lm, &s1);
	assert_int_equal(s1.spec_tries - s0.spec_tries, 20);
	assert_int_equal(s1.spec_misses, s0.spec_misses);
	li = t_lock_info(img, T_LOCK(3), 8);
	assert_int_equal(li.mode, LM_MODE_FREE);

	/* B uses it in between: A's remembered FREE image is stale */
	assert_int_equal(lm_lock_acquire(b.lm, T_LOCK(3), LM_MODE_EX, 0, &lb), 0);
	gen_b = lm_lock_gen(lb);
	assert_int_equal(lm_lock_acquire(a.lm, T_LOCK(3), LM_MODE_EX, 0, &la), -EBUSY);
	only_holder(img, T_LOCK(3), &b, LM_MODE_EX); /* a stale image granted nothing */
	assert_int_equal(lm_lock_release(lb), 0);
	lm_stats_get(a.lm, &s0);
	assert_int_equal(lm_lock_acquire(a.lm, T_LOCK(3), LM_MODE_EX, 0, &la), 0);
	lm_stats_get(a.lm, &s1);
	assert_int_equal(s1.spec_tries, s0.spec_tries); /* it remembered B's EX: read */
	assert_true(lm_lock_gen(la) == gen_b + 1);
	only_holder(img, T_LOCK(3), &a, LM_MODE_EX);
	assert_int_equal(lm_lock_acquire(b.lm, T_LOCK(3), LM_MODE_SH, 0, &lb), -EBUSY);
	assert_int_equal(lm_lock_release(la), 0);

	/* SH: B joins while A holds it; A's release must keep B */
	assert_int_equal(lm_lock_acquire(a.lm, T_LOCK(4), LM_MODE_SH, 0, &la), 0);
	assert_int_equal(lm_lock_acquire(b.lm, T_LOCK(4), LM_MODE_SH, 0, &lb), 0);
	lm_stats_get(a.lm, &s0);
	assert_int_equal(lm_lock_release(la), 0);
	lm_stats_get(a.lm, &s1);
	assert_int_equal(s1.spec_misses - s0.spec_misses, 1); /* it did try, and missed */
	only_holder(img, T_LOCK(4), &b, LM_MODE_SH);
	/* B's record after its own release is FREE; B's next EX is speculative */
	assert_int_equal(lm_lock_release(lb), 0);
	lm_stats_get(b.lm, &s0);
	assert_int_equal(lm_lock_acquire(b.lm, T_LOCK(4), LM_MODE_EX, 0, &lb2), 0);
	lm_stats_get(b.lm, &s1);
	assert_int_equal(s1.spec_tries - s0.spec_tries, 1);
	assert_int_equal(s1.spec_misses, s0.spec_misses);
	only_holder(img, T_LOCK(4), &b, LM_MODE_EX);
	assert_int_equal(lm_lock_release(lb2), 0);

	t_host_close(&a);
	t_host_close(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spec),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
