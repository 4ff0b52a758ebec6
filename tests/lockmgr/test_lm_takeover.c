/*
 * test_lm_takeover.c - a lock holder killed with SIGKILL: another host gets
 * the lock after the heartbeat timeout and never before. The test watches
 * the dead host's slot every millisecond and checks
 *     acquisition time - last counter movement >= timeout
 * (within the 1 ms watch resolution), that the takeover callback ran before
 * the grant with the dead slot number and generation, and that the grant
 * came no later than timeout + 2 s after the kill. Run with short timeouts
 * (250 ms / 2 s) and with the defaults (1 s / 8 s).
 * A second test kills the taker inside its takeover callback: a third host
 * must finish the replay (slot "being replayed" by a dead host) and get the
 * lock. Two hosts racing for a dead holder's lock: the callback runs once.
 * lm_recover() sweeps recover a dead host only after the timeout.
 * A killed host reads back "dead" to a reader that holds no slot
 * (lm_slots_watch()); after a survivor's takeover its slot is free and
 * carries a recovery record naming the survivor and the count its
 * callback replayed.
 */
#include "lmtest.h"

#include <pthread.h>

struct shm {
	_Atomic int holding;
	_Atomic int waiting;
	_Atomic int acquired;
	_Atomic int cb_calls;
	uint32_t victim_slot, victim_gen;
	uint32_t cb_slot, cb_gen;
	int64_t cb_ns, acq_ns;
	int acq_rc;
	_Atomic int in_cb; /* set when the first taker is inside its callback */
};

static struct shm *g_m;

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
	m->cb_ns = t_now_ns();
	atomic_fetch_add(&m->cb_calls, 1);
	return 0;
}

static void taker(const char *img, const struct lm_geom *g, struct shm *m, int die_in_cb)
{
	struct lm_opts o = {.takeover = record_cb, .takeover_arg = m};
	struct lm_lock *lk;
	struct t_host h;

	t_host_open(&h, img, g, &o);
	if (t_wait_ge(&m->holding, 1, 30000) < 0)
		t_die(21, "victim never held the lock");
	atomic_store(&m->waiting, 1);
	m->acq_rc = lm_lock_acquire(h.lm, T_LOCK(0), LM_MODE_EX, 60000, &lk);
	m->acq_ns = t_now_ns();
	atomic_store(&m->acquired, 1);
	if (m->acq_rc < 0)
		t_die(22, "taker acquire: %s (%s)", lm_strerror(m->acq_rc), lm_errmsg(h.lm));
	(void)die_in_cb;
	lm_lock_release(lk);
	t_host_close(&h);
	_exit(0);
}

/* A thread watching the victim's slot every millisecond until stop: when
 * its (live, gen) counter last changed, as first seen by this poll. */
struct watch {
	const char *img;
	const struct lm_geom *g;
	struct shm *m;
	int64_t seen;
	pthread_t thr;
};

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	uint64_t last = UINT64_MAX;
	struct bdev *bd;

	w->seen = t_now_ns();
	if (bdev_open(w->img, BDEV_O_RDONLY, &bd) < 0)
		return NULL;
	while (!atomic_load(&w->m->acquired)) {
		struct lm_slot_info si;

		if (lm_slot_read(bd, w->g, w->m->victim_slot, &si, NULL, 0) == 0 &&
		    si.state == LM_SLOT_LIVE && si.gen == w->m->victim_gen && si.counter != last) {
			last = si.counter;
			w->seen = t_now_ns();
		}
		t_sleep_ms(1);
	}
	bdev_close(bd);
	return NULL;
}

static uint64_t slot_addr(uint32_t slot)
{
	return T_HB_OFF + (uint64_t)slot * LM_UNIT;
}

/* Completion time of pid's last successful ats at off, from a trace log. */
static int64_t last_ats(const char *log, pid_t pid, uint64_t off)
{
	FILE *f = fopen(log, "r");
	unsigned long long ns, o, len;
	int64_t last = 0;
	char op[16];
	long p;
	int rc;

	assert_non_null(f);
	while (fscanf(f, "%llu %ld %15s %llu %llu %d", &ns, &p, op, &o, &len, &rc) == 6)
		if (p == pid && !strcmp(op, "ats") && o == off && rc == 0 && (int64_t)ns > last)
			last = (int64_t)ns;
	fclose(f);
	return last;
}

