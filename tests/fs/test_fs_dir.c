/*
 * test_fs_dir.c - directories: mkdir/rmdir (ENOTEMPTY), lookup, readdir,
 * many entries (bucket splits and overflow chains), rename within and across
 * directories with an atomic replace, hard links, symlinks; fsck clean.
 */
#include "fstest.h"

#include "crc32c.h"

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
	/* the root exists (was "Device or resource busy") */
	assert_int_equal(vmfs_mkdir(fs, "/", 0755), -EEXIST);
	assert_int_equal(vmfs_mkdir(fs, "//", 0755), -EEXIST);
	assert_int_equal(vmfs_symlink(fs, "a", "/"), -EEXIST);
	assert_int_equal(vmfs_open(fs, "/", O_CREAT | O_RDWR, 0644, &(struct vmfs_file *){0}),
			 -EISDIR);
	assert_int_equal(vmfs_rmdir(fs, "/"), -EBUSY);
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

/* ---- growth from sub-blocks to file blocks ---------------------------------
 * With short names the directory holds 129 buckets after 4097 entries
 * (a split each time the load passes 32 per bucket) and its highest block
 * is then 257: the next insert moves it to FB mode (fs_dir.c): its 258
 * directory blocks are copied into two 1 MiB file blocks (256 each) and its
 * size jumps from about 1 MiB to 2 MiB. */
#define GROW_BASE 4097
#define GROW_MORE 60

static uint64_t dsize(struct vmfs *fs)
{
	struct vmfs_stat s;

	assert_int_equal(vmfs_getattr(fs, "/d", &s), 0);
	return s.size;
}

/* FB mode: two 1 MiB blocks (SB mode stays below 2 MiB here). */
static int converted(struct vmfs *fs)
{
	uint64_t sz = dsize(fs);

	return sz >= (2u << 20) && sz % (1u << 20) == 0;
}

static int mkfile(struct vmfs *fs, int i)
{
	struct vmfs_file *f;
	char p[32];
	int rc;

	snprintf(p, sizeof(p), "/d/f%05d", i);
	rc = vmfs_open(fs, p, O_CREAT | O_EXCL | O_WRONLY, 0644, &f);
	return rc ? rc : vmfs_close(f);
}

static int exists(struct vmfs *fs, int i)
{
	struct vmfs_stat s;
	char p[32];

	snprintf(p, sizeof(p), "/d/f%05d", i);
	return vmfs_getattr(fs, p, &s) == 0;
}

static char grow_base[4200];

static void grow_cleanup(void)
{
	if (grow_base[0] && getpid() == t_owner)
		unlink(grow_base);
}

/* Formats img (short heartbeat: crash cases wait for a dead victim) with
 * GROW_BASE entries in /d (SB mode); the first call keeps a copy in
 * grow_base, later ones restore it. */
static void grow_restore(const char *img);
static void grow_prepare(const char *img)
{
	char uri[4300], cmd[9000];
	struct vmfs *fs;

	if (grow_base[0]) {
		grow_restore(img);
		return;
	}

	snprintf(uri, sizeof(uri), "file:%s?direct=0", img);
	fs = t_mount(uri, "prep");
	assert_int_equal(vmfs_mkdir(fs, "/d", 0755), 0);
	for (int i = 0; i < GROW_BASE; i++)
		assert_int_equal(mkfile(fs, i), 0);
	assert_true(dsize(fs) < (2u << 20));
	assert_int_equal(vmfs_umount(fs), 0);
	snprintf(grow_base, sizeof(grow_base), "%s.base", img);
	atexit(grow_cleanup);
	snprintf(cmd, sizeof(cmd), "cp --sparse=always '%s' '%s'", img, grow_base);
	assert_int_equal(system(cmd), 0);
}

static void grow_restore(const char *img)
{
	char cmd[9000];

	snprintf(cmd, sizeof(cmd), "cp --sparse=always '%s' '%s'", grow_base, img);
	assert_int_equal(system(cmd), 0);
}

