/*
 * test_lm_modes.c - lock modes and their rules:
 *  - 32 processes hold one lock read-only at the same time (each confirms
 *    through shared memory while all hold it); an exclusive try-once fails
 *    with EBUSY, a blocking exclusive request is granted only after all of
 *    them released;
 *  - upgrade read-only -> exclusive waits for the other readers; downgrade;
 *  - multi-writer is shared among writers and excludes read-only;
 *  - try-once EBUSY, timeout ETIMEDOUT (after about the timeout), the lock
 *    generation bumped by every acquisition and upgrade;
 *  - named locks map to one unit per name, claimed by name.
 * Hosts inside one process are separate handles on separate opens of the
 * image (OFD locks exclude them like separate processes).
 */
#include "lmtest.h"

#define NREADERS 32

struct shm {
	_Atomic int holding;  /* readers holding the lock now */
	_Atomic int all_seen; /* readers that saw holding == NREADERS */
	_Atomic int release;  /* parent says: release now */
	_Atomic int released; /* readers that released */
	_Atomic int64_t last_release_ns;
};

static void reader(const char *img, const struct lm_geom *g, struct shm *m)
{
	struct t_host h;
	struct lm_lock *lk;
	int rc;

	t_host_open(&h, img, g, NULL);
	rc = lm_lock_acquire(h.lm, T_LOCK(1), LM_MODE_SH, 30000, &lk);
	if (rc < 0)
		t_die(20, "SH acquire: %s (%s)", lm_strerror(rc), lm_errmsg(h.lm));
	atomic_fetch_add(&m->holding, 1);
	if (t_wait_ge(&m->holding, NREADERS, 60000) < 0)
		t_die(21, "not all readers held the lock at once");
	atomic_fetch_add(&m->all_seen, 1);
	if (t_wait_ge(&m->release, 1, 60000) < 0)
		t_die(22, "parent never said release");
	t_sleep_ms(20 + (int)(getpid() % 7) * 10); /* staggered releases */
	atomic_fetch_sub(&m->holding, 1);
	int64_t now = t_now_ns();
	rc = lm_lock_release(lk);
	if (rc < 0)
		t_die(23, "release: %s", lm_strerror(rc));
	atomic_store(&m->last_release_ns, now > m->last_release_ns ? now : m->last_release_ns);
	atomic_fetch_add(&m->released, 1);
	t_host_close(&h);
	_exit(0);
}

static void shared_32(void **state)
{
	struct lm_geom g = t_geom(64, 250, 3000);
	const char *img = t_image("shared");
	struct shm *m = t_shared(sizeof(*m));
	pid_t pids[NREADERS];
	struct lm_lock *lk = NULL;
	struct t_host w;

	(void)state;
	for (int i = 0; i < NREADERS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0)
			reader(img, &g, m);
	}
	assert_int_equal(t_wait_ge(&m->all_seen, NREADERS, 60000), 0);
	struct lm_lock_info li = t_lock_info(img, T_LOCK(1), g.nslots);
	assert_int_equal(li.mode, LM_MODE_SH);
	assert_int_equal(li.nholders, NREADERS);

	t_host_open(&w, img, &g, NULL);
	assert_int_equal(lm_lock_acquire(w.lm, T_LOCK(1), LM_MODE_EX, 0, &lk), -EBUSY);
	assert_null(lk);
	atomic_store(&m->release, 1);
	assert_int_equal(lm_lock_acquire(w.lm, T_LOCK(1), LM_MODE_EX, 30000, &lk), 0);
	int64_t granted = t_now_ns();
	/* granted only after every reader released */
	assert_int_equal(atomic_load(&m->holding), 0);
	assert_int_equal(atomic_load(&m->released), NREADERS);
	assert_true(granted >= atomic_load(&m->last_release_ns));
	li = t_lock_info(img, T_LOCK(1), g.nslots);
	assert_int_equal(li.mode, LM_MODE_EX);
	assert_int_equal(li.nholders, 1);
	assert_int_equal(li.gen, NREADERS + 1); /* one bump per acquisition */
	assert_int_equal(lm_lock_release(lk), 0);
	t_host_close(&w);
	t_wait_all(pids, NREADERS);
}

/* Three hosts in this process. */
struct three {
	struct bdev *bd[3];
	struct lm *lm[3];
};

static void three_open(struct three *t, const char *img, const struct lm_geom *g)
{
	for (int i = 0; i < 3; i++) {
		char name[16];
		struct lm_opts o = {.hostname = name};

		snprintf(name, sizeof(name), "host%d", i);
		assert_int_equal(bdev_open(img, 0, &t->bd[i]), 0);
		assert_int_equal(lm_open(t->bd[i], g, &o, &t->lm[i]), 0);
		assert_int_equal(lm_join(t->lm[i]), 0);
	}
}