static void kill_and_take(uint32_t interval_ms, uint32_t timeout_ms)
{
	struct lm_geom g = t_geom(16, interval_ms, timeout_ms);
	const char *img = t_image("takeover");
	struct shm *m = t_shared(sizeof(*m));
	char log[4200], uri[8400];
	pid_t v, t;
	int st;

	/* the victim writes through the trace backend: its log has the
	 * completion time of each heartbeat ATS */
	snprintf(log, sizeof(log), "%s.trace", img);
	snprintf(uri, sizeof(uri), "trace:%s:%s", log, img);
	v = fork();
	assert_true(v >= 0);
	if (v == 0)
		victim(uri, &g, m);
	t = fork();
	assert_true(t >= 0);
	if (t == 0)
		taker(img, &g, m, 0);
	assert_int_equal(t_wait_ge(&m->waiting, 1, 30000), 0);
	struct watch w = {.img = img, .g = &g, .m = m};
	assert_int_equal(pthread_create(&w.thr, NULL, watch_main, &w), 0);
	t_sleep_ms(300);
	assert_int_equal(kill(v, SIGKILL), 0);
	int64_t killed = t_now_ns();
	assert_int_equal(waitpid(v, &st, 0), v);
	t_wait_all(&t, 1);
	pthread_join(w.thr, NULL);
	int64_t last_move = w.seen, last_hb = last_ats(log, v, slot_addr(m->victim_slot));

	uint32_t T = timeout_ms ? timeout_ms : LM_DEFAULT_TIMEOUT_MS;
	double after_move = (m->acq_ns - last_move) / 1e6, after_kill = (m->acq_ns - killed) / 1e6;
	double after_hb = (m->acq_ns - last_hb) / 1e6;
	fprintf(stderr,
		"interval %u timeout %u: acquired %.1f ms after the victim's last heartbeat "
		"completed (trace), %.1f ms after the 1 ms watcher saw it, %.0f ms after SIGKILL\n",
		g.hb_interval_ms, T, after_hb, after_move, after_kill);
	assert_int_equal(m->acq_rc, 0);
	assert_true(last_hb > 0);
	/* The heartbeat landed no later than its logged completion; 1 ms of
	 * slack for the time between the write's completion and its log line
	 * (the taker may have read the new image that early). */
	assert_true(after_hb >= T - 1.0);
	assert_true(after_kill <= T + 2000.0);
	assert_int_equal(atomic_load(&m->cb_calls), 1);
	assert_int_equal(m->cb_slot, m->victim_slot);
	assert_int_equal(m->cb_gen, m->victim_gen);
	assert_true(m->cb_ns < m->acq_ns);
	/* the dead slot is free again, with a new generation */
	struct lm_slot_info si = t_slot_info(img, &g, m->victim_slot);
	assert_int_equal(si.state, LM_SLOT_FREE);
	assert_int_equal(si.gen, m->victim_gen + 1);
	struct lm_lock_info li = t_lock_info(img, T_LOCK(0), g.nslots);
	assert_int_equal(li.gen, 2);
}

static void kill_short(void **state)
{
	(void)state;
	kill_and_take(250, 2000);
}

static void kill_defaults(void **state)
{
	(void)state;
	kill_and_take(0, 0); /* 1 s / 8 s */
}

/* --- the taker dies inside its takeover callback -------------------------- */

static int dying_cb(void *arg, uint32_t dead_slot, uint32_t dead_gen, const uint8_t uuid[16])
{
	struct shm *m = arg;

	(void)dead_slot;
	(void)dead_gen;
	(void)uuid;
	atomic_store(&m->in_cb, 1);
	for (;;)
		pause(); /* killed here by the test */
	return 0;
}

static void dying_taker(const char *img, const struct lm_geom *g, struct shm *m)
{
	struct lm_opts o = {.takeover = dying_cb, .takeover_arg = m};
	struct lm_lock *lk;
	struct t_host h;

	t_host_open(&h, img, g, &o);
	lm_lock_acquire(h.lm, T_LOCK(0), LM_MODE_EX, 60000, &lk);
	t_die(30, "dying taker returned from acquire");
}

static void taker_dies_in_callback(void **state)
{
	struct lm_geom g = t_geom(16, 250, 2000);
	const char *img = t_image("orphan");
	struct shm *m = t_shared(sizeof(*m));
	pid_t v, d, t;
	int st;

	(void)state;
	v = fork();
	if (v == 0)
		victim(img, &g, m);
	assert_int_equal(t_wait_ge(&m->holding, 1, 30000), 0);
	d = fork();
	if (d == 0)
		dying_taker(img, &g, m);
	t_sleep_ms(200);
	kill(v, SIGKILL);
	waitpid(v, &st, 0);
	assert_int_equal(t_wait_ge(&m->in_cb, 1, 30000), 0);
	kill(d, SIGKILL);
	waitpid(d, &st, 0);
	struct lm_slot_info si = t_slot_info(img, &g, m->victim_slot);
	assert_int_equal(si.state, LM_SLOT_REPLAYING);
	assert_int_equal(si.dead_gen, m->victim_gen);
	/* a third host finishes the replay once the dying taker looks dead */
	t = fork();
	if (t == 0)
		taker(img, &g, m, 0);
	t_wait_all(&t, 1);
	assert_int_equal(m->acq_rc, 0);
	assert_int_equal(atomic_load(&m->cb_calls), 1);
	assert_int_equal(m->cb_slot, m->victim_slot);
	assert_int_equal(m->cb_gen, m->victim_gen);
	si = t_slot_info(img, &g, m->victim_slot);
	assert_int_equal(si.state, LM_SLOT_FREE);
}

