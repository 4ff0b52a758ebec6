/*
 * test_fs_volgrow.c - growing a mounted volume (vmfs_grow, fs_volume.c) and
 * tuning it (vmfs_tune): two hosts mounted on an image file; the volume is
 * filled, the image extended (truncate), host A grows the volume; host B
 * sees the new size at statfs and allocates beyond the old end, reads
 * what A wrote there; a second grow adds FB clusters in the data area
 * (INCOMPAT_FBX); files written before and after are intact, fsck clean.
 * Crash points of a grow (crash backend, every flush): a fresh mount
 * replays, the volume is the old or the new size, fsck clean. Tune: label
 * at any time, heartbeat timing refused while another host is mounted,
 * and the tuning mount leaves afterwards.
 */
#include "fstest.h"

#define MIB (1ull << 20)

static void resize(const char *img, uint64_t size)
{
	assert_int_equal(truncate(img, (off_t)size), 0);
}

/* Allocates file blocks into path (TBZ, nothing written) until ENOSPC. */
static void fill(struct vmfs *fs, const char *path)
{
	struct vmfs_file *f;
	uint64_t off = 0;
	int rc;

	assert_int_equal(vmfs_open(fs, path, O_RDWR | O_CREAT, 0644, &f), 0);
	while ((rc = vmfs_fallocate(f, 0, off, MIB)) == 0)
		off += MIB;
	assert_int_equal(rc, -ENOSPC);
	while (vmfs_fallocate(f, 0, off, 64 << 10) == 0) /* the last blocks */
		off += 64 << 10;
	assert_int_equal(vmfs_close(f), 0);
}

static uint64_t free_blocks(struct vmfs *fs, uint64_t *total)
{
	struct vmfs_statfs st;

	assert_int_equal(vmfs_statfs(fs, &st), 0);
	if (total)
		*total = st.blocks;
	return st.blocks_free;
}

static void disk_header(const char *img, struct vmfs_vh *vh)
{
	struct bdev *bd;
	char why[256];

	assert_int_equal(bdev_open(img, BDEV_O_RDONLY, &bd), 0);
	assert_int_equal(vmfs_vh_read(bd, vh, why, sizeof(why)), 0);
	assert_int_equal(vh->from_backup, 0);
	bdev_close(bd);
}

