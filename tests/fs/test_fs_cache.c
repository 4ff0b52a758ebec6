/*
 * test_fs_cache.c - the metadata cache (libvmfs/fs_cache.c, issue 10):
 * never stale across hosts, and actually used.
 *
 *  - coherence: three mounts of one volume take turns at random changes
 *    (create, write, mkdir, unlink, rmdir, chmod, truncate, setxattr,
 *    rename); after each, every mount must see exactly the model's state
 *    of the names involved, and every few changes the whole directory.
 *    Readers cache what they read, so a cached block that outlived a
 *    change elsewhere shows up as a wrong mode, size, name or value;
 *  - a file held open here (its lock held long-term) and changed between
 *    opens by another host;
 *  - a second read of an unchanged tree is served from the cache (no
 *    misses), one change elsewhere is noticed; a 1 MiB cache stays within
 *    its bound; a mount without cache gives the same answers.
 */
#include "fstest.h"

#include <inttypes.h>

#define NN    16 /* names /d/n0 .. /d/n15 */
#define NHOST 3
#define NOPS  400

struct ent {
	int kind; /* 0 absent, 1 file, 2 directory */
	uint32_t mode;
	uint64_t size;
	int xval; /* user.k = "v<xval>", -1: none */
};

static struct ent model[NN];
static uint64_t rnd = 88172645463325252ull;

static uint64_t next_rand(void)
{
	rnd ^= rnd << 13;
	rnd ^= rnd >> 7;
	rnd ^= rnd << 17;
	return rnd;
}

static void path_of(int i, char *p, size_t n)
{
	snprintf(p, n, "/d/n%d", i);
}

/* Checks name i on fs against the model. */
static void check_one(struct vmfs *fs, int h, int i)
{
	struct vmfs_stat st;
	char p[64], v[32], want[32];
	int rc;

	path_of(i, p, sizeof(p));
	rc = vmfs_getattr(fs, p, &st);
	if (model[i].kind == 0) {
		if (rc != -ENOENT)
			fprintf(stderr, "host %d: %s should not exist (rc %d)\n", h, p, rc);
		assert_int_equal(rc, -ENOENT);
		return;
	}
	assert_int_equal(rc, 0);
	if ((st.mode & 07777) != model[i].mode || S_ISDIR(st.mode) != (model[i].kind == 2) ||
	    (model[i].kind == 1 && st.size != model[i].size))
		fprintf(stderr, "host %d: %s mode %o size %" PRIu64 ", model %o %" PRIu64 "\n", h,
			p, st.mode, st.size, model[i].mode, model[i].size);
	assert_int_equal(st.mode & 07777, model[i].mode);
	assert_int_equal(S_ISDIR(st.mode), model[i].kind == 2);
	if (model[i].kind == 1)
		assert_int_equal(st.size, model[i].size);
	rc = vmfs_getxattr(fs, p, "user.k", v, sizeof(v));
	if (model[i].xval < 0) {
		assert_int_equal(rc, -ENODATA);
	} else {
		snprintf(want, sizeof(want), "v%d", model[i].xval);
		assert_int_equal(rc, (int)strlen(want));
		assert_memory_equal(v, want, strlen(want));
	}
}

static int seen_cb(void *arg, const char *name, unsigned type, uint64_t ino)
{
	int *seen = arg;

	(void)type;
	(void)ino;
	if (name[0] == 'n')
		seen[atoi(name + 1)]++;
	return 0;
}

static void check_all(struct vmfs *fs, int h)
{
	int seen[NN] = {0};

	assert_int_equal(vmfs_readdir(fs, "/d", seen_cb, seen), 0);
	for (int i = 0; i < NN; i++) {
		assert_int_equal(seen[i], model[i].kind != 0);
		check_one(fs, h, i);
	}
}