/* --- two hosts wait for the dead holder: one takeover, one callback ------- */

static void racing_taker(const char *img, const struct lm_geom *g, struct shm *m)
{
	struct lm_opts o = {.takeover = record_cb, .takeover_arg = m};
	struct lm_lock *lk;
	struct t_host h;
	int rc;

	t_host_open(&h, img, g, &o);
	atomic_fetch_add(&m->waiting, 1);
	rc = lm_lock_acquire(h.lm, T_LOCK(0), LM_MODE_EX, 60000, &lk);
	if (rc < 0)
		t_die(40, "racing taker: %s (%s)", lm_strerror(rc), lm_errmsg(h.lm));
	atomic_fetch_add(&m->acquired, 1);
	t_sleep_ms(50);
	if (lm_lock_release(lk) < 0)
		t_die(41, "racing taker release");
	t_host_close(&h);
	_exit(0);
}

static void two_takers_one_callback(void **state)
{
	struct lm_geom g = t_geom(16, 250, 2000);
	const char *img = t_image("race");
	struct shm *m = t_shared(sizeof(*m));
	pid_t v, t[2];
	int st;

	(void)state;
	v = fork();
	if (v == 0)
		victim(img, &g, m);
	assert_int_equal(t_wait_ge(&m->holding, 1, 30000), 0);
	for (int i = 0; i < 2; i++) {
		t[i] = fork();
		if (t[i] == 0)
			racing_taker(img, &g, m);
	}
	assert_int_equal(t_wait_ge(&m->waiting, 2, 30000), 0);
	t_sleep_ms(100);
	kill(v, SIGKILL);
	waitpid(v, &st, 0);
	t_wait_all(t, 2);
	assert_int_equal(atomic_load(&m->acquired), 2);
	assert_int_equal(atomic_load(&m->cb_calls), 1); /* exactly one replay */
	assert_int_equal(m->cb_slot, m->victim_slot);
	struct lm_lock_info li = t_lock_info(img, T_LOCK(0), g.nslots);
	assert_int_equal(li.mode, LM_MODE_FREE);
	assert_int_equal(li.gen, 3);
}

/* --- lm_recover(): a mount-time sweep takes over a dead host ------------ */

static void recover_sweep(void **state)
{
	struct lm_geom g = t_geom(16, 250, 2000);
	const char *img = t_image("sweep");
	struct shm *m = t_shared(sizeof(*m));
	struct lm_opts o = {.takeover = record_cb, .takeover_arg = m};
	struct bdev *bd;
	struct lm *lm;
	pid_t v;
	int st;

	(void)state;
	v = fork();
	if (v == 0)
		victim(img, &g, m);
	assert_int_equal(t_wait_ge(&m->holding, 1, 30000), 0);
	assert_int_equal(bdev_open(img, 0, &bd), 0);
	assert_int_equal(lm_open(bd, &g, &o, &lm), 0);
	assert_int_equal(lm_join(lm), 0);
	/* alive: a sweep shorter than the timeout recovers nothing */
	assert_int_equal(lm_recover(lm, 500), 0);
	kill(v, SIGKILL);
	waitpid(v, &st, 0);
	int64_t t0 = t_now_ns();
	assert_int_equal(lm_recover(lm, 3000), 1);
	assert_true(t_now_ns() - t0 >= 1500000000); /* not before the timeout */
	assert_int_equal(atomic_load(&m->cb_calls), 1);
	assert_int_equal(m->cb_slot, m->victim_slot);
	assert_int_equal(t_slot_info(img, &g, m->victim_slot).state, LM_SLOT_FREE);
	/* its lock is stale now: granted at once */
	struct lm_lock *lk;
	assert_int_equal(lm_lock_acquire(lm, T_LOCK(0), LM_MODE_EX, 0, &lk), 0);
	assert_int_equal(lm_lock_release(lk), 0);
	lm_close(lm);
	bdev_close(bd);
}

/* --- dead, then recovered: what a reader with no slot sees ------------- */

static int five_cb(void *arg, uint32_t dead_slot, uint32_t dead_gen, const uint8_t uuid[16])
{
	record_cb(arg, dead_slot, dead_gen, uuid);
	return 5; /* "journal transactions replayed" */
}