static void test_grow_two_hosts(void **state)
{
	const char *img = t_mkfs("volgrow", 64 * MIB, 64 << 10);
	static uint8_t d1[256 << 10], d2[256 << 10], d3[1 << 20], d4[300 << 10];
	struct vmfs *a, *b;
	struct vmfs_grow_info gi;
	struct vmfs_vh vh;
	uint64_t total0, total1, total;

	(void)state;
	t_fill(d1, sizeof(d1), 1);
	t_fill(d2, sizeof(d2), 2);
	t_fill(d3, sizeof(d3), 3);
	t_fill(d4, sizeof(d4), 4);
	a = t_mount(img, "hostA");
	b = t_mount(img, "hostB");
	t_write_file(a, "/before", d1, sizeof(d1), 0);
	t_write_file(b, "/b-before", d2, sizeof(d2), 0);
	fill(b, "/fill");
	assert_int_equal(free_blocks(b, &total0), 0);

	/* the image grows; A grows the volume into it (one FB cluster at 64
	 * KiB blocks covers 512 MiB: 600 MiB needs a second one) */
	resize(img, 600 * MIB);
	assert_int_equal(vmfs_grow(a, 0, &gi), 0);
	assert_int_equal(gi.old_size, 64 * MIB);
	assert_int_equal(gi.new_size, 600 * MIB);
	assert_true(gi.new_blocks > gi.old_blocks);
	assert_int_equal(gi.new_clusters, 1);
	assert_int_equal(vmfs_grow(a, 0, &gi), 0); /* again: nothing to do */
	assert_int_equal(gi.new_size, gi.old_size);
	assert_int_equal(vmfs_grow(a, 32 * MIB, NULL), -EINVAL); /* never shrinks */
	assert_int_equal(vmfs_grow(a, 2048 * MIB, NULL), -ENOSPC);

	/* B sees it at statfs and allocates beyond the old end */
	assert_true(free_blocks(b, &total1) > 0);
	assert_true(total1 > total0);
	t_write_file(b, "/after", d3, sizeof(d3), 0);
	fill(b, "/fill2"); /* the rest: the new cluster 1 included */
	assert_int_equal(free_blocks(b, NULL), 0);

	/* a second grow extends the last cluster, which lives in the data
	 * area; A writes there and B, still at the old size, reads it (it
	 * learns the size from the address) */
	resize(img, 700 * MIB);
	assert_int_equal(vmfs_grow(a, 650 * MIB, &gi), 0);
	assert_int_equal(gi.new_size, 650 * MIB);
	assert_int_equal(gi.new_clusters, 0);
	t_write_file(a, "/a-after", d4, sizeof(d4), 0);
	t_check_file(b, "/a-after", d4, sizeof(d4), 0);
	assert_int_equal(vmfs_grow(b, 0, &gi), 0); /* B grows the rest */
	assert_int_equal(gi.old_size, 650 * MIB);
	assert_int_equal(gi.new_size, 700 * MIB);
	t_write_file(a, "/a-after2", d1, sizeof(d1), 0);

	t_check_file(a, "/before", d1, sizeof(d1), 0);
	t_check_file(a, "/b-before", d2, sizeof(d2), 0);
	t_check_file(a, "/after", d3, sizeof(d3), 0);
	t_check_file(b, "/before", d1, sizeof(d1), 0);
	t_check_file(b, "/a-after2", d1, sizeof(d1), 0);
	assert_int_equal(vmfs_umount(b), 0);
	assert_int_equal(vmfs_umount(a), 0);
	assert_int_equal(t_fsck(img), 0);

	disk_header(img, &vh);
	assert_int_equal(vh.vol_size, 700 * MIB);
	assert_true(vh.incompat & VMFS_INCOMPAT_FBX);
	a = t_mount(img, "hostA");
	free_blocks(a, &total);
	assert_int_equal(total, vh.nblocks);
	t_check_file(a, "/after", d3, sizeof(d3), 0);
	t_check_file(a, "/a-after", d4, sizeof(d4), 0);
	assert_int_equal(vmfs_unlink(a, "/fill"), 0);
	assert_int_equal(vmfs_unlink(a, "/fill2"), 0);
	assert_int_equal(vmfs_umount(a), 0);
	assert_int_equal(t_fsck(img), 0);
}

/* A grow within the FB cluster mkfs made needs no new feature: old
 * readers still read the volume. */
static void test_grow_small(void **state)
{
	const char *img = t_mkfs("volgrow", 64 * MIB, 64 << 10);
	struct vmfs_vh vh;
	struct vmfs *a;

	(void)state;
	resize(img, 96 * MIB + 5000);
	a = t_mount(img, "hostA");
	assert_int_equal(vmfs_grow(a, 0, NULL), 0);
	assert_int_equal(vmfs_umount(a), 0);
	disk_header(img, &vh);
	assert_int_equal(vh.vol_size, 96 * MIB + 4096);
	assert_false(vh.incompat & VMFS_INCOMPAT_FBX);
	assert_int_equal(t_fsck(img), 0);
}

static void check_keep(struct vmfs *fs, const uint8_t *d, size_t n)
{
	struct vmfs_file *f;
	uint8_t *got = malloc(n);
	int rc;

	assert_non_null(got);
	assert_int_equal(vmfs_open(fs, "/keep", O_RDONLY, 0, &f), 0);
	rc = (int)vmfs_read(f, got, n, 0);
	vmfs_close(f);
	assert_int_equal(rc, (int)n);
	assert_memory_equal(got, d, n);
	free(got);
}

