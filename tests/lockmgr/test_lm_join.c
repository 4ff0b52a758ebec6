/*
 * test_lm_join.c - joining the heartbeat:
 *  - 64 hosts (processes) join a 64-slot region at once and all get
 *    distinct slots (ATS free -> live);
 *  - a 65th host gets -ENOSPC with a message saying the region is full;
 *  - a slot freed by a clean leave is reused, with its generation bumped;
 *  - heartbeats move the counter every interval; lm_slot_describe() names
 *    the host;
 *  - a host that comes back (same name) takes the slot it left.
 */
#include "lmtest.h"

#define NHOSTS 64

struct shm {
	_Atomic int joined;
	_Atomic int leave_one; /* child #0 leaves when set */
	_Atomic int left_one;
	_Atomic int done;
	uint32_t slot[NHOSTS];
	uint32_t gen[NHOSTS];
};

static void host(const char *img, const struct lm_geom *g, struct shm *m, int id)
{
	struct t_host h;
	char name[32];
	struct lm_opts o = {.hostname = name};

	snprintf(name, sizeof(name), "joiner-%d", id);
	t_host_open(&h, img, g, &o);
	if (lm_slot(h.lm, &m->slot[id], &m->gen[id]) < 0)
		t_die(20, "lm_slot");
	atomic_fetch_add(&m->joined, 1);
	if (id == 0) {
		if (t_wait_ge(&m->leave_one, 1, 60000) < 0)
			t_die(21, "no leave signal");
		int rc = lm_leave(h.lm);
		if (rc < 0)
			t_die(22, "leave: %s", lm_strerror(rc));
		atomic_store(&m->left_one, 1);
	}
	if (t_wait_ge(&m->done, 1, 60000) < 0)
		t_die(23, "no done signal");
	if (lm_fenced(h.lm))
		t_die(24, "fenced: %s", lm_fence_reason(h.lm));
	t_host_close(&h);
	_exit(0);
}

static void join_64(void **state)
{
	struct lm_geom g = t_geom(NHOSTS, 250, 4000);
	const char *img = t_image("join");
	struct shm *m = t_shared(sizeof(*m));
	pid_t pids[NHOSTS];
	struct bdev *bd;
	struct lm *lm;
	int seen[NHOSTS] = {0};

	(void)state;
	for (int i = 0; i < NHOSTS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0)
			host(img, &g, m, i);
	}
	assert_int_equal(t_wait_ge(&m->joined, NHOSTS, 60000), 0);
	for (int i = 0; i < NHOSTS; i++) {
		assert_true(m->slot[i] < NHOSTS);
		assert_int_equal(m->gen[i], 1);
		seen[m->slot[i]]++;
	}
	for (int i = 0; i < NHOSTS; i++)
		assert_int_equal(seen[i], 1); /* distinct */

	/* full */
	assert_int_equal(bdev_open(img, 0, &bd), 0);
	assert_int_equal(lm_open(bd, &g, NULL, &lm), 0);
	assert_int_equal(lm_join(lm), -ENOSPC);
	fprintf(stderr, "65th join: %s\n", lm_errmsg(lm));
	assert_non_null(strstr(lm_errmsg(lm), "full"));
	assert_non_null(strstr(lm_errmsg(lm), "64 live"));

	/* heartbeats move */
	struct lm_slot_info a = t_slot_info(img, &g, m->slot[5]);
	t_sleep_ms(600);
	struct lm_slot_info b = t_slot_info(img, &g, m->slot[5]);
	assert_int_equal(b.state, LM_SLOT_LIVE);
	assert_true(b.counter >= a.counter + 1);
	assert_string_equal(b.hostname, "joiner-5");

	/* a clean leave frees a slot, which is reused with gen + 1 */
	atomic_store(&m->leave_one, 1);
	assert_int_equal(t_wait_ge(&m->left_one, 1, 30000), 0);
	struct lm_slot_info f = t_slot_info(img, &g, m->slot[0]);
	assert_int_equal(f.state, LM_SLOT_FREE);
	assert_int_equal(lm_join(lm), 0);
	uint32_t slot, gen;
	assert_int_equal(lm_slot(lm, &slot, &gen), 0);
	assert_int_equal(slot, m->slot[0]);
	assert_int_equal(gen, 2);

	uint8_t *buf = bdev_alloc(LM_UNIT);
	char line[160];
	assert_int_equal(bdev_read(bd, buf, T_HB_OFF + (uint64_t)slot * LM_UNIT, LM_UNIT), 0);
	assert_int_equal(lm_unit_check(buf, LM_UNIT, line, sizeof(line)), 0);
	assert_int_equal(lm_slot_describe(buf, LM_UNIT, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "live"));
	assert_non_null(strstr(line, "gen=2"));
	bdev_free(buf);
	assert_int_equal(lm_join(lm), -EALREADY);
	assert_int_equal(lm_leave(lm), 0);
	assert_int_equal(lm_leave(lm), -LM_E_NOTJOINED);
	lm_close(lm);
	bdev_close(bd);

	atomic_store(&m->done, 1);
	t_wait_all(pids, NHOSTS);
	/* every slot free after the clean leaves */
	for (uint32_t i = 0; i < NHOSTS; i++)
		assert_int_equal(t_slot_info(img, &g, i).state, LM_SLOT_FREE);
}