static void three_close(struct three *t)
{
	for (int i = 0; i < 3; i++) {
		assert_int_equal(lm_leave(t->lm[i]), 0);
		lm_close(t->lm[i]);
		bdev_close(t->bd[i]);
	}
}

static void upgrade_downgrade(void **state)
{
	struct lm_geom g = t_geom(8, 250, 3000);
	const char *img = t_image("upgrade");
	struct lm_lock *a, *b, *c = NULL;
	struct three t;

	(void)state;
	three_open(&t, img, &g);
	assert_int_equal(lm_lock_acquire(t.lm[0], T_LOCK(0), LM_MODE_SH, 0, &a), 0);
	assert_int_equal(lm_lock_gen(a), 1);
	assert_int_equal(lm_lock_acquire(t.lm[1], T_LOCK(0), LM_MODE_SH, 0, &b), 0);
	assert_int_equal(lm_lock_gen(b), 2);
	/* upgrade blocked by the other reader */
	assert_int_equal(lm_lock_convert(a, LM_MODE_EX, 0), -EBUSY);
	assert_int_equal(lm_lock_mode(a), LM_MODE_SH);
	int64_t t0 = t_now_ns();
	assert_int_equal(lm_lock_convert(a, LM_MODE_EX, 300), -ETIMEDOUT);
	int64_t waited = (t_now_ns() - t0) / 1000000;
	assert_true(waited >= 290 && waited < 2000);
	assert_int_equal(lm_lock_release(b), 0);
	assert_int_equal(lm_lock_convert(a, LM_MODE_EX, 0), 0);
	assert_int_equal(lm_lock_mode(a), LM_MODE_EX);
	assert_int_equal(lm_lock_gen(a), 3); /* upgrade bumps */
	struct lm_lock_info li = t_lock_info(img, T_LOCK(0), g.nslots);
	assert_int_equal(li.mode, LM_MODE_EX);
	assert_int_equal(li.nholders, 1);
	/* readers excluded now */
	assert_int_equal(lm_lock_acquire(t.lm[2], T_LOCK(0), LM_MODE_SH, 0, &c), -EBUSY);
	/* downgrade lets a reader in, without a bump */
	assert_int_equal(lm_lock_convert(a, LM_MODE_SH, 0), 0);
	assert_int_equal(lm_lock_gen(a), 3);
	assert_int_equal(lm_lock_acquire(t.lm[2], T_LOCK(0), LM_MODE_SH, 0, &c), 0);
	assert_int_equal(lm_lock_gen(c), 4);
	/* a host holds a lock once */
	assert_int_equal(lm_lock_acquire(t.lm[2], T_LOCK(0), LM_MODE_SH, 0, &b), -EALREADY);
	assert_int_equal(lm_lock_release(a), 0);
	assert_int_equal(lm_lock_release(c), 0);
	li = t_lock_info(img, T_LOCK(0), g.nslots);
	assert_int_equal(li.mode, LM_MODE_FREE);
	assert_int_equal(li.gen, 4);
	three_close(&t);
}

static void multiwriter_and_timeouts(void **state)
{
	struct lm_geom g = t_geom(8, 250, 3000);
	const char *img = t_image("mw");
	struct lm_lock *a, *b, *c = NULL;
	struct three t;

	(void)state;
	three_open(&t, img, &g);
	assert_int_equal(lm_lock_acquire(t.lm[0], T_LOCK(2), LM_MODE_MW, 0, &a), 0);
	assert_int_equal(lm_lock_acquire(t.lm[1], T_LOCK(2), LM_MODE_MW, 0, &b), 0);
	assert_int_equal(lm_lock_acquire(t.lm[2], T_LOCK(2), LM_MODE_SH, 0, &c), -EBUSY);
	assert_int_equal(lm_lock_acquire(t.lm[2], T_LOCK(2), LM_MODE_EX, 0, &c), -EBUSY);
	int64_t t0 = t_now_ns();
	assert_int_equal(lm_lock_acquire(t.lm[2], T_LOCK(2), LM_MODE_EX, 500, &c), -ETIMEDOUT);
	int64_t waited = (t_now_ns() - t0) / 1000000;
	assert_true(waited >= 490 && waited < 2500);
	assert_null(c);
	struct lm_lock_info li = t_lock_info(img, T_LOCK(2), g.nslots);
	assert_int_equal(li.mode, LM_MODE_MW);
	assert_int_equal(li.nholders, 2);
	assert_int_equal(li.gen, 2);
	assert_int_equal(lm_lock_release(a), 0);
	assert_int_equal(lm_lock_release(b), 0);
	/* every acquisition bumps the generation, release does not */
	for (int i = 0; i < 5; i++) {
		assert_int_equal(lm_lock_acquire(t.lm[i % 3], T_LOCK(2), LM_MODE_EX, 0, &c), 0);
		assert_int_equal(lm_lock_gen(c), 3 + i);
		assert_int_equal(lm_lock_release(c), 0);
	}
	/* bad arguments */
	assert_int_equal(lm_lock_acquire(t.lm[0], T_LOCK(2) + 512, LM_MODE_EX, 0, &c), -EINVAL);
	assert_int_equal(lm_lock_acquire(t.lm[0], T_LOCK(2), (enum lm_mode)7, 0, &c), -EINVAL);
	assert_int_equal(lm_lock_acquire(t.lm[0], T_HB_OFF, LM_MODE_EX, 0, &c), -EINVAL);
	three_close(&t);
	/* not joined */
	struct bdev *bd;
	struct lm *lm;
	assert_int_equal(bdev_open(img, 0, &bd), 0);
	assert_int_equal(lm_open(bd, &g, NULL, &lm), 0);
	assert_int_equal(lm_lock_acquire(lm, T_LOCK(2), LM_MODE_EX, 0, &c), -LM_E_NOTJOINED);
	assert_int_equal(lm_write_guard(lm), -LM_E_NOTJOINED);
	lm_close(lm);
	bdev_close(bd);
}