/* One random change on fs; returns the names it touched in t[0..1]. */
static void change(struct vmfs *fs, int *t)
{
	int i = (int)(next_rand() % NN), j = (int)(next_rand() % NN);
	char p[64], q[64], v[32];
	struct ent *e = &model[i];
	uint8_t buf[9000];

	t[0] = i;
	t[1] = -1;
	path_of(i, p, sizeof(p));
	path_of(j, q, sizeof(q));
	switch (e->kind ? next_rand() % 6 : next_rand() % 2) {
	case 0:
		if (!e->kind) { /* create a file of 0..9000 bytes */
			size_t len = next_rand() % sizeof(buf);

			t_fill(buf, len, next_rand());
			t_write_file(fs, p, buf, len, 0);
			*e = (struct ent){1, 0644, len, -1};
		} else { /* remove */
			assert_int_equal(e->kind == 1 ? vmfs_unlink(fs, p) : vmfs_rmdir(fs, p), 0);
			e->kind = 0;
		}
		break;
	case 1:
		if (!e->kind) {
			assert_int_equal(vmfs_mkdir(fs, p, 0750), 0);
			*e = (struct ent){2, 0750, 0, -1};
		} else {
			e->mode = (uint32_t)(next_rand() % 0777);
			assert_int_equal(vmfs_chmod(fs, p, e->mode), 0);
		}
		break;
	case 2:
		if (e->kind == 1) {
			e->size = next_rand() % 20000;
			assert_int_equal(vmfs_truncate(fs, p, e->size), 0);
			break;
		}
		/* directories get an attribute */
		__attribute__((fallthrough));
	case 3:
		e->xval = (int)(next_rand() % 1000);
		snprintf(v, sizeof(v), "v%d", e->xval);
		assert_int_equal(vmfs_setxattr(fs, p, "user.k", v, strlen(v), 0), 0);
		break;
	case 4:
		if (e->xval >= 0) {
			assert_int_equal(vmfs_removexattr(fs, p, "user.k"), 0);
			e->xval = -1;
		}
		break;
	default:
		if (i != j && !model[j].kind) {
			assert_int_equal(vmfs_rename(fs, p, q), 0);
			model[j] = *e;
			e->kind = 0;
			t[1] = j;
		}
		break;
	}
}

static void test_cache_coherent(void **state)
{
	const char *img = t_mkfs("cache", 256ull << 20, 0);
	struct vmfs *fs[NHOST];
	char name[16];

	(void)state;
	for (int h = 0; h < NHOST; h++) {
		snprintf(name, sizeof(name), "host%d", h);
		fs[h] = t_mount(img, name);
	}
	assert_int_equal(vmfs_mkdir(fs[0], "/d", 0755), 0);
	for (int i = 0; i < NN; i++)
		model[i].xval = -1;
	for (int op = 0; op < NOPS; op++) {
		int t[2];

		change(fs[next_rand() % NHOST], t);
		for (int h = 0; h < NHOST; h++) {
			check_one(fs[h], h, t[0]);
			if (t[1] >= 0)
				check_one(fs[h], h, t[1]);
			if (op % 25 == 0)
				check_all(fs[h], h);
		}
	}
	for (int h = 0; h < NHOST; h++) {
		struct vmfs_cache_stats cs;
		struct vmfs_engine_stats es;

		check_all(fs[h], h);
		vmfs_cache_stats(fs[h], &cs);
		assert_true(cs.hits > 0); /* the checks above did use it */
		vmfs_engine_stats(fs[h], &es);
		if (t_keep_locks) { /* locks were kept, reused and asked for */
			fprintf(stderr,
				"host%d: %" PRIu64 " commits, %" PRIu64 " checkpoints, %" PRIu64
				" reuses, %" PRIu64 " hand-overs, %" PRIu64 " idle\n",
				h, es.commits, es.checkpoints, es.kept_reuses, es.handovers,
				es.idle_releases);
			assert_true(es.kept_reuses > 0);
			assert_true(es.handovers > 0);
			assert_true(es.checkpoints < es.commits);
		} else {
			assert_int_equal(es.kept_reuses, 0);
			assert_int_equal(es.checkpoints, es.commits);
		}
		assert_int_equal(vmfs_umount(fs[h]), 0);
	}
	assert_int_equal(t_fsck(img), 0);
}

/* The same with kept locks and deferred checkpoints: every change another
 * host made is seen on the next operation (the reader asks, the keeper
 * hands the lock over after writing in place). */
static void test_cache_coherent_keep(void **state)
{
	memset(model, 0, sizeof(model));
	t_keep_locks = 1;
	test_cache_coherent(state);
	t_keep_locks = 0;
}

/* A host holding a file open caches under its long-term lock; another
 * host's change between two opens must be seen after the next open. */
