/*
 * test_fs_xattr.c - extended attributes: set/get/list/remove semantics
 * (XATTR_CREATE / XATTR_REPLACE, ENODATA, ERANGE, E2BIG, ENOSPC when the
 * file's attribute block is full), on files, directories and symlinks;
 * persistence across remount; visibility to a second host (forked), also
 * while the file is held open for writing by the first; the attribute
 * block is freed with the last attribute and with the file (fsck finds no
 * leak); a corrupt attribute block gives -EUCLEAN and an fsck report;
 * crashes at every flush point of a series of changes leave the set before
 * or after the change that was running.
 */
#include "fstest.h"
#include "le.h"

static void want_xattr(struct vmfs *fs, const char *path, const char *name, const void *v,
		       size_t len)
{
	char buf[4096];

	assert_int_equal(vmfs_getxattr(fs, path, name, NULL, 0), (ssize_t)len);
	assert_int_equal(vmfs_getxattr(fs, path, name, buf, sizeof(buf)), (ssize_t)len);
	assert_memory_equal(buf, v, len);
}

/* The names listed, sorted and joined with ',' (order is not promised). */
static void list_str(struct vmfs *fs, const char *path, char *out, size_t outlen)
{
	char buf[8192], *names[600];
	ssize_t n = vmfs_listxattr(fs, path, buf, sizeof(buf));
	int k = 0;

	assert_true(n >= 0);
	assert_int_equal(vmfs_listxattr(fs, path, NULL, 0), n);
	for (ssize_t o = 0; o < n; o += (ssize_t)strlen(buf + o) + 1)
		names[k++] = buf + o;
	for (int i = 1; i < k; i++)
		for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			char *t = names[j];

			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	out[0] = 0;
	for (int i = 0; i < k; i++)
		snprintf(out + strlen(out), outlen - strlen(out), "%s%s", i ? "," : "", names[i]);
}

