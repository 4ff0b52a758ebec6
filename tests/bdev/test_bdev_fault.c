/*
 * test_bdev_fault.c - the fault-injection wrapper: the Nth read, write,
 * flush, ats or discard fails (transient or persistent), torn writes leave
 * the first half new and the second half old, lost ats replies, error
 * codes, batches, re-arming at run time and the BDEV_WRAP variable. What
 * reached the device is always checked through a second, plain bdev.
 */
#include "bdev_test.h"

struct fx {
	const char *img;
	char uri[4300];
	struct bdev *bd;  /* the fault bdev */
	struct bdev *raw; /* the same image, plain */
	unsigned char *a, *b, *r;
	uint32_t ls;
};

static void fx_open(struct fx *f, const char *spec, const char *opts)
{
	char raw[4300];

	f->img = t_path("fault.img");
	t_image(f->img, 256 * 1024);
	snprintf(f->uri, sizeof(f->uri), "fault:%s:file:%s%s", spec, f->img, opts);
	f->bd = t_open(f->uri, 0);
	snprintf(raw, sizeof(raw), "file:%s%s", f->img, opts);
	f->raw = t_open(raw, 0);
	f->ls = f->bd->lsec;
	f->a = bdev_alloc(16 * f->ls);
	f->b = bdev_alloc(16 * f->ls);
	f->r = bdev_alloc(16 * f->ls);
	t_fill(f->a, 16 * f->ls, 0, 1);
	t_fill(f->b, 16 * f->ls, 0, 2);
}

static void fx_close(struct fx *f)
{
	bdev_close(f->bd);
	bdev_close(f->raw);
	bdev_free(f->a);
	bdev_free(f->b);
	bdev_free(f->r);
}

/* The raw device holds `want` (len bytes) at sector s. */
static void raw_is(struct fx *f, unsigned s, const void *want, size_t len)
{
	assert_int_equal(bdev_read(f->raw, f->r, (uint64_t)s * f->ls, len), 0);
	assert_memory_equal(f->r, want, len);
}

static void raw_zero(struct fx *f, unsigned s, size_t len)
{
	assert_int_equal(bdev_read(f->raw, f->r, (uint64_t)s * f->ls, len), 0);
	assert_true(t_is_zero(f->r, len));
}

static void check_counts(struct bdev *bd, int kind, uint64_t ops, uint64_t injected)
{
	struct bdev_fault_counts c;

	assert_int_equal(bdev_fault_counts(bd, &c), 0);
	assert_int_equal(c.ops[kind], ops);
	assert_int_equal(c.injected[kind], injected);
}

static void test_read_transient(void **state)
{
	struct fx f;

	(void)state;
	fx_open(&f, "read=2", "");
	assert_int_equal(bdev_read(f.bd, f.r, 0, f.ls), 0);
	assert_int_equal(bdev_read(f.bd, f.r, 0, f.ls), -EIO);
	assert_int_equal(bdev_read(f.bd, f.r, 0, f.ls), 0);
	assert_int_equal(bdev_read(f.bd, f.r, 0, f.ls), 0);
	check_counts(f.bd, BDEV_FAULT_READ, 4, 1);
	/* Writes are not affected. */
	assert_int_equal(bdev_write(f.bd, f.a, 0, f.ls), 0);
	raw_is(&f, 0, f.a, f.ls);
	fx_close(&f);
}

static void test_write_persist(void **state)
{
	struct fx f;
	unsigned s;

	(void)state;
	fx_open(&f, "write=3,persist", "?sector=4096");
	for (s = 0; s < 6; s++) {
		int rc = bdev_write(f.bd, f.a + s * f.ls, (uint64_t)s * f.ls, f.ls);

		assert_int_equal(rc, s < 2 ? 0 : -EIO);
	}
	raw_is(&f, 0, f.a, 2 * f.ls);
	raw_zero(&f, 2, 4 * f.ls);
	assert_int_equal(bdev_read(f.bd, f.r, 0, 2 * f.ls), 0); /* reads still work */
	assert_int_equal(bdev_flush(f.bd), 0);
	check_counts(f.bd, BDEV_FAULT_WRITE, 6, 4);
	fx_close(&f);
}