static void test_cache_held_lock(void **state)
{
	const char *img = t_mkfs("cacheh", 256ull << 20, 0);
	struct vmfs *a = t_mount(img, "a"), *b = t_mount(img, "b");
	struct vmfs_file *f;
	struct vmfs_stat st;

	(void)state;
	t_write_file(a, "/f", "hello", 5, 0);
	for (int round = 0; round < 4; round++) {
		uint64_t sz = 1000 + 777 * (uint64_t)round;

		/* a: open (RW, then RO), stat through the open lock, grow */
		assert_int_equal(vmfs_open(a, "/f", round % 2 ? O_RDONLY : O_RDWR, 0, &f), 0);
		assert_int_equal(vmfs_getattr(a, "/f", &st), 0);
		if (round)
			assert_int_equal(st.size, sz - 777 + 3);
		if (!(round % 2)) {
			assert_int_equal(vmfs_write(f, "abc", 3, 10), 3);
			assert_int_equal(vmfs_getattr(a, "/f", &st), 0);
			assert_true(st.size >= 13);
		}
		assert_int_equal(vmfs_close(f), 0);
		/* b changes it while a holds nothing */
		assert_int_equal(vmfs_truncate(b, "/f", sz + 3), 0);
		assert_int_equal(vmfs_chmod(b, "/f", 0600 + (uint32_t)round), 0);
		assert_int_equal(vmfs_getattr(a, "/f", &st), 0);
		assert_int_equal(st.size, sz + 3);
		assert_int_equal(st.mode & 07777, 0600 + (uint32_t)round);
	}
	assert_int_equal(vmfs_umount(a), 0);
	assert_int_equal(vmfs_umount(b), 0);
	assert_int_equal(t_fsck(img), 0);
}

static void test_cache_held_lock_keep(void **state)
{
	t_keep_locks = 1;
	test_cache_held_lock(state);
	t_keep_locks = 0;
}

static void read_tree(struct vmfs *fs, int n, uint32_t *mode0)
{
	struct vmfs_stat st;
	char p[64];
	int cnt = 0;

	assert_int_equal(vmfs_readdir(fs, "/t", t_count_cb, &cnt), 0);
	assert_int_equal(cnt, n + 2);
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "/t/f%d", i);
		assert_int_equal(vmfs_getattr(fs, p, &st), 0);
		assert_int_equal(st.size, strlen(p));
		if (i == 0)
			*mode0 = st.mode & 07777;
	}
}

static void test_cache_used_and_bounded(void **state)
{
	const char *img = t_mkfs("cacheu", 256ull << 20, 0);
	struct vmfs_mount_opts small = {.hostname = "small", .cache_mb = 1};
	struct vmfs_mount_opts none = {.hostname = "none", .cache_mb = -1};
	struct vmfs *a = t_mount(img, "writer"), *b = t_mount(img, "reader"), *c, *d;
	struct vmfs_cache_stats s1, s2, s3;
	uint32_t mode = 0;
	char p[64];
	const int n = 300;

	(void)state;
	assert_int_equal(vmfs_mkdir(a, "/t", 0755), 0);
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "/t/f%d", i);
		t_write_file(a, p, p, strlen(p), 0);
	}
	read_tree(b, n, &mode);
	vmfs_cache_stats(b, &s1);
	read_tree(b, n, &mode);
	vmfs_cache_stats(b, &s2);
	assert_int_equal(s2.misses, s1.misses); /* the second pass: all cached */
	assert_true(s2.hits > s1.hits + (uint64_t)n);
	assert_int_equal(vmfs_chmod(a, "/t/f0", 0604), 0);
	read_tree(b, n, &mode);
	vmfs_cache_stats(b, &s3);
	assert_int_equal(mode, 0604);
	assert_true(s3.misses > s2.misses); /* the changed inode was re-read */
	assert_true(s3.misses < s2.misses + 10);

	assert_int_equal(vmfs_mount(img, &small, &c), 0);
	read_tree(c, n, &mode);
	read_tree(c, n, &mode);
	vmfs_cache_stats(c, &s1);
	assert_int_equal(s1.max_blocks, 256);
	assert_true(s1.blocks <= s1.max_blocks);
	assert_true(s1.blocks > 0);

	assert_int_equal(vmfs_mount(img, &none, &d), 0);
	read_tree(d, n, &mode);
	assert_int_equal(mode, 0604);
	vmfs_cache_stats(d, &s1);
	assert_true(s1.hits == 0 && s1.misses == 0 && s1.max_blocks == 0);
	assert_int_equal(vmfs_umount(d), 0);
	assert_int_equal(vmfs_umount(c), 0);
	assert_int_equal(vmfs_umount(b), 0);
	assert_int_equal(vmfs_umount(a), 0);
	assert_int_equal(t_fsck(img), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cache_coherent),
	    cmocka_unit_test(test_cache_held_lock),
	    cmocka_unit_test(test_cache_coherent_keep),
	    cmocka_unit_test(test_cache_held_lock_keep),
	    cmocka_unit_test(test_cache_used_and_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