static void test_xattr_semantics(void **state)
{
	const char *img = t_mkfs("xattr", 64ull << 20, 0);
	char name[300], big[VMFS_XATTR_SIZE_MAX + 2], buf[64], list[4096];
	struct vmfs *fs;

	(void)state;
	fs = t_mount(img, "a");
	t_write_file(fs, "/f", "data", 4, 0);
	assert_int_equal(vmfs_mkdir(fs, "/d", 0755), 0);
	assert_int_equal(vmfs_symlink(fs, "/f", "/l"), 0);

	assert_int_equal(vmfs_getxattr(fs, "/f", "user.a", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(vmfs_listxattr(fs, "/f", list, sizeof(list)), 0);
	assert_int_equal(vmfs_setxattr(fs, "/f", "user.a", "one", 3, 0), 0);
	want_xattr(fs, "/f", "user.a", "one", 3);
	/* XATTR_CREATE / XATTR_REPLACE */
	assert_int_equal(vmfs_setxattr(fs, "/f", "user.a", "two", 3, VMFS_XATTR_CREATE), -EEXIST);
	assert_int_equal(vmfs_setxattr(fs, "/f", "user.b", "two", 3, VMFS_XATTR_REPLACE), -ENODATA);
	assert_int_equal(vmfs_setxattr(fs, "/f", "user.b", "bee\0bee", 7, VMFS_XATTR_CREATE), 0);
	assert_int_equal(vmfs_setxattr(fs, "/f", "user.a", "longer one", 10, VMFS_XATTR_REPLACE),
			 0);
	want_xattr(fs, "/f", "user.a", "longer one", 10);
	want_xattr(fs, "/f", "user.b", "bee\0bee", 7);
	assert_int_equal(vmfs_setxattr(fs, "/f", "user.empty", NULL, 0, 0), 0);
	want_xattr(fs, "/f", "user.empty", "", 0);
	assert_int_equal(vmfs_setxattr(fs, "/f", "user.a", "x", 1, 4), -EINVAL);
	/* ERANGE: small buffers, bad names */
	assert_int_equal(vmfs_getxattr(fs, "/f", "user.a", buf, 3), -ERANGE);
	assert_int_equal(vmfs_listxattr(fs, "/f", list, 5), -ERANGE);
	list_str(fs, "/f", list, sizeof(list));
	assert_string_equal(list, "user.a,user.b,user.empty");
	assert_int_equal(vmfs_listxattr(fs, "/f", NULL, 0), 7 + 7 + 11);
	assert_int_equal(vmfs_setxattr(fs, "/f", "", "x", 1, 0), -ERANGE);
	memset(name, 'n', sizeof(name));
	name[256] = 0;
	assert_int_equal(vmfs_setxattr(fs, "/f", name, "x", 1, 0), -ERANGE);
	assert_int_equal(vmfs_getxattr(fs, "/f", name, buf, sizeof(buf)), -ERANGE);
	name[255] = 0;
	assert_int_equal(vmfs_setxattr(fs, "/f", name, "x", 1, 0), 0);
	want_xattr(fs, "/f", name, "x", 1);
	assert_int_equal(vmfs_removexattr(fs, "/f", name), 0);
	/* E2BIG, and the largest value fits even with the longest name */
	t_fill((uint8_t *)big, sizeof(big), 7);
	assert_int_equal(vmfs_setxattr(fs, "/f", "user.big", big, VMFS_XATTR_SIZE_MAX + 1, 0),
			 -E2BIG);
	assert_int_equal(vmfs_setxattr(fs, "/d", name, big, VMFS_XATTR_SIZE_MAX, 0), 0);
	want_xattr(fs, "/d", name, big, VMFS_XATTR_SIZE_MAX);
	assert_int_equal(vmfs_setxattr(fs, "/d", "user.more", "x", 1, 0), -ENOSPC);
	/* removal */
	assert_int_equal(vmfs_removexattr(fs, "/f", "user.a"), 0);
	assert_int_equal(vmfs_removexattr(fs, "/f", "user.a"), -ENODATA);
	assert_int_equal(vmfs_getxattr(fs, "/f", "user.a", buf, sizeof(buf)), -ENODATA);
	want_xattr(fs, "/f", "user.b", "bee\0bee", 7);
	/* symlinks carry their own; missing paths */
	assert_int_equal(vmfs_setxattr(fs, "/l", "user.link", "L", 1, 0), 0);
	want_xattr(fs, "/l", "user.link", "L", 1);
	assert_int_equal(vmfs_getxattr(fs, "/f", "user.link", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(vmfs_setxattr(fs, "/nope", "user.a", "x", 1, 0), -ENOENT);
	assert_int_equal(vmfs_listxattr(fs, "/nope", list, sizeof(list)), -ENOENT);
	assert_int_equal(t_fsck(img), 0); /* quiescent: no transaction in flight */

	/* remount: all still there */
	assert_int_equal(vmfs_umount(fs), 0);
	fs = t_mount(img, "b");
	list_str(fs, "/f", list, sizeof(list));
	assert_string_equal(list, "user.b,user.empty");
	want_xattr(fs, "/d", name, big, VMFS_XATTR_SIZE_MAX);
	want_xattr(fs, "/l", "user.link", "L", 1);
	/* read-only mount reads them, cannot change them */
	assert_int_equal(vmfs_umount(fs), 0);
	{
		struct vmfs_mount_opts o = {.hostname = "ro", .read_only = 1};

		assert_int_equal(vmfs_mount(img, &o, &fs), 0);
		want_xattr(fs, "/f", "user.b", "bee\0bee", 7);
		assert_int_equal(vmfs_setxattr(fs, "/f", "user.c", "x", 1, 0), -EROFS);
		assert_int_equal(vmfs_umount(fs), 0);
	}
	assert_int_equal(t_fsck(img), 0);
}

static void test_xattr_space(void **state)
{
	const char *img = t_mkfs("xspace", 64ull << 20, 0);
	char name[32], val[100], list[8192];
	unsigned n, want = VMFS_XB_AREA / vmfs_xe_size(9, 100);
	struct vmfs_file *f;
	struct vmfs *fs;
	int rc = 0;

	(void)state;
	fs = t_mount(img, "a");
	t_write_file(fs, "/f", "x", 1, 0);
	for (n = 0; n < 1000; n++) {
		snprintf(name, sizeof(name), "user.%04u", n);
		memset(val, 'a' + n % 26, sizeof(val));
		rc = vmfs_setxattr(fs, "/f", name, val, sizeof(val), 0);
		if (rc)
			break;
	}
	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(n, want); /* exactly what the block holds */
	assert_int_equal(vmfs_listxattr(fs, "/f", list, sizeof(list)), (ssize_t)(n * 10));
	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "user.%04u", i);
		memset(val, 'a' + i % 26, sizeof(val));
		want_xattr(fs, "/f", name, val, sizeof(val));
	}
	/* a replacement that does not fit leaves the old value */
	assert_int_equal(vmfs_setxattr(fs, "/f", "user.0003", list, 1000, 0), -ENOSPC);
	memset(val, 'a' + 3, sizeof(val));
	want_xattr(fs, "/f", "user.0003", val, sizeof(val));
	assert_int_equal(vmfs_removexattr(fs, "/f", "user.0003"), 0);
	assert_int_equal(vmfs_setxattr(fs, "/f", "user.new", val, sizeof(val), 0), 0);
	/* removing every attribute frees the block (fsck: no leak) */
	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "user.%04u", i);
		rc = vmfs_removexattr(fs, "/f", name);
		assert_int_equal(rc, i == 3 ? -ENODATA : 0);
	}
	assert_int_equal(vmfs_removexattr(fs, "/f", "user.new"), 0);
	assert_int_equal(vmfs_listxattr(fs, "/f", list, sizeof(list)), 0);
	assert_int_equal(t_fsck(img), 0);
	/* freed with the file: plain unlink, and unlink while open */
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "/g%d", i);
		t_write_file(fs, name, "y", 1, 0);
		assert_int_equal(vmfs_setxattr(fs, name, "user.x", "v", 1, 0), 0);
	}
	assert_int_equal(vmfs_setxattr(fs, "/f", "user.x", "v", 1, 0), 0);
	assert_int_equal(vmfs_unlink(fs, "/g0"), 0);
	assert_int_equal(vmfs_open(fs, "/g1", O_RDWR, 0, &f), 0);
	assert_int_equal(vmfs_unlink(fs, "/g1"), 0);
	assert_int_equal(vmfs_close(f), 0);
	assert_int_equal(vmfs_rename(fs, "/g2", "/f"), 0); /* replaces /f and frees it */
	want_xattr(fs, "/f", "user.x", "v", 1);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