static void test_write_transient_batch(void **state)
{
	struct fx f;
	struct bdev_io ios[4];
	unsigned i;

	(void)state;
	fx_open(&f, "write=2", "");
	for (i = 0; i < 4; i++)
		ios[i] =
		    (struct bdev_io){BDEV_OP_WRITE, f.a + 2 * i * f.ls, 2 * i * f.ls, 2 * f.ls, 1};
	assert_int_equal(bdev_submit(f.bd, ios, 4), -EIO);
	assert_int_equal(ios[0].result, 0);
	assert_int_equal(ios[1].result, -EIO);
	assert_int_equal(ios[2].result, 0);
	assert_int_equal(ios[3].result, 0);
	raw_is(&f, 0, f.a, 2 * f.ls);
	raw_zero(&f, 2, 2 * f.ls);
	raw_is(&f, 4, f.a + 4 * f.ls, 4 * f.ls);
	/* Transient: the 5th write (a single one) succeeds. */
	assert_int_equal(bdev_write(f.bd, f.a + 2 * f.ls, 2 * f.ls, 2 * f.ls), 0);
	raw_is(&f, 0, f.a, 8 * f.ls);
	fx_close(&f);
}

static void torn_case(const char *opts)
{
	struct fx f;
	struct bdev_io io;

	fx_open(&f, "torn=2", opts);
	/* Old content: b everywhere. */
	assert_int_equal(bdev_write(f.bd, f.b, 0, 16 * f.ls), 0);
	assert_int_equal(bdev_write(f.bd, f.a, 0, 8 * f.ls), -EIO);
	raw_is(&f, 0, f.a, 4 * f.ls);
	raw_is(&f, 4, f.b + 4 * f.ls, 12 * f.ls);
	/* Torn write in a batch: re-arm, aim at the first write. */
	assert_int_equal(bdev_fault_arm(f.bd, "torn=1"), 0);
	io = (struct bdev_io){BDEV_OP_WRITE, f.a + 8 * f.ls, 8 * f.ls, 6 * f.ls, 0};
	assert_int_equal(bdev_submit(f.bd, &io, 1), -EIO);
	assert_int_equal(io.result, -EIO);
	raw_is(&f, 8, f.a + 8 * f.ls, 3 * f.ls);
	raw_is(&f, 11, f.b + 11 * f.ls, 5 * f.ls);
	/* A torn one-sector write writes nothing. */
	assert_int_equal(bdev_fault_arm(f.bd, "torn=1"), 0);
	assert_int_equal(bdev_write(f.bd, f.a + 15 * f.ls, 15 * f.ls, f.ls), -EIO);
	raw_is(&f, 15, f.b + 15 * f.ls, f.ls);
	check_counts(f.bd, BDEV_FAULT_WRITE, 1, 1);
	fx_close(&f);
}

static void test_torn(void **state)
{
	(void)state;
	torn_case("");
	torn_case("?sector=4096&engine=sync");
}

static void test_flush_and_errno(void **state)
{
	struct fx f;

	(void)state;
	fx_open(&f, "flush=1,errno=ENOSPC", "");
	assert_int_equal(bdev_flush(f.bd), -ENOSPC);
	assert_int_equal(bdev_flush(f.bd), 0);
	check_counts(f.bd, BDEV_FAULT_FLUSH, 2, 1);
	assert_int_equal(bdev_fault_arm(f.bd, "flush=2,errno=INJECTED"), 0);
	assert_int_equal(bdev_flush(f.bd), 0);
	assert_int_equal(bdev_flush(f.bd), -BDEV_E_INJECTED);
	assert_non_null(strstr(bdev_strerror(-BDEV_E_INJECTED), "injected"));
	fx_close(&f);
}

static void test_ats(void **state)
{
	struct fx f;
	unsigned char *zero;

	(void)state;
	fx_open(&f, "ats=2", "");
	zero = bdev_alloc(f.ls);
	assert_int_equal(bdev_ats(f.bd, 0, zero, f.a, NULL), 0);
	assert_int_equal(bdev_ats(f.bd, f.ls, zero, f.a, NULL), -EIO);
	raw_is(&f, 0, f.a, f.ls);
	raw_zero(&f, 1, f.ls);
	assert_int_equal(bdev_ats(f.bd, f.ls, zero, f.a, NULL), 0);
	raw_is(&f, 1, f.a, f.ls);
	/* A lost reply: the ats happened, the caller sees an error; retrying
	 * shows the miscompare with the new content. */
	assert_int_equal(bdev_fault_arm(f.bd, "ats_lost=1"), 0);
	assert_int_equal(bdev_ats(f.bd, 2 * f.ls, zero, f.a, NULL), -EIO);
	raw_is(&f, 2, f.a, f.ls);
	assert_int_equal(bdev_ats(f.bd, 2 * f.ls, zero, f.a, f.r), -BDEV_E_MISCOMPARE);
	assert_memory_equal(f.r, f.a, f.ls);
	/* persist on ats. */
	assert_int_equal(bdev_fault_arm(f.bd, "ats=1,persist"), 0);
	assert_int_equal(bdev_ats(f.bd, 3 * f.ls, zero, f.a, NULL), -EIO);
	assert_int_equal(bdev_ats(f.bd, 3 * f.ls, zero, f.a, NULL), -EIO);
	raw_zero(&f, 3, f.ls);
	check_counts(f.bd, BDEV_FAULT_ATS, 2, 2);
	bdev_free(zero);
	fx_close(&f);
}