/* A grow that dies at each flush: a fresh mount replays; the volume is
 * the old or the new size, what was there is intact, fsck clean, and the
 * space it has is usable. */
static void test_grow_crash(void **state)
{
	static uint8_t d[200 << 10];
	int olds = 0, news = 0;

	(void)state;
	t_fill(d, sizeof(d), 7);
	for (unsigned n = 1; n < 80; n++) {
		const char *img = t_mkfs("volgrow", 64 * MIB, 64 << 10);
		struct vmfs_mount_opts o = {.hostname = "victim"};
		char uri[4300];
		struct vmfs *fs;
		struct vmfs_vh vh;
		int rc, clean;

		fs = t_mount(img, "prep");
		t_write_file(fs, "/keep", d, sizeof(d), 0);
		fill(fs, "/fill");
		assert_int_equal(vmfs_umount(fs), 0);
		resize(img, 600 * MIB);
		snprintf(uri, sizeof(uri), "crash:flush=%u,mode=random,seed=%u:%s", n, n, img);
		rc = vmfs_mount(uri, &o, &fs);
		clean = 0;
		if (!rc) {
			rc = vmfs_grow(fs, 0, NULL);
			clean = vmfs_umount(fs) == 0 && rc == 0;
		}
		fs = t_mount(img, "survivor");
		check_keep(fs, d, sizeof(d));
		if (free_blocks(fs, NULL)) /* grown: the new space takes data */
			t_write_file(fs, "/new", d, sizeof(d), 0);
		assert_int_equal(vmfs_umount(fs), 0);
		disk_header(img, &vh);
		assert_true(vh.vol_size == 64 * MIB || vh.vol_size == 600 * MIB);
		if (vh.vol_size == 64 * MIB)
			olds++;
		else
			news++;
		if (t_fsck(img))
			fprintf(stderr, "crash at flush %u: fsck not clean\n", n);
		assert_int_equal(t_fsck(img), 0);
		if (clean)
			break;
	}
	fprintf(stderr, "grow crash points: %d old size, %d new size\n", olds, news);
	assert_true(olds > 0 && news > 0);
}

/* Makes the on-disk header (both copies) say the volume is `size` bytes. */
static void force_header(const char *img, uint64_t size)
{
	uint8_t *buf = bdev_alloc(VMFS_UNIT);
	struct vmfs_vh vh;
	struct bdev *bd;

	disk_header(img, &vh);
	resize(img, size);
	vh.vol_size = size;
	vh.backup_off = size - VMFS_UNIT;
	vh.nblocks = (vh.backup_off - vh.data_off) / vh.block_size;
	vh.data_len = vh.nblocks * vh.block_size;
	vh.incompat |= VMFS_INCOMPAT_FBX;
	vmfs_vh_encode(&vh, buf);
	assert_int_equal(bdev_open(img, 0, &bd), 0);
	assert_int_equal(bdev_write(bd, buf, VMFS_VH_OFF, VMFS_UNIT), 0);
	assert_int_equal(bdev_write(bd, buf, vh.backup_off, VMFS_UNIT), 0);
	bdev_close(bd);
	bdev_free(buf);
}

/* A journaled header that would shrink the volume is refused by replay:
 * a grow that died with its transaction committed but not retired, and a
 * header on the disk that says the volume is larger than the journal's. */
