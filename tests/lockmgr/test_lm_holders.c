/*
 * test_lm_holders.c - every host of a default 64-host volume can share one
 * lock (issue 9 defect 6): 64 processes hold one lock read-only and another
 * multi-writer at the same time; the records list 64 holders; all are
 * released cleanly. The old record had room for 48 holders: the 49th got
 * -ENOSPC.
 */
#include "lmtest.h"

#define NHOSTS 64

struct shm {
	_Atomic int holding;
	_Atomic int done;
	_Atomic int failed;
};

static void host(const char *img, const struct lm_geom *g, struct shm *m, int id)
{
	struct lm_lock *sh, *mw;
	struct t_host h;
	char name[32];
	struct lm_opts o = {.hostname = name};
	int rc;

	snprintf(name, sizeof(name), "sharer-%d", id);
	t_host_open(&h, img, g, &o);
	rc = lm_lock_acquire(h.lm, T_LOCK(0), LM_MODE_SH, 120000, &sh);
	if (rc < 0) {
		atomic_fetch_add(&m->failed, 1);
		t_die(20, "host %d: shared acquire: %s (%s)", id, lm_strerror(rc), lm_errmsg(h.lm));
	}
	rc = lm_lock_acquire(h.lm, T_LOCK(1), LM_MODE_MW, 120000, &mw);
	if (rc < 0) {
		atomic_fetch_add(&m->failed, 1);
		t_die(21, "host %d: multi-writer acquire: %s (%s)", id, lm_strerror(rc),
		      lm_errmsg(h.lm));
	}
	atomic_fetch_add(&m->holding, 1);
	if (t_wait_ge(&m->done, 1, 240000) < 0)
		t_die(22, "no done signal");
	if (lm_lock_release(sh) < 0 || lm_lock_release(mw) < 0)
		t_die(23, "release: %s", lm_errmsg(h.lm));
	t_host_close(&h);
	_exit(0);
}

static void share_64(void **state)
{
	struct lm_geom g = t_geom(NHOSTS, 250, 4000);
	const char *img = t_image("holders");
	struct shm *m = t_shared(sizeof(*m));
	struct lm_lock_info li;
	pid_t pids[NHOSTS];
	int seen[NHOSTS] = {0};

	(void)state;
	for (int i = 0; i < NHOSTS; i++) {
		pids[i] = t_fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0)
			host(img, &g, m, i);
	}
	for (int64_t end = t_now_ns() + 240000000000ll;
	     atomic_load(&m->holding) < NHOSTS && !atomic_load(&m->failed) && t_now_ns() < end;)
		t_sleep_ms(10);
	assert_int_equal(atomic_load(&m->failed), 0);
	assert_int_equal(atomic_load(&m->holding), NHOSTS);
	for (int l = 0; l < 2; l++) {
		li = t_lock_info(img, T_LOCK(l), g.nslots);
		assert_int_equal(li.mode, l ? LM_MODE_MW : LM_MODE_SH);
		assert_int_equal(li.nholders, NHOSTS);
		memset(seen, 0, sizeof(seen));
		for (uint32_t i = 0; i < li.nholders; i++)
			seen[li.holders[i].slot]++;
		for (int i = 0; i < NHOSTS; i++)
			assert_int_equal(seen[i], 1);
	}
	atomic_store(&m->done, 1);
	t_wait_all(pids, NHOSTS);
	for (int l = 0; l < 2; l++) {
		li = t_lock_info(img, T_LOCK(l), g.nslots);
		assert_int_equal(li.mode, LM_MODE_FREE);
		assert_int_equal(li.nholders, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(share_64)};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
