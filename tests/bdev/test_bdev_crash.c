/*
 * test_bdev_crash.c - the crash-simulation wrapper: at the crash point each
 * pending sector is kept, dropped or garbled (mode keep / drop / garble /
 * random), flushed data is never touched, reads see the cache, every I/O
 * after the crash fails with -BDEV_E_CRASHED, ats() is write-through, and a
 * clean close writes the cache through. What reached the image is read
 * back through a plain bdev after the crash.
 */
#include "bdev_test.h"

#define IMG	 (512 * 1024)
#define F0	 0 /* flushed region: sectors F0..F0+NF (F0 must be 0) */
#define NF	 16
#define P0	 32 /* pending region at the crash: sectors P0..P0+NP */
#define NP	 64
#define SEED_OLD 100
#define SEED_F	 101
#define SEED_P	 102

enum fate { KEPT, DROPPED, GARBLED };

struct cx {
	const char *img;
	char plain[4300];
	struct bdev *bd;
	uint32_t ls;
	unsigned char *buf;
};

/* Image full of "old" data, crash bdev `spec` on it (sector size ls). */
static void cx_open(struct cx *c, const char *spec, uint32_t ls)
{
	char uri[4400];
	struct bdev *raw;

	c->img = t_path("crash.img");
	c->ls = ls;
	t_image(c->img, IMG);
	snprintf(c->plain, sizeof(c->plain), "file:%s?sector=%u", c->img, ls);
	raw = t_open(c->plain, 0);
	c->buf = bdev_alloc(IMG);
	t_fill(c->buf, IMG, 0, SEED_OLD);
	assert_int_equal(bdev_write(raw, c->buf, 0, IMG), 0);
	bdev_close(raw);
	snprintf(uri, sizeof(uri), "crash:%s:%s", spec, c->plain);
	c->bd = t_open(uri, 0);
}

static void cx_write(struct cx *c, unsigned s, unsigned n, uint32_t seed)
{
	uint64_t off = (uint64_t)s * c->ls;

	t_fill(c->buf, n * c->ls, off, seed);
	assert_int_equal(bdev_write(c->bd, c->buf, off, n * c->ls), 0);
}

/* Flushed region F, then pending region P. */
static void cx_workload(struct cx *c)
{
	cx_write(c, F0, NF, SEED_F);
	assert_int_equal(bdev_flush(c->bd), 0);
	cx_write(c, P0, NP, SEED_P);
	assert_int_equal(bdev_crash_pending(c->bd), NP);
}

/* Reads the image plainly; checks F intact and everything outside F and P
 * old; returns the fate of each sector of P. */
static void cx_inspect(struct cx *c, enum fate *fates)
{
	struct bdev *raw = t_open(c->plain, BDEV_O_RDONLY);
	uint32_t ls = c->ls;
	unsigned s;

	assert_int_equal(bdev_read(raw, c->buf, 0, IMG), 0);
	bdev_close(raw);
	for (s = 0; s < IMG / ls; s++) {
		unsigned char *p = c->buf + (size_t)s * ls;
		uint64_t off = (uint64_t)s * ls;
		int is_old = t_check(p, ls, off, SEED_OLD), is_new = t_check(p, ls, off, SEED_P);

		if (s < F0 + NF)
			assert_true(t_check(p, ls, off, SEED_F));
		else if (s < P0 || s >= P0 + NP)
			assert_true(is_old);
		else
			fates[s - P0] = is_new ? KEPT : is_old ? DROPPED : GARBLED;
	}
}

static void check_dead(struct bdev *bd)
{
	unsigned char *b = bdev_alloc(bd->lsec);
	struct bdev_io io = {BDEV_OP_READ, b, 0, bd->lsec, 0};

	assert_int_equal(bdev_read(bd, b, 0, bd->lsec), -BDEV_E_CRASHED);
	assert_int_equal(bdev_write(bd, b, 0, bd->lsec), -BDEV_E_CRASHED);
	assert_int_equal(bdev_flush(bd), -BDEV_E_CRASHED);
	assert_int_equal(bdev_ats(bd, 0, b, b, NULL), -BDEV_E_CRASHED);
	assert_int_equal(bdev_discard(bd, 0, bd->lsec), -BDEV_E_CRASHED);
	assert_int_equal(bdev_write_zeroes(bd, 0, bd->lsec), -BDEV_E_CRASHED);
	assert_int_equal(bdev_submit(bd, &io, 1), -BDEV_E_CRASHED);
	assert_int_equal(io.result, -BDEV_E_CRASHED);
	assert_int_equal(bdev_crash_now(bd), -BDEV_E_CRASHED);
	bdev_free(b);
}

