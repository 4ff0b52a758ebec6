/*
 * test_fs_recovery.c - regression tests of recovery defects (issue 9):
 * a torn journal-header write must never make a survivor replay a retired
 * transaction over metadata other hosts changed since; a failed header
 * write breaks the mount.
 */
#include "fstest.h"

#include <inttypes.h>
#include <pthread.h>

/* Host A: opens /d2/f (created: transaction 1), creates /d1/x (transaction
 * 2, which touches /d1's directory block), then unlinks the open /d2/f,
 * which first writes A's journal header (the orphan flag) and flushes it.
 * uri is A's device. Reports the number of flushes before the unlink on
 * `out` when the device is a fault: device (counting run), then dies
 * without unmounting. */
static void host_a(const char *uri, int out)
{
	struct vmfs_mount_opts o = {.hostname = "hostA"};
	struct bdev_fault_counts fc = {0};
	struct vmfs_file *f = NULL;
	struct bdev *bd;
	struct vmfs *fs;
	uint64_t n = 0;
	int rc;

	if (bdev_open(uri, 0, &bd) || vmfs_mount_bdev(bd, &o, &fs))
		_exit(10);
	if (vmfs_open(fs, "/d2/f", O_CREAT | O_RDWR, 0644, &f) || vmfs_mkdir(fs, "/d1/x", 0755))
		_exit(11);
	if (bdev_fault_counts(bd, &fc) == 0)
		n = fc.ops[BDEV_FAULT_FLUSH];
	rc = vmfs_unlink(fs, "/d2/f");
	if (write(out, &n, sizeof(n)) != (ssize_t)sizeof(n))
		_exit(12);
	_exit(rc == 0 ? 0 : 1); /* dies holding /d2/f open */
}

static uint64_t run_a(const char *uri)
{
	uint64_t n = UINT64_MAX;
	int p[2], st;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		host_a(uri, p[1]);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &n, sizeof(n)), (ssize_t)sizeof(n));
	close(p[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) < 10);
	return n;
}

static void prepare(const char *img)
{
	struct vmfs *fs = t_mount(img, "prep");

	assert_int_equal(vmfs_mkdir(fs, "/d1", 0755), 0);
	assert_int_equal(vmfs_mkdir(fs, "/d2", 0755), 0);
	assert_int_equal(vmfs_umount(fs), 0);
}

/* Defect 1: A's header write (the orphan flag of the unlink) is garbled by
 * a crash at its flush. B then creates /d1/g and /d1/h (A released /d1's
 * lock long ago), then recovers A. Before the fix the header was rebuilt
 * onto A's newest descriptor, the retired creation of /d1/x, whose old
 * image of /d1's block made /d1/g and /d1/h vanish. */
static void test_torn_header_no_stale_replay(void **state)
{
	struct vmfs_mount_opts so = {.hostname = "hostB", .no_recover = 1};
	char uri[4300];
	const char *img;
	struct vmfs_stat st;
	struct vmfs *fs;
	uint64_t nflush;

	(void)state;
	t_hb_int = 100; /* B waits for A to be judged dead */
	t_hb_tmo = 800;
	img = t_mkfs("torn", 256ull << 20, 0);
	prepare(img);
	/* counting run: which flush is the header's */
	snprintf(uri, sizeof(uri), "fault:flush=1000000000:%s", img);
	nflush = run_a(uri);
	assert_true(nflush > 0 && nflush < 1000);

	for (int mode = 0; mode < 2; mode++) {
		img = t_mkfs("torn", 256ull << 20, 0);
		prepare(img);
		snprintf(uri, sizeof(uri), "crash:flush=%" PRIu64 ",mode=%s:%s", nflush + 1,
			 mode ? "drop" : "garble", img);
		run_a(uri);

		assert_int_equal(vmfs_mount(img, &so, &fs), 0);
		assert_int_equal(vmfs_mkdir(fs, "/d1/g", 0755), 0);
		assert_int_equal(vmfs_mkdir(fs, "/d1/h", 0755), 0);
		assert_true(vmfs_recover(fs) >= 0);
		/* /d2 is still locked by dead A: its takeover replays A's
		 * journal too */
		assert_int_equal(vmfs_getattr(fs, "/d2/f", &st), 0); /* unlink never committed */
		assert_int_equal(vmfs_getattr(fs, "/d1/x", &st), 0);
		assert_int_equal(vmfs_getattr(fs, "/d1/g", &st), 0);
		assert_int_equal(vmfs_getattr(fs, "/d1/h", &st), 0);
		assert_int_equal(vmfs_umount(fs), 0);
		assert_int_equal(t_fsck(img), 0);
	}
}

