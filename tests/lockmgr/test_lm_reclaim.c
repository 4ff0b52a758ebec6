/*
 * test_lm_reclaim.c - dead hosts' heartbeat slots are reclaimed (issue 9
 * defect 7). On a 4-slot region, 4 hosts holding locks are killed with
 * SIGKILL:
 *  - a 5th host's lm_join() watches the full region, judges a slot dead
 *    after the timeout, takes it over, runs the takeover callback (which
 *    writes through lm_guarded_write(): writes are allowed during a
 *    join-time reclaim) and then owns the slot; the dead host's lock is
 *    stale; 3 more hosts reclaim the other 3 slots; on a region of live
 *    hosts a join fails -ENOSPC, at once without join_wait_ms, after the
 *    timeout with it (the old code failed -ENOSPC for good, with or
 *    without dead slots);
 *  - a joiner killed inside its callback leaves the slot "being replayed
 *    by its new owner" and still: the next joiner finishes that replay;
 *  - background reclaim: a live host with reclaim_interval_ms frees a dead
 *    host's slot, in its reclaim thread, without needing any lock of it.
 */
#include "lmtest.h"

#include <pthread.h>

#define NS 4

struct shm {
	_Atomic int joined;
	_Atomic int cb_calls;
	_Atomic int cb_write_ok;
	uint32_t slot[NS];
	uint32_t gen[NS];
	uint32_t cb_slot, cb_gen;
	uint32_t cb_log[16][2]; /* (slot, dead gen) of every callback */
};

struct cbarg {
	struct shm *m;
	struct lm *lm;
	pthread_t main_thread;
	_Atomic int other_thread;
	int die; /* SIGKILL self inside the callback */
};

static int cb(void *arg, uint32_t dead_slot, uint32_t dead_gen, const uint8_t uuid[16])
{
	struct cbarg *a = arg;
	uint8_t *buf = bdev_alloc(LM_UNIT);
	uint32_t me;

	(void)uuid;
	if (a->die)
		raise(SIGKILL);
	a->m->cb_slot = dead_slot;
	a->m->cb_gen = dead_gen;
	int n = atomic_load(&a->m->cb_calls);
	if (n < 16) {
		a->m->cb_log[n][0] = dead_slot;
		a->m->cb_log[n][1] = dead_gen;
	}
	if (!pthread_equal(pthread_self(), a->main_thread))
		atomic_store(&a->other_thread, 1);
	memset(buf, 0x5a, LM_UNIT);
	if (lm_guarded_write(a->lm, buf, T_DATA(dead_slot), LM_UNIT) == 0 &&
	    lm_slot(a->lm, &me, NULL) == 0)
		atomic_fetch_add(&a->m->cb_write_ok, 1);
	bdev_free(buf);
	atomic_fetch_add(&a->m->cb_calls, 1);
	return 0;
}

static void holder(const char *img, const struct lm_geom *g, struct shm *m, int id)
{
	struct lm_lock *lk;
	struct t_host h;
	uint32_t s;

	t_host_open(&h, img, g, NULL);
	if (lm_slot(h.lm, &s, &m->gen[id]) < 0)
		t_die(20, "lm_slot");
	m->slot[id] = s;
	if (lm_lock_acquire(h.lm, T_LOCK(s), LM_MODE_EX, 0, &lk) < 0)
		t_die(21, "acquire");
	atomic_fetch_add(&m->joined, 1);
	for (;;)
		pause();
}

static void kill_all(pid_t *p, int n)
{
	for (int i = 0; i < n; i++) {
		int st;

		kill(p[i], SIGKILL);
		waitpid(p[i], &st, 0);
	}
}

static void start_holders(const char *img, const struct lm_geom *g, struct shm *m, pid_t *p)
{
	atomic_store(&m->joined, 0);
	for (int i = 0; i < NS; i++) {
		p[i] = t_fork();
		assert_true(p[i] >= 0);
		if (p[i] == 0)
			holder(img, g, m, i);
	}
	assert_int_equal(t_wait_ge(&m->joined, NS, 60000), 0);
}

struct host5 {
	struct bdev *bd;
	struct lm *lm;
	struct cbarg a;
};

static int host5_open_die(struct host5 *h, const char *img, const struct lm_geom *g, struct shm *m,
			  int join_wait_ms, int die)
{
	struct lm_opts o = {.takeover = cb, .join_wait_ms = join_wait_ms};

	memset(h, 0, sizeof(*h));
	h->a.m = m;
	h->a.die = die;
	h->a.main_thread = pthread_self();
	o.takeover_arg = &h->a;
	assert_int_equal(bdev_open(img, 0, &h->bd), 0);
	assert_int_equal(lm_open(h->bd, g, &o, &h->lm), 0);
	h->a.lm = h->lm;
	return lm_join(h->lm);
}