/* Runs the workload, crashes at flush #2, returns the fates. */
static void crash_at_flush2(const char *mode, uint32_t ls, enum fate *fates)
{
	char spec[64];
	struct cx c;

	snprintf(spec, sizeof(spec), "flush=2,%s", mode);
	cx_open(&c, spec, ls);
	cx_workload(&c);
	assert_int_equal(bdev_flush(c.bd), -BDEV_E_CRASHED);
	assert_int_equal(bdev_crash_pending(c.bd), 0);
	check_dead(c.bd);
	bdev_close(c.bd);
	cx_inspect(&c, fates);
	bdev_free(c.buf);
}

static unsigned count(const enum fate *fates, enum fate f)
{
	unsigned i, n = 0;

	for (i = 0; i < NP; i++)
		n += fates[i] == f;
	return n;
}

static void test_keep(void **state)
{
	enum fate fates[NP];

	(void)state;
	crash_at_flush2("mode=keep", 512, fates);
	assert_int_equal(count(fates, KEPT), NP);
	crash_at_flush2("mode=keep", 4096, fates);
	assert_int_equal(count(fates, KEPT), NP);
}

static void test_drop(void **state)
{
	enum fate fates[NP];

	(void)state;
	crash_at_flush2("mode=drop", 512, fates);
	assert_int_equal(count(fates, DROPPED), NP);
	crash_at_flush2("mode=drop", 4096, fates);
	assert_int_equal(count(fates, DROPPED), NP);
}

static void test_garble(void **state)
{
	enum fate fates[NP];

	(void)state;
	crash_at_flush2("mode=garble", 512, fates);
	assert_int_equal(count(fates, GARBLED), NP);
	crash_at_flush2("mode=garble,seed=9", 4096, fates);
	assert_int_equal(count(fates, GARBLED), NP);
}

static void test_random(void **state)
{
	enum fate a[NP], b[NP], other[NP];

	(void)state;
	crash_at_flush2("mode=random,seed=7", 512, a);
	/* With 64 sectors every outcome occurs (each has p = 1/3). */
	assert_true(count(a, KEPT) > 0 && count(a, DROPPED) > 0 && count(a, GARBLED) > 0);
	/* Same seed, same fates; another seed, other fates. */
	crash_at_flush2("mode=random,seed=7", 512, b);
	assert_memory_equal(a, b, sizeof(a));
	crash_at_flush2("seed=8", 512, other); /* random is the default mode */
	assert_memory_not_equal(a, other, sizeof(a));
}

static void test_cache_reads(void **state)
{
	struct cx c;
	struct bdev *raw;
	unsigned char *r = bdev_alloc(8 * 512);

	(void)state;
	cx_open(&c, "mode=drop", 512);
	cx_write(&c, 40, 8, SEED_P);
	cx_write(&c, 44, 2, SEED_F); /* overwrite inside the cached range */
	assert_int_equal(bdev_crash_pending(c.bd), 8);
	assert_int_equal(bdev_read(c.bd, r, 38 * 512, 8 * 512), 0);
	assert_true(t_check(r, 2 * 512, 38 * 512, SEED_OLD));
	assert_true(t_check(r + 2 * 512, 4 * 512, 40 * 512, SEED_P));
	assert_true(t_check(r + 6 * 512, 2 * 512, 44 * 512, SEED_F));
	/* Not on the image yet. */
	raw = t_open(c.plain, BDEV_O_RDONLY);
	assert_int_equal(bdev_read(raw, r, 40 * 512, 8 * 512), 0);
	assert_true(t_check(r, 8 * 512, 40 * 512, SEED_OLD));
	/* Zeroes are cached too; unaligned read buffers get the overlay. */
	assert_int_equal(bdev_write_zeroes(c.bd, 41 * 512, 512), 0);
	assert_int_equal(bdev_discard(c.bd, 60 * 512, 512), 0);
	{
		unsigned char *u = malloc(2 * 512 + 1);

		assert_int_equal(bdev_read(c.bd, u + 1, 41 * 512, 512), 0);
		assert_true(t_is_zero(u + 1, 512));
		free(u);
	}
	/* A flush writes everything through. */
	assert_int_equal(bdev_flush(c.bd), 0);
	assert_int_equal(bdev_crash_pending(c.bd), 0);
	assert_int_equal(bdev_read(raw, r, 40 * 512, 8 * 512), 0);
	assert_true(t_check(r, 512, 40 * 512, SEED_P));
	assert_true(t_is_zero(r + 512, 512));
	assert_true(t_check(r + 2 * 512, 2 * 512, 42 * 512, SEED_P));
	assert_true(t_check(r + 4 * 512, 2 * 512, 44 * 512, SEED_F));
	assert_int_equal(bdev_read(raw, r, 60 * 512, 512), 0);
	assert_true(t_is_zero(r, 512));
	bdev_close(raw);
	bdev_close(c.bd);
	bdev_free(c.buf);
	bdev_free(r);
}

