/*
 * test_lm_ondisk.c - on-disk records: all-zero units are free; valid records
 * pass lm_unit_check(); corrupted or hostile units (bad CRC, holder count
 * above the maximum, slot index out of range, bad mode/state, junk in
 * reserved bytes, unterminated strings, duplicate holders) give -EUCLEAN
 * with a reason, from lm_unit_check(), lm_slot_describe(), lm_lock_read(),
 * lm_lock_acquire() and lm_join(), never a crash (random records too);
 * on a 4Kn device (ATS of the whole 4 KiB unit) the same records work.
 */
#include "lmtest.h"

#include "crc32c.h"
#include "le.h"
#include "lm_int.h"

static void reseal(uint8_t *rec)
{
	le32_put(rec + 0x1fc, crc32c(0, rec, 0x1fc));
}

static void expect_bad(const uint8_t *unit, const char *reason)
{
	char why[160] = "";

	assert_int_equal(lm_unit_check(unit, LM_UNIT, why, sizeof(why)), -EUCLEAN);
	if (!strstr(why, reason))
		fprintf(stderr, "reason '%s' lacks '%s'\n", why, reason);
	assert_non_null(strstr(why, reason));
}

/* Valid records made by the library itself through a mem device. */
struct env {
	struct bdev *bd;
	struct lm *a, *b;
	struct lm_geom g;
	uint8_t *slot, *lock;
	struct lm_lock *la, *lb;
};

static void env_open(struct env *e)
{
	struct lm_opts o = {.hostname = "esx1"};
	uint32_t s;

	e->g = t_geom(16, 250, 2000);
	assert_int_equal(bdev_open("mem:8M", 0, &e->bd), 0);
	assert_int_equal(lm_open(e->bd, &e->g, &o, &e->a), 0);
	assert_int_equal(lm_open(e->bd, &e->g, NULL, &e->b), 0);
	assert_int_equal(lm_join(e->a), 0);
	assert_int_equal(lm_join(e->b), 0);
	assert_int_equal(lm_lock_acquire(e->a, T_LOCK(0), LM_MODE_SH, 0, &e->la), 0);
	assert_int_equal(lm_lock_acquire(e->b, T_LOCK(0), LM_MODE_SH, 0, &e->lb), 0);
	e->slot = bdev_alloc(LM_UNIT);
	e->lock = bdev_alloc(LM_UNIT);
	assert_int_equal(lm_slot(e->a, &s, NULL), 0);
	assert_int_equal(bdev_read(e->bd, e->slot, T_HB_OFF + (uint64_t)s * LM_UNIT, LM_UNIT), 0);
	assert_int_equal(bdev_read(e->bd, e->lock, T_LOCK(0), LM_UNIT), 0);
}

static void env_close(struct env *e)
{
	lm_lock_release(e->la); /* frees the handles; the record may be garbage now */
	lm_lock_release(e->lb);
	lm_close(e->a);
	lm_close(e->b);
	bdev_close(e->bd);
	bdev_free(e->slot);
	bdev_free(e->lock);
}

static void valid_and_zero(void **state)
{
	uint8_t *zero = bdev_alloc(LM_UNIT);
	char line[160];
	struct env e;

	(void)state;
	env_open(&e);
	assert_int_equal(lm_unit_check(zero, LM_UNIT, line, sizeof(line)), 0);
	assert_int_equal(lm_slot_describe(zero, LM_UNIT, line, sizeof(line)), 0);
	assert_string_equal(line, "free (never used)");
	assert_int_equal(lm_unit_check(e.slot, LM_UNIT, line, sizeof(line)), 0);
	assert_int_equal(lm_unit_check(e.lock, LM_UNIT, line, sizeof(line)), 0);
	assert_int_equal(lm_slot_describe(e.slot, LM_UNIT, line, sizeof(line)), 0);
	assert_non_null(strstr(line, "live host=esx1 gen=1 counter="));
	struct lm_lock_info li;
	assert_int_equal(lm_lock_read(e.bd, T_LOCK(0), 16, &li, NULL, 0), 0);
	assert_int_equal(li.mode, LM_MODE_SH);
	assert_int_equal(li.nholders, 2);
	assert_int_equal(lm_lock_read(e.bd, T_LOCK(5), 16, &li, NULL, 0), 0);
	assert_int_equal(li.never_used, 1);
	env_close(&e);
	bdev_free(zero);
}