static int host5_open(struct host5 *h, const char *img, const struct lm_geom *g, struct shm *m,
		      int join_wait_ms)
{
	return host5_open_die(h, img, g, m, join_wait_ms, 0);
}

static void join_reclaims(void **state)
{
	struct lm_geom g = t_geom(NS, 100, 800);
	const char *img = t_image("reclaim-join");
	struct shm *m = t_shared(sizeof(*m));
	struct host5 h[NS], x;
	pid_t p[NS];
	int64_t t0;
	uint32_t s, gen;
	int seen[NS] = {0};

	(void)state;
	start_holders(img, &g, m, p);
	/* a region of live hosts: no reclaim (the default), -ENOSPC at once;
	 * with LM_JOIN_WAIT_AUTO, -ENOSPC after watching for the timeout */
	t0 = t_now_ns();
	assert_int_equal(host5_open(&x, img, &g, m, 0), -ENOSPC);
	assert_true(t_now_ns() - t0 < 500000000);
	assert_non_null(strstr(lm_errmsg(x.lm), "4 live"));
	lm_close(x.lm);
	bdev_close(x.bd);
	t0 = t_now_ns();
	assert_int_equal(host5_open(&x, img, &g, m, LM_JOIN_WAIT_AUTO), -ENOSPC);
	assert_true(t_now_ns() - t0 >= 800000000);
	fprintf(stderr, "full region of live hosts: %s\n", lm_errmsg(x.lm));
	assert_non_null(strstr(lm_errmsg(x.lm), "full"));
	lm_close(x.lm);
	bdev_close(x.bd);

	kill_all(p, NS);
	t0 = t_now_ns();
	for (int i = 0; i < NS; i++) {
		int rc = host5_open(&h[i], img, &g, m, LM_JOIN_WAIT_AUTO);

		if (rc)
			fprintf(stderr, "join %d: %s (%s)\n", i, lm_strerror(rc),
				lm_errmsg(h[i].lm));
		assert_int_equal(rc, 0);
		assert_int_equal(lm_slot(h[i].lm, &s, &gen), 0);
		assert_int_equal(atomic_load(&m->cb_calls), i + 1);
		assert_int_equal(atomic_load(&m->cb_write_ok), i + 1);
		assert_int_equal(m->cb_slot, s);
		for (int k = 0; k < NS; k++)
			if (m->slot[k] == s) {
				assert_int_equal(m->cb_gen, m->gen[k]);
				assert_int_equal(gen, m->gen[k] + 1);
			}
		seen[s]++;
		struct lm_slot_info si = t_slot_info(img, &g, s);
		assert_int_equal(si.state, LM_SLOT_LIVE);
		assert_int_equal(si.gen, gen);
		/* the dead host's lock on T_LOCK(s) is stale now: ours at once */
		struct lm_lock *lk;
		assert_int_equal(lm_lock_acquire(h[i].lm, T_LOCK(s), LM_MODE_EX, 0, &lk), 0);
		assert_int_equal(lm_lock_release(lk), 0);
		/* the callback's write landed */
		uint8_t *buf = bdev_alloc(LM_UNIT);
		assert_int_equal(bdev_read(h[i].bd, buf, T_DATA(s), LM_UNIT), 0);
		assert_int_equal(buf[100], 0x5a);
		bdev_free(buf);
	}
	/* not before the timeout after the kill */
	assert_true(t_now_ns() - t0 >= 800000000);
	for (int i = 0; i < NS; i++)
		assert_int_equal(seen[i], 1);
	for (int i = 0; i < NS; i++) {
		assert_int_equal(lm_fenced(h[i].lm), 0);
		lm_close(h[i].lm);
		bdev_close(h[i].bd);
	}
}

