/*
 * test_bdev_trace.c - the trace wrapper: one line per write, ats, flush,
 * discard and write_zeroes with the right op, offset, length, result, pid and
 * a CLOCK_MONOTONIC time taken after the operation completed; reads are not
 * logged; several processes share one log without torn lines; BDEV_WRAP.
 */
#include "bdev_test.h"

#include <inttypes.h>
#include <sys/wait.h>
#include <time.h>

struct line {
	uint64_t ns;
	long pid;
	char op[16];
	uint64_t off, len;
	int result;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Parses the whole log; every line must be well formed. */
static unsigned read_log(const char *path, struct line *out, unsigned max)
{
	FILE *f = fopen(path, "r");
	char buf[256];
	unsigned n = 0;

	assert_non_null(f);
	while (fgets(buf, sizeof(buf), f)) {
		struct line l;
		int used = 0;

		assert_true(n < max);
		if (sscanf(buf, "%" SCNu64 " %ld %15s %" SCNu64 " %" SCNu64 " %d\n%n", &l.ns,
			   &l.pid, l.op, &l.off, &l.len, &l.result, &used) != 6 ||
		    buf[strlen(buf) - 1] != '\n')
			fail_msg("malformed trace line: %s", buf);
		out[n++] = l;
	}
	fclose(f);
	return n;
}

static void expect(const struct line *l, const char *op, uint64_t off, uint64_t len, int result)
{
	assert_string_equal(l->op, op);
	assert_int_equal(l->off, off);
	assert_int_equal(l->len, len);
	assert_int_equal(l->result, result);
	assert_int_equal(l->pid, getpid());
}

static void test_ops_logged(void **state)
{
	const char *img = t_path("tr.img"), *log = t_path("tr.log");
	char uri[8500];
	struct bdev *bd;
	unsigned char *a = bdev_alloc(8 * 4096), *z = bdev_alloc(4096);
	struct bdev_io ios[3];
	struct line l[32];
	uint64_t t0, t1;
	unsigned n, i;

	(void)state;
	t_image(img, 256 * 1024);
	unlink(log);
	snprintf(uri, sizeof(uri), "trace:%s:file:%s?sector=4096", log, img);
	t0 = now_ns();
	bd = t_open(uri, 0);
	t_fill(a, 8 * 4096, 0, 1);
	assert_int_equal(bdev_write(bd, a, 8192, 2 * 4096), 0);
	assert_int_equal(bdev_read(bd, a + 7 * 4096, 0, 4096), 0); /* not logged */
	assert_int_equal(bdev_ats(bd, 4096, z, a, NULL), 0);
	assert_int_equal(bdev_ats(bd, 4096, z, a, NULL), -BDEV_E_MISCOMPARE);
	assert_int_equal(bdev_flush(bd), 0);
	assert_int_equal(bdev_discard(bd, 16 * 4096, 4 * 4096), 0);
	assert_int_equal(bdev_write_zeroes(bd, 24 * 4096, 4096), 0);
	ios[0] = (struct bdev_io){BDEV_OP_WRITE, a, 32 * 4096, 4096, 0};
	ios[1] = (struct bdev_io){BDEV_OP_READ, a + 4096, 0, 4096, 0};
	ios[2] = (struct bdev_io){BDEV_OP_WRITE, a + 2 * 4096, 40 * 4096, 3 * 4096, 0};
	assert_int_equal(bdev_submit(bd, ios, 3), 0);
	assert_int_equal(bdev_write(bd, a, 64 * 4096, 4096), -ERANGE); /* never reaches it */
	bdev_close(bd);
	t1 = now_ns();
	n = read_log(log, l, 32);
	assert_int_equal(n, 8);
	expect(&l[0], "write", 8192, 8192, 0);
	expect(&l[1], "ats", 4096, 4096, 0);
	expect(&l[2], "ats", 4096, 4096, -BDEV_E_MISCOMPARE);
	expect(&l[3], "flush", 0, 0, 0);
	expect(&l[4], "discard", 16 * 4096, 4 * 4096, 0);
	expect(&l[5], "zeroes", 24 * 4096, 4096, 0);
	expect(&l[6], "write", 32 * 4096, 4096, 0);
	expect(&l[7], "write", 40 * 4096, 3 * 4096, 0);
	for (i = 0; i < n; i++) {
		assert_true(l[i].ns >= t0 && l[i].ns <= t1);
		assert_true(i == 0 || l[i].ns >= l[i - 1].ns);
	}
	bdev_free(a);
	bdev_free(z);
}

/* Errors of the inner device are logged with their code. */
static void test_errors_logged(void **state)
{
	const char *img = t_path("tre.img"), *log = t_path("tre.log");
	char uri[8500];
	struct bdev *bd;
	unsigned char *a = bdev_alloc(512);
	struct line l[4];

	(void)state;
	t_image(img, 64 * 1024);
	unlink(log);
	snprintf(uri, sizeof(uri), "trace:%s:fault:write=1,flush=1,errno=ENOSPC:%s", log, img);
	bd = t_open(uri, 0);
	assert_int_equal(bdev_write(bd, a, 512, 512), -ENOSPC);
	assert_int_equal(bdev_flush(bd), -ENOSPC);
	bdev_close(bd);
	assert_int_equal(read_log(log, l, 4), 2);
	expect(&l[0], "write", 512, 512, -ENOSPC);
	expect(&l[1], "flush", 0, 0, -ENOSPC);
	bdev_free(a);
}

/* Four processes append to one log: 4 x 100 whole lines, in time order. */
static void test_shared_log(void **state)
{
	const char *img = t_path("trs.img"), *log = t_path("trs.log");
	char uri[8500];
	pid_t pids[4];
	struct line *l = calloc(1000, sizeof(*l));
	unsigned i, j, n, per[4] = {0};
	int status;

	(void)state;
	t_image(img, 1024 * 1024);
	unlink(log);
	snprintf(uri, sizeof(uri), "trace:%s:%s", log, img);
	for (i = 0; i < 4; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct bdev *bd = NULL;
			unsigned char *a = bdev_alloc(512);
			int rc = bdev_open(uri, 0, &bd);

			for (j = 0; j < 100 && rc == 0; j++)
				rc = bdev_write(bd, a, (i * 100 + j) * 512ull, 512);
			bdev_close(bd);
			_exit(rc ? 1 : 0);
		}
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	n = read_log(log, l, 1000);
	assert_int_equal(n, 400);
	for (j = 0; j < n; j++) {
		for (i = 0; i < 4 && l[j].pid != pids[i]; i++)
			;
		assert_true(i < 4);
		assert_string_equal(l[j].op, "write");
		assert_int_equal(l[j].off, (i * 100 + per[i]) * 512ull); /* each pid in order */
		per[i]++;
	}
	free(l);
}

static void test_bdev_wrap_trace(void **state)
{
	const char *img = t_path("trw.img"), *log = t_path("trw.log");
	char wrap[4300];
	struct bdev *bd;
	unsigned char *a = bdev_alloc(512);
	struct line l[2];

	(void)state;
	t_image(img, 64 * 1024);
	unlink(log);
	snprintf(wrap, sizeof(wrap), "trace:%s", log);
	setenv("BDEV_WRAP", wrap, 1);
	bd = t_open(img, 0);
	unsetenv("BDEV_WRAP");
	assert_int_equal(bdev_write(bd, a, 1024, 512), 0);
	bdev_close(bd);
	assert_int_equal(read_log(log, l, 2), 1);
	expect(&l[0], "write", 1024, 512, 0);
	/* Unwritable log: the open fails with the log's error. */
	snprintf(wrap, sizeof(wrap), "trace:%s/no-such-dir/x.log:%s", t_tmpdir(), img);
	assert_int_equal(bdev_open(wrap, 0, &bd), -ENOENT);
	bdev_free(a);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ops_logged),
	    cmocka_unit_test(test_errors_logged),
	    cmocka_unit_test(test_shared_log),
	    cmocka_unit_test(test_bdev_wrap_trace),
	};

	unsetenv("BDEV_WRAP");
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
