/*
 * test_fs_at.c - calls by inode and by (directory inode, name) (fs_at.c):
 * every call against its path twin; a file unlinked while open keeps
 * working by inode (getattr with nlink 0, setattr, truncate, xattrs) until
 * its last close; handles of a file another mount removed fail with
 * -ESTALE (also once the FD is reused for a new file, which an O_TRUNC open
 * of the old handle must leave alone) and lookups in a removed directory
 * with -ENOENT.
 */
#include "fstest.h"

struct ino {
	uint64_t a, g;
};

static struct ino look(struct vmfs *fs, struct ino dir, const char *name)
{
	struct vmfs_stat st;
	int rc = vmfs_lookup(fs, dir.a, dir.g, name, &st);

	if (rc)
		fprintf(stderr, "lookup %s: %s\n", name, vmfs_strerror(rc));
	assert_int_equal(rc, 0);
	assert_true(st.generation != 0);
	return (struct ino){st.ino, st.generation};
}

static struct ino root_of(struct vmfs *fs)
{
	struct vmfs_stat st;

	assert_int_equal(vmfs_getattr(fs, "/", &st), 0);
	return (struct ino){st.ino, st.generation};
}

static void test_at_calls(void **state)
{
	const char *img = t_mkfs("at", 256ull << 20, 1u << 20);
	struct vmfs *fs = t_mount(img, "a");
	struct ino root = root_of(fs), d, f, l;
	struct vmfs_setattr sa = {.valid = VMFS_SET_MODE | VMFS_SET_SIZE | VMFS_SET_MTIME,
				  .mode = 0600,
				  .size = 12345,
				  .mtime_ns = 7000000000ull};
	struct vmfs_owner own = {12, 34};
	struct vmfs_stat st, st2;
	struct vmfs_file *fh;
	char buf[64];
	int n = 0;

	(void)state;
	assert_int_equal(vmfs_mkdir_at(fs, root.a, root.g, "d", 0755, NULL), 0);
	assert_int_equal(vmfs_mkdir_at(fs, root.a, root.g, "d", 0755, NULL), -EEXIST);
	d = look(fs, root, "d");
	assert_int_equal(vmfs_create_at(fs, d.a, d.g, "f", O_CREAT | O_RDWR, 0644, &own, &fh), 0);
	assert_int_equal(vmfs_write(fh, "hello", 5, 0), 5);
	assert_int_equal(vmfs_close(fh), 0);
	f = look(fs, d, "f");
	assert_int_equal(vmfs_getattr(fs, "/d/f", &st), 0);
	assert_int_equal(vmfs_getattr_ino(fs, f.a, f.g, &st2), 0);
	assert_memory_equal(&st, &st2, sizeof(st));
	assert_int_equal(st.uid, 12);
	assert_int_equal(st.size, 5);
	assert_int_equal(vmfs_getattr_ino(fs, f.a, 0, &st2), 0);
	assert_int_equal(vmfs_getattr_ino(fs, f.a, f.g + 1, &st2), -ESTALE);
	assert_int_equal(vmfs_lookup(fs, d.a, d.g, "nope", &st), -ENOENT);
	assert_int_equal(vmfs_lookup(fs, d.a, d.g, "a/b", &st), -EINVAL);
	assert_int_equal(vmfs_lookup(fs, d.a, d.g, "", &st), -ENOENT);
	assert_int_equal(vmfs_lookup(fs, f.a, f.g, "x", &st), -ENOTDIR);

	assert_int_equal(vmfs_setattr_ino(fs, f.a, f.g, &sa), 0);
	assert_int_equal(vmfs_getattr(fs, "/d/f", &st), 0);
	assert_int_equal(st.mode, S_IFREG | 0600);
	assert_int_equal(st.size, 12345);
	assert_int_equal(st.mtime_ns, 7000000000ull);

	assert_int_equal(vmfs_open_ino(fs, f.a, f.g, O_RDONLY, &fh), 0);
	assert_int_equal(vmfs_read(fh, buf, 5, 0), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(vmfs_close(fh), 0);
	assert_int_equal(vmfs_open_ino(fs, d.a, d.g, O_RDONLY, &fh), -EISDIR);

	assert_int_equal(vmfs_symlink_at(fs, "target", d.a, d.g, "l", NULL), 0);
	l = look(fs, d, "l");
	assert_int_equal(vmfs_readlink_ino(fs, l.a, l.g, buf, sizeof(buf)), 6);
	assert_string_equal(buf, "target");
	assert_int_equal(vmfs_mknod_at(fs, d.a, d.g, "fifo", S_IFIFO | 0600, 0, NULL), 0);
	assert_int_equal(vmfs_getattr(fs, "/d/fifo", &st), 0);
	assert_int_equal(st.mode, S_IFIFO | 0600);
	assert_int_equal(vmfs_link_at(fs, f.a, f.g, root.a, root.g, "f2"), 0);
	assert_int_equal(vmfs_getattr_ino(fs, f.a, f.g, &st), 0);
	assert_int_equal(st.nlink, 2);
	assert_int_equal(vmfs_readdir_ino(fs, d.a, d.g, t_count_cb, &n), 0);
	assert_int_equal(n, 5); /* . .. f l fifo */
	assert_int_equal(vmfs_rename_at(fs, d.a, d.g, "f", root.a, root.g, "g", 0), 0);
	assert_int_equal(vmfs_getattr(fs, "/g", &st), 0);
	assert_int_equal(st.ino, f.a);
	assert_int_equal(
	    vmfs_rename_at(fs, root.a, root.g, "g", root.a, root.g, "f2", VMFS_RENAME_EXCHANGE), 0);

	assert_int_equal(vmfs_setxattr_ino(fs, f.a, f.g, "user.k", "v1", 2, 0), 0);
	assert_int_equal(vmfs_getxattr_ino(fs, f.a, f.g, "user.k", buf, sizeof(buf)), 2);
	assert_int_equal(vmfs_getxattr(fs, "/g", "user.k", buf, sizeof(buf)), 2);
	assert_int_equal(vmfs_listxattr_ino(fs, f.a, f.g, buf, sizeof(buf)), 7);
	assert_int_equal(vmfs_removexattr_ino(fs, f.a, f.g, "user.k"), 0);
	assert_int_equal(vmfs_getxattr_ino(fs, f.a, f.g, "user.k", buf, sizeof(buf)), -ENODATA);

	assert_int_equal(vmfs_rmdir_at(fs, root.a, root.g, "d"), -ENOTEMPTY);
	assert_int_equal(vmfs_unlink_at(fs, d.a, d.g, "l"), 0);
	assert_int_equal(vmfs_unlink_at(fs, d.a, d.g, "fifo"), 0);
	assert_int_equal(vmfs_readlink_ino(fs, l.a, l.g, buf, sizeof(buf)), -ESTALE);
	assert_int_equal(vmfs_rmdir_at(fs, root.a, root.g, "d"), 0);
	/* the removed directory: gone for lookups and creates */
	assert_int_equal(vmfs_lookup(fs, d.a, d.g, "x", &st), -ENOENT);
	assert_int_equal(vmfs_mkdir_at(fs, d.a, d.g, "x", 0755, NULL), -ENOENT);
	assert_int_equal(vmfs_getattr_ino(fs, d.a, d.g, &st), -ESTALE);
	assert_int_equal(vmfs_getattr_ino(fs, d.a, 0, &st), -ENOENT);
	assert_int_equal(vmfs_unlink_at(fs, root.a, root.g, "g"), 0);
	assert_int_equal(vmfs_unlink_at(fs, root.a, root.g, "f2"), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

/* open, unlink, then everything by inode, as on ext4. */
static void test_at_unlinked(void **state)
{
	const char *img = t_mkfs("atu", 256ull << 20, 1u << 20);
	struct vmfs *fs = t_mount(img, "a");
	struct ino root = root_of(fs), f;
	struct vmfs_setattr sa = {.valid = VMFS_SET_SIZE | VMFS_SET_MODE | VMFS_SET_ATIME |
					   VMFS_SET_MTIME,
				  .size = 3,
				  .mode = 0640,
				  .atime_ns = 1000000000ull,
				  .mtime_ns = 2000000000ull};
	struct vmfs_file *fh;
	struct vmfs_stat st;
	char buf[16];

	(void)state;
	assert_int_equal(vmfs_create_at(fs, root.a, root.g, "f", O_CREAT | O_RDWR, 0644, NULL, &fh),
			 0);
	assert_int_equal(vmfs_write(fh, "abcdef", 6, 0), 6);
	f = look(fs, root, "f");
	assert_int_equal(vmfs_unlink_at(fs, root.a, root.g, "f"), 0);
	assert_int_equal(vmfs_lookup(fs, root.a, root.g, "f", &st), -ENOENT);
	assert_int_equal(vmfs_getattr_ino(fs, f.a, f.g, &st), 0);
	assert_int_equal(st.nlink, 0);
	assert_int_equal(st.size, 6);
	assert_int_equal(vmfs_fstat(fh, &st), 0);
	assert_int_equal(st.nlink, 0);
	assert_int_equal(vmfs_setattr_ino(fs, f.a, f.g, &sa), 0);
	assert_int_equal(vmfs_setxattr_ino(fs, f.a, f.g, "user.x", "1", 1, 0), 0);
	assert_int_equal(vmfs_getxattr_ino(fs, f.a, f.g, "user.x", buf, sizeof(buf)), 1);
	assert_int_equal(vmfs_getattr_ino(fs, f.a, f.g, &st), 0);
	assert_int_equal(st.size, 3);
	assert_int_equal(st.mode, S_IFREG | 0640);
	assert_int_equal(st.atime_ns, 1000000000ull);
	assert_int_equal(st.mtime_ns, 2000000000ull);
	assert_int_equal(vmfs_read(fh, buf, sizeof(buf), 0), 3);
	assert_int_equal(vmfs_close(fh), 0);
	/* freed at the last close */
	assert_int_equal(vmfs_getattr_ino(fs, f.a, f.g, &st), -ESTALE);
	assert_int_equal(vmfs_getattr_ino(fs, f.a, 0, &st), -ENOENT);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

/* Another mount removes a file, then reuses its FD: this mount's handle is
 * stale, and an O_TRUNC open through it leaves the new file alone. */
static void test_at_stale_multihost(void **state)
{
	const char *img = t_mkfs("ats", 256ull << 20, 1u << 20);
	struct vmfs *a = t_mount(img, "a"), *b = t_mount(img, "b");
	struct ino root = root_of(a), f, d, nf = {0, 0};
	struct vmfs_setattr sa = {.valid = VMFS_SET_SIZE, .size = 0};
	struct vmfs_file *fh;
	struct vmfs_stat st;
	char name[32];
	int i;

	(void)state;
	t_write_file(a, "/x", "0123456789", 10, 0);
	assert_int_equal(vmfs_mkdir(a, "/dir", 0755), 0);
	f = look(a, root, "x");
	d = look(a, root, "dir");
	assert_int_equal(vmfs_getattr_ino(a, f.a, f.g, &st), 0);
	assert_int_equal(vmfs_unlink(b, "/x"), 0);
	assert_int_equal(vmfs_rmdir(b, "/dir"), 0);
	assert_int_equal(vmfs_getattr_ino(a, f.a, f.g, &st), -ESTALE);
	assert_int_equal(vmfs_getattr_ino(a, f.a, 0, &st), -ENOENT);
	assert_int_equal(vmfs_lookup(a, d.a, d.g, "y", &st), -ENOENT);
	assert_int_equal(vmfs_lookup(a, d.a, 0, "y", &st), -ENOENT);
	assert_int_equal(vmfs_open_ino(a, f.a, f.g, O_RDWR | O_TRUNC, &fh), -ESTALE);
	/* b creates files until one gets the freed FD */
	for (i = 0; i < 4000 && nf.a != f.a; i++) {
		snprintf(name, sizeof(name), "/n%d", i);
		t_write_file(b, name, "new data", 8, 0);
		assert_int_equal(vmfs_getattr(b, name, &st), 0);
		nf = (struct ino){st.ino, st.generation};
	}
	assert_int_equal(nf.a, f.a);
	assert_true(nf.g != f.g);
	assert_int_equal(vmfs_getattr_ino(a, f.a, f.g, &st), -ESTALE);
	assert_int_equal(vmfs_open_ino(a, f.a, f.g, O_RDWR | O_TRUNC, &fh), -ESTALE);
	assert_int_equal(vmfs_setattr_ino(a, f.a, f.g, &sa), -ESTALE);
	assert_int_equal(vmfs_setxattr_ino(a, f.a, f.g, "user.a", "1", 1, 0), -ESTALE);
	assert_int_equal(vmfs_link_at(a, f.a, f.g, root.a, root.g, "l"), -ESTALE);
	t_check_file(b, name, "new data", 8, 0);
	assert_int_equal(vmfs_getattr_ino(a, nf.a, nf.g, &st), 0);
	assert_int_equal(st.size, 8);
	assert_int_equal(vmfs_umount(b), 0);
	assert_int_equal(vmfs_umount(a), 0);
	assert_int_equal(t_fsck(img), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_at_calls),
	    cmocka_unit_test(test_at_unlinked),
	    cmocka_unit_test(test_at_stale_multihost),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