static void test_replay_refuses_shrink(void **state)
{
	int refused = 0;

	(void)state;
	for (unsigned n = 1; n < 40 && !refused; n++) {
		const char *img = t_mkfs("volgrow", 64 * MIB, 64 << 10);
		struct vmfs_mount_opts o = {.hostname = "victim"}, so = {.hostname = "survivor"};
		struct vmfs_check_stats st;
		char uri[4300];
		struct vmfs *fs;
		struct bdev *bd;
		unsigned fixed;
		int rc;

		resize(img, 600 * MIB);
		snprintf(uri, sizeof(uri), "crash:flush=%u,mode=keep:%s", n, img);
		if (vmfs_mount(uri, &o, &fs))
			continue;
		rc = vmfs_grow(fs, 0, NULL);
		if (vmfs_umount(fs) == 0 && rc == 0)
			break; /* no crash left */
		assert_int_equal(bdev_open(img, 0, &bd), 0);
		assert_true(vmfs_check(bd, 0, NULL, NULL, &st, &fixed) >= 0);
		bdev_close(bd);
		if (!st.journals_pending)
			continue;
		force_header(img, 700 * MIB);
		rc = vmfs_mount(img, &so, &fs);
		if (rc == 0) { /* the pending transaction held no header */
			assert_int_equal(vmfs_umount(fs), 0);
			continue;
		}
		assert_int_equal(rc, -EUCLEAN);
		if (!strstr(vmfs_errmsg(NULL), "shrinks"))
			fprintf(stderr, "mount: %s\n", vmfs_errmsg(NULL));
		assert_non_null(strstr(vmfs_errmsg(NULL), "shrinks"));
		refused = 1;
	}
	assert_true(refused);
}

/* Tune: the label at any time; the heartbeat timing only alone, after
 * which the tuning mount has left. */
static void test_tune(void **state)
{
	const char *img = t_mkfs("volgrow", 64 * MIB, 64 << 10);
	struct vmfs_tune_opts lab = {.label = "renamed"},
			      tim = {.hb_interval_ms = 300, .hb_timeout_ms = 3000};
	struct vmfs_tune_opts bad = {.hb_interval_ms = 1000, .hb_timeout_ms = 1500};
	struct vmfs_statfs st;
	struct vmfs *a, *b;
	struct vmfs_vh vh;
	char longl[80];

	(void)state;
	a = t_mount(img, "hostA");
	b = t_mount(img, "hostB");
	assert_int_equal(vmfs_tune(a, &lab), 0);
	assert_int_equal(vmfs_statfs(b, &st), 0);
	assert_string_equal(st.label, "renamed");
	memset(longl, 'x', sizeof(longl) - 1);
	longl[sizeof(longl) - 1] = 0;
	lab.label = longl;
	assert_int_equal(vmfs_tune(a, &lab), -ENAMETOOLONG);
	assert_int_equal(vmfs_tune(a, &tim), -EBUSY);
	assert_non_null(strstr(vmfs_errmsg(a), "hostB"));
	assert_int_equal(vmfs_umount(b), 0);
	assert_int_equal(vmfs_tune(a, &bad), -EUCLEAN); /* timeout < 4 x interval */
	assert_int_equal(vmfs_tune(a, &tim), 0);
	assert_int_equal(vmfs_mkdir(a, "/x", 0755), -ESTALE); /* it has left */
	assert_int_equal(vmfs_umount(a), 0);
	disk_header(img, &vh);
	assert_string_equal(vh.label, "renamed");
	assert_int_equal(vh.hb_interval_ms, 300);
	assert_int_equal(vh.hb_timeout_ms, 3000);
	assert_int_equal(t_fsck(img), 0);
	b = t_mount(img, "hostB"); /* the new timing is in force */
	assert_int_equal(vmfs_mkdir(b, "/x", 0755), 0);
	assert_int_equal(vmfs_umount(b), 0);
	assert_int_equal(t_fsck(img), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_grow_two_hosts),
	    cmocka_unit_test(test_grow_small),
	    cmocka_unit_test(test_tune),
	    cmocka_unit_test(test_grow_crash),
	    cmocka_unit_test(test_replay_refuses_shrink),
	};

	/* a longer lease than fstest.h's 250 / 2000 ms: the fills run many
	 * transactions, and a loaded 2-core machine fenced a host there */
	t_hb_int = 500;
	t_hb_tmo = 4000;

	return cmocka_run_group_tests(tests, NULL, NULL);
}