static void test_discard(void **state)
{
	struct fx f;

	(void)state;
	fx_open(&f, "discard=1", "");
	assert_int_equal(bdev_write(f.bd, f.a, 0, 16 * f.ls), 0);
	assert_int_equal(bdev_discard(f.bd, 0, 4 * f.ls), -EIO);
	raw_is(&f, 0, f.a, 16 * f.ls);
	assert_int_equal(bdev_write_zeroes(f.bd, 0, 4 * f.ls), 0);
	raw_zero(&f, 0, 4 * f.ls);
	check_counts(f.bd, BDEV_FAULT_DISCARD, 2, 1);
	fx_close(&f);
}

static void test_arm(void **state)
{
	struct fx f;
	struct bdev *mem = t_open("mem:64K", 0);
	struct bdev_fault_counts c;

	(void)state;
	fx_open(&f, "", "");
	assert_int_equal(bdev_read(f.bd, f.r, 0, f.ls), 0);
	assert_int_equal(bdev_fault_arm(f.bd, "read=1"), 0);
	check_counts(f.bd, BDEV_FAULT_READ, 0, 0);
	assert_int_equal(bdev_read(f.bd, f.r, 0, f.ls), -EIO);
	assert_int_equal(bdev_fault_arm(f.bd, "read=1,bogus"), -BDEV_E_URI);
	check_counts(f.bd, BDEV_FAULT_READ, 1, 1); /* the old spec stays */
	assert_int_equal(bdev_fault_arm(f.bd, "read=1,persist"), 0);
	assert_int_equal(bdev_read(f.bd, f.r, 0, f.ls), -EIO);
	assert_int_equal(bdev_read(f.bd, f.r, 0, f.ls), -EIO);
	assert_int_equal(bdev_fault_arm(f.bd, ""), 0);
	assert_int_equal(bdev_read(f.bd, f.r, 0, f.ls), 0);
	assert_int_equal(bdev_fault_arm(mem, "read=1"), -EINVAL);
	assert_int_equal(bdev_fault_counts(mem, &c), -EINVAL);
	bdev_close(mem);
	fx_close(&f);
}

static void test_bdev_wrap_env(void **state)
{
	const char *img = t_path("wrap.img");
	struct bdev *bd, *raw;
	unsigned char *a = bdev_alloc(512), *r = bdev_alloc(512);

	(void)state;
	t_image(img, 64 * 1024);
	t_fill(a, 512, 0, 5);
	setenv("BDEV_WRAP", "fault:write=2", 1);
	bd = t_open(img, 0);
	unsetenv("BDEV_WRAP");
	assert_string_equal(bd->uri, img);
	assert_int_equal(bdev_write(bd, a, 0, 512), 0);
	assert_int_equal(bdev_write(bd, a, 512, 512), -EIO);
	assert_int_equal(bdev_write(bd, a, 1024, 512), 0);
	check_counts(bd, BDEV_FAULT_WRITE, 3, 1);
	raw = t_open(img, 0); /* BDEV_WRAP unset: a plain file bdev */
	assert_int_equal(bdev_fault_arm(raw, "read=1"), -EINVAL);
	assert_int_equal(bdev_read(raw, r, 512, 512), 0);
	assert_true(t_is_zero(r, 512));
	assert_int_equal(bdev_read(raw, r, 1024, 512), 0);
	assert_memory_equal(r, a, 512);
	bdev_close(raw);
	bdev_close(bd);
	/* A bad BDEV_WRAP makes every open fail clearly. */
	setenv("BDEV_WRAP", "fault:nonsense=1", 1);
	assert_int_equal(bdev_open(img, 0, &bd), -BDEV_E_URI);
	unsetenv("BDEV_WRAP");
	bdev_free(a);
	bdev_free(r);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_read_transient),
	    cmocka_unit_test(test_write_persist),
	    cmocka_unit_test(test_write_transient_batch),
	    cmocka_unit_test(test_torn),
	    cmocka_unit_test(test_flush_and_errno),
	    cmocka_unit_test(test_ats),
	    cmocka_unit_test(test_discard),
	    cmocka_unit_test(test_arm),
	    cmocka_unit_test(test_bdev_wrap_env),
	};

	unsetenv("BDEV_WRAP");
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
