/*
 * test_fs_grow.c - resources that grow (INCOMPAT_XRES, fs_alloc.c "Growth"):
 * a volume whose FD, SB and PB clusters made by mkfs are few takes many more
 * small files, directories and xattrs than they hold, by turning free file
 * blocks into extension clusters; from one host, from two hosts at once,
 * until the volume is full (ENOSPC only when no file block is free), and
 * across crashes in the middle of a growth (crash backend, every flush of
 * the growing transaction's neighbourhood), each followed by fsck.
 */
#include "fstest.h"

#include <inttypes.h>

#include "lockmgr.h"

#define SMALL 5000 /* a sub-block each */

static void small_data(uint8_t *buf, unsigned tag, unsigned i)
{
	t_fill(buf, SMALL, (uint64_t)tag << 32 | i);
}

/* n files with an SB of data and an xattr (a PB), in dir; every 10th is a
 * directory instead. Returns how many were made before the first error
 * (*err set) or n. */
static unsigned make_files(struct vmfs *fs, const char *dir, unsigned tag, unsigned n, int *err)
{
	uint8_t buf[SMALL];
	char path[128];

	*err = 0;
	for (unsigned i = 0; i < n; i++) {
		struct vmfs_file *f;
		int rc;

		snprintf(path, sizeof(path), "%s/%c%u", dir, i % 10 ? 'f' : 'd', i);
		if (i % 10 == 0) {
			rc = vmfs_mkdir(fs, path, 0755);
		} else {
			small_data(buf, tag, i);
			rc = vmfs_open(fs, path, O_RDWR | O_CREAT | O_EXCL, 0644, &f);
			if (!rc) {
				ssize_t w = vmfs_write(f, buf, SMALL, 0);

				rc = w == SMALL ? 0 : w < 0 ? (int)w : -EIO;
				int rc2 = vmfs_close(f);

				rc = rc ? rc : rc2;
			}
			if (!rc)
				rc = vmfs_setxattr(fs, path, "user.tag", path, strlen(path), 0);
		}
		if (rc) {
			*err = rc;
			return i;
		}
	}
	return n;
}

static void check_files(struct vmfs *fs, const char *dir, unsigned tag, unsigned n)
{
	uint8_t buf[SMALL];
	char path[128], val[128];

	for (unsigned i = 0; i < n; i++) {
		struct vmfs_stat st;

		snprintf(path, sizeof(path), "%s/%c%u", dir, i % 10 ? 'f' : 'd', i);
		assert_int_equal(vmfs_getattr(fs, path, &st), 0);
		if (i % 10 == 0) {
			assert_true(S_ISDIR(st.mode));
			continue;
		}
		small_data(buf, tag, i);
		t_check_file(fs, path, buf, SMALL, 0);
		assert_int_equal(vmfs_getxattr(fs, path, "user.tag", val, sizeof(val)),
				 (int)strlen(path));
		assert_memory_equal(val, path, strlen(path));
	}
}

static void remove_files(struct vmfs *fs, const char *dir, unsigned n)
{
	char path[128];

	for (unsigned i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%c%u", dir, i % 10 ? 'f' : 'd', i);
		assert_int_equal(i % 10 ? vmfs_unlink(fs, path) : vmfs_rmdir(fs, path), 0);
	}
}

/* One host: ten times what mkfs made, read back after remount, fsck clean,
 * then everything removed gives the resources back to the clusters. */