/* Host B (a forked process) while host A holds /vm open for writing. */
static void host_b(const char *img)
{
	struct vmfs_mount_opts o = {.hostname = "hostB", .lock_timeout_ms = 300};
	char buf[64];
	struct vmfs *fs;
	int step = 0;

#define B_CHECK(cond)                                                                              \
	do {                                                                                       \
		step++;                                                                            \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "host B step %d failed\n", step);                          \
			_exit(step);                                                               \
		}                                                                                  \
	} while (0)
	B_CHECK(vmfs_mount(img, &o, &fs) == 0);
	B_CHECK(vmfs_getxattr(fs, "/f", "user.from-a", buf, sizeof(buf)) == 5);
	B_CHECK(!memcmp(buf, "hello", 5));
	/* held EX by A: read from a snapshot, without waiting */
	B_CHECK(vmfs_getxattr(fs, "/vm", "user.vm", buf, sizeof(buf)) == 4);
	B_CHECK(!memcmp(buf, "disk", 4));
	B_CHECK(vmfs_listxattr(fs, "/vm", buf, sizeof(buf)) == 8);
	B_CHECK(vmfs_setxattr(fs, "/vm", "user.b", "x", 1, 0) == -EBUSY);
	B_CHECK(vmfs_setxattr(fs, "/f", "user.from-b", "world", 5, 0) == 0);
	B_CHECK(vmfs_umount(fs) == 0);
	_exit(0);
}

