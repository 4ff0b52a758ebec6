/*
 * test_lm_misc.c - smaller defects of issue 9 (12):
 *  - a slot generation that wraps at takeover skips 0: a victim at
 *    generation 0xffffffff is taken over to generation 1 (the old code wrote
 *    generation 0, which decode rejects: the slot became "corrupt" for good),
 *    and the record being replayed (dead generation 0xffffffff, generation 1)
 *    decodes during the callback;
 *  - a lock release that fails is not silent: lm_errmsg() names the lock
 *    and the error, lm_stats counts it;
 *  - forked hosts do not back off in lockstep: two processes forked at the
 *    same moment contend for one lock without either one starving.
 */
#include "lmtest.h"

#include "lm_int.h"

struct shm {
	_Atomic int holding;
	_Atomic int cb_calls;
	_Atomic int cb_decode_rc;
	uint32_t slot, gen;
	char img[4096];
	struct lm_geom g;
};

static int cb(void *arg, uint32_t dead_slot, uint32_t dead_gen, const uint8_t uuid[16])
{
	struct shm *m = arg;
	struct lm_slot_info si;
	struct bdev *bd;
	char why[160] = "";

	(void)dead_gen;
	(void)uuid;
	if (bdev_open(m->img, BDEV_O_RDONLY, &bd) == 0) {
		int rc = lm_slot_read(bd, &m->g, dead_slot, &si, why, sizeof(why));

		if (rc)
			fprintf(stderr, "slot being replayed: %s\n", why);
		atomic_store(&m->cb_decode_rc, rc);
		bdev_close(bd);
	}
	atomic_fetch_add(&m->cb_calls, 1);
	return 0;
}

static void gen_wrap(void **state)
{
	struct lm_geom g = t_geom(2, 100, 800);
	const char *img = t_image("genwrap");
	struct shm *m = t_shared(sizeof(*m));
	struct lm_opts o = {.takeover = cb, .takeover_arg = m};
	struct lm_slot_info si = {0};
	struct lm_lock *lk;
	struct t_host h;
	uint8_t *u = bdev_alloc(LM_UNIT);
	struct bdev *bd;
	pid_t v;
	int st;

	(void)state;
	snprintf(m->img, sizeof(m->img), "%s", img);
	m->g = g;
	/* both slots: FREE at generation 0xfffffffe */
	assert_int_equal(bdev_open(img, 0, &bd), 0);
	for (uint32_t i = 0; i < 2; i++) {
		si.index = i;
		si.state = LM_SLOT_FREE;
		si.gen = 0xfffffffeu;
		snprintf(si.hostname, sizeof(si.hostname), "old");
		memset(u, 0, LM_UNIT);
		lm_slot_encode(&si, u);
		assert_int_equal(bdev_write(bd, u, T_HB_OFF + (uint64_t)i * LM_UNIT, LM_UNIT), 0);
	}
	bdev_close(bd);
	bdev_free(u);
	v = t_fork();
	assert_true(v >= 0);
	if (v == 0) {
		t_host_open(&h, img, &g, NULL);
		if (lm_lock_acquire(h.lm, T_LOCK(0), LM_MODE_EX, 0, &lk) < 0)
			t_die(20, "acquire");
		lm_slot(h.lm, &m->slot, &m->gen);
		atomic_store(&m->holding, 1);
		for (;;)
			pause();
	}
	assert_int_equal(t_wait_ge(&m->holding, 1, 30000), 0);
	assert_int_equal(m->gen, 0xffffffffu);
	t_host_open(&h, img, &g, &o);
	kill(v, SIGKILL);
	waitpid(v, &st, 0);
	assert_int_equal(lm_lock_acquire(h.lm, T_LOCK(0), LM_MODE_EX, 5000, &lk), 0);
	assert_int_equal(atomic_load(&m->cb_calls), 1);
	assert_int_equal(atomic_load(&m->cb_decode_rc), 0);
	si = t_slot_info(img, &g, m->slot); /* asserts it decodes */
	assert_int_equal(si.state, LM_SLOT_FREE);
	assert_int_equal(si.gen, 1);
	assert_int_equal(lm_lock_release(lk), 0);
	t_host_close(&h);
	/* the slot is claimable: generation 2 */
	t_host_open(&h, img, &g, NULL);
	struct t_host h2;
	t_host_open(&h2, img, &g, NULL);
	uint32_t s2, g2;
	assert_int_equal(lm_slot(h2.lm, &s2, &g2), 0);
	if (s2 == m->slot)
		assert_int_equal(g2, 2);
	t_host_close(&h2);
	t_host_close(&h);
}

