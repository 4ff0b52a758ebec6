/*
 * test_fs_special.c - special files and long symlinks: vmfs_mknod() of
 * every type (FIFO, character and block device, socket, regular file) with
 * its mode, device number and owner; getattr, readdir types, chmod, chown,
 * link, rename (also over another special file), unlink; vmfs_open() and
 * vmfs_truncate() refuse them; all of it survives a remount and leaves
 * fsck clean; a special file whose inode carries data is -EUCLEAN, reported
 * by fsck and repaired by fsck -y. Symlink targets up to 4095 bytes
 * (inline up to 3840, a sub-block beyond) read back exactly, and the
 * sub-block is freed with the link.
 */
#include "fstest.h"

#include <sys/sysmacros.h>

struct node {
	const char *path;
	uint32_t mode; /* S_IFMT | permissions */
	uint64_t rdev;
	uint32_t ftype; /* readdir type */
};

static const struct node nodes[] = {
    {"/fifo", S_IFIFO | 0640, 0, VMFS_FT_FIFO},
    {"/chr", S_IFCHR | 0600, 0, VMFS_FT_CHR}, /* rdev set below (makedev) */
    {"/blk", S_IFBLK | 0660, 0, VMFS_FT_BLK},
    {"/bigdev", S_IFCHR | 0644, 0, VMFS_FT_CHR},
    {"/sock", S_IFSOCK | 0755, 0, VMFS_FT_SOCK},
    {"/reg", S_IFREG | 0644, 0, VMFS_FT_REG},
    {"/plain", 0600, 0, VMFS_FT_REG}, /* no S_IFMT: a regular file */
};
#define NNODES (sizeof(nodes) / sizeof(nodes[0]))

static uint64_t node_rdev(size_t i)
{
	if (!strcmp(nodes[i].path, "/chr"))
		return makedev(1, 3);
	if (!strcmp(nodes[i].path, "/blk"))
		return makedev(8, 17);
	if (!strcmp(nodes[i].path, "/bigdev"))
		return makedev(4095, 1048575); /* Linux's largest */
	return 0;
}

static uint32_t want_mode(size_t i)
{
	return nodes[i].mode & S_IFMT ? nodes[i].mode : nodes[i].mode | S_IFREG;
}

static void want_node(struct vmfs *fs, const char *path, size_t i, uint32_t uid, uint32_t gid,
		      uint32_t nlink)
{
	struct vmfs_stat st;

	assert_int_equal(vmfs_getattr(fs, path, &st), 0);
	assert_int_equal(st.mode, want_mode(i));
	assert_int_equal(st.rdev, node_rdev(i));
	assert_int_equal(st.uid, uid);
	assert_int_equal(st.gid, gid);
	assert_int_equal(st.nlink, nlink);
	assert_int_equal(st.size, 0);
	assert_int_equal(st.blocks, 0);
}

struct seen {
	char names[16][32];
	unsigned types[16];
	int n;
};

static int seen_cb(void *arg, const char *name, unsigned type, uint64_t ino)
{
	struct seen *s = arg;

	(void)ino;
	if (s->n < 16) {
		snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
		s->types[s->n++] = type;
	}
	return 0;
}

static int seen_type(const struct seen *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->names[i], name))
			return (int)s->types[i];
	return -1;
}