static void corrupt_units(void **state)
{
	uint8_t *u = bdev_alloc(LM_UNIT);
	struct env e;

	(void)state;
	env_open(&e);
#define FROM(src) memcpy(u, (src), LM_UNIT)
	FROM(e.slot);
	u[SL_HOST] ^= 1;
	expect_bad(u, "bad CRC");
	FROM(e.lock);
	u[LK_GEN] ^= 0x80;
	expect_bad(u, "bad CRC");
	FROM(e.lock);
	le32_put(u + LK_NHOLD, 1000);
	reseal(u);
	expect_bad(u, "1000 holders");
	FROM(e.lock);
	le32_put(u + LK_NHOLD, 0xffffffff);
	reseal(u);
	expect_bad(u, "holders");
	FROM(e.lock);
	le32_put(u + LK_HGEN, 0);
	reseal(u);
	expect_bad(u, "gen 0");
	FROM(e.lock);
	le32_put(u + LK_HGEN + 4 * (LM_MAX_HOLDERS - 1), 7); /* unused entry 63 */
	reseal(u);
	expect_bad(u, "unused holder entry 63");
	FROM(e.lock);
	le16_put(u + LK_VERSION, 3);
	reseal(u);
	expect_bad(u, "unknown version 3");
	FROM(e.lock);
	le16_put(u + LK_MODE, 9);
	reseal(u);
	expect_bad(u, "bad mode 9");
	FROM(e.lock);
	le16_put(u + LK_MODE, LM_MODE_EX);
	reseal(u);
	expect_bad(u, "2 holders in mode");
	FROM(e.lock);
	memset(u + LK_NAME, 'x', LM_NAME_MAX);
	reseal(u);
	expect_bad(u, "name");
	FROM(e.lock);
	u[LK_RESERVED + 3] = 1;
	reseal(u);
	expect_bad(u, "reserved");
	FROM(e.lock);
	memcpy(u + LK_HSLOT + 2, u + LK_HSLOT, 2);
	reseal(u);
	expect_bad(u, "listed twice");
	FROM(e.lock);
	le16_put(u + LK_VERSION, 7);
	reseal(u);
	expect_bad(u, "version 7");
	FROM(e.slot);
	le16_put(u + SL_STATE, 7);
	reseal(u);
	expect_bad(u, "bad state 7");
	FROM(e.slot);
	le32_put(u + SL_INDEX, 70000);
	reseal(u);
	expect_bad(u, "records index 70000");
	FROM(e.slot);
	le32_put(u + SL_GEN, 0);
	reseal(u);
	expect_bad(u, "generation 0");
	FROM(e.slot);
	le32_put(u + SL_DEAD_GEN, 3);
	reseal(u);
	expect_bad(u, "replay fields");
	FROM(e.slot);
	memset(u + SL_HOST, 'h', LM_HOSTNAME_MAX);
	reseal(u);
	expect_bad(u, "hostname");
	FROM(e.slot);
	u[SL_HOST + 1] = 7;
	reseal(u);
	expect_bad(u, "hostname");
	FROM(e.slot);
	u[2000] = 1;
	expect_bad(u, "after the record");
	FROM(e.slot); /* 0x200..0x3ff: the recovery record, checked as one */
	u[1000] = 1;
	expect_bad(u, "recovery record: bad magic");
	FROM(e.slot);
	le32_put(u, 0x12345678);
	reseal(u);
	expect_bad(u, "bad magic");
#undef FROM
	char line[160];
	u[0] ^= 0xff;
	assert_int_equal(lm_slot_describe(u, LM_UNIT, line, sizeof(line)), -EUCLEAN);
	assert_non_null(strstr(line, "corrupt"));
	env_close(&e);
	bdev_free(u);
}

