/*
 * test_fs_dir.c - directories: mkdir/rmdir (ENOTEMPTY), lookup, readdir,
 * many entries (bucket splits and overflow chains), rename within and across
 * directories with an atomic replace, hard links, symlinks; fsck clean.
 */
#include "fstest.h"

struct names {
	int n;
	char seen[4096][16];
};

static int collect(void *arg, const char *name, unsigned type, uint64_t ino)
{
	struct names *ns = arg;

	(void)type;
	(void)ino;
	if (ns->n < 4096)
		snprintf(ns->seen[ns->n], 16, "%s", name);
	ns->n++;
	return 0;
}

static int has(const struct names *ns, const char *name)
{
	for (int i = 0; i < ns->n && i < 4096; i++)
		if (!strcmp(ns->seen[i], name))
			return 1;
	return 0;
}

static void test_mkdir_rmdir(void **state)
{
	const char *img = t_mkfs("dir", 256ull << 20, 0);
	struct names *ns = calloc(1, sizeof(*ns));
	struct vmfs_stat s;
	struct vmfs *fs;

	(void)state;
	fs = t_mount(img, "hostA");
	assert_int_equal(vmfs_mkdir(fs, "/a", 0755), 0);
	assert_int_equal(vmfs_mkdir(fs, "/a", 0755), -EEXIST);
	assert_int_equal(vmfs_mkdir(fs, "/a/b", 0700), 0);
	assert_int_equal(vmfs_mkdir(fs, "/nope/b", 0700), -ENOENT);
	t_write_file(fs, "/a/b/f", "data", 4, 0);
	assert_int_equal(vmfs_mkdir(fs, "/a/b/f/x", 0700), -ENOTDIR);
	assert_int_equal(vmfs_getattr(fs, "/a", &s), 0);
	assert_int_equal(s.nlink, 3);
	assert_int_equal(vmfs_getattr(fs, "/", &s), 0);
	assert_int_equal(s.nlink, 3);
	assert_int_equal(vmfs_rmdir(fs, "/a"), -ENOTEMPTY);
	assert_int_equal(vmfs_open(fs, "/a", O_RDONLY, 0, &(struct vmfs_file *){0}), -EISDIR);
	assert_int_equal(vmfs_rmdir(fs, "/a/b/f"), -ENOTDIR);
	assert_int_equal(vmfs_unlink(fs, "/a/b"), -EISDIR);
	assert_int_equal(vmfs_readdir(fs, "/a/b", collect, ns), 0);
	assert_int_equal(ns->n, 3);
	assert_true(has(ns, ".") && has(ns, "..") && has(ns, "f"));
	assert_int_equal(vmfs_unlink(fs, "/a/b/f"), 0);
	assert_int_equal(vmfs_rmdir(fs, "/a/b"), 0);
	assert_int_equal(vmfs_getattr(fs, "/a", &s), 0);
	assert_int_equal(s.nlink, 2);
	assert_int_equal(vmfs_rmdir(fs, "/a"), 0);
	assert_int_equal(vmfs_rmdir(fs, "/"), -EBUSY);
	assert_int_equal(vmfs_getattr(fs, "/", &s), 0);
	assert_int_equal(s.nlink, 2);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	free(ns);
}

static void test_many(void **state)
{
	const char *img = t_mkfs("dir", 2ull << 30, 0);
	struct names *ns = calloc(1, sizeof(*ns));
	const int n = 600;
	char p[64];
	struct vmfs_stat s;
	struct vmfs *fs;

	(void)state;
	fs = t_mount(img, "hostA");
	assert_int_equal(vmfs_mkdir(fs, "/d", 0755), 0);
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "/d/file-%05d", i);
		struct vmfs_file *f;
		int rc = vmfs_open(fs, p, O_CREAT | O_EXCL | O_WRONLY, 0644, &f);

		if (rc)
			fprintf(stderr, "%s: %s: %s\n", p, vmfs_strerror(rc), vmfs_errmsg(fs));
		assert_int_equal(rc, 0);
		assert_int_equal(vmfs_write(f, p, 8, 0), 8);
		assert_int_equal(vmfs_close(f), 0);
	}
	assert_int_equal(vmfs_readdir(fs, "/d", collect, ns), 0);
	assert_int_equal(ns->n, n + 2);
	for (int i = 0; i < n; i += 7) {
		snprintf(p, sizeof(p), "/d/file-%05d", i);
		assert_int_equal(vmfs_getattr(fs, p, &s), 0);
		assert_true(S_ISREG(s.mode));
		t_check_file(fs, p, p, 8, 0);
	}
	assert_int_equal(vmfs_getattr(fs, "/d", &s), 0);
	assert_int_equal(s.nlink, 2);
	assert_true(s.size > 8192); /* buckets were split */
	for (int i = 0; i < n; i += 2) {
		snprintf(p, sizeof(p), "/d/file-%05d", i);
		assert_int_equal(vmfs_unlink(fs, p), 0);
	}
	assert_int_equal(vmfs_getattr(fs, "/d/file-00000", &s), -ENOENT);
	assert_int_equal(vmfs_getattr(fs, "/d/file-00001", &s), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	free(ns);
}