/* Defect 1, second half: a plain I/O error on that header write breaks the
 * mount (the copy written may be torn; the next header write would go to
 * the last good copy), so later operations fail instead of going on. */
static void test_header_eio_breaks_mount(void **state)
{
	struct vmfs_mount_opts o = {.hostname = "hostA"};
	struct bdev_fault_counts fc;
	struct vmfs_file *f;
	struct vmfs_stat st;
	char uri[4300];
	const char *img;
	struct bdev *bd;
	struct vmfs *fs;
	int rc;

	(void)state;
	t_hb_int = 250;
	t_hb_tmo = 2000;
	img = t_mkfs("jheio", 256ull << 20, 0);
	prepare(img);
	snprintf(uri, sizeof(uri), "fault:flush=1000000000:%s", img);
	assert_int_equal(bdev_open(uri, 0, &bd), 0);
	assert_int_equal(vmfs_mount_bdev(bd, &o, &fs), 0);
	assert_int_equal(vmfs_open(fs, "/d2/f", O_CREAT | O_RDWR, 0644, &f), 0);
	assert_int_equal(bdev_fault_counts(bd, &fc), 0);
	/* the next write is the header's (the orphan flag) */
	assert_int_equal(bdev_fault_arm(bd, "write=1"), 0);
	rc = vmfs_unlink(fs, "/d2/f");
	assert_int_not_equal(rc, 0);
	assert_int_equal(bdev_fault_arm(bd, ""), 0);
	rc = vmfs_mkdir(fs, "/d1/y", 0755);
	assert_int_not_equal(rc, 0); /* broken: no further change */
	assert_int_not_equal(vmfs_getattr(fs, "/d1", &st), 0);
	vmfs_umount(fs); /* replays its own journal (nothing pending) */
	bdev_close(bd);
	fs = t_mount(img, "hostB");
	assert_int_equal(vmfs_getattr(fs, "/d2/f", &st), 0);
	assert_int_equal(vmfs_getattr(fs, "/d1/y", &st), -ENOENT);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

struct errarg {
	struct vmfs *fs;
	int bad; /* 1: stats the corrupt file and checks its message */
	int fails;
};

static void *err_thread(void *p)
{
	struct errarg *a = p;
	struct vmfs_stat st;

	for (int i = 0; i < 3000; i++) {
		if (!a->bad) {
			a->fails += vmfs_getattr(a->fs, "/d1", &st) != 0;
			continue;
		}
		a->fails += vmfs_getattr(a->fs, "/bad", &st) != -EUCLEAN;
		a->fails += strstr(vmfs_errmsg(a->fs), "FD") == NULL;
	}
	return NULL;
}

/* Issue 9 defect 12: vmfs_errmsg() returned the mount's one buffer, which
 * another thread's call cleared or overwrote before the failing thread
 * read it. The message is now per thread. */
static void test_errmsg_per_thread(void **state)
{
	struct errarg a = {0}, b = {0};
	struct vmfs_stat st;
	const char *img;
	struct bdev *bd;
	struct vmfs *fs;
	pthread_t ta, tb;
	uint8_t blk[4096];
	struct vmfs_vh vh;
	char why[256];

	(void)state;
	img = t_mkfs("errmsg", 256ull << 20, 0);
	prepare(img);
	fs = t_mount(img, "prep");
	t_write_file(fs, "/bad", "x", 1, 0);
	assert_int_equal(vmfs_getattr(fs, "/bad", &st), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	/* garble the inode block of /bad (its CRC) */
	assert_int_equal(bdev_open(img, 0, &bd), 0);
	assert_int_equal(vmfs_vh_read(bd, &vh, why, sizeof(why)), 0);
	assert_int_equal(bdev_read(bd, blk, vmfs_addr_off(&vh, st.ino) + 4096, 4096), 0);
	blk[100] ^= 0x5a;
	assert_int_equal(bdev_write(bd, blk, vmfs_addr_off(&vh, st.ino) + 4096, 4096), 0);
	bdev_close(bd);

	fs = t_mount(img, "host");
	a.fs = b.fs = fs;
	a.bad = 1;
	assert_int_equal(pthread_create(&ta, NULL, err_thread, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, err_thread, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(b.fails, 0);
	assert_int_equal(a.fails, 0);
	assert_string_equal(vmfs_errmsg(fs), ""); /* this thread had no error */
	assert_int_equal(vmfs_umount(fs), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_torn_header_no_stale_replay),
	    cmocka_unit_test(test_header_eio_breaks_mount),
	    cmocka_unit_test(test_errmsg_per_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