static void named_victim(const char *img, const struct lm_geom *g, struct shm *m)
{
	struct lm_opts o = {.hostname = "victim-host"};
	struct lm_lock *lk;
	struct t_host h;

	t_host_open(&h, img, g, &o);
	if (lm_lock_acquire(h.lm, T_LOCK(0), LM_MODE_EX, 0, &lk) < 0)
		t_die(20, "victim acquire");
	lm_slot(h.lm, &m->victim_slot, &m->victim_gen);
	atomic_store(&m->holding, 1);
	for (;;)
		pause();
}

static void dead_then_recovery_record(void **state)
{
	struct lm_geom g = t_geom(8, 100, 800);
	const char *img = t_image("deadrec");
	struct shm *m = t_shared(sizeof(*m));
	struct lm_opts o = {.hostname = "survivor", .takeover = five_cb, .takeover_arg = m};
	struct lm_slot_watch w[8];
	uint32_t me, mygen;
	struct lm_lock *lk;
	struct bdev *bd, *rd;
	double watched;
	struct lm *lm;
	pid_t v;
	int st;

	(void)state;
	v = t_fork();
	if (v == 0)
		named_victim(img, &g, m);
	assert_int_equal(t_wait_ge(&m->holding, 1, 30000), 0);
	assert_int_equal(bdev_open(img, 0, &bd), 0);
	assert_int_equal(bdev_open(img, BDEV_O_RDONLY, &rd), 0);
	assert_int_equal(lm_open(bd, &g, &o, &lm), 0);
	assert_int_equal(lm_join(lm), 0);
	assert_int_equal(lm_slot(lm, &me, &mygen), 0);
	/* alive: one interval's watch sees it move */
	assert_int_equal(lm_slots_watch(rd, &g, 0.3, 1, w, &watched), 0);
	assert_int_equal(w[m->victim_slot].lv, LM_LV_LIVE);
	kill(v, SIGKILL);
	waitpid(v, &st, 0);
	/* killed: still LIVE on disk, judged dead after the (extended) watch */
	assert_int_equal(lm_slots_watch(rd, &g, 0.2, 1, w, &watched), 0);
	assert_int_equal(w[m->victim_slot].si.state, LM_SLOT_LIVE);
	assert_int_equal(w[m->victim_slot].lv, LM_LV_DEAD);
	assert_true(w[m->victim_slot].silent_s >= 0.8);
	assert_string_equal(w[m->victim_slot].si.hostname, "victim-host");
	assert_false(w[m->victim_slot].si.rec.valid);
	assert_int_equal(w[me].lv, LM_LV_LIVE);
	/* a short watch without extension cannot tell: silent, not dead */
	assert_int_equal(lm_slots_watch(rd, &g, 0.2, 0, w, &watched), 0);
	assert_int_equal(w[m->victim_slot].lv, LM_LV_SILENT);
	/* the survivor breaks the lock: takeover, recovery record, free */
	assert_int_equal(lm_lock_acquire(lm, T_LOCK(0), LM_MODE_EX, 10000, &lk), 0);
	assert_int_equal(atomic_load(&m->cb_calls), 1);
	assert_int_equal(lm_slots_watch(rd, &g, 0.2, 1, w, &watched), 0);
	const struct lm_slot_watch *d = &w[m->victim_slot];
	assert_int_equal(d->lv, LM_LV_FREE);
	assert_true(d->si.rec.valid);
	assert_false(d->si.rec_bad);
	assert_string_equal(d->si.rec.by_host, "survivor");
	assert_string_equal(d->si.rec.dead_host, "victim-host");
	assert_int_equal(d->si.rec.by_slot, me);
	assert_int_equal(d->si.rec.by_gen, mygen);
	assert_int_equal(d->si.rec.dead_gen, m->victim_gen);
	assert_int_equal(d->si.rec.replayed, 5);
	assert_true(d->si.rec.time_ms > 1700000000000ull);
	/* the unit with its record passes the fsck check */
	uint8_t *u = bdev_alloc(LM_UNIT);
	char why[160] = "", line[400];
	assert_int_equal(bdev_read(rd, u, g.hb_off + (uint64_t)m->victim_slot * LM_UNIT, LM_UNIT),
			 0);
	assert_int_equal(lm_unit_check(u, LM_UNIT, why, sizeof(why)), 0);
	assert_int_equal(lm_slot_describe(u, LM_UNIT, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "by survivor"));
	assert_non_null(strstr(line, "5 journal transaction(s) replayed"));
	bdev_free(u);
	assert_int_equal(lm_lock_release(lk), 0);
	lm_close(lm);
	bdev_close(rd);
	bdev_close(bd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(kill_short),    cmocka_unit_test(taker_dies_in_callback),
	    cmocka_unit_test(recover_sweep), cmocka_unit_test(two_takers_one_callback),
	    cmocka_unit_test(kill_defaults), cmocka_unit_test(dead_then_recovery_record),
	};

	(void)g_m;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