/* A host that leaves and comes back (same hostname, new random UUID each
 * time, as every vmfsctl command that writes) takes the slot it left, so
 * short-lived joins do not leave a trail of used slots; another name takes
 * another slot while that one is free. */
static void rejoin_same_slot(void **state)
{
	struct lm_geom g = t_geom(32, 250, 4000);
	const char *img = t_image("rejoin");
	struct lm_opts a = {.hostname = "esx-a"}, b = {.hostname = "esx-b"};
	uint32_t first, slot, gen, other;
	struct bdev *bd;
	struct lm *lm;
	int used[32] = {0};

	(void)state;
	assert_int_equal(bdev_open(img, 0, &bd), 0);
	for (int i = 0; i < 12; i++) {
		assert_int_equal(lm_open(bd, &g, &a, &lm), 0);
		assert_int_equal(lm_join(lm), 0);
		assert_int_equal(lm_slot(lm, &slot, &gen), 0);
		if (i == 0)
			first = slot;
		assert_int_equal(slot, first);
		assert_int_equal(gen, (uint32_t)i + 1);
		used[slot] = 1;
		assert_int_equal(lm_leave(lm), 0);
		lm_close(lm);
	}
	assert_int_equal(lm_open(bd, &g, &b, &lm), 0);
	assert_int_equal(lm_join(lm), 0);
	assert_int_equal(lm_slot(lm, &other, &gen), 0);
	assert_int_not_equal(other, first);
	assert_int_equal(lm_leave(lm), 0);
	lm_close(lm);
	for (uint32_t i = 0; i < 32; i++)
		assert_true(t_slot_info(img, &g, i).never_used == !(used[i] || i == other));
	bdev_close(bd);
}

/* Two "machines" on one image file (VMFS_MACHINE_ID gives a handle another
 * identity): the emulated ATS cannot exclude another kernel, so while a slot
 * of machine A is live, machine B's join is refused naming both; the same
 * machine joins as before; once A's slot is still for the timeout (its host
 * died), B joins. The machine id is recorded in the slot (version 2). */
static void one_machine_per_image(void **state)
{
	struct lm_geom g = t_geom(8, 100, 800);
	const char *img = t_image("machines");
	const char *ma = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		   *mb = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
	struct lm_opts a = {.hostname = "esx-a"}, b = {.hostname = "esx-b"};
	struct lm *la, *la2, *lb;
	struct bdev *bd;
	uint32_t slot, gen;
	uint8_t id[16];
	char str[33];

	(void)state;
	assert_int_equal(bdev_open(img, 0, &bd), 0);
	setenv("VMFS_MACHINE_ID", ma, 1);
	assert_int_equal(lm_machine_id(id), 1);
	lm_machine_str(id, str);
	assert_string_equal(str, ma);
	assert_int_equal(lm_open(bd, &g, &a, &la), 0);
	assert_int_equal(lm_join(la), 0);
	assert_int_equal(lm_slot(la, &slot, &gen), 0);
	assert_memory_equal(t_slot_info(img, &g, slot).machine, id, 16);
	/* same machine: fine */
	assert_int_equal(lm_open(bd, &g, &a, &la2), 0);
	assert_int_equal(lm_join(la2), 0);
	lm_close(la2);
	/* another machine: refused while A heartbeats */
	setenv("VMFS_MACHINE_ID", mb, 1);
	assert_int_equal(lm_open(bd, &g, &b, &lb), 0);
	assert_int_equal(lm_join(lb), -EBUSY);
	fprintf(stderr, "refused: %s\n", lm_errmsg(lb));
	assert_non_null(strstr(lm_errmsg(lb), ma));
	assert_non_null(strstr(lm_errmsg(lb), mb));
	assert_non_null(strstr(lm_errmsg(lb), "esx-a"));
	lm_close(lb);
	/* A dies (its slot stays live and still): B joins after the timeout */
	lm_close_noleave(la);
	assert_int_equal(lm_open(bd, &g, &b, &lb), 0);
	assert_int_equal(lm_join(lb), 0);
	lm_close(lb);
	/* unknown machine (id not hex): no check */
	setenv("VMFS_MACHINE_ID", "not-a-machine-id-not-a-machine-i", 1);
	assert_int_equal(lm_machine_id(id), 0);
	unsetenv("VMFS_MACHINE_ID");
	bdev_close(bd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(join_64),
					   cmocka_unit_test(rejoin_same_slot),
					   cmocka_unit_test(one_machine_per_image)};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