static void test_xattr_two_hosts(void **state)
{
	const char *img = t_mkfs("xhosts", 64ull << 20, 0);
	struct vmfs_file *f;
	struct vmfs *fs;
	int st;
	pid_t pid;

	(void)state;
	fs = t_mount(img, "hostA");
	t_write_file(fs, "/f", "x", 1, 0);
	assert_int_equal(vmfs_setxattr(fs, "/f", "user.from-a", "hello", 5, 0), 0);
	assert_int_equal(vmfs_open(fs, "/vm", O_RDWR | O_CREAT, 0600, &f), 0);
	assert_int_equal(vmfs_setxattr(fs, "/vm", "user.vm", "disk", 4, 0), 0); /* borrows */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		host_b(img);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	want_xattr(fs, "/f", "user.from-b", "world", 5); /* no cache: seen at once */
	assert_int_equal(vmfs_close(f), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

static void test_xattr_corrupt(void **state)
{
	const char *img = t_mkfs("xbad", 64ull << 20, 0);
	uint8_t blk[4096];
	struct vmfs_stat st;
	struct vmfs_vh vh;
	struct bdev *bd;
	char why[256], buf[16], big[200];
	uint64_t xa;
	struct vmfs *fs;
	int fd;

	(void)state;
	fs = t_mount(img, "a");
	t_write_file(fs, "/f", "x", 1, 0);
	memset(big, 'v', sizeof(big)); /* too big for the inode: a block */
	assert_int_equal(vmfs_setxattr(fs, "/f", "user.a", big, sizeof(big), 0), 0);
	assert_int_equal(vmfs_getattr(fs, "/f", &st), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	assert_int_equal(bdev_open(img, 0, &bd), 0);
	assert_int_equal(vmfs_vh_read(bd, &vh, why, sizeof(why)), 0);
	bdev_close(bd);
	fd = open(img, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, blk, 4096, (off_t)(vmfs_addr_off(&vh, st.ino) + 4096)), 4096);
	xa = le64_get(blk + 0x78);
	assert_int_equal(vmfs_addr_type(xa), VMFS_RT_PB);
	assert_int_equal(pread(fd, blk, 4096, (off_t)vmfs_addr_off(&vh, xa)), 4096);
	assert_memory_equal(blk, "VMXA", 4);
	blk[0x44] ^= 0x55; /* inside the first entry's name: CRC mismatch */
	assert_int_equal(pwrite(fd, blk, 4096, (off_t)vmfs_addr_off(&vh, xa)), 4096);
	close(fd);
	fs = t_mount(img, "a");
	assert_int_equal(vmfs_getxattr(fs, "/f", "user.a", buf, sizeof(buf)), -EUCLEAN);
	assert_non_null(strstr(vmfs_errmsg(fs), "xattr block"));
	assert_int_equal(vmfs_setxattr(fs, "/f", "user.b", "v", 1, 0), -EUCLEAN);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_true(t_fsck(img) > 0);
}

/* The inode block of path, raw. */
static void raw_inode(const char *img, struct vmfs *fs, const char *path, uint8_t *blk)
{
	struct vmfs_stat st;
	struct vmfs_vh vh;
	struct bdev *bd;
	char why[256];
	int fd;

	assert_int_equal(vmfs_getattr(fs, path, &st), 0);
	assert_int_equal(bdev_open(img, 0, &bd), 0);
	assert_int_equal(vmfs_vh_read(bd, &vh, why, sizeof(why)), 0);
	bdev_close(bd);
	fd = open(img, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, blk, 4096, (off_t)(vmfs_addr_off(&vh, st.ino) + 4096)), 4096);
	close(fd);
}

/* Small attributes live in the inode (no block, INCOMPAT_IXA); a set that
 * outgrows the inode's 120 bytes moves to a block, and back (the block
 * freed) when it fits again; visible to another host at every step. */
static void test_xattr_inline(void **state)
{
	const char *img = t_mkfs("xinline", 64ull << 20, 0);
	uint8_t blk[4096], acl[28] = {2}, big[150];
	struct vmfs *fs, *b;

	(void)state;
	memset(big, 'z', sizeof(big));
	fs = t_mount(img, "a");
	t_write_file(fs, "/f", "x", 1, 0);
	/* a minimal POSIX ACL (28 bytes) and a short user attribute */
	assert_int_equal(vmfs_setxattr(fs, "/f", "system.posix_acl_access", acl, sizeof(acl), 0),
			 0);
	assert_int_equal(vmfs_setxattr(fs, "/f", "user.s", "hi", 2, 0), 0);
	raw_inode(img, fs, "/f", blk);
	assert_int_equal(le64_get(blk + 0x78), 0); /* no block */
	assert_int_equal(blk[0x88], 23);	   /* the first inline entry's name length */
	assert_memory_equal(blk + 0x8c, "system.posix_acl_access", 23);
	b = t_mount(img, "b");
	want_xattr(b, "/f", "user.s", "hi", 2);
	want_xattr(b, "/f", "system.posix_acl_access", acl, sizeof(acl));
	/* outgrows the inode: a block, the inline bytes cleared */
	assert_int_equal(vmfs_setxattr(fs, "/f", "user.big", big, sizeof(big), 0), 0);
	raw_inode(img, fs, "/f", blk);
	assert_int_equal(vmfs_addr_type(le64_get(blk + 0x78)), VMFS_RT_PB);
	for (int i = 0x88; i < 0x100; i++)
		assert_int_equal(blk[i], 0);
	want_xattr(b, "/f", "user.big", big, sizeof(big));
	want_xattr(b, "/f", "user.s", "hi", 2);
	/* fits again: back into the inode, the block freed (fsck: no leak) */
	assert_int_equal(vmfs_removexattr(b, "/f", "user.big"), 0);
	raw_inode(img, fs, "/f", blk);
	assert_int_equal(le64_get(blk + 0x78), 0);
	assert_int_equal(blk[0x88], 23);
	want_xattr(fs, "/f", "user.s", "hi", 2);
	assert_int_equal(vmfs_getxattr(fs, "/f", "user.big", NULL, 0), -ENODATA);
	/* the last one removed: the inline area all zero */
	assert_int_equal(vmfs_removexattr(fs, "/f", "user.s"), 0);
	assert_int_equal(vmfs_removexattr(fs, "/f", "system.posix_acl_access"), 0);
	raw_inode(img, fs, "/f", blk);
	for (int i = 0x78; i < 0x100; i++)
		assert_int_equal(blk[i], 0);
	assert_int_equal(vmfs_umount(b), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

/* "name=value;..." sorted by name. */
static void state_str(struct vmfs *fs, const char *path, char *out, size_t outlen)
{
	char names[4096], *p, val[256];

	list_str(fs, path, names, sizeof(names));
	out[0] = 0;
	for (p = strtok(names, ","); p; p = strtok(NULL, ",")) {
		ssize_t n = vmfs_getxattr(fs, path, p, val, sizeof(val) - 1);

		assert_true(n >= 0);
		val[n] = 0;
		if (n > 16) /* long values by length and first byte */
			snprintf(val, sizeof(val), "<%zd %c>", n, val[0]);
		snprintf(out + strlen(out), outlen - strlen(out), "%s=%s;", p, val);
	}
}

static char bval[100]; /* 'B's: too big to stay inline with the others */

static int xop(struct vmfs *fs, int i)
{
	switch (i) {
	case 0: return vmfs_setxattr(fs, "/f", "user.a", "1", 1, VMFS_XATTR_CREATE);
	case 1: return vmfs_setxattr(fs, "/f", "user.b", bval, sizeof(bval), 0); /* to a block */
	case 2: return vmfs_setxattr(fs, "/f", "user.a", "333", 3, VMFS_XATTR_REPLACE);
	case 3: return vmfs_removexattr(fs, "/f", "user.b"); /* back inline, block freed */
	}
	return 1;
}

/* Crashes at successive flushes of four attribute changes, two of which
 * move the set between the inode and a block: after recovery the set is
 * the one before or after the change running at the crash (fsck: no block
 * leaked or shared). */
static void test_xattr_crash(void **state)
{
	static const char *const want[] = {
	    "user.keep=k;",
	    "user.a=1;user.keep=k;",
	    "user.a=1;user.b=<100 B>;user.keep=k;",
	    "user.a=333;user.b=<100 B>;user.keep=k;",
	    "user.a=333;user.keep=k;",
	};
	char base[4200], cmd[9000], uri[4300], got[512];
	int crashed = 1, cases = 0;
	const char *img;
	struct vmfs *fs;

	(void)state;
	memset(bval, 'B', sizeof(bval));
	t_hb_int = 100;
	t_hb_tmo = 800;
	img = t_mkfs("xcrash", 64ull << 20, 0);
	fs = t_mount(img, "prep");
	t_write_file(fs, "/f", "x", 1, 0);
	assert_int_equal(vmfs_setxattr(fs, "/f", "user.keep", "k", 1, 0), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	snprintf(base, sizeof(base), "%s.base", img);
	snprintf(cmd, sizeof(cmd), "cp --sparse=always '%s' '%s'", img, base);
	assert_int_equal(system(cmd), 0);
	for (unsigned n = 1; crashed && n < 80; n += 1 + n / 8) {
		int done = 0, rc;

		snprintf(cmd, sizeof(cmd), "cp --sparse=always '%s' '%s'", base, img);
		assert_int_equal(system(cmd), 0);
		snprintf(uri, sizeof(uri), "crash:flush=%u,mode=random,seed=%u:%s", n, n, img);
		rc = vmfs_mount(uri, NULL, &fs);
		crashed = rc != 0;
		if (!rc) {
			while ((rc = xop(fs, done)) == 0)
				done++;
			crashed = rc != 1;
			vmfs_umount(fs);
		}
		fs = t_mount(img, "survivor");
		state_str(fs, "/f", got, sizeof(got));
		if (strcmp(got, want[done]) && (done == 4 || strcmp(got, want[done + 1])))
			fail_msg("flush=%u after %d changes: '%s'", n, done, got);
		assert_int_equal(vmfs_umount(fs), 0);
		assert_int_equal(t_fsck(img), 0);
		cases++;
	}
	fprintf(stderr, "%d crash points\n", cases);
	assert_true(cases > 5);
	assert_false(crashed);
	unlink(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_xattr_semantics), cmocka_unit_test(test_xattr_space),
	    cmocka_unit_test(test_xattr_two_hosts), cmocka_unit_test(test_xattr_corrupt),
	    cmocka_unit_test(test_xattr_crash),	    cmocka_unit_test(test_xattr_inline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