/* Corrupt units met by the lock and heartbeat paths. */
static void corrupt_on_disk(void **state)
{
	uint8_t *u = bdev_alloc(LM_UNIT);
	struct lm_lock *lk = NULL;
	struct lm_lock_info li;
	char why[160];
	struct env e;
	uint32_t sb;

	(void)state;
	env_open(&e);
	/* a lock whose holder names slot 20 of a 16-slot region */
	memcpy(u, e.lock, LM_UNIT);
	le16_put(u + LK_HSLOT, 20);
	le64_put(u + LK_ADDR, T_LOCK(1));
	reseal(u);
	assert_int_equal(bdev_write(e.bd, u, T_LOCK(1), LM_UNIT), 0);
	assert_int_equal(lm_lock_acquire(e.a, T_LOCK(1), LM_MODE_EX, 0, &lk), -EUCLEAN);
	assert_null(lk);
	assert_non_null(strstr(lm_errmsg(e.a), "lock at 0x201000"));
	assert_non_null(strstr(lm_errmsg(e.a), "names slot 20"));
	assert_int_equal(lm_lock_read(e.bd, T_LOCK(1), 16, &li, why, sizeof(why)), -EUCLEAN);
	/* wrong recorded address (a unit copied elsewhere) */
	assert_int_equal(bdev_write(e.bd, e.lock, T_LOCK(2), LM_UNIT), 0);
	assert_int_equal(lm_lock_acquire(e.a, T_LOCK(2), LM_MODE_SH, 0, &lk), -EUCLEAN);
	assert_non_null(strstr(lm_errmsg(e.a), "records address"));
	/* the slot of a holder turns to garbage: the waiter reports it */
	assert_int_equal(lm_slot(e.b, &sb, NULL), 0);
	memset(u, 0xa5, LM_UNIT);
	assert_int_equal(bdev_write(e.bd, u, T_HB_OFF + (uint64_t)sb * LM_UNIT, LM_UNIT), 0);
	assert_int_equal(lm_lock_acquire(e.a, T_LOCK(0), LM_MODE_EX, 200, &lk), -EUCLEAN);
	assert_non_null(strstr(lm_errmsg(e.a), "heartbeat slot"));
	/* a named-lock probe over a garbage unit */
	assert_int_equal(bdev_write(e.bd, u, T_LOCK(8), LM_UNIT), 0);
	assert_int_equal(lm_lock_acquire_named(e.a, T_LOCK(8), 1, "x", LM_MODE_EX, 0, &lk),
			 -EUCLEAN);
	env_close(&e);

	/* join over a region of garbage: no free slot, and it says why */
	struct bdev *bd;
	struct lm *lm;
	struct lm_geom g = t_geom(4, 250, 2000);
	assert_int_equal(bdev_open("mem:8M", 0, &bd), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(bdev_write(bd, u, T_HB_OFF + (uint64_t)i * LM_UNIT, LM_UNIT), 0);
	assert_int_equal(lm_open(bd, &g, NULL, &lm), 0);
	assert_int_equal(lm_join(lm), -ENOSPC);
	assert_non_null(strstr(lm_errmsg(lm), "4 corrupt"));
	assert_int_equal(lm_slot_read(bd, &g, 1, &(struct lm_slot_info){0}, why, sizeof(why)),
			 -EUCLEAN);
	lm_close(lm);
	bdev_close(bd);
	bdev_free(u);
}

/* 4Kn devices: ATS covers the whole 4 KiB unit; the same records work. */
static void sector_4k(void **state)
{
	struct lm_geom g = t_geom(16, 250, 2000);
	struct lm_lock *a, *b;
	struct bdev *bd;
	struct lm *x, *y;
	char why[160];

	(void)state;
	assert_int_equal(bdev_open("mem:8M?sector=4096", 0, &bd), 0);
	assert_int_equal(bd->lsec, 4096);
	assert_int_equal(lm_open(bd, &g, NULL, &x), 0);
	assert_int_equal(lm_open(bd, &g, NULL, &y), 0);
	assert_int_equal(lm_join(x), 0);
	assert_int_equal(lm_join(y), 0);
	assert_int_equal(lm_lock_acquire(x, T_LOCK(0), LM_MODE_EX, 0, &a), 0);
	assert_int_equal(lm_lock_acquire(y, T_LOCK(0), LM_MODE_SH, 0, &b), -EBUSY);
	assert_int_equal(lm_lock_convert(a, LM_MODE_SH, 0), 0);
	assert_int_equal(lm_lock_acquire(y, T_LOCK(0), LM_MODE_SH, 0, &b), 0);
	uint8_t *u = bdev_alloc(LM_UNIT);
	assert_int_equal(bdev_read(bd, u, T_LOCK(0), LM_UNIT), 0);
	assert_int_equal(lm_unit_check(u, LM_UNIT, why, sizeof(why)), 0);
	bdev_free(u);
	assert_int_equal(lm_lock_release(a), 0);
	assert_int_equal(lm_lock_release(b), 0);
	lm_close(x);
	lm_close(y);
	bdev_close(bd);
}

/* Lock record version 2: 64 holders, slot indexes u16 at 0x070, generations
 * u32 at 0x0f0 (every offset checked against the documented table); a
 * version 1 record (48 x (u32 slot, u32 gen) at 0x070) still decodes. */
/* Slot record version 2: the machine id at 0x080 round-trips; a version 1
 * record (older builds) still decodes, with machine unknown, but not with
 * bytes in the machine field; 0x07c and 0x090.. stay reserved. */
static void slot_layout(void **state)
{
	uint8_t *u = bdev_alloc(LM_UNIT);
	struct lm_slot_info si = {0}, d;
	char why[160] = "";

	(void)state;
	assert_int_equal(SL_MACHINE, 0x080);
	assert_int_equal(SL_RESERVED, 0x090);
	assert_int_equal(LM_VERSION, 2);
	memset(u, 0, LM_UNIT);
	si.index = 3;
	si.state = LM_SLOT_LIVE;
	si.gen = 5;
	si.counter = 9;
	snprintf(si.hostname, sizeof(si.hostname), "esx1");
	for (int i = 0; i < 16; i++)
		si.machine[i] = (uint8_t)(0xa0 + i);
	lm_slot_encode(&si, u);
	assert_int_equal(le16_get(u + SL_VERSION), 2);
	assert_int_equal(u[0x080], 0xa0);
	assert_int_equal(u[0x08f], 0xaf);
	assert_int_equal(lm_slot_decode(u, 3, 8, &d, why, sizeof(why)), 0);
	assert_memory_equal(d.machine, si.machine, 16);
	/* version 1: no machine id */
	le16_put(u + SL_VERSION, 1);
	reseal(u);
	expect_bad(u, "reserved bytes");
	memset(u + SL_MACHINE, 0, 16);
	reseal(u);
	assert_int_equal(lm_slot_decode(u, 3, 8, &d, why, sizeof(why)), 0);
	assert_true(lm_is_zero(d.machine, 16));
	le16_put(u + SL_VERSION, 2);
	u[0x07c] = 1;
	reseal(u);
	expect_bad(u, "reserved bytes");
	u[0x07c] = 0;
	u[0x090] = 1;
	reseal(u);
	expect_bad(u, "reserved bytes");
	le16_put(u + SL_VERSION, 3);
	u[0x090] = 0;
	reseal(u);
	expect_bad(u, "unknown version 3");
	bdev_free(u);
}

static void lock_layout(void **state)
{
	uint8_t *u = bdev_alloc(LM_UNIT);
	struct lm_lock_info l = {0}, d;
	char why[160] = "";

	(void)state;
	assert_int_equal(LK_NHOLD, 0x018);
	assert_int_equal(LK_NAME, 0x030);
	assert_int_equal(LK_HSLOT, 0x070);
	assert_int_equal(LK_HGEN, 0x0f0);
	assert_int_equal(LK_RESERVED, 0x1f0);
	assert_int_equal(LM_MAX_HOLDERS, 64);
	l.mode = LM_MODE_SH;
	l.gen = 77;
	l.addr = T_LOCK(3);
	l.nholders = LM_MAX_HOLDERS;
	for (uint32_t i = 0; i < LM_MAX_HOLDERS; i++)
		l.holders[i] = (struct lm_holder){.slot = 1000 + i, .gen = 0x10000 + i};
	lm_lock_encode(&l, u);
	assert_int_equal(le16_get(u + 4), 2);
	for (uint32_t i = 0; i < LM_MAX_HOLDERS; i++) {
		assert_int_equal(le16_get(u + 0x070 + 2 * i), 1000 + i);
		assert_int_equal(le32_get(u + 0x0f0 + 4 * i), 0x10000 + i);
	}
	assert_true(lm_is_zero(u + 0x1f0, 12));
	assert_int_equal(lm_lock_decode(u, T_LOCK(3), 2048, &d, why, sizeof(why)), 0);
	assert_int_equal(d.nholders, 64);
	assert_int_equal(d.holders[63].slot, 1063);
	assert_int_equal(d.holders[63].gen, 0x1003f);
	assert_int_equal(lm_lock_decode(u, T_LOCK(3), 1063, &d, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "names slot 1063"));
	le32_put(u + LK_NHOLD, 65);
	reseal(u);
	expect_bad(u, "65 holders (max 64)");

	/* version 1: 48 holders of 8 bytes */
	memset(u, 0, LM_UNIT);
	le32_put(u, LM_LOCK_MAGIC);
	le16_put(u + 4, 1);
	le16_put(u + 6, LM_MODE_SH);
	le64_put(u + 8, 5);
	le64_put(u + 0x10, T_LOCK(3));
	le32_put(u + LK_NHOLD, 48);
	for (uint32_t i = 0; i < 48; i++) {
		le32_put(u + 0x070 + 8 * i, i);
		le32_put(u + 0x074 + 8 * i, 3);
	}
	reseal(u);
	assert_int_equal(lm_lock_decode(u, T_LOCK(3), 64, &d, why, sizeof(why)), 0);
	assert_int_equal(d.nholders, 48);
	assert_int_equal(d.holders[47].slot, 47);
	assert_int_equal(d.holders[47].gen, 3);
	le32_put(u + LK_NHOLD, 49);
	reseal(u);
	expect_bad(u, "49 holders (max 48)");
	bdev_free(u);
}

/* Random bytes behind a valid magic and CRC: decode never crashes. */
static void random_records(void **state)
{
	uint8_t *u = bdev_alloc(LM_UNIT);
	char why[160], line[160];
	unsigned seed = 12345;
	int ok = 0;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		memset(u, 0, LM_UNIT);
		int dense = i % 3;
		for (int j = 0; j < (int)LM_REC_SIZE; j++)
			if (dense == 0 || rand_r(&seed) % 16 == 0)
				u[j] = (uint8_t)rand_r(&seed);
		le32_put(u, i & 1 ? LM_SLOT_MAGIC : LM_LOCK_MAGIC);
		le16_put(u + 4, i & 1 ? LM_VERSION : i % 4 ? LM_LOCK_VERSION : LM_LOCK_VERSION_1);
		le16_put(u + 6, (uint16_t)(rand_r(&seed) % 4));
		if (i % 5 == 0)
			le32_put(u + LK_NHOLD, (uint32_t)rand_r(&seed) % 50);
		reseal(u);
		int rc = lm_unit_check(u, LM_UNIT, why, sizeof(why));
		assert_true(rc == 0 || rc == -EUCLEAN);
		ok += rc == 0;
		rc = lm_slot_describe(u, LM_UNIT, line, sizeof(line));
		assert_true(rc == 0 || rc == -EUCLEAN);
	}
	fprintf(stderr, "random records: %d of 20000 decoded as valid\n", ok);
	bdev_free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(valid_and_zero),  cmocka_unit_test(corrupt_units),
	    cmocka_unit_test(corrupt_on_disk), cmocka_unit_test(sector_4k),
	    cmocka_unit_test(random_records),  cmocka_unit_test(slot_layout),
	    cmocka_unit_test(lock_layout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
