/*
 * test_fs_reads.c - reads never write (issue 10; issue 9 defect 6): a
 * second host's path walks, getattr, readdir, readlink and xattr reads of
 * a whole tree issue no write and no compare-and-write to the device
 * (trace backend: only its heartbeat slot is written), so they neither
 * contend on the root directory's lock sector nor fill shared-holder
 * lists; and they stay consistent while a third host keeps changing the
 * directory being read.
 */
#include "fstest.h"

#include <inttypes.h>
#include <pthread.h>

#include "lockmgr.h"

/* Non-heartbeat writes in the trace log since byte `from` of it. */
static int writes_since(const char *log, long from, const struct vmfs_vh *vh)
{
	FILE *f = fopen(log, "r");
	char op[16];
	uint64_t t, off, len;
	long pid;
	int rc, n = 0;

	assert_non_null(f);
	fseek(f, from, SEEK_SET);
	while (fscanf(f, "%" SCNu64 " %ld %15s %" SCNu64 " %" SCNu64 " %d", &t, &pid, op, &off,
		      &len, &rc) == 6) {
		if (!strcmp(op, "flush") ||
		    (off >= vh->hb_off && off < vh->hb_off + (uint64_t)vh->max_hosts * 4096))
			continue;
		fprintf(stderr, "write by the reader: %s at 0x%" PRIx64 " len %" PRIu64 "\n", op,
			off, len);
		n++;
	}
	fclose(f);
	return n;
}

static long log_size(const char *log)
{
	struct stat st;

	return stat(log, &st) ? 0 : (long)st.st_size;
}

static void test_reads_write_nothing(void **state)
{
	const char *img = t_mkfs("reads", 256ull << 20, 0);
	char log[4200], uri[8500], p[64], buf[128];
	struct vmfs_vh vh;
	struct vmfs_stat st;
	struct bdev *bd;
	struct vmfs *a, *b;
	long from;
	int n = 0;

	(void)state;
	a = t_mount(img, "writer");
	assert_int_equal(vmfs_mkdir(a, "/d", 0755), 0);
	assert_int_equal(vmfs_mkdir(a, "/d/e", 0755), 0);
	for (int i = 0; i < 40; i++) {
		snprintf(p, sizeof(p), "/d/e/f%d", i);
		t_write_file(a, p, p, strlen(p), 0);
	}
	assert_int_equal(vmfs_symlink(a, "/d/e/f1", "/d/l"), 0);
	assert_int_equal(vmfs_setxattr(a, "/d/e/f2", "user.k", "v", 1, 0), 0);
	assert_int_equal(vmfs_umount(a), 0);
	assert_int_equal(bdev_open(img, 0, &bd), 0);
	assert_int_equal(vmfs_vh_read(bd, &vh, buf, sizeof(buf)), 0);
	bdev_close(bd);

	snprintf(log, sizeof(log), "%s.trace", img);
	unlink(log);
	snprintf(uri, sizeof(uri), "trace:%s:%s", log, img);
	b = t_mount(uri, "reader");
	from = log_size(log);
	for (int r = 0; r < 3; r++) {
		n = 0;
		assert_int_equal(vmfs_readdir(b, "/d/e", t_count_cb, &n), 0);
		assert_int_equal(n, 42);
		for (int i = 0; i < 40; i++) {
			snprintf(p, sizeof(p), "/d/e/f%d", i);
			assert_int_equal(vmfs_getattr(b, p, &st), 0);
			assert_int_equal(st.size, strlen(p));
		}
		assert_int_equal(vmfs_readlink(b, "/d/l", buf, sizeof(buf)), 7);
		assert_int_equal(vmfs_getxattr(b, "/d/e/f2", "user.k", buf, sizeof(buf)), 1);
		assert_true(vmfs_listxattr(b, "/d/e/f2", buf, sizeof(buf)) > 0);
		assert_int_equal(vmfs_getattr(b, "/d/e/none", &st), -ENOENT);
	}
	assert_int_equal(writes_since(log, from, &vh), 0);
	assert_int_equal(vmfs_umount(b), 0);
	unlink(log);
	assert_int_equal(t_fsck(img), 0);
}

struct churn {
	const char *img;
	volatile int stop;
	int errors;
};

/* A third host creating and removing names in /d all the time. */
static void *churn_fn(void *arg)
{
	struct churn *c = arg;
	struct vmfs *fs = t_mount(c->img, "churn");
	char p[64];

	for (int i = 0; !c->stop; i++) {
		snprintf(p, sizeof(p), "/d/c%d", i % 50);
		if (i % 100 < 50)
			c->errors += vmfs_mkdir(fs, p, 0755) != 0;
		else
			c->errors += vmfs_rmdir(fs, p) != 0;
	}
	assert_int_equal(vmfs_umount(fs), 0);
	return NULL;
}

/* Optimistic reads while another host changes the directory: every
 * readdir sees the 10 fixed names and a whole number of the churned ones
 * (no torn view), every lookup of a fixed name succeeds. */
static void test_reads_consistent_under_change(void **state)
{
	const char *img = t_mkfs("reads2", 256ull << 20, 0);
	struct churn c = {img, 0, 0};
	struct vmfs_stat st;
	struct vmfs *fs;
	pthread_t t;
	char p[64];

	(void)state;
	fs = t_mount(img, "reader");
	assert_int_equal(vmfs_mkdir(fs, "/d", 0755), 0);
	for (int i = 0; i < 10; i++) {
		snprintf(p, sizeof(p), "/d/fixed%d", i);
		t_write_file(fs, p, "x", 1, 0);
	}
	assert_int_equal(pthread_create(&t, NULL, churn_fn, &c), 0);
	for (int r = 0; r < 300; r++) {
		int n = 0;

		assert_int_equal(vmfs_readdir(fs, "/d", t_count_cb, &n), 0);
		assert_true(n >= 12 && n <= 12 + 50);
		snprintf(p, sizeof(p), "/d/fixed%d", r % 10);
		assert_int_equal(vmfs_getattr(fs, p, &st), 0);
		assert_int_equal(st.size, 1);
	}
	c.stop = 1;
	pthread_join(t, NULL);
	assert_int_equal(c.errors, 0);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reads_write_nothing),
	    cmocka_unit_test(test_reads_consistent_under_change),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