static void test_grow_to_fb(void **state)
{
	struct names *ns = calloc(1, sizeof(*ns));
	char uri[4300];
	const char *img;
	struct vmfs *fs;
	uint64_t sz;

	(void)state;
	t_nfds = 8192;
	t_hb_int = 100;
	t_hb_tmo = 800;
	img = t_mkfs("dirfb", 512ull << 20, 0);
	grow_prepare(img);
	snprintf(uri, sizeof(uri), "file:%s?direct=0", img);
	fs = t_mount(uri, "hostA");
	sz = dsize(fs);
	/* a rename within the directory moves it: the removal's changes are
	 * carried into the copy */
	assert_int_equal(vmfs_rename(fs, "/d/f00007", "/d/f09999"), 0);
	assert_true(converted(fs));
	assert_true(sz < (2u << 20));
	assert_int_equal(exists(fs, 7), 0);
	assert_int_equal(exists(fs, 9999), 1);
	for (int i = GROW_BASE; i < GROW_BASE + GROW_MORE; i++)
		assert_int_equal(mkfile(fs, i), 0);
	for (int i = 0; i < GROW_BASE + GROW_MORE; i++)
		assert_int_equal(exists(fs, i), i != 7);
	assert_int_equal(vmfs_readdir(fs, "/d", collect, ns), 0);
	assert_int_equal(ns->n, GROW_BASE + GROW_MORE + 2);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	/* an empty FB directory is removed and its blocks come back */
	fs = t_mount(uri, "hostA");
	for (int i = 0; i < GROW_BASE + GROW_MORE; i++) {
		char p[32];

		snprintf(p, sizeof(p), "/d/f%05d", i == 7 ? 9999 : i);
		assert_int_equal(vmfs_unlink(fs, p), 0);
	}
	assert_int_equal(vmfs_rmdir(fs, "/d"), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	free(ns);
}

/* Crashes at every flush of the inserts that move the directory to file
 * blocks and of the next ones (journaled directory blocks in the data
 * area); a survivor replays; every acknowledged create is there, fsck is
 * clean. */
static void test_grow_crash(void **state)
{
	struct vmfs_mount_opts so = {.hostname = "survivor", .no_recover = 1};
	struct vmfs_mount_opts vo = {.hostname = "victim"};
	int replayed = 0, nconv = 0;
	char uri[4400];
	const char *img = t_img;
	struct vmfs *fs;

	(void)state;
	if (!grow_base[0]) {
		t_nfds = 8192;
		t_hb_int = 100;
		t_hb_tmo = 800;
		img = t_mkfs("dirfb", 512ull << 20, 0);
		grow_prepare(img);
	}
	for (unsigned n = 1; n <= 12; n++) {
		int done = 0, rc;

		grow_restore(img);
		snprintf(uri, sizeof(uri), "crash:flush=%u,mode=random,seed=%u:file:%s?direct=0", n,
			 n * 13 + 5, img);
		rc = vmfs_mount(uri, &vo, &fs);
		if (rc == 0) {
			while (done < 4 && mkfile(fs, GROW_BASE + done) == 0)
				done++;
			vmfs_umount(fs); /* fails when the device died */
		}
		snprintf(uri, sizeof(uri), "file:%s?direct=0", img);
		assert_int_equal(vmfs_mount(uri, &so, &fs), 0);
		rc = vmfs_recover(fs);
		assert_true(rc >= 0);
		replayed += rc;
		for (int i = 0; i < GROW_BASE + done; i += i < GROW_BASE - 64 ? 61 : 1)
			assert_int_equal(exists(fs, i), 1);
		nconv += converted(fs);
		/* the survivor goes on inserting */
		for (int i = GROW_BASE + 4; i < GROW_BASE + 8; i++)
			assert_int_equal(mkfile(fs, i), 0);
		assert_int_equal(vmfs_umount(fs), 0);
		assert_int_equal(t_fsck(img), 0);
	}
	fprintf(stderr, "%d journals replayed, %d cases converted\n", replayed, nconv);
	assert_true(replayed >= 1);
	assert_true(nconv >= 1);
	unlink(grow_base);
	t_nfds = 0;
	t_hb_int = 250;
	t_hb_tmo = 2000;
}

/* A hostile journal: a dead host's committed transaction whose target is a
 * data-area block but whose image is not a directory block. Recovery must
 * refuse it (-EUCLEAN naming it) and leave the data block untouched. */
static void test_journal_data_target(void **state)
{
	struct vmfs_mount_opts so = {.hostname = "survivor"};
	struct vmfs_jd *jd = calloc(1, sizeof(*jd));
	uint8_t *blk = bdev_alloc(VMFS_UNIT), *img = bdev_alloc(VMFS_UNIT);
	struct vmfs_jc jc = {0};
	struct vmfs_statfs st;
	struct vmfs_jh jh;
	struct vmfs_vh vh;
	struct bdev *bd;
	struct vmfs *fs;
	const char *path;
	uint64_t joff, nlog;
	char why[256];
	int p[2], stat;
	uint32_t slot;
	pid_t pid;

	(void)state;
	t_hb_int = 100;
	t_hb_tmo = 800;
	path = t_mkfs("dirjd", 256ull << 20, 0);
	assert_int_equal(pipe(p), 0);
	pid = fork();
	if (pid == 0) { /* a host that mounts, reports its slot and dies */
		struct vmfs_mount_opts vo = {.hostname = "victim"};

		if (vmfs_mount(path, &vo, &fs) || vmfs_statfs(fs, &st) ||
		    write(p[1], &st.slot, sizeof(st.slot)) != sizeof(st.slot))
			_exit(1);
		for (;;)
			pause();
	}
	assert_int_equal(read(p[0], &slot, sizeof(slot)), (ssize_t)sizeof(slot));
	kill(pid, SIGKILL);
	waitpid(pid, &stat, 0);
	/* forge transaction head_txid at the head of its journal */
	assert_int_equal(bdev_open(path, 0, &bd), 0);
	assert_int_equal(vmfs_vh_read(bd, &vh, why, sizeof(why)), 0);
	joff = vmfs_journal_off(&vh, slot);
	nlog = vmfs_journal_nlog(vh.journal_size);
	assert_int_equal(bdev_read(bd, blk, joff, VMFS_UNIT), 0);
	assert_int_equal(bdev_read(bd, img, joff + VMFS_UNIT, VMFS_UNIT), 0);
	assert_int_equal(vmfs_jh_pick(blk, img, &vh, slot, &jh, NULL, why, sizeof(why)), 0);
	jd->txid = jh.head_txid;
	jd->nblocks = 1;
	jd->slot = slot;
	jd->journal_off = joff;
	jd->target[0] = vh.data_off;
	vmfs_jd_encode(jd, blk);
	assert_int_equal(vmfs_jd_decode(blk, &vh, jd, why, sizeof(why)), 0); /* well formed */
	jc.data_crc = crc32c(0, blk, VMFS_UNIT);
	assert_int_equal(bdev_write(bd, blk, joff + VMFS_UNIT * (2 + jh.head % nlog), VMFS_UNIT),
			 0);
	memset(img, 0xAB, VMFS_UNIT);
	jc.data_crc = crc32c(jc.data_crc, img, VMFS_UNIT);
	assert_int_equal(
	    bdev_write(bd, img, joff + VMFS_UNIT * (2 + (jh.head + 1) % nlog), VMFS_UNIT), 0);
	jc.txid = jd->txid;
	jc.nblocks = 1;
	vmfs_jc_encode(&jc, blk);
	assert_int_equal(
	    bdev_write(bd, blk, joff + VMFS_UNIT * (2 + (jh.head + 2) % nlog), VMFS_UNIT), 0);
	assert_int_equal(bdev_flush(bd), 0);
	assert_int_equal(vmfs_mount(path, &so, &fs), -EUCLEAN);
	assert_non_null(strstr(vmfs_errmsg(NULL), "not a directory block"));
	assert_int_equal(bdev_read(bd, img, vh.data_off, VMFS_UNIT), 0);
	for (unsigned i = 0; i < VMFS_UNIT; i++)
		assert_int_equal(img[i], 0);
	bdev_close(bd);
	close(p[0]);
	close(p[1]);
	bdev_free(blk);
	bdev_free(img);
	free(jd);
	t_hb_int = 250;
	t_hb_tmo = 2000;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mkdir_rmdir),
	    cmocka_unit_test(test_many),
	    cmocka_unit_test(test_rename),
	    cmocka_unit_test(test_links),
	    cmocka_unit_test(test_grow_to_fb),
	    cmocka_unit_test(test_grow_crash),
	    cmocka_unit_test(test_journal_data_target),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