static void test_crash_now(void **state)
{
	enum fate fates[NP];
	struct bdev *mem = t_open("mem:64K", 0);
	struct cx c;

	(void)state;
	assert_int_equal(bdev_crash_now(mem), -EINVAL);
	assert_int_equal(bdev_crash_pending(mem), -EINVAL);
	bdev_close(mem);
	cx_open(&c, "mode=drop", 512); /* no crash point in the spec */
	cx_workload(&c);
	assert_int_equal(bdev_crash_now(c.bd), 0);
	check_dead(c.bd);
	bdev_close(c.bd);
	cx_inspect(&c, fates);
	assert_int_equal(count(fates, DROPPED), NP);
	bdev_free(c.buf);
}

/* A later flush crashes: flushes before it were complete. */
static void test_crash_point_counts_flushes(void **state)
{
	struct cx c;
	enum fate fates[NP];
	unsigned i;

	(void)state;
	cx_open(&c, "flush=5,mode=drop", 512);
	cx_write(&c, F0, NF, SEED_F);
	for (i = 0; i < 4; i++)
		assert_int_equal(bdev_flush(c.bd), 0);
	cx_write(&c, P0, NP, SEED_P);
	assert_int_equal(bdev_flush(c.bd), -BDEV_E_CRASHED);
	bdev_close(c.bd);
	cx_inspect(&c, fates);
	assert_int_equal(count(fates, DROPPED), NP);
	bdev_free(c.buf);
}

static void test_close_writes_through(void **state)
{
	struct cx c;
	enum fate fates[NP];

	(void)state;
	cx_open(&c, "mode=drop", 4096);
	cx_workload(&c);
	bdev_close(c.bd);
	cx_inspect(&c, fates);
	assert_int_equal(count(fates, KEPT), NP);
	bdev_free(c.buf);
}

static void test_ats_write_through(void **state)
{
	struct cx c;
	struct bdev *raw;
	unsigned char *cur = bdev_alloc(512), *nw = bdev_alloc(512), *r = bdev_alloc(512);

	(void)state;
	cx_open(&c, "mode=drop", 512);
	raw = t_open(c.plain, BDEV_O_RDONLY);
	/* ats on a sector with nothing pending: on the image at once. */
	assert_int_equal(bdev_read(c.bd, cur, 10 * 512, 512), 0);
	t_fill(nw, 512, 10 * 512, 5);
	assert_int_equal(bdev_ats(c.bd, 10 * 512, cur, nw, NULL), 0);
	assert_int_equal(bdev_read(raw, r, 10 * 512, 512), 0);
	assert_memory_equal(r, nw, 512);
	/* ats on a sector with a pending write compares with the cached view. */
	cx_write(&c, 11, 1, SEED_P);
	assert_int_equal(bdev_read(c.bd, cur, 11 * 512, 512), 0);
	t_fill(nw, 512, 11 * 512, 6);
	assert_int_equal(bdev_ats(c.bd, 11 * 512, cur, nw, NULL), 0);
	assert_int_equal(bdev_crash_pending(c.bd), 0);
	assert_int_equal(bdev_crash_now(c.bd), 0);
	assert_int_equal(bdev_read(raw, r, 11 * 512, 512), 0);
	assert_memory_equal(r, nw, 512); /* survived the crash */
	bdev_close(raw);
	bdev_close(c.bd);
	bdev_free(c.buf);
	bdev_free(cur);
	bdev_free(nw);
	bdev_free(r);
}

/* Many sectors: the pending table grows and flushes in runs. */
static void test_many_pending(void **state)
{
	struct cx c;
	struct bdev *raw;
	unsigned s, n = IMG / 512;

	(void)state;
	cx_open(&c, "flush=2,mode=keep", 512);
	for (s = 0; s < n; s += 2)
		cx_write(&c, s, 1, SEED_P); /* every other sector */
	assert_int_equal(bdev_crash_pending(c.bd), n / 2);
	assert_int_equal(bdev_flush(c.bd), 0);
	for (s = 1; s < n; s += 2)
		cx_write(&c, s, 1, SEED_F);
	assert_int_equal(bdev_flush(c.bd), -BDEV_E_CRASHED);
	bdev_close(c.bd);
	raw = t_open(c.plain, BDEV_O_RDONLY);
	assert_int_equal(bdev_read(raw, c.buf, 0, IMG), 0);
	for (s = 0; s < n; s++)
		assert_true(t_check(c.buf + s * 512, 512, s * 512, s % 2 ? SEED_F : SEED_P));
	bdev_close(raw);
	bdev_free(c.buf);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keep),
	    cmocka_unit_test(test_drop),
	    cmocka_unit_test(test_garble),
	    cmocka_unit_test(test_random),
	    cmocka_unit_test(test_cache_reads),
	    cmocka_unit_test(test_crash_now),
	    cmocka_unit_test(test_crash_point_counts_flushes),
	    cmocka_unit_test(test_close_writes_through),
	    cmocka_unit_test(test_ats_write_through),
	    cmocka_unit_test(test_many_pending),
	};

	unsetenv("BDEV_WRAP");
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