static void release_error_reported(void **state)
{
	struct lm_geom g = t_geom(4, 100, 800);
	const char *img = t_image("relerr");
	char uri[4300];
	struct bdev *bd, *hb;
	struct lm_opts o = {0};
	struct lm_stats s;
	struct lm_lock *lk;
	struct lm *lm;

	(void)state;
	snprintf(uri, sizeof(uri), "fault:errno=EIO:%s", img);
	assert_int_equal(bdev_open(uri, 0, &bd), 0);
	assert_int_equal(bdev_open(img, 0, &hb), 0);
	o.hb_bd = hb;
	assert_int_equal(lm_open(bd, &g, &o, &lm), 0);
	assert_int_equal(lm_join(lm), 0);
	assert_int_equal(lm_lock_acquire(lm, T_LOCK(0), LM_MODE_EX, 0, &lk), 0);
	/* one transient ATS error: retried, released, nothing reported */
	assert_int_equal(bdev_fault_arm(bd, "ats=1"), 0);
	assert_int_equal(lm_lock_release(lk), 0);
	assert_int_equal(t_lock_info(img, T_LOCK(0), g.nslots).mode, LM_MODE_FREE);
	/* a persistent one: the error is returned, described and counted */
	assert_int_equal(bdev_fault_arm(bd, ""), 0);
	assert_int_equal(lm_lock_acquire(lm, T_LOCK(0), LM_MODE_EX, 0, &lk), 0);
	assert_int_equal(bdev_fault_arm(bd, "ats=1,persist"), 0);
	assert_int_equal(lm_lock_release(lk), -EIO);
	fprintf(stderr, "release error: %s\n", lm_errmsg(lm));
	assert_non_null(strstr(lm_errmsg(lm), "releasing lock at 0x200000"));
	lm_stats_get(lm, &s);
	assert_int_equal(s.release_errors, 1);
	assert_int_equal(bdev_fault_arm(bd, ""), 0);
	lm_close(lm);
	bdev_close(bd);
	bdev_close(hb);
}

/* A RESERVATION CONFLICT on any write path means a survivor preempted this
 * host's key (lm_pr.c, R4): the host is fenced at once, whatever the
 * device, and writes nothing more. The fault backend plays the target. */
static void conflict_fences(void **state)
{
	struct lm_geom g = t_geom(4, 100, 800);
	const char *img = t_image("conflict");
	uint8_t *buf = bdev_alloc(512);
	char uri[4300];
	struct bdev *bd, *hb;
	struct lm_opts o = {0};
	struct lm_stats s;
	struct lm_lock *lk;
	struct lm *lm;

	(void)state;
	memset(buf, 0x5a, 512);
	snprintf(uri, sizeof(uri), "fault::%s", img);
	assert_int_equal(bdev_open(uri, 0, &bd), 0);
	assert_int_equal(bdev_open(img, 0, &hb), 0);
	o.hb_bd = hb;
	assert_int_equal(lm_open(bd, &g, &o, &lm), 0);
	assert_int_equal(lm_join(lm), 0);
	assert_int_equal(lm_pr_own_key(lm), 0); /* an image file has no reservations */
	assert_int_equal(lm_lock_acquire(lm, T_LOCK(0), LM_MODE_EX, 0, &lk), 0);
	assert_int_equal(lm_guarded_write(lm, buf, T_DATA(0), 512), 0);
	assert_int_equal(lm_fenced(lm), 0);
	assert_int_equal(bdev_fault_arm(bd, "write=1,errno=RESV_CONFLICT"), 0);
	assert_int_equal(lm_guarded_write(lm, buf, T_DATA(0), 512), -BDEV_E_RESV_CONFLICT);
	assert_int_equal(lm_fenced(lm), 1);
	fprintf(stderr, "fenced: %s\n", lm_fence_reason(lm));
	assert_non_null(strstr(lm_fence_reason(lm), "reservation conflict"));
	assert_int_equal(lm_write_guard(lm), -LM_E_FENCED);
	assert_int_equal(lm_guarded_write(lm, buf, T_DATA(0), 512), -LM_E_FENCED);
	lm_stats_get(lm, &s);
	assert_int_equal(s.pr_conflicts, 1);
	lm_lock_forget(lk); /* fenced: its record stays until taken over */
	/* a conflict on an ATS (the heartbeat, a lock) fences the same way */
	lm_close(lm);
	assert_int_equal(bdev_fault_arm(bd, ""), 0);
	assert_int_equal(lm_open(bd, &g, &o, &lm), 0);
	assert_int_equal(lm_join(lm), 0);
	assert_int_equal(bdev_fault_arm(bd, "ats=1,errno=RESV_CONFLICT"), 0);
	assert_true(lm_lock_acquire(lm, T_LOCK(1), LM_MODE_EX, 0, &lk) < 0);
	assert_int_equal(lm_fenced(lm), 1);
	lm_close(lm);
	/* after lm_close the hook is gone: the bdev no longer calls into it */
	assert_int_equal(bdev_fault_arm(bd, "write=1,errno=RESV_CONFLICT"), 0);
	assert_int_equal(bdev_write(bd, buf, T_DATA(0), 512), -BDEV_E_RESV_CONFLICT);
	bdev_close(bd);
	bdev_close(hb);
	bdev_free(buf);
}

/* Reservation keys: never 0, distinct for every slot, generation and host,
 * the slot readable in the top 16 bits (lm_pr.c). */
static void pr_keys(void **state)
{
	uint8_t u1[16] = {1}, u2[16] = {2};
	uint64_t k[5];

	(void)state;
	k[0] = lm_pr_key(0, 0, u1);
	k[1] = lm_pr_key(0, 1, u1);
	k[2] = lm_pr_key(1, 0, u1);
	k[3] = lm_pr_key(0, 0, u2);
	k[4] = lm_pr_key(0, 0x10000, u1); /* same low 16 bits as gen 0 */
	for (int i = 0; i < 5; i++) {
		assert_true(k[i] != 0);
		for (int j = 0; j < i; j++)
			assert_true(k[i] != k[j]);
	}
	assert_int_equal(lm_pr_key(0x1234, 7, u1) >> 48, 0x1234);
	assert_int_equal(lm_pr_key(9, 7, u2), lm_pr_key(9, 7, u2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(gen_wrap),
	    cmocka_unit_test(release_error_reported),
	    cmocka_unit_test(conflict_fences),
	    cmocka_unit_test(pr_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
