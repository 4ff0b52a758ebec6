/*
 * test_fs_basic.c - single host: mount, statfs, files in every addressing
 * mode (inline, sub-blocks, direct/indirect/double-indirect file blocks),
 * holes, truncate, attributes, ENOSPC, unlink of an open file; fsck clean
 * after each scenario.
 */
#include "fstest.h"

static void test_mount_statfs(void **state)
{
	const char *img = t_mkfs("basic", 256ull << 20, 0);
	struct vmfs_statfs st, st2;
	struct vmfs_stat s;
	struct vmfs *fs;

	(void)state;
	fs = t_mount(img, "hostA");
	assert_int_equal(vmfs_statfs(fs, &st), 0);
	assert_int_equal(st.block_size, 1u << 20);
	assert_true(st.blocks > 100 && st.blocks_free == st.blocks);
	assert_int_equal(st.files_free, st.files - 1); /* the root */
	assert_true(st.slot < 8);
	assert_int_equal(vmfs_getattr(fs, "/", &s), 0);
	assert_true(S_ISDIR(s.mode));
	assert_int_equal(s.nlink, 2);
	assert_int_equal(vmfs_getattr(fs, "/nope", &s), -ENOENT);
	assert_int_equal(vmfs_getattr(fs, "relative", &s), -EINVAL);
	/* a file left open is closed (and its lock released) by the unmount */
	assert_int_equal(
	    vmfs_open(fs, "/left-open", O_CREAT | O_RDWR, 0644, &(struct vmfs_file *){0}), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	/* a second mount gets a slot again (the first left) */
	fs = t_mount(img, "hostA");
	assert_int_equal(vmfs_statfs(fs, &st2), 0);
	assert_int_equal(st2.files_free, st.files_free - 1);
	{
		struct vmfs_file *f;

		assert_int_equal(vmfs_open(fs, "/left-open", O_RDWR | VMFS_O_NOWAIT, 0, &f), 0);
		assert_int_equal(vmfs_close(f), 0);
	}
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	/* not a volume: a clear error */
	{
		struct bdev *bd;
		uint8_t *z = bdev_alloc(4096);

		assert_int_equal(bdev_open(img, 0, &bd), 0);
		assert_int_equal(bdev_write(bd, z, 1u << 20, 4096), 0);
		assert_int_equal(bdev_write(bd, z, bd->size - 4096, 4096), 0);
		bdev_close(bd);
		bdev_free(z);
		assert_int_equal(vmfs_mount(img, NULL, &fs), -EUCLEAN);
		assert_null(fs);
		assert_non_null(strstr(vmfs_errmsg(NULL), "volume header"));
	}
}

static void test_modes(void **state)
{
	const char *img = t_mkfs("basic", 256ull << 20, 0);
	size_t big = (3u << 20) + 12345;
	uint8_t *buf = malloc(big), *got = malloc(big);
	struct vmfs_stat s;
	struct vmfs *fs;

	(void)state;
	assert_non_null(buf);
	assert_non_null(got);
	t_fill(buf, big, 7);
	fs = t_mount(img, "hostA");
	/* inline */
	t_write_file(fs, "/tiny", buf, 100, 0);
	t_check_file(fs, "/tiny", buf, 100, 0);
	assert_int_equal(vmfs_getattr(fs, "/tiny", &s), 0);
	assert_int_equal(s.size, 100);
	assert_int_equal(s.blocks, 0);
	/* grows into sub-blocks, keeping the inline data */
	t_write_file(fs, "/tiny", buf + 100, 9000, 100);
	t_check_file(fs, "/tiny", buf, 9100, 0);
	assert_int_equal(vmfs_getattr(fs, "/tiny", &s), 0);
	assert_int_equal(s.size, 9100);
	assert_true(s.blocks > 0);
	/* grows past 2 MiB: converted to file blocks */
	t_write_file(fs, "/tiny", buf + 9100, big - 9100, 9100);
	t_check_file(fs, "/tiny", buf, big, 0);
	/* unaligned overwrite in the middle */
	t_fill(buf + 777777, 5000, 99);
	t_write_file(fs, "/tiny", buf + 777777, 5000, 777777);
	t_check_file(fs, "/tiny", buf, big, 0);
	/* shrink, then extend: the tail reads as zeroes */
	assert_int_equal(vmfs_truncate(fs, "/tiny", 1000000), 0);
	assert_int_equal(vmfs_truncate(fs, "/tiny", 1500000), 0);
	memset(buf + 1000000, 0, 500000);
	t_check_file(fs, "/tiny", buf, 1500000, 0);
	assert_int_equal(vmfs_truncate(fs, "/tiny", 0), 0);
	assert_int_equal(vmfs_getattr(fs, "/tiny", &s), 0);
	assert_int_equal(s.size, 0);
	assert_int_equal(s.blocks, 0);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	free(buf);
	free(got);
}

static void test_sparse(void **state)
{
	const char *img = t_mkfs("basic", 256ull << 20, 0);
	uint64_t tib16 = 16ull << 40, mid = 300ull << 20;
	char msg[] = "hello at 16 TiB", got[64];
	struct vmfs_statfs st0, st1;
	struct vmfs_file *f;
	struct vmfs_stat s;
	struct vmfs *fs;

	(void)state;
	fs = t_mount(img, "hostA");
	assert_int_equal(vmfs_statfs(fs, &st0), 0);
	assert_int_equal(vmfs_open(fs, "/thin", O_RDWR | O_CREAT, 0600, &f), 0);
	assert_int_equal(vmfs_write(f, msg, sizeof(msg), tib16), (ssize_t)sizeof(msg));
	assert_int_equal(vmfs_write(f, msg, sizeof(msg), mid), (ssize_t)sizeof(msg));
	assert_int_equal(vmfs_read(f, got, sizeof(msg), tib16), (ssize_t)sizeof(msg));
	assert_memory_equal(got, msg, sizeof(msg));
	/* a hole reads as zeroes */
	memset(got, 1, sizeof(got));
	assert_int_equal(vmfs_read(f, got, 64, tib16 - 4096), 64);
	for (int i = 0; i < 64; i++)
		assert_int_equal(got[i], 0);
	/* past the end: short read */
	assert_int_equal(vmfs_read(f, got, 64, tib16 + sizeof(msg) - 4), 4);
	assert_int_equal(vmfs_fstat(f, &s), 0);
	assert_int_equal(s.size, tib16 + sizeof(msg));
	assert_int_equal(vmfs_fsync(f), 0);
	assert_int_equal(vmfs_close(f), 0);
	assert_int_equal(vmfs_statfs(fs, &st1), 0);
	assert_int_equal(st1.blocks_free, st0.blocks_free - 2); /* two data blocks only */
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	fs = t_mount(img, "hostB");
	t_check_file(fs, "/thin", msg, sizeof(msg), tib16);
	assert_int_equal(vmfs_truncate(fs, "/thin", 1ull << 50), -EFBIG);
	assert_int_equal(vmfs_unlink(fs, "/thin"), 0);
	assert_int_equal(vmfs_statfs(fs, &st1), 0);
	assert_int_equal(st1.blocks_free, st0.blocks_free);
	assert_int_equal(st1.files_free, st0.files_free);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

static void test_attrs(void **state)
{
	const char *img = t_mkfs("basic", 256ull << 20, 0);
	struct vmfs_stat s;
	struct vmfs *fs;

	(void)state;
	fs = t_mount(img, "hostA");
	t_write_file(fs, "/f", "x", 1, 0);
	assert_int_equal(vmfs_chmod(fs, "/f", 0640), 0);
	assert_int_equal(vmfs_chown(fs, "/f", 1000, UINT32_MAX), 0);
	assert_int_equal(vmfs_utimens(fs, "/f", 1000000000ull, 2000000000ull), 0);
	assert_int_equal(vmfs_getattr(fs, "/f", &s), 0);
	assert_int_equal(s.mode, S_IFREG | 0640);
	assert_int_equal(s.uid, 1000);
	assert_int_equal(s.gid, 0);
	assert_int_equal(s.atime_ns, 1000000000ull);
	assert_int_equal(s.mtime_ns, 2000000000ull);
	assert_int_equal(s.nlink, 1);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

static void test_unlink_open(void **state)
{
	const char *img = t_mkfs("basic", 256ull << 20, 0);
	uint8_t buf[20000], got[20000];
	struct vmfs_statfs st0, st1;
	struct vmfs_file *f;
	struct vmfs *fs;

	(void)state;
	t_fill(buf, sizeof(buf), 3);
	fs = t_mount(img, "hostA");
	assert_int_equal(vmfs_statfs(fs, &st0), 0);
	assert_int_equal(vmfs_open(fs, "/u", O_RDWR | O_CREAT | O_EXCL, 0600, &f), 0);
	assert_int_equal(vmfs_write(f, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	assert_int_equal(vmfs_unlink(fs, "/u"), 0);
	assert_int_equal(vmfs_open(fs, "/u", O_RDONLY, 0, &(struct vmfs_file *){0}), -ENOENT);
	assert_int_equal(vmfs_read(f, got, sizeof(got), 0), (ssize_t)sizeof(got));
	assert_memory_equal(got, buf, sizeof(buf));
	assert_int_equal(vmfs_statfs(fs, &st1), 0);
	assert_int_equal(st1.files_free, st0.files_free - 1);
	assert_int_equal(vmfs_close(f), 0);
	assert_int_equal(vmfs_statfs(fs, &st1), 0);
	assert_int_equal(st1.files_free, st0.files_free);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

static void test_enospc(void **state)
{
	const char *img = t_mkfs("basic", 128ull << 20, 0);
	size_t len = 1u << 20;
	uint8_t *buf = calloc(1, len);
	struct vmfs_statfs st0, st1;
	struct vmfs_file *f;
	struct vmfs *fs;
	ssize_t rc = 0;
	uint64_t n = 0;

	(void)state;
	fs = t_mount(img, "hostA");
	assert_int_equal(vmfs_statfs(fs, &st0), 0);
	assert_int_equal(vmfs_open(fs, "/fill", O_RDWR | O_CREAT, 0600, &f), 0);
	while (n < st0.blocks + 2) {
		rc = vmfs_write(f, buf, len, n * len);
		if (rc < 0)
			break;
		n++;
	}
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(n, st0.blocks);
	assert_int_equal(vmfs_statfs(fs, &st1), 0);
	assert_int_equal(st1.blocks_free, 0);
	assert_int_equal(vmfs_close(f), 0);
	assert_int_equal(vmfs_unlink(fs, "/fill"), 0);
	assert_int_equal(vmfs_statfs(fs, &st1), 0);
	assert_int_equal(st1.blocks_free, st0.blocks_free);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	free(buf);
}

/* Freeing more blocks than one transaction can hold (a 256 KiB journal: 61
 * blocks per transaction): truncate and unlink work in several. */
static void test_big_free(void **state)
{
	const uint64_t stride = 504ull << 20; /* one single-indirect PB per block */
	const int n = 80;
	struct vmfs_statfs st0, st1;
	struct vmfs_file *f;
	const char *img;
	struct vmfs *fs;
	char c;

	(void)state;
	t_journal = 256u << 10;
	img = t_mkfs("basic", 1ull << 30, 0);
	t_journal = 1u << 20;
	fs = t_mount(img, "hostA");
	assert_int_equal(vmfs_statfs(fs, &st0), 0);
	assert_int_equal(vmfs_open(fs, "/sparse", O_RDWR | O_CREAT, 0600, &f), 0);
	for (int i = 0; i < n; i++) {
		c = (char)('a' + i % 26);
		assert_int_equal(vmfs_write(f, &c, 1, (uint64_t)i * stride + 7), 1);
	}
	for (int i = 0; i < n; i += 13) {
		assert_int_equal(vmfs_read(f, &c, 1, (uint64_t)i * stride + 7), 1);
		assert_int_equal(c, 'a' + i % 26);
	}
	assert_int_equal(vmfs_ftruncate(f, stride + 100), 0);
	assert_int_equal(vmfs_read(f, &c, 1, stride + 7), 1);
	assert_int_equal(c, 'b');
	assert_int_equal(vmfs_statfs(fs, &st1), 0);
	assert_int_equal(st1.blocks_free, st0.blocks_free - 2);
	for (int i = 2; i < n; i++)
		assert_int_equal(vmfs_write(f, "z", 1, (uint64_t)i * stride), 1);
	assert_int_equal(vmfs_close(f), 0);
	assert_int_equal(vmfs_unlink(fs, "/sparse"), 0);
	assert_int_equal(vmfs_statfs(fs, &st1), 0);
	assert_int_equal(st1.blocks_free, st0.blocks_free);
	assert_int_equal(st1.files_free, st0.files_free);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

static void test_readonly_mount(void **state)
{
	const char *img = t_mkfs("basic", 256ull << 20, 0);
	struct vmfs_mount_opts o = {.hostname = "ro", .read_only = 1};
	struct vmfs_file *f;
	struct vmfs_stat s0, s1;
	struct vmfs_statfs st;
	struct vmfs *fs, *rw;

	(void)state;
	rw = t_mount(img, "rw");
	t_write_file(rw, "/f", "0123456789", 10, 0);
	assert_int_equal(vmfs_getattr(rw, "/f", &s0), 0);
	/* an in-place overwrite sets mtime at close */
	usleep(2000);
	t_write_file(rw, "/f", "ab", 2, 3);
	assert_int_equal(vmfs_getattr(rw, "/f", &s1), 0);
	assert_true(s1.mtime_ns > s0.mtime_ns);
	assert_int_equal(vmfs_umount(rw), 0);
	assert_int_equal(vmfs_mount(img, &o, &fs), 0);
	assert_int_equal(vmfs_statfs(fs, &st), 0);
	assert_int_equal(st.slot, UINT32_MAX);
	t_check_file(fs, "/f", "012ab56789", 10, 0);
	assert_int_equal(vmfs_open(fs, "/f", O_RDWR, 0, &f), -EROFS);
	assert_int_equal(vmfs_mkdir(fs, "/d", 0755), -EROFS);
	assert_int_equal(vmfs_unlink(fs, "/f"), -EROFS);
	assert_int_equal(vmfs_umount(fs), 0);
}

/* Hostile images: a damaged FD or directory block gives -EUCLEAN naming the
 * structure, never a crash. */
static void test_corrupt(void **state)
{
	const char *img = t_mkfs("basic", 256ull << 20, 0);
	struct vmfs_stat s;
	struct vmfs_file *f;
	struct bdev *bd;
	struct vmfs *fs;
	uint8_t *blk = bdev_alloc(4096);

	(void)state;
	fs = t_mount(img, "hostA");
	t_write_file(fs, "/victim", "data", 4, 0);
	assert_int_equal(vmfs_mkdir(fs, "/dir", 0755), 0);
	t_write_file(fs, "/dir/x", "x", 1, 0);
	assert_int_equal(vmfs_getattr(fs, "/victim", &s), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	/* flip a byte in the victim's inode block (after its lock unit) */
	assert_int_equal(bdev_open(img, 0, &bd), 0);
	{
		struct vmfs_vh vh;
		char why[128];

		assert_int_equal(vmfs_vh_read(bd, &vh, why, sizeof(why)), 0);
		uint64_t off = vmfs_addr_off(&vh, s.ino) + 4096;

		assert_int_equal(bdev_read(bd, blk, off, 4096), 0);
		blk[0x30] ^= 0x55;
		assert_int_equal(bdev_write(bd, blk, off, 4096), 0);
		/* and garbage in the root directory's bucket block */
		off = vmfs_addr_off(&vh, vmfs_addr_make(VMFS_RT_SB, 0, 0)) + 4096;
		assert_int_equal(bdev_read(bd, blk, off, 4096), 0);
		memset(blk + 0x40, 0xee, 64);
		assert_int_equal(bdev_write(bd, blk, off, 4096), 0);
	}
	bdev_close(bd);
	fs = t_mount(img, "hostA");
	assert_int_equal(vmfs_getattr(fs, "/victim", &s), -EUCLEAN);
	assert_non_null(strstr(vmfs_errmsg(fs), "directory"));
	assert_int_equal(vmfs_open(fs, "/dir/x", O_RDONLY, 0, &f), -EUCLEAN);
	assert_int_equal(vmfs_mkdir(fs, "/new", 0755), -EUCLEAN);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_true(t_fsck(img) > 0);
	bdev_free(blk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mount_statfs),   cmocka_unit_test(test_modes),
	    cmocka_unit_test(test_sparse),	   cmocka_unit_test(test_attrs),
	    cmocka_unit_test(test_unlink_open),	   cmocka_unit_test(test_enospc),
	    cmocka_unit_test(test_readonly_mount), cmocka_unit_test(test_corrupt),
	    cmocka_unit_test(test_big_free),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