static void test_special_types(void **state)
{
	const char *img = t_mkfs("special", 64ull << 20, 0);
	struct vmfs_owner own = {1234, 5678};
	struct vmfs_file *f;
	struct vmfs_stat st;
	struct seen s = {0};
	struct vmfs *fs;

	(void)state;
	fs = t_mount(img, "a");
	for (size_t i = 0; i < NNODES; i++) {
		int rc = vmfs_mknod_as(fs, nodes[i].path, nodes[i].mode, node_rdev(i), &own);

		if (rc)
			fail_msg("mknod %s: %s", nodes[i].path, vmfs_strerror(rc));
		want_node(fs, nodes[i].path, i, 1234, 5678, 1);
	}
	/* a device number on a FIFO is ignored; mknod without owner: the mount's */
	assert_int_equal(vmfs_mknod(fs, "/fifo2", S_IFIFO | 0600, makedev(5, 5)), 0);
	assert_int_equal(vmfs_getattr(fs, "/fifo2", &st), 0);
	assert_int_equal(st.rdev, 0);
	assert_int_equal(st.mode, S_IFIFO | 0600);
	assert_int_equal(st.uid, 0);
	/* what mknod cannot make, and names that exist */
	assert_int_equal(vmfs_mknod(fs, "/d", S_IFDIR | 0755, 0), -EINVAL);
	assert_int_equal(vmfs_mknod(fs, "/l", S_IFLNK | 0777, 0), -EINVAL);
	assert_int_equal(vmfs_mknod(fs, "/x", 0170000 | 0644, 0), -EINVAL);
	assert_int_equal(vmfs_mknod(fs, "/fifo", S_IFIFO | 0644, 0), -EEXIST);
	assert_int_equal(vmfs_mknod(fs, "/nodir/x", S_IFIFO | 0644, 0), -ENOENT);
	assert_int_equal(vmfs_getattr(fs, "/d", &st), -ENOENT);

	/* readdir reports each type */
	assert_int_equal(vmfs_readdir(fs, "/", seen_cb, &s), 0);
	for (size_t i = 0; i < NNODES; i++)
		assert_int_equal(seen_type(&s, nodes[i].path + 1), (int)nodes[i].ftype);
	assert_int_equal(vmfs_ftype_mode(VMFS_FT_FIFO), S_IFIFO);
	assert_int_equal(vmfs_ftype_mode(VMFS_FT_CHR), S_IFCHR);
	assert_int_equal(vmfs_ftype_mode(VMFS_FT_BLK), S_IFBLK);
	assert_int_equal(vmfs_ftype_mode(VMFS_FT_SOCK), S_IFSOCK);
	assert_int_equal(vmfs_ftype_mode(99), 0);

	/* no data: open and truncate refuse them; the regular ones open */
	for (size_t i = 0; i < NNODES; i++) {
		int want = nodes[i].ftype == VMFS_FT_REG ? 0 : -ENXIO;

		assert_int_equal(vmfs_open(fs, nodes[i].path, O_RDONLY, 0, &f), want);
		if (!want)
			assert_int_equal(vmfs_close(f), 0);
		assert_int_equal(vmfs_open(fs, nodes[i].path, O_RDWR | O_CREAT | O_TRUNC, 0644, &f),
				 want);
		if (!want)
			assert_int_equal(vmfs_close(f), 0);
		assert_int_equal(vmfs_truncate(fs, nodes[i].path, 10),
				 nodes[i].ftype == VMFS_FT_REG ? 0 : -EINVAL);
		if (!want)
			assert_int_equal(vmfs_truncate(fs, nodes[i].path, 0), 0);
	}

	/* chmod / chown keep the type and the device number */
	assert_int_equal(vmfs_chmod(fs, "/blk", 04751), 0);
	assert_int_equal(vmfs_chown(fs, "/blk", 7, 8), 0);
	assert_int_equal(vmfs_getattr(fs, "/blk", &st), 0);
	assert_int_equal(st.mode, S_IFBLK | 04751);
	assert_int_equal(st.rdev, makedev(8, 17));
	assert_int_equal(st.uid, 7);
	assert_int_equal(st.gid, 8);
	assert_int_equal(vmfs_chmod(fs, "/blk", 0660), 0);
	assert_int_equal(vmfs_chown(fs, "/blk", 1234, 5678), 0);

	/* link, rename across directories, rename over another special file */
	assert_int_equal(vmfs_link(fs, "/chr", "/chr.link"), 0);
	want_node(fs, "/chr.link", 1, 1234, 5678, 2);
	assert_int_equal(vmfs_mkdir(fs, "/d", 0755), 0);
	assert_int_equal(vmfs_rename(fs, "/chr.link", "/d/chr2"), 0);
	want_node(fs, "/d/chr2", 1, 1234, 5678, 2);
	assert_int_equal(vmfs_getattr(fs, "/chr.link", &st), -ENOENT);
	assert_int_equal(vmfs_rename(fs, "/fifo2", "/d/sock2"), 0);
	assert_int_equal(vmfs_mknod(fs, "/d/sock3", S_IFSOCK | 0700, 0), 0);
	assert_int_equal(vmfs_rename(fs, "/d/sock2", "/d/sock3"), 0); /* FIFO replaces socket */
	assert_int_equal(vmfs_getattr(fs, "/d/sock3", &st), 0);
	assert_int_equal(st.mode, S_IFIFO | 0600);
	assert_int_equal(vmfs_rename(fs, "/d/sock3", "/d"), -EISDIR);
	memset(&s, 0, sizeof(s));
	assert_int_equal(vmfs_readdir(fs, "/d", seen_cb, &s), 0);
	assert_int_equal(seen_type(&s, "chr2"), VMFS_FT_CHR);
	assert_int_equal(seen_type(&s, "sock3"), VMFS_FT_FIFO);
	assert_int_equal(seen_type(&s, "sock2"), -1);
	assert_int_equal(vmfs_rmdir(fs, "/d"), -ENOTEMPTY);
	assert_int_equal(vmfs_unlink(fs, "/d/chr2"), 0);
	assert_int_equal(vmfs_unlink(fs, "/d/sock3"), 0);
	assert_int_equal(vmfs_rmdir(fs, "/d"), 0);
	want_node(fs, "/chr", 1, 1234, 5678, 1);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);

	/* remount: everything as it was; then unlink all, fsck finds no leak */
	fs = t_mount(img, "b");
	for (size_t i = 0; i < NNODES; i++)
		want_node(fs, nodes[i].path, i, 1234, 5678, 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(vmfs_readdir(fs, "/", seen_cb, &s), 0);
	for (size_t i = 0; i < NNODES; i++)
		assert_int_equal(seen_type(&s, nodes[i].path + 1), (int)nodes[i].ftype);
	for (size_t i = 0; i < NNODES; i++)
		assert_int_equal(vmfs_unlink(fs, nodes[i].path), 0);
	assert_int_equal(vmfs_getattr(fs, "/fifo", &st), -ENOENT);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

/* Rewrites the inode block of `path` through fn (decoded, changed,
 * re-encoded with a valid CRC). */
static void poke_inode(const char *img, uint64_t ino, void (*fn)(struct vmfs_fd *))
{
	uint8_t blk[4096];
	struct vmfs_vh vh;
	struct vmfs_fd fd;
	struct bdev *bd;
	char why[256];
	int h;

	assert_int_equal(bdev_open(img, 0, &bd), 0);
	assert_int_equal(vmfs_vh_read(bd, &vh, why, sizeof(why)), 0);
	bdev_close(bd);
	h = open(img, O_RDWR);
	assert_true(h >= 0);
	assert_int_equal(pread(h, blk, 4096, (off_t)(vmfs_addr_off(&vh, ino) + 4096)), 4096);
	assert_int_equal(vmfs_fd_decode(blk, &vh, &fd, why, sizeof(why)), 0);
	fn(&fd);
	vmfs_fd_encode(&fd, blk);
	assert_int_equal(pwrite(h, blk, 4096, (off_t)(vmfs_addr_off(&vh, ino) + 4096)), 4096);
	close(h);
}

static void fifo_with_data(struct vmfs_fd *fd)
{
	fd->size = 3;
	memcpy(fd->u.data, "abc", 3);
}

static void fifo_with_rdev(struct vmfs_fd *fd)
{
	fd->rdev_minor = 9;
}

struct probs {
	int n, special, rdev;
};

static void count_prob(void *arg, const char *region, const char *msg)
{
	struct probs *p = arg;

	(void)region;
	p->n++;
	p->special += strstr(msg, "special file (type 4) with data") != NULL;
	p->rdev += strstr(msg, "device number on a non-device") != NULL;
}

static void test_special_corrupt(void **state)
{
	const char *img = t_mkfs("specbad", 64ull << 20, 0);
	void (*pokes[])(struct vmfs_fd *) = {fifo_with_data, fifo_with_rdev};
	struct vmfs_check_stats cs;
	struct vmfs_stat st;
	struct vmfs *fs;
	struct bdev *bd;
	unsigned fixed;

	(void)state;
	for (int k = 0; k < 2; k++) {
		struct probs p = {0};

		fs = t_mount(img, "a");
		assert_int_equal(vmfs_mknod(fs, "/p", S_IFIFO | 0644, 0), 0);
		assert_int_equal(vmfs_getattr(fs, "/p", &st), 0);
		assert_int_equal(vmfs_umount(fs), 0);
		assert_int_equal(t_fsck(img), 0);
		poke_inode(img, st.ino, pokes[k]);

		fs = t_mount(img, "a");
		assert_int_equal(vmfs_getattr(fs, "/p", &st), -EUCLEAN);
		assert_non_null(strstr(vmfs_errmsg(fs), k ? "device number" : "special file"));
		assert_int_equal(vmfs_umount(fs), 0);

		assert_int_equal(bdev_open(img, 0, &bd), 0);
		assert_true(vmfs_check(bd, 0, count_prob, &p, &cs, &fixed) > 0);
		assert_int_equal(k ? p.rdev : p.special, 1);
		assert_int_equal(vmfs_check(bd, VMFS_CHECK_REPAIR, t_problem, NULL, &cs, &fixed),
				 0);
		assert_int_equal(fixed, 1);
		bdev_close(bd);
		assert_int_equal(t_fsck(img), 0);

		fs = t_mount(img, "a");
		assert_int_equal(vmfs_getattr(fs, "/p", &st), 0);
		assert_int_equal(st.mode, S_IFIFO | 0644);
		assert_int_equal(st.size, 0);
		assert_int_equal(st.rdev, 0);
		assert_int_equal(vmfs_unlink(fs, "/p"), 0);
		assert_int_equal(vmfs_umount(fs), 0);
	}
}

static void want_link(struct vmfs *fs, const char *path, const char *target)
{
	size_t n = strlen(target);
	char buf[VMFS_SYMLINK_MAX + 16], small[8];
	struct vmfs_stat st;

	memset(buf, 'Z', sizeof(buf));
	assert_int_equal(vmfs_readlink(fs, path, buf, sizeof(buf)), (int)n);
	assert_int_equal(strlen(buf), n);
	assert_memory_equal(buf, target, n + 1);
	assert_int_equal(vmfs_readlink(fs, path, small, sizeof(small)), (int)n);
	assert_memory_equal(small, target, n < 7 ? n : 7);
	assert_int_equal(small[n < 7 ? n : 7], 0);
	assert_int_equal(vmfs_getattr(fs, path, &st), 0);
	assert_int_equal(st.mode, S_IFLNK | 0777);
	assert_int_equal(st.size, n);
}

static void test_symlink_long(void **state)
{
	const char *img = t_mkfs("longlink", 64ull << 20, 0);
	static const size_t lens[] = {1, 3839, 3840, 3841, 4000, 4095};
	char target[VMFS_SYMLINK_MAX + 2], path[32];
	struct vmfs_file *f;
	struct vmfs *fs;

	(void)state;
	fs = t_mount(img, "a");
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (size_t j = 0; j < lens[i]; j++)
			target[j] = j % 64 == 63 ? '/' : (char)('a' + (j * 7 + i) % 26);
		target[lens[i]] = 0;
		snprintf(path, sizeof(path), "/l%zu", lens[i]);
		assert_int_equal(vmfs_symlink(fs, target, path), 0);
		want_link(fs, path, target);
	}
	memset(target, 'x', VMFS_SYMLINK_MAX + 1);
	target[VMFS_SYMLINK_MAX + 1] = 0;
	assert_int_equal(vmfs_symlink(fs, target, "/toolong"), -ENAMETOOLONG);
	assert_int_equal(vmfs_symlink(fs, "", "/empty"), -ENOENT);
	/* a symlink is not opened nor truncated (an FB-mode symlink cannot be made) */
	assert_int_equal(vmfs_open(fs, "/l4095", O_RDONLY, 0, &f), -ELOOP);
	assert_int_equal(vmfs_truncate(fs, "/l4095", 1 << 24), -EINVAL);
	assert_int_equal(vmfs_rename(fs, "/l4095", "/moved"), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);

	fs = t_mount(img, "b");
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (size_t j = 0; j < lens[i]; j++)
			target[j] = j % 64 == 63 ? '/' : (char)('a' + (j * 7 + i) % 26);
		target[lens[i]] = 0;
		snprintf(path, sizeof(path), lens[i] == 4095 ? "/moved" : "/l%zu", lens[i]);
		want_link(fs, path, target);
		assert_int_equal(vmfs_unlink(fs, path), 0);
	}
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0); /* the sub-blocks were freed: no leak */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_special_types),
	    cmocka_unit_test(test_special_corrupt),
	    cmocka_unit_test(test_symlink_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