static void test_grow_one_host(void **state)
{
	const char *img = t_mkfs("grow", 256ull << 20, 0);
	struct vmfs_statfs s0, s1, s2;
	struct vmfs *fs;
	const unsigned n = 1200; /* FDs, SBs and PBs made by mkfs: 256 each */
	int err;
	(void)state;

	fs = t_mount(img, "a");
	assert_int_equal(vmfs_statfs(fs, &s0), 0);
	assert_int_equal(vmfs_mkdir(fs, "/d", 0755), 0);
	assert_int_equal(make_files(fs, "/d", 1, n, &err), n);
	assert_int_equal(vmfs_statfs(fs, &s1), 0);
	assert_true(s1.blocks_free < s0.blocks_free); /* the extension clusters */
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	fs = t_mount(img, "b");
	check_files(fs, "/d", 1, n);
	remove_files(fs, "/d", n);
	assert_int_equal(vmfs_rmdir(fs, "/d"), 0);
	assert_int_equal(vmfs_statfs(fs, &s2), 0);
	/* every FD is free again: the same count as on the fresh volume, plus
	 * the extension clusters' room */
	assert_int_equal(s2.files - s2.files_free, s0.files - s0.files_free);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	/* and they are used again, without growing further */
	fs = t_mount(img, "c");
	assert_int_equal(vmfs_mkdir(fs, "/e", 0755), 0);
	assert_int_equal(make_files(fs, "/e", 2, n, &err), n);
	assert_int_equal(vmfs_statfs(fs, &s2), 0);
	assert_int_equal(s2.blocks_free, s1.blocks_free);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

/* Small blocks (64 KiB: 7 FDs per extension cluster) and a small volume:
 * create until ENOSPC; by then no file block may be free. */
static void test_grow_until_full(void **state)
{
	const char *img = t_mkfs("growfull", 28ull << 20, 64u << 10);
	struct vmfs_statfs st;
	struct vmfs *fs;
	unsigned made;
	int err;
	(void)state;

	fs = t_mount(img, "a");
	made = make_files(fs, "", 3, 100000, &err);
	assert_int_equal(err, -ENOSPC);
	assert_int_equal(vmfs_statfs(fs, &st), 0);
	fprintf(stderr, "%u files and directories, ENOSPC with %" PRIu64 " blocks free\n", made,
		st.blocks_free);
	assert_int_equal(st.blocks_free, 0);
	assert_true(made > 400);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	fs = t_mount(img, "b");
	check_files(fs, "", 3, made);
	assert_int_equal(vmfs_umount(fs), 0);
}

/* Two hosts (processes) growing at once, each in its own directory. */
static void test_grow_two_hosts(void **state)
{
	const char *img = t_mkfs("grow2", 256ull << 20, 64u << 10);
	const unsigned n = 500;
	pid_t pid[2];
	struct vmfs *fs;
	(void)state;

	fs = t_mount(img, "prep");
	assert_int_equal(vmfs_mkdir(fs, "/h0", 0755), 0);
	assert_int_equal(vmfs_mkdir(fs, "/h1", 0755), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	for (int h = 0; h < 2; h++) {
		pid[h] = fork();
		assert_true(pid[h] >= 0);
		if (pid[h] == 0) {
			struct vmfs_mount_opts o = {.hostname = h ? "h1" : "h0"};
			char dir[8];
			unsigned made;
			int err;

			if (vmfs_mount(img, &o, &fs))
				_exit(2);
			snprintf(dir, sizeof(dir), "/h%d", h);
			made = make_files(fs, dir, 10 + (unsigned)h, n, &err);
			if (made != n)
				fprintf(stderr, "host %d: %u files, then %s: %s\n", h, made,
					vmfs_strerror(err), vmfs_errmsg(fs));
			_exit(vmfs_umount(fs) || made != n ? 1 : 0);
		}
	}
	for (int h = 0; h < 2; h++) {
		int st;

		assert_int_equal(waitpid(pid[h], &st, 0), pid[h]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	assert_int_equal(t_fsck(img), 0);
	fs = t_mount(img, "check");
	check_files(fs, "/h0", 10, n);
	check_files(fs, "/h1", 11, n);
	assert_int_equal(vmfs_umount(fs), 0);
}

/* A crash at each flush around growths: a fresh volume, 64 KiB blocks, a
 * host creating files on crash:flush=N; the survivor replays, fsck is
 * clean, and every file the victim finished is whole. */
static void test_grow_crash(void **state)
{
	char uri[4300], base[4200], cmd[9000];
	const char *img;
	struct vmfs *fs;
	int cases = 0, crashed = 1;
	(void)state;

	img = t_mkfs("growcrash", 64ull << 20, 64u << 10);
	/* fill the static clusters first, so that every create below grows
	 * often (7 FDs per extension cluster) */
	fs = t_mount(img, "prep");
	{
		int err;

		assert_int_equal(make_files(fs, "", 1, 300, &err), 300);
	}
	assert_int_equal(vmfs_umount(fs), 0);
	snprintf(base, sizeof(base), "%s.base", img);
	snprintf(cmd, sizeof(cmd), "cp --sparse=always '%s' '%s'", img, base);
	assert_int_equal(system(cmd), 0);
	for (unsigned n = 1; crashed && n < 400; n += 1 + n / 12) {
		struct vmfs_mount_opts o = {.hostname = "victim"};
		unsigned made = 0;
		int err = 0, rc;

		snprintf(cmd, sizeof(cmd), "cp --sparse=always '%s' '%s'", base, img);
		assert_int_equal(system(cmd), 0);
		snprintf(uri, sizeof(uri), "crash:flush=%u,mode=random,seed=%u:%s", n, n, img);
		rc = vmfs_mount(uri, &o, &fs);
		if (!rc) {
			vmfs_mkdir(fs, "/new", 0755); /* may crash */
			made = make_files(fs, "/new", 5, 40, &err);
			crashed = made < 40;
			vmfs_umount(fs);
		}
		fs = t_mount(img, "survivor");
		/* the files made before the crash are whole (the one being
		 * made may or may not exist) */
		if (made > 1)
			check_files(fs, "/new", 5, made - 1);
		check_files(fs, "", 1, 300);
		assert_int_equal(vmfs_umount(fs), 0);
		if (t_fsck(img)) {
			fprintf(stderr, "crash at flush %u: fsck found problems\n", n);
			fail();
		}
		cases++;
	}
	fprintf(stderr, "%d crash points around growths\n", cases);
	assert_true(cases > 15);
	unlink(base);
}

/* A damaged table block: fsck reports it and stops (repairs nothing), a
 * mount refuses the volume naming it; the block restored, all is well. */
static void test_grow_bad_table(void **state)
{
	const char *img = t_mkfs("growbad", 64ull << 20, 64u << 10);
	struct vmfs_mount_opts o = {.hostname = "b"};
	uint8_t *save = bdev_alloc(VMFS_UNIT), *junk = bdev_alloc(VMFS_UNIT);
	struct vmfs_vh vh;
	struct bdev *bd;
	struct vmfs *fs;
	char why[256];
	int err;
	(void)state;

	fs = t_mount(img, "a");
	assert_int_equal(make_files(fs, "", 4, 400, &err), 400);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(bdev_open(img, 0, &bd), 0);
	assert_int_equal(vmfs_vh_read(bd, &vh, why, sizeof(why)), 0);
	assert_int_equal(bdev_read(bd, save, vmfs_xt_blk_off(&vh, VMFS_RT_SB, 0), VMFS_UNIT), 0);
	memcpy(junk, save, VMFS_UNIT);
	junk[0x40] ^= 0x55; /* an entry, CRC now wrong */
	assert_int_equal(bdev_write(bd, junk, vmfs_xt_blk_off(&vh, VMFS_RT_SB, 0), VMFS_UNIT), 0);
	bdev_close(bd);
	assert_true(t_fsck(img) > 0);
	assert_int_equal(vmfs_mount(img, &o, &fs), -EUCLEAN);
	assert_non_null(strstr(vmfs_errmsg(NULL), "extension table SB block 0"));
	assert_int_equal(bdev_open(img, 0, &bd), 0);
	assert_int_equal(bdev_write(bd, save, vmfs_xt_blk_off(&vh, VMFS_RT_SB, 0), VMFS_UNIT), 0);
	bdev_close(bd);
	assert_int_equal(t_fsck(img), 0);
	fs = t_mount(img, "c");
	check_files(fs, "", 4, 400);
	assert_int_equal(vmfs_umount(fs), 0);
	bdev_free(save);
	bdev_free(junk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_grow_one_host),  cmocka_unit_test(test_grow_until_full),
	    cmocka_unit_test(test_grow_two_hosts), cmocka_unit_test(test_grow_crash),
	    cmocka_unit_test(test_grow_bad_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