static void joiner_dies_in_callback(void **state)
{
	struct lm_geom g = t_geom(NS, 100, 800);
	const char *img = t_image("reclaim-die");
	struct shm *m = t_shared(sizeof(*m));
	struct host5 x[NS];
	struct lm_slot_info si;
	pid_t p[NS], j;
	int st, orphan = -1;

	(void)state;
	start_holders(img, &g, m, p);
	kill_all(p, NS);
	j = t_fork();
	assert_true(j >= 0);
	if (j == 0) {
		host5_open_die(&x[0], img, &g, m, LM_JOIN_WAIT_AUTO,
			       1); /* SIGKILL in the callback */
		_exit(30);
	}
	waitpid(j, &st, 0);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	for (int i = 0; i < NS; i++) {
		si = t_slot_info(img, &g, (uint32_t)i);
		if (si.state == LM_SLOT_REPLAYING) {
			assert_int_equal(orphan, -1);
			orphan = i;
			assert_int_equal(si.replayer_slot, (uint32_t)i); /* by its new owner */
			assert_int_equal(si.replayer_gen, si.gen);
			for (int k = 0; k < NS; k++)
				if (m->slot[k] == (uint32_t)i)
					assert_int_equal(si.dead_gen, m->gen[k]);
		}
	}
	assert_true(orphan >= 0);
	/* 4 joiners: each reclaims one slot; the orphan's replay is finished
	 * for its original dead owner */
	for (int i = 0; i < NS; i++)
		assert_int_equal(host5_open(&x[i], img, &g, m, 2000), 0);
	assert_int_equal(atomic_load(&m->cb_calls), NS);
	for (int k = 0; k < NS; k++) {
		int found = 0;

		for (int c = 0; c < NS; c++)
			found += m->cb_log[c][0] == m->slot[k] && m->cb_log[c][1] == m->gen[k];
		assert_int_equal(found, 1);
	}
	for (int i = 0; i < NS; i++) {
		assert_int_equal(t_slot_info(img, &g, (uint32_t)i).state, LM_SLOT_LIVE);
		lm_close(x[i].lm);
		bdev_close(x[i].bd);
	}
}

static void background_reclaim(void **state)
{
	struct lm_geom g = t_geom(NS, 100, 800);
	const char *img = t_image("reclaim-bg");
	struct shm *m = t_shared(sizeof(*m));
	struct cbarg a = {.m = m, .main_thread = pthread_self()};
	struct lm_opts o = {.reclaim_interval_ms = 200, .reclaim_takeover = cb, .reclaim_arg = &a};
	struct lm_stats stt;
	struct bdev *bd;
	struct lm *lm;
	pid_t p[1];
	int64_t t0;

	(void)state;
	p[0] = t_fork();
	assert_true(p[0] >= 0);
	if (p[0] == 0)
		holder(img, &g, m, 0);
	assert_int_equal(t_wait_ge(&m->joined, 1, 60000), 0);
	assert_int_equal(bdev_open(img, 0, &bd), 0);
	assert_int_equal(lm_open(bd, &g, &o, &lm), 0);
	a.lm = lm;
	assert_int_equal(lm_join(lm), 0);
	t_sleep_ms(1500); /* alive: nothing reclaimed */
	assert_int_equal(atomic_load(&m->cb_calls), 0);
	assert_int_equal(t_slot_info(img, &g, m->slot[0]).state, LM_SLOT_LIVE);
	kill_all(p, 1);
	t0 = t_now_ns();
	assert_int_equal(t_wait_ge(&m->cb_calls, 1, 10000), 0);
	fprintf(stderr, "background reclaim %lld ms after the kill\n",
		(long long)((t_now_ns() - t0) / 1000000));
	assert_true(t_now_ns() - t0 >= 700000000);
	assert_int_equal(m->cb_slot, m->slot[0]);
	assert_int_equal(m->cb_gen, m->gen[0]);
	assert_int_equal(atomic_load(&a.other_thread), 1); /* the reclaim thread */
	assert_int_equal(atomic_load(&m->cb_write_ok), 1);
	for (int i = 0; i < 1000 && t_slot_info(img, &g, m->slot[0]).state != LM_SLOT_FREE; i++)
		t_sleep_ms(5);
	assert_int_equal(t_slot_info(img, &g, m->slot[0]).state, LM_SLOT_FREE);
	lm_stats_get(lm, &stt);
	assert_true(stt.reclaim_sweeps > 0);
	assert_int_equal(stt.takeovers, 1);
	/* the dead host's lock: stale, granted at once, no second callback */
	struct lm_lock *lk;
	assert_int_equal(lm_lock_acquire(lm, T_LOCK(m->slot[0]), LM_MODE_EX, 0, &lk), 0);
	assert_int_equal(lm_lock_release(lk), 0);
	assert_int_equal(atomic_load(&m->cb_calls), 1);
	lm_reclaim_stop(lm);
	lm_reclaim_stop(lm); /* idempotent */
	lm_close(lm);
	bdev_close(bd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(join_reclaims),
	    cmocka_unit_test(joiner_dies_in_callback),
	    cmocka_unit_test(background_reclaim),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