static void test_rename(void **state)
{
	const char *img = t_mkfs("dir", 256ull << 20, 0);
	struct vmfs_statfs st0, st1;
	struct vmfs_stat s, s2;
	struct vmfs *fs;
	char big[100000];

	(void)state;
	t_fill((uint8_t *)big, sizeof(big), 5);
	fs = t_mount(img, "hostA");
	assert_int_equal(vmfs_mkdir(fs, "/x", 0755), 0);
	assert_int_equal(vmfs_mkdir(fs, "/y", 0755), 0);
	t_write_file(fs, "/x/a", "AAAA", 4, 0);
	t_write_file(fs, "/y/b", big, sizeof(big), 0);
	/* within a directory */
	assert_int_equal(vmfs_rename(fs, "/x/a", "/x/a2"), 0);
	assert_int_equal(vmfs_getattr(fs, "/x/a", &s), -ENOENT);
	t_check_file(fs, "/x/a2", "AAAA", 4, 0);
	assert_int_equal(vmfs_statfs(fs, &st0), 0);
	/* across directories, replacing a file: its space is freed */
	assert_int_equal(vmfs_rename(fs, "/x/a2", "/y/b"), 0);
	t_check_file(fs, "/y/b", "AAAA", 4, 0);
	assert_int_equal(vmfs_getattr(fs, "/x/a2", &s), -ENOENT);
	assert_int_equal(vmfs_statfs(fs, &st1), 0);
	assert_int_equal(st1.files_free, st0.files_free + 1);
	/* a directory across directories: parent link counts follow */
	assert_int_equal(vmfs_mkdir(fs, "/x/sub", 0755), 0);
	assert_int_equal(vmfs_rename(fs, "/x/sub", "/y/sub"), 0);
	assert_int_equal(vmfs_getattr(fs, "/x", &s), 0);
	assert_int_equal(s.nlink, 2);
	assert_int_equal(vmfs_getattr(fs, "/y", &s), 0);
	assert_int_equal(s.nlink, 3);
	/* into its own subtree */
	assert_int_equal(vmfs_rename(fs, "/y", "/y/sub/in"), -EINVAL);
	/* type mismatches, non-empty target */
	assert_int_equal(vmfs_rename(fs, "/y/sub", "/y/b"), -ENOTDIR);
	assert_int_equal(vmfs_rename(fs, "/y/b", "/y/sub"), -EISDIR);
	assert_int_equal(vmfs_rename(fs, "/x", "/y"), -ENOTEMPTY);
	/* an empty directory replaces an empty one */
	assert_int_equal(vmfs_rename(fs, "/x", "/y/sub"), 0);
	assert_int_equal(vmfs_getattr(fs, "/", &s), 0);
	assert_int_equal(s.nlink, 3);
	assert_int_equal(vmfs_getattr(fs, "/y/sub", &s2), 0);
	assert_true(S_ISDIR(s2.mode));
	assert_int_equal(vmfs_rename(fs, "/nope", "/z"), -ENOENT);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

static void test_links(void **state)
{
	const char *img = t_mkfs("dir", 256ull << 20, 0);
	char buf[64];
	struct vmfs_stat s;
	struct vmfs *fs;

	(void)state;
	fs = t_mount(img, "hostA");
	t_write_file(fs, "/f", "hello", 5, 0);
	assert_int_equal(vmfs_mkdir(fs, "/d", 0755), 0);
	assert_int_equal(vmfs_link(fs, "/f", "/d/g"), 0);
	assert_int_equal(vmfs_link(fs, "/f", "/d/g"), -EEXIST);
	assert_int_equal(vmfs_link(fs, "/d", "/d2"), -EPERM);
	assert_int_equal(vmfs_getattr(fs, "/f", &s), 0);
	assert_int_equal(s.nlink, 2);
	assert_int_equal(vmfs_unlink(fs, "/f"), 0);
	t_check_file(fs, "/d/g", "hello", 5, 0);
	assert_int_equal(vmfs_getattr(fs, "/d/g", &s), 0);
	assert_int_equal(s.nlink, 1);
	assert_int_equal(vmfs_symlink(fs, "/d/g", "/ln"), 0);
	assert_int_equal(vmfs_symlink(fs, "x", "/ln"), -EEXIST);
	assert_int_equal(vmfs_readlink(fs, "/ln", buf, sizeof(buf)), 4);
	assert_string_equal(buf, "/d/g");
	assert_int_equal(vmfs_readlink(fs, "/d/g", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(vmfs_getattr(fs, "/ln", &s), 0);
	assert_true(S_ISLNK(s.mode));
	assert_int_equal(s.size, 4);
	assert_int_equal(vmfs_open(fs, "/ln", O_RDONLY, 0, &(struct vmfs_file *){0}), -ELOOP);
	assert_int_equal(vmfs_unlink(fs, "/ln"), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mkdir_rmdir),
	    cmocka_unit_test(test_many),
	    cmocka_unit_test(test_rename),
	    cmocka_unit_test(test_links),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
