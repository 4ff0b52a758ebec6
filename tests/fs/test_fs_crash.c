/*
 * test_fs_crash.c - crash recovery: a host runs a fixed sequence of
 * metadata operations on crash:flush=N,mode=random,seed=S:IMG and "dies" at
 * the Nth flush (unflushed sectors kept, dropped or garbled at random).
 * Another host then mounts the image (the mount, or vmfs_recover() after a
 * no_recover mount, replays the dead host's journal through the lock
 * manager's takeover). The tree must equal the
 * state after the last operation that returned, or after the one that was
 * running (never a mix), and fsck must find nothing wrong.
 * With keep_locks (kept locks, group commit) operations are durable in
 * groups: the tree must equal the state after some operation at or after
 * the last vmfs_sync() that returned (a prefix: never a mix, never less
 * than what was synced). test_group_free_reuse: a block freed in the
 * running group is not reused for data before that group is durable.
 */
#include "fstest.h"

#include "crc32c.h"

#define MAXSNAP 20

struct names {
	int n;
	char v[128][64];
};

static int collect(void *arg, const char *name, unsigned type, uint64_t ino)
{
	struct names *ns = arg;

	(void)type;
	(void)ino;
	if (strcmp(name, ".") && strcmp(name, "..") && ns->n < 128)
		snprintf(ns->v[ns->n++], 64, "%s", name);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Appends a description of the tree under path; 0 or an error. */
static int walk(struct vmfs *fs, const char *path, struct snap *sn)
{
	struct names ns = {0};
	int rc = vmfs_readdir(fs, path, collect, &ns);

	if (rc)
		return rc;
	qsort(ns.v, (size_t)ns.n, sizeof(ns.v[0]), cmp);
	for (int i = 0; i < ns.n && !rc; i++) {
		char p[600];
		struct vmfs_stat st;
		uint32_t crc = 0;

		snprintf(p, sizeof(p), "%s/%s", strcmp(path, "/") ? path : "", ns.v[i]);
		rc = vmfs_getattr(fs, p, &st);
		if (rc)
			return rc;
		if (S_ISREG(st.mode)) {
			struct vmfs_file *f;
			uint8_t *buf = malloc(st.size ? st.size : 1);

			rc = vmfs_open(fs, p, O_RDONLY, 0, &f);
			if (!rc) {
				rc = vmfs_read(f, buf, st.size, 0) == (ssize_t)st.size ? 0 : -EIO;
				vmfs_close(f);
			}
			crc = crc32c(0, buf, st.size);
			free(buf);
		}
		snap_add(sn, "%s mode=%o nlink=%u size=%llu crc=%08x\n", p, st.mode, st.nlink,
			 (unsigned long long)st.size, crc);
		if (!rc && S_ISDIR(st.mode))
			rc = walk(fs, p, sn);
	}
	return rc;
}

static int wr(struct vmfs *fs, const char *p, int flags, const uint8_t *d, size_t n, uint64_t off)
{
	struct vmfs_file *f;
	int rc = vmfs_open(fs, p, flags, 0644, &f);

	if (rc)
		return rc;
	if (n)
		rc = (int)vmfs_write(f, d, n, off);
	vmfs_close(f);
	return rc < 0 ? rc : 0;
}

/* The workload: each step one metadata change; returns 0 or its error. */
static int step(struct vmfs *fs, int i, const uint8_t *data)
{
	switch (i) {
	case 0: return wr(fs, "/d/p-split", O_CREAT | O_EXCL | O_RDWR, NULL, 0, 0); /* splits */
	case 1: return wr(fs, "/d/f1", O_CREAT | O_EXCL | O_RDWR, NULL, 0, 0);
	case 2: return wr(fs, "/d/f1", O_RDWR, data, 3000, 0);
	case 3: return wr(fs, "/d/f1", O_RDWR, data + 3000, 60000, 3000); /* inline -> SB */
	case 4: return wr(fs, "/big", O_CREAT | O_EXCL | O_RDWR, NULL, 0, 0);
	case 5: return wr(fs, "/big", O_RDWR, data, 3u << 20, 0);
	case 6: return vmfs_rename(fs, "/d/f1", "/f1");
	case 7: return vmfs_link(fs, "/f1", "/d/l");
	case 8: return vmfs_mkdir(fs, "/d/sub", 0700);
	case 9: return vmfs_symlink(fs, "/f1", "/d/sub/s");
	case 10: return vmfs_rename(fs, "/f1", "/big"); /* replaces /big, frees it */
	case 11: return vmfs_truncate(fs, "/d/l", 5000);
	case 12: return vmfs_unlink(fs, "/d/sub/s");
	case 13: return vmfs_rmdir(fs, "/d/sub");
	case 14: return vmfs_chmod(fs, "/big", 0604);
	}
	return 1; /* no more steps */
}

static char *snapshot(struct vmfs *fs)
{
	struct snap sn = {0};

	int rc;

	snap_add(&sn, "/\n");
	rc = walk(fs, "/", &sn);
	if (rc)
		fprintf(stderr, "walk: %s: %s\n", vmfs_strerror(rc), vmfs_errmsg(fs));
	assert_int_equal(rc, 0);
	return sn.s;
}

/* The state before the workload: /d with 32 entries (the next one splits
 * its only bucket). */
static void prepare(const char *img)
{
	struct vmfs *fs = t_mount(img, "prep");
	char p[32];

	assert_int_equal(vmfs_mkdir(fs, "/d", 0755), 0);
	for (int i = 0; i < 32; i++) {
		snprintf(p, sizeof(p), "/d/p%02d", i);
		assert_int_equal(wr(fs, p, O_CREAT | O_EXCL | O_RDWR, NULL, 0, 0), 0);
	}
	assert_int_equal(vmfs_umount(fs), 0);
}

/* Runs the workload without crashing and records the state after each step. */
static int reference(const char *img, const uint8_t *data, char **snaps)
{
	struct vmfs *fs;
	int n = 0;

	prepare(img);
	fs = t_mount(img, "ref");
	snaps[n++] = snapshot(fs);
	while (n < MAXSNAP && step(fs, n - 1, data) == 0)
		snaps[n++] = snapshot(fs);
	assert_int_equal(vmfs_umount(fs), 0);
	return n;
}

#define SYNC_AFTER 7 /* keep_locks: vmfs_sync() after this step */

static void run_case(const char *img, const uint8_t *data, char **snaps, int nsnap,
		     unsigned flush_n, unsigned seed, int *crashed, int *replayed)
{
	char uri[4300];
	struct vmfs_mount_opts o = {.hostname = "victim", .keep_locks = t_keep_locks};
	struct vmfs *fs;
	char *got;
	int done = 0, rc, match = 0, lo;

	t_mkfs("crash", 256ull << 20, 0);
	prepare(img);
	snprintf(uri, sizeof(uri), "crash:flush=%u,mode=random,seed=%u:%s", flush_n, seed, img);
	rc = vmfs_mount(uri, &o, &fs);
	if (rc) { /* crashed while mounting: nothing to check but fsck */
		*crashed = 1;
		assert_int_equal(t_fsck(img) >= 0, 1);
		return;
	}
	lo = 0; /* the earliest state a survivor may find */
	while ((rc = step(fs, done, data)) == 0) {
		done++;
		if (t_keep_locks && done == SYNC_AFTER) {
			rc = vmfs_sync(fs);
			if (rc)
				break;
			lo = done;
		}
	}
	if (!t_keep_locks)
		lo = done; /* each operation durable when it returned */
	*crashed = rc != 1;
	vmfs_umount(fs);   /* fails: the device is dead */
	if (flush_n % 2) { /* the mount replays by itself */
		fs = t_mount(img, "survivor");
	} else { /* explicitly, counting the replays */
		struct vmfs_mount_opts so = {.hostname = "survivor", .no_recover = 1};

		assert_int_equal(vmfs_mount(img, &so, &fs), 0);
		rc = vmfs_recover(fs);
		assert_true(rc >= 0);
		*replayed += rc;
	}
	got = snapshot(fs);
	for (int k = lo; k <= done + 1 && k < nsnap; k++)
		match |= !strcmp(got, snaps[k]);
	if (!match)
		fprintf(stderr, "flush=%u seed=%u after %d steps (from %d):\n%s\nexpected:\n%s\n",
			flush_n, seed, done, lo, got, snaps[done]);
	assert_true(match);
	free(got);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

static void test_crash_points(void **state)
{
	const char *img = t_mkfs("crash", 256ull << 20, 0);
	uint8_t *data = malloc(3u << 20);
	char *snaps[MAXSNAP] = {0};
	int nsnap, crashed = 1, cases = 0, replayed = 0;

	(void)state;
	t_hb_int = 100; /* the survivor waits for the victim to be judged dead */
	t_hb_tmo = 800;
	t_fill(data, 3u << 20, 11);
	nsnap = reference(img, data, snaps);
	assert_int_equal(nsnap, 16);
	/* every flush of the workload until it runs past the end; with
	 * keep_locks there are few (one per group), each tried with three
	 * seeds (what the crash keeps, and the groups' timing, vary) */
	for (unsigned n = 1; crashed && n < 400; n += 1 + n / 12)
		for (unsigned s = 0; s < (t_keep_locks ? 3u : 1u); s++) {
			run_case(img, data, snaps, nsnap, n, n * 7 + 1 + s * 1000, &crashed,
				 &replayed);
			cases++;
		}
	fprintf(stderr, "%d crash points checked, %d journals replayed%s\n", cases, replayed,
		t_keep_locks ? " (keep_locks)" : "");
	assert_true(cases > (t_keep_locks ? 8 : 20));
	assert_true(replayed >= 2); /* crashes after a commit record were met */
	for (int i = 0; i < nsnap; i++)
		free(snaps[i]);
	free(data);
}

/* Crash in the middle of freeing a sparse file that needs several
 * transactions (256 KiB journal): every intermediate state is a consistent,
 * shorter file, so after recovery fsck is clean and the file is either gone
 * or a prefix of the original (shorter, the data below its size kept). */
static void test_crash_big_free(void **state)
{
	const uint64_t stride = 504ull << 20;
	const int nblk = 70;
	char base[4200], cmd[9000], uri[4300];
	const char *img;
	struct vmfs *fs;
	struct vmfs_file *f;
	int crashed = 1, cases = 0;

	(void)state;
	t_hb_int = 100;
	t_hb_tmo = 800;
	t_journal = 256u << 10;
	img = t_mkfs("crashfree", 1ull << 30, 0);
	t_journal = 1u << 20;
	fs = t_mount(img, "prep");
	assert_int_equal(vmfs_open(fs, "/sparse", O_CREAT | O_RDWR, 0600, &f), 0);
	for (int i = 0; i < nblk; i++)
		assert_int_equal(vmfs_write(f, "D", 1, (uint64_t)i * stride), 1);
	assert_int_equal(vmfs_close(f), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	snprintf(base, sizeof(base), "%s.base", img);
	snprintf(cmd, sizeof(cmd), "cp --sparse=always '%s' '%s'", img, base);
	assert_int_equal(system(cmd), 0);
	for (unsigned n = 1; crashed && n < 200; n++) {
		struct vmfs_stat st;
		int rc;

		snprintf(cmd, sizeof(cmd), "cp --sparse=always '%s' '%s'", base, img);
		assert_int_equal(system(cmd), 0);
		snprintf(uri, sizeof(uri), "crash:flush=%u,mode=random,seed=%u:%s", n, n, img);
		rc = vmfs_mount(uri, NULL, &fs);
		crashed = rc != 0;
		if (!rc) {
			rc = vmfs_unlink(fs, "/sparse");
			crashed = rc != 0;
			vmfs_umount(fs);
		}
		fs = t_mount(img, "survivor");
		rc = vmfs_getattr(fs, "/sparse", &st);
		if (rc == 0) {
			char c;

			assert_true(st.size <= (uint64_t)(nblk - 1) * stride + 1);
			assert_int_equal(vmfs_open(fs, "/sparse", O_RDONLY, 0, &f), 0);
			for (uint64_t o = 0; o < st.size; o += stride) {
				assert_int_equal(vmfs_read(f, &c, 1, o), 1);
				assert_int_equal(c, 'D');
			}
			assert_int_equal(vmfs_close(f), 0);
		} else {
			assert_int_equal(rc, -ENOENT);
		}
		assert_int_equal(vmfs_umount(fs), 0);
		assert_int_equal(t_fsck(img), 0);
		cases++;
	}
	fprintf(stderr, "%d crash points while freeing\n", cases);
	assert_true(cases > 5);
	unlink(base);
}

/* The same crash points with kept locks and group commit. */
static void test_crash_points_keep(void **state)
{
	t_keep_locks = 1;
	test_crash_points(state);
	t_keep_locks = 0;
}

/* G2: /a's data block is freed by an unlink that sits in the running group
 * (kept locks); /b is written at once and gets a block. The machine dies
 * with every unflushed write landing (mode=keep) except what was never
 * written: the group. If /b's data could go into /a's block before the
 * unlink is durable, a survivor would find /a (the unlink lost) holding
 * /b's bytes. /a must be gone, or whole. */
static void test_group_free_reuse(void **state)
{
	const size_t len = 1u << 20;
	uint8_t *a = malloc(len), *b = malloc(len), *got = malloc(len);
	struct vmfs_mount_opts o = {.hostname = "victim", .keep_locks = 1};
	char uri[4300];
	const char *img;
	struct bdev *bd;
	struct vmfs *fs;
	struct vmfs_file *f;
	struct vmfs_stat st;
	int rc;

	(void)state;
	t_hb_int = 100;
	t_hb_tmo = 800;
	img = t_mkfs("crashreuse", 256ull << 20, 0);
	t_fill(a, len, 1);
	t_fill(b, len, 2);
	snprintf(uri, sizeof(uri), "crash:mode=keep:%s", img);
	assert_int_equal(bdev_open(uri, 0, &bd), 0);
	assert_int_equal(vmfs_mount_bdev(bd, &o, &fs), 0);
	assert_int_equal(wr(fs, "/a", O_CREAT | O_EXCL | O_RDWR, a, len, 0), 0);
	assert_int_equal(vmfs_sync(fs), 0);
	assert_int_equal(vmfs_unlink(fs, "/a"), 0);
	assert_int_equal(wr(fs, "/b", O_CREAT | O_EXCL | O_RDWR, b, len, 0), 0);
	assert_int_equal(bdev_crash_now(bd), 0);
	vmfs_umount(fs); /* fails: the device is dead */
	bdev_close(bd);

	fs = t_mount(img, "survivor");
	rc = vmfs_getattr(fs, "/a", &st);
	if (rc == 0) {
		assert_int_equal(st.size, len);
		assert_int_equal(vmfs_open(fs, "/a", O_RDONLY, 0, &f), 0);
		assert_int_equal(vmfs_read(f, got, len, 0), (ssize_t)len);
		assert_int_equal(vmfs_close(f), 0);
		assert_memory_equal(got, a, len);
	} else {
		assert_int_equal(rc, -ENOENT);
	}
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	free(a);
	free(b);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crash_points),
	    cmocka_unit_test(test_crash_points_keep),
	    cmocka_unit_test(test_group_free_reuse),
	    cmocka_unit_test(test_crash_big_free),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
