/*
 * test_lm_api.c - lm_takeover_slot() (explicit takeover of a dead slot,
 * with the takeover callback; a live slot times out, a free one is a no-op),
 * lm_lock_forget() (handle dropped, record untouched until the slot goes),
 * lm_close_noleave() (slot left LIVE and still: a survivor takes it over and
 * runs its callback, the locks become stale).
 */
#include "lmtest.h"

struct shm {
	_Atomic int holding;
	_Atomic int cb_calls;
	uint32_t victim_slot, victim_gen;
	uint32_t cb_slot, cb_gen;
};

static void victim(const char *img, const struct lm_geom *g, struct shm *m)
{
	struct t_host h;
	struct lm_lock *lk;
	int rc;

	t_host_open(&h, img, g, NULL);
	rc = lm_lock_acquire(h.lm, T_LOCK(0), LM_MODE_EX, 0, &lk);
	if (rc < 0)
		t_die(20, "victim acquire: %s", lm_strerror(rc));
	lm_slot(h.lm, &m->victim_slot, &m->victim_gen);
	atomic_store(&m->holding, 1);
	for (;;)
		pause();
}

static int record_cb(void *arg, uint32_t dead_slot, uint32_t dead_gen, const uint8_t uuid[16])
{
	struct shm *m = arg;

	(void)uuid;
	m->cb_slot = dead_slot;
	m->cb_gen = dead_gen;
	atomic_fetch_add(&m->cb_calls, 1);
	return 0;
}

static void takeover_slot(void **state)
{
	struct lm_geom g = t_geom(16, 100, 800);
	const char *img = t_image("api-take");
	struct shm *m = t_shared(sizeof(*m));
	struct lm_opts o = {.takeover = record_cb, .takeover_arg = m};
	struct lm_lock *lk;
	struct bdev *bd;
	struct lm *lm;
	uint32_t me, gen;
	int64_t t0;
	pid_t v;
	int st;

	(void)state;
	v = fork();
	if (v == 0)
		victim(img, &g, m);
	assert_int_equal(t_wait_ge(&m->holding, 1, 30000), 0);
	assert_int_equal(bdev_open(img, 0, &bd), 0);
	assert_int_equal(lm_open(bd, &g, &o, &lm), 0);
	assert_int_equal(lm_takeover_slot(lm, m->victim_slot, 0), -LM_E_NOTJOINED);
	assert_int_equal(lm_join(lm), 0);
	assert_int_equal(lm_slot(lm, &me, &gen), 0);
	assert_int_equal(lm_takeover_slot(lm, me, 0), -EINVAL);
	assert_int_equal(lm_takeover_slot(lm, g.nslots, 0), -EINVAL);
	/* alive: still after the wait */
	assert_int_equal(lm_takeover_slot(lm, m->victim_slot, 1200), -ETIMEDOUT);
	assert_int_equal(atomic_load(&m->cb_calls), 0);
	assert_int_equal(t_slot_info(img, &g, m->victim_slot).state, LM_SLOT_LIVE);
	kill(v, SIGKILL);
	waitpid(v, &st, 0);
	t0 = t_now_ns();
	assert_int_equal(lm_takeover_slot(lm, m->victim_slot, 3000), 1);
	assert_true(t_now_ns() - t0 >= 600000000); /* not before the timeout */
	assert_int_equal(atomic_load(&m->cb_calls), 1);
	assert_int_equal(m->cb_slot, m->victim_slot);
	assert_int_equal(m->cb_gen, m->victim_gen);
	assert_int_equal(t_slot_info(img, &g, m->victim_slot).state, LM_SLOT_FREE);
	/* the victim's lock is stale: granted at once */
	assert_int_equal(lm_lock_acquire(lm, T_LOCK(0), LM_MODE_EX, 0, &lk), 0);
	assert_int_equal(lm_lock_release(lk), 0);
	/* a free slot: nothing to do, no callback */
	assert_int_equal(lm_takeover_slot(lm, m->victim_slot, 1000), 0);
	assert_int_equal(atomic_load(&m->cb_calls), 1);
	lm_close(lm);
	bdev_close(bd);
}

static void lock_forget(void **state)
{
	struct lm_geom g = t_geom(16, 100, 800);
	const char *img = t_image("api-forget");
	struct lm_lock *lk;
	struct lm_lock_info li;
	struct t_host a, b;
	uint32_t sa, ga;

	(void)state;
	t_host_open(&a, img, &g, NULL);
	t_host_open(&b, img, &g, NULL);
	assert_int_equal(lm_slot(a.lm, &sa, &ga), 0);
	assert_int_equal(lm_lock_acquire(a.lm, T_LOCK(1), LM_MODE_EX, 0, &lk), 0);
	lm_lock_forget(lk);
	li = t_lock_info(img, T_LOCK(1), g.nslots);
	assert_int_equal(li.mode, LM_MODE_EX); /* the record is untouched */
	assert_int_equal(li.nholders, 1);
	assert_int_equal(li.holders[0].slot, sa);
	assert_int_equal(li.holders[0].gen, ga);
	/* still A's while A lives */
	assert_int_equal(lm_lock_acquire(b.lm, T_LOCK(1), LM_MODE_EX, 0, &lk), -EBUSY);
	/* A leaves: the record is stale, B gets it at once */
	t_host_close(&a);
	assert_int_equal(lm_lock_acquire(b.lm, T_LOCK(1), LM_MODE_EX, 0, &lk), 0);
	assert_int_equal(lm_lock_release(lk), 0);
	t_host_close(&b);
}

static void close_noleave(void **state)
{
	struct lm_geom g = t_geom(16, 100, 800);
	const char *img = t_image("api-noleave");
	struct shm *m = t_shared(sizeof(*m));
	struct lm_opts o = {.takeover = record_cb, .takeover_arg = m};
	struct lm_lock *lk;
	struct t_host a, b;
	uint32_t sa, ga;
	int64_t t0;

	(void)state;
	t_host_open(&a, img, &g, NULL);
	t_host_open(&b, img, &g, &o);
	assert_int_equal(lm_slot(a.lm, &sa, &ga), 0);
	assert_int_equal(lm_lock_acquire(a.lm, T_LOCK(2), LM_MODE_EX, 0, &lk), 0);
	lm_lock_forget(lk);
	lm_close_noleave(a.lm);
	bdev_close(a.bd);
	assert_int_equal(t_slot_info(img, &g, sa).state, LM_SLOT_LIVE); /* not left */
	/* B waits for A's heartbeat to stay still, takes A over, gets the lock */
	t0 = t_now_ns();
	assert_int_equal(lm_lock_acquire(b.lm, T_LOCK(2), LM_MODE_EX, 5000, &lk), 0);
	assert_true(t_now_ns() - t0 >= 600000000);
	assert_int_equal(atomic_load(&m->cb_calls), 1);
	assert_int_equal(m->cb_slot, sa);
	assert_int_equal(m->cb_gen, ga);
	assert_int_equal(t_slot_info(img, &g, sa).state, LM_SLOT_FREE);
	assert_int_equal(lm_lock_release(lk), 0);
	t_host_close(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(takeover_slot),
	    cmocka_unit_test(lock_forget),
	    cmocka_unit_test(close_noleave),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