static void named_locks(void **state)
{
	struct lm_geom g = t_geom(8, 250, 3000);
	const char *img = t_image("named");
	struct lm_lock *a, *b, *c;
	struct three t;
	uint64_t addr;
	struct bdev *bd;

	(void)state;
	three_open(&t, img, &g);
	bd = t.bd[0];
	/* 4 units: five names cannot all fit */
	assert_int_equal(lm_lock_lookup(bd, T_LOCK_OFF, 4, "vm1", &addr), -ENOENT);
	assert_int_equal(lm_lock_acquire_named(t.lm[0], T_LOCK_OFF, 4, "vm1", LM_MODE_EX, 0, &a),
			 0);
	assert_int_equal(lm_lock_lookup(bd, T_LOCK_OFF, 4, "vm1", &addr), 0);
	assert_int_equal(addr, lm_lock_addr(a));
	assert_int_equal(lm_lock_acquire_named(t.lm[1], T_LOCK_OFF, 4, "vm1", LM_MODE_EX, 0, &b),
			 -EBUSY);
	assert_int_equal(lm_lock_acquire_named(t.lm[1], T_LOCK_OFF, 4, "vm2", LM_MODE_EX, 0, &b),
			 0);
	assert_true(lm_lock_addr(b) != lm_lock_addr(a));
	struct lm_lock_info li = t_lock_info(img, lm_lock_addr(a), g.nslots);
	assert_string_equal(li.name, "vm1");
	assert_int_equal(lm_lock_release(a), 0);
	/* the name stays with its unit after release */
	assert_int_equal(lm_lock_lookup(bd, T_LOCK_OFF, 4, "vm1", &addr), 0);
	assert_int_equal(lm_lock_acquire_named(t.lm[2], T_LOCK_OFF, 4, "vm1", LM_MODE_SH, 0, &c),
			 0);
	assert_int_equal(lm_lock_addr(c), addr);
	assert_int_equal(lm_lock_gen(c), 2);
	assert_int_equal(lm_lock_release(c), 0);
	assert_int_equal(lm_lock_release(b), 0);
	assert_int_equal(lm_lock_acquire_named(t.lm[0], T_LOCK_OFF, 4, "vm3", LM_MODE_EX, 0, &a),
			 0);
	assert_int_equal(lm_lock_release(a), 0);
	assert_int_equal(lm_lock_acquire_named(t.lm[0], T_LOCK_OFF, 4, "vm4", LM_MODE_EX, 0, &a),
			 0);
	assert_int_equal(lm_lock_release(a), 0);
	assert_int_equal(lm_lock_acquire_named(t.lm[0], T_LOCK_OFF, 4, "vm5", LM_MODE_EX, 0, &a),
			 -ENOSPC);
	assert_int_equal(lm_lock_acquire_named(t.lm[0], T_LOCK_OFF, 4,
					       "a-name-that-is-far-too-long-to-fit-in-the-sixty-"
					       "four-byte-field-of-the-record",
					       LM_MODE_EX, 0, &a),
			 -ENAMETOOLONG);
	three_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(shared_32),
	    cmocka_unit_test(upgrade_downgrade),
	    cmocka_unit_test(multiwriter_and_timeouts),
	    cmocka_unit_test(named_locks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
