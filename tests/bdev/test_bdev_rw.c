/*
 * test_bdev_rw.c - read/write/submit/flush/discard round trips through every
 * engine (sync, aio, uring), sector size (512, 4096), the mem backend and
 * each wrapper, checked against an in-memory model of the device; argument
 * checking (-EINVAL, -ERANGE, -EROFS, bad URIs); odd-sized and missing
 * images; threads sharing one bdev.
 */
#include "bdev_test.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define IMG_SIZE (2u << 20)
#define NSLOT	 64u

struct rt {
	struct bdev *bd;
	unsigned char *model; /* what the device must hold */
	uint64_t rng;
};

static uint64_t rnd(struct rt *t, uint64_t n)
{
	t->rng = t->rng * 6364136223846793005ull + 1442695040888963407ull;
	return (t->rng >> 33) % n;
}

/* A buffer of len bytes, deliberately misaligned when `odd`. */
static unsigned char *buf_get(size_t len, int odd, void **base)
{
	unsigned char *b = malloc(len + 64);

	assert_non_null(b);
	*base = b;
	return odd ? b + 1 : b + (64 - ((uintptr_t)b & 63)) % 64;
}

static void write_model(struct rt *t, uint64_t off, size_t len, uint32_t seed)
{
	unsigned char *b = malloc(len);

	assert_non_null(b);
	t_fill(b, len, off, seed);
	assert_int_equal(bdev_write(t->bd, b, off, len), 0);
	memcpy(t->model + off, b, len);
	free(b);
}

static void check_model(struct rt *t)
{
	unsigned char *b = bdev_alloc(t->bd->size);

	assert_non_null(b);
	assert_int_equal(bdev_read(t->bd, b, 0, t->bd->size), 0);
	assert_memory_equal(b, t->model, t->bd->size);
	bdev_free(b);
}

static void whole_device(struct rt *t)
{
	uint64_t off;

	for (off = 0; off < t->bd->size; off += 256 * 1024)
		write_model(t, off, 256 * 1024, 1);
	check_model(t);
}

/* 64 requests, one per slot of the device, even ones writes, odd ones reads,
 * every third buffer misaligned; run `rounds` times. */
static void batch(struct rt *t, uint32_t seed, int rounds)
{
	uint64_t slot = t->bd->size / NSLOT, nsec = slot / t->bd->lsec;
	struct bdev_io ios[NSLOT];
	void *bases[NSLOT];
	unsigned i;

	for (; rounds > 0; rounds--, seed++) {
		for (i = 0; i < NSLOT; i++) {
			uint64_t s = rnd(t, nsec), n = 1 + rnd(t, nsec - s);

			ios[i].op = i % 2 ? BDEV_OP_READ : BDEV_OP_WRITE;
			ios[i].off = i * slot + s * t->bd->lsec;
			ios[i].len = n * t->bd->lsec;
			ios[i].buf = buf_get(ios[i].len, i % 3 == 0, &bases[i]);
			ios[i].result = 12345;
			if (ios[i].op == BDEV_OP_WRITE)
				t_fill(ios[i].buf, ios[i].len, ios[i].off, seed);
		}
		assert_int_equal(bdev_submit(t->bd, ios, NSLOT), 0);
		for (i = 0; i < NSLOT; i++) {
			assert_int_equal(ios[i].result, 0);
			if (ios[i].op == BDEV_OP_READ)
				assert_memory_equal(ios[i].buf, t->model + ios[i].off, ios[i].len);
			else
				memcpy(t->model + ios[i].off, ios[i].buf, ios[i].len);
			free(bases[i]);
		}
		check_model(t);
	}
}

static void unaligned(struct rt *t)
{
	size_t len = 3 * t->bd->lsec;
	uint64_t off = 5 * t->bd->lsec;
	void *base;
	unsigned char *b = buf_get(len, 1, &base);

	t_fill(b, len, off, 77);
	assert_int_equal(bdev_write(t->bd, b, off, len), 0);
	memcpy(t->model + off, b, len);
	memset(b, 0, len);
	assert_int_equal(bdev_read(t->bd, b, off, len), 0);
	assert_memory_equal(b, t->model + off, len);
	free(base);
}

static void errors(struct rt *t)
{
	struct bdev *bd = t->bd;
	uint32_t ls = bd->lsec;
	unsigned char *b = bdev_alloc(4 * ls), *save = malloc(ls);
	struct bdev_io ios[2];

	assert_int_equal(bdev_read(bd, b, 1, ls), -EINVAL);
	assert_int_equal(bdev_read(bd, b, 0, ls + 1), -EINVAL);
	assert_int_equal(bdev_write(bd, b, ls / 2, ls), -EINVAL);
	assert_int_equal(bdev_ats(bd, 1, b, b, NULL), -EINVAL);
	assert_int_equal(bdev_discard(bd, 0, ls - 1), -EINVAL);
	assert_int_equal(bdev_read(bd, b, bd->size, ls), -ERANGE);
	assert_int_equal(bdev_write(bd, b, bd->size - ls, 2 * ls), -ERANGE);
	assert_int_equal(bdev_ats(bd, bd->size, b, b, NULL), -ERANGE);
	assert_int_equal(bdev_write_zeroes(bd, bd->size - ls, 2 * ls), -ERANGE);
	assert_int_equal(bdev_read(bd, b, UINT64_MAX - ls + 1, ls), -ERANGE);

	/* One bad request: nothing of the batch runs. */
	memcpy(save, t->model, ls);
	t_fill(b, ls, 0, 999);
	ios[0] = (struct bdev_io){.op = BDEV_OP_WRITE, .buf = b, .off = 0, .len = ls};
	ios[1] = (struct bdev_io){.op = BDEV_OP_READ, .buf = b + ls, .off = bd->size, .len = ls};
	assert_int_equal(bdev_submit(bd, ios, 2), -ERANGE);
	assert_int_equal(ios[0].result, -ECANCELED);
	assert_int_equal(ios[1].result, -ERANGE);
	assert_int_equal(bdev_read(bd, b, 0, ls), 0);
	assert_memory_equal(b, save, ls);
	bdev_free(b);
	free(save);
}

static void zeroes(struct rt *t)
{
	uint32_t ls = t->bd->lsec;
	uint64_t a = NSLOT / 2 * ls, b = 3 * NSLOT * ls;

	assert_int_equal(bdev_write_zeroes(t->bd, a, 8 * ls), 0);
	memset(t->model + a, 0, 8 * ls);
	assert_int_equal(bdev_discard(t->bd, b, 16 * ls), 0);
	memset(t->model + b, 0, 16 * ls);
	check_model(t);
}

static void ats_basic(struct rt *t)
{
	uint32_t ls = t->bd->lsec;
	uint64_t off = 7 * ls;
	unsigned char *cur = malloc(ls), *nw = malloc(ls), *other = malloc(ls), *act = malloc(ls);

	memcpy(cur, t->model + off, ls);
	t_fill(nw, ls, off, 31);
	t_fill(other, ls, off, 32);
	assert_int_equal(bdev_ats(t->bd, off, cur, nw, NULL), 0);
	memcpy(t->model + off, nw, ls);
	memset(act, 0, ls);
	assert_int_equal(bdev_ats(t->bd, off, cur, other, act), -BDEV_E_MISCOMPARE);
	assert_memory_equal(act, nw, ls);
	assert_int_equal(bdev_ats(t->bd, off, cur, other, NULL), -BDEV_E_MISCOMPARE);
	check_model(t);
	free(cur);
	free(nw);
	free(other);
	free(act);
}

/* The whole round trip on `uri` (%s = image path, second %s = log path);
 * the image is then reopened plainly to prove the data reached it. */
/* The whole round trip on `uri`; then `verify` (if not NULL), a plain view
 * of the same storage, must hold the same data. */
static void roundtrip_on(const char *uri, uint32_t lsec, const char *verify)
{
	struct rt t = {.rng = 42};
	int rc;

	rc = bdev_open(uri, 0, &t.bd);
	if (rc == -EOPNOTSUPP) {
		print_message("skipped: %s: engine not available here\n", uri);
		skip();
	}
	assert_int_equal(rc, 0);
	assert_string_equal(t.bd->uri, uri);
	assert_int_equal(t.bd->lsec, lsec);
	assert_int_equal(t.bd->size, IMG_SIZE);
	t.model = calloc(1, IMG_SIZE);
	whole_device(&t);
	batch(&t, 2, 4);
	unaligned(&t);
	errors(&t);
	zeroes(&t);
	ats_basic(&t);
	assert_int_equal(bdev_flush(t.bd), 0);
	bdev_close(t.bd);
	if (verify) {
		t.bd = t_open(verify, BDEV_O_RDONLY);
		check_model(&t);
		bdev_close(t.bd);
	}
	free(t.model);
}

/* fmt: %s = image path (or, for "trace:%s:...", the log then the image). */
static void roundtrip(const char *fmt, uint32_t lsec, int on_image)
{
	const char *img = t_path("rt.img"), *log = t_path("rt.log");
	char uri[8192], plain[8192];

	t_image(img, IMG_SIZE);
	unlink(log);
	snprintf(uri, sizeof(uri), fmt, strstr(fmt, "trace:") == fmt ? log : img, img);
	snprintf(plain, sizeof(plain), "file:%s?engine=sync&sector=%u", img, lsec);
	roundtrip_on(uri, lsec, on_image ? plain : NULL);
}

#define RT(name, fmt, lsec, on_image)                                                              \
	static void rt_##name(void **state)                                                        \
	{                                                                                          \
		(void)state;                                                                       \
		roundtrip(fmt, lsec, on_image);                                                    \
	}
RT(sync512, "file:%s?engine=sync", 512, 1)
RT(sync4k, "file:%s?engine=sync&sector=4096", 4096, 1)
RT(aio512, "file:%s?engine=aio", 512, 1)
RT(aio4k, "file:%s?engine=aio&sector=4096", 4096, 1)
RT(uring512, "file:%s?engine=uring", 512, 1)
RT(uring4k, "file:%s?engine=uring&sector=4096", 4096, 1)
RT(uring_buffered, "file:%s?engine=uring&direct=0", 512, 1)
RT(aio_buffered, "file:%s?engine=aio&direct=0&sector=4096", 4096, 1)
/* maxio splits each request: the short-completion resubmission path. */
RT(uring_maxio, "file:%s?engine=uring&maxio=1024", 512, 1)
RT(aio_maxio, "file:%s?engine=aio&maxio=4096&sector=4096", 4096, 1)
RT(auto512, "%s", 512, 1)
RT(mem512, "mem:2M", 512, 0)
RT(mem4k, "mem:2M?sector=4096", 4096, 0)
RT(fault_empty, "fault::file:%s?sector=4096", 4096, 1)
RT(fault_armed_late, "fault:read=100000,write=100000:%s", 512, 1)
RT(crash_nocrash, "crash:seed=3:%s", 512, 1)
RT(crash4k, "crash:mode=drop:file:%s?sector=4096", 4096, 1)
RT(trace, "trace:%s:file:%s", 512, 1)
RT(nested, "trace:%s:fault::crash::file:%s?sector=4096&engine=auto", 4096, 1)

/* A loop device over an image: the block-device paths (BLKGETSIZE64,
 * BLKSSZGET, BLKZEROOUT, hole punching on a block device). Root only. */
static char loopdev[64];

static int loop_detach(void **state)
{
	char cmd[128];

	(void)state;
	if (loopdev[0]) {
		snprintf(cmd, sizeof(cmd), "losetup -d %s", loopdev);
		if (system(cmd) != 0)
			fprintf(stderr, "could not detach %s\n", loopdev);
		loopdev[0] = '\0';
	}
	return 0;
}

static void test_block_device(void **state)
{
	const char *img = t_path("loop.img");
	char cmd[4400], uri[256], plain[4400];
	FILE *p;

	(void)state;
	if (geteuid() != 0) {
		print_message("skipped: loop devices need root\n");
		skip();
	}
	t_image(img, IMG_SIZE);
	snprintf(cmd, sizeof(cmd), "losetup -f --show %s 2>/dev/null", img);
	p = popen(cmd, "r");
	assert_non_null(p);
	if (!fgets(loopdev, sizeof(loopdev), p))
		loopdev[0] = '\0';
	pclose(p);
	loopdev[strcspn(loopdev, "\n")] = '\0';
	if (strncmp(loopdev, "/dev/loop", 9) != 0) {
		loopdev[0] = '\0';
		print_message("skipped: losetup failed (no loop devices here)\n");
		skip();
	}
	snprintf(plain, sizeof(plain), "file:%s?engine=sync", img);
	roundtrip_on(loopdev, 512, plain);
	snprintf(uri, sizeof(uri), "file:%s?sector=4096&engine=aio", loopdev);
	snprintf(plain, sizeof(plain), "file:%s?engine=sync&sector=4096", img);
	roundtrip_on(uri, 4096, plain);
}

/* tmpfs refuses O_DIRECT: the open falls back to buffered I/O by itself. */
static char shm_img[64];

static int shm_unlink_img(void **state)
{
	(void)state;
	if (shm_img[0])
		unlink(shm_img);
	shm_img[0] = '\0';
	return 0;
}

static void test_tmpfs(void **state)
{
	char *img = shm_img, uri[128];
	struct bdev *bd;
	int fd;

	strcpy(shm_img, "/dev/shm/bdev-test-XXXXXX");
	fd = mkstemp(img);

	(void)state;
	if (fd < 0) {
		shm_img[0] = '\0';
		print_message("skipped: no /dev/shm\n");
		skip();
	}
	close(fd);
	t_image(img, IMG_SIZE);
	bd = t_open(img, 0);
	if (bd->caps & BDEV_CAP_DIRECT)
		print_message("note: /dev/shm accepts O_DIRECT here\n");
	bdev_close(bd);
	snprintf(uri, sizeof(uri), "file:%s?engine=auto&direct=1", img);
	roundtrip_on(uri, 512, NULL);
}

static void test_short_device(void **state)
{
	const char *img = t_path("short.img");
	char uri[4200];
	struct bdev *bd;
	unsigned char *b = bdev_alloc(4096);

	(void)state;
	t_image(img, 3 * 512 + 100);
	bd = t_open(img, 0);
	assert_int_equal(bd->size, 3 * 512);
	assert_int_equal(bdev_write(bd, b, 2 * 512, 512), 0);
	assert_int_equal(bdev_read(bd, b, 3 * 512, 512), -ERANGE);
	bdev_close(bd);
	t_image(img, 3 * 4096 + 100);
	snprintf(uri, sizeof(uri), "file:%s?sector=4096", img);
	bd = t_open(uri, 0);
	assert_int_equal(bd->size, 3 * 4096);
	assert_int_equal(bdev_read(bd, b, 2 * 4096, 4096), 0);
	assert_int_equal(bdev_read(bd, b, 3 * 4096, 4096), -ERANGE);
	bdev_close(bd);
	bdev_free(b);
}

/* bdev_refresh_size(): an image that grew is seen at its new size through
 * the file backend and every wrapper (which pass the inner device's size
 * on); a memory device keeps its size; the size never shrinks. */
static void test_refresh_size(void **state)
{
	const char *img = t_path("grow.img");
	char uri[4200];
	const char *wraps[] = {"%s", "crash:flush=1000:%s", "fault:write=1000:%s",
			       "trace:%s.log:%s"};
	unsigned char *b = bdev_alloc(4096);
	struct bdev *bd;

	(void)state;
	for (unsigned i = 0; i < 4; i++) {
		t_image(img, 1 << 20);
		if (i == 3)
			snprintf(uri, sizeof(uri), wraps[i], img, img);
		else
			snprintf(uri, sizeof(uri), wraps[i], img);
		bd = t_open(uri, 0);
		assert_int_equal(bd->size, 1 << 20);
		assert_int_equal(bdev_read(bd, b, 1 << 20, 4096), -ERANGE);
		t_image_resize(img, (2 << 20) + 100);
		assert_int_equal(bdev_refresh_size(bd), 0);
		assert_int_equal(bd->size, 2 << 20);
		assert_int_equal(bdev_read(bd, b, 1 << 20, 4096), 0);
		assert_int_equal(bdev_write(bd, b, (2 << 20) - 4096, 4096), 0);
		t_image_resize(img, 1 << 20); /* shrinking: the size stays */
		assert_int_equal(bdev_refresh_size(bd), 0);
		assert_int_equal(bd->size, 2 << 20);
		bdev_close(bd);
	}
	bd = t_open("mem:65536", 0);
	assert_int_equal(bdev_refresh_size(bd), 0);
	assert_int_equal(bd->size, 65536);
	bdev_close(bd);
	bdev_free(b);
}

static void test_missing_and_empty(void **state)
{
	const char *img = t_path("empty.img");
	struct bdev *bd = NULL;
	unsigned char b[512];

	(void)state;
	assert_int_equal(bdev_open(t_path("does-not-exist.img"), 0, &bd), -ENOENT);
	assert_null(bd);
	assert_int_equal(bdev_open("file:/nonexistent-dir/x.img?engine=sync", 0, &bd), -ENOENT);
	/* a directory, even read-only (was "Block device required") */
	assert_int_equal(bdev_open(t_path(""), BDEV_O_RDONLY, &bd), -EISDIR);
	assert_int_equal(bdev_open(t_path(""), 0, &bd), -EISDIR);
	t_image(img, 0);
	bd = t_open(img, 0);
	assert_int_equal(bd->size, 0);
	assert_int_equal(bdev_read(bd, b, 0, 0), 0);
	assert_int_equal(bdev_read(bd, b, 0, 512), -ERANGE);
	assert_int_equal(bdev_write(bd, b, 0, 512), -ERANGE);
	assert_int_equal(bdev_flush(bd), 0);
	bdev_close(bd);
}

static void check_readonly(struct bdev *bd)
{
	unsigned char *b = bdev_alloc(512);
	struct bdev_io io = {.op = BDEV_OP_WRITE, .buf = b, .off = 0, .len = 512};

	assert_true(bd->caps & BDEV_CAP_READONLY);
	assert_int_equal(bdev_read(bd, b, 0, 512), 0);
	assert_int_equal(bdev_write(bd, b, 0, 512), -EROFS);
	assert_int_equal(bdev_ats(bd, 0, b, b, NULL), -EROFS);
	assert_int_equal(bdev_discard(bd, 0, 512), -EROFS);
	assert_int_equal(bdev_write_zeroes(bd, 0, 512), -EROFS);
	assert_int_equal(bdev_submit(bd, &io, 1), -EROFS);
	assert_int_equal(io.result, -EROFS);
	bdev_close(bd);
	bdev_free(b);
}

static void test_readonly(void **state)
{
	const char *img = t_path("ro.img");
	char uri[4200];

	(void)state;
	t_image(img, 64 * 1024);
	snprintf(uri, sizeof(uri), "file:%s?ro=1", img);
	check_readonly(t_open(uri, 0));
	check_readonly(t_open(img, BDEV_O_RDONLY));
	check_readonly(t_open("mem:64K", BDEV_O_RDONLY));
	snprintf(uri, sizeof(uri), "crash::fault::file:%s?ro=1", img);
	check_readonly(t_open(uri, 0));
	/* A read-only image file cannot be opened for writing. */
	assert_int_equal(chmod(img, 0444), 0);
	if (geteuid() != 0) {
		struct bdev *bd;

		assert_int_equal(bdev_open(img, 0, &bd), -EACCES);
	}
	check_readonly(t_open(img, BDEV_O_RDONLY));
}

static void test_bad_uris(void **state)
{
	const char *img = t_path("uri.img");
	static const char *const bad[] = {
	    "",
	    "file:",
	    "file:%s?sector=1000",
	    "file:%s?sector=512x",
	    "file:%s?engine=warp",
	    "file:%s?bogus=1",
	    "file:%s?direct=2",
	    "file:%s?nosync=yes",
	    "file:%s?maxio=100",
	    "file:%s?maxio=0",
	    "file:%s?maxio=-512",
	    "file:%s?engine=uringuringuringuringuringuringuring",
	    "mem:abc",
	    "mem:1M?sector=2048",
	    "fault:read=x:%s",
	    "fault:read=0:%s",
	    "fault:frobnicate=1:%s",
	    "fault:errno=EWHAT:%s",
	    "fault:nocolon",
	    "crash:mode=melt:%s",
	    "crash:flush=0:%s",
	    "crash:seed=:%s",
	    "trace::%s",
	};
	char uri[4200];
	struct bdev *bd;
	size_t i;
	int rc;

	(void)state;
	t_image(img, 64 * 1024);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(uri, sizeof(uri), bad[i], img);
		rc = bdev_open(uri, 0, &bd);
		if (rc != -BDEV_E_URI && rc != -EINVAL)
			fail_msg("bdev_open(%s) = %d (%s), want a URI error", uri, rc,
				 bdev_strerror(rc));
		assert_null(bd);
	}
	assert_int_equal(bdev_open(NULL, 0, &bd), -BDEV_E_URI);
	/* Malformed iSCSI URIs fail before any connection is tried. */
	assert_int_equal(bdev_open("iscsi://127.0.0.1/iqn.x", 0, &bd), -BDEV_E_URI);
	assert_int_equal(bdev_open("iscsi://127.0.0.1/iqn.x/0?bogus=1", 0, &bd), -BDEV_E_URI);
	assert_int_equal(bdev_open("iscsi://127.0.0.1:99999/iqn.x/0", 0, &bd), -BDEV_E_URI);
	assert_int_equal(bdev_open("iscsi://u@127.0.0.1/iqn.x/0", 0, &bd), -BDEV_E_URI);
	assert_int_equal(bdev_open("iscsi:///iqn.x/0", 0, &bd), -BDEV_E_URI);
	/* Other schemes are named as such, not looked up as files (was ENOENT) */
	assert_int_equal(bdev_open("nbd://localhost/x", 0, &bd), -BDEV_E_SCHEME);
	assert_int_equal(bdev_open("nbd+unix:///?socket=/tmp/s", 0, &bd), -BDEV_E_SCHEME);
	assert_non_null(strstr(bdev_strerror(-BDEV_E_SCHEME), "scheme"));
	/* A 4Kn presentation of a 512-byte device is fine, the reverse is not
	 * possible for image files (always 512 underneath). */
	snprintf(uri, sizeof(uri), "file:%s?sector=4096&direct=0&ro=0&nosync=1", img);
	bdev_close(t_open(uri, 0));
}

static void test_engine_names(void **state)
{
	const char *img = t_path("eng.img");
	char uri[4200];
	struct bdev *bd;
	int have_uring, have_aio;

	(void)state;
	t_image(img, 64 * 1024);
	snprintf(uri, sizeof(uri), "file:%s?engine=uring", img);
	have_uring = bdev_open(uri, 0, &bd) == 0;
	if (have_uring) {
		assert_string_equal(bd->engine, "uring");
		bdev_close(bd);
	}
	snprintf(uri, sizeof(uri), "file:%s?engine=aio", img);
	have_aio = bdev_open(uri, 0, &bd) == 0;
	if (have_aio) {
		assert_string_equal(bd->engine, "aio");
		bdev_close(bd);
	}
	print_message("engines here: uring=%d aio=%d sync=1\n", have_uring, have_aio);
	snprintf(uri, sizeof(uri), "file:%s?engine=sync", img);
	bd = t_open(uri, 0);
	assert_string_equal(bd->engine, "sync");
	bdev_close(bd);
	bd = t_open(img, 0);
	assert_string_equal(bd->engine, have_uring ? "uring" : have_aio ? "aio" : "sync");
	bdev_close(bd);
}

/* Makes the syscalls `a` and `b` fail with ENOSYS in this process, as a
 * kernel without them (or a container's seccomp profile) would. */
static int deny_syscalls(long a, long b)
{
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)a, 2, 0),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)b, 1, 0),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* In a child without io_uring (and without AIO): engine=auto falls back at
 * run time, a forced engine fails with -EOPNOTSUPP, batches still work. */
static int fallback_child(const char *img, int no_aio, const char *want_auto)
{
	char uri[4200];
	struct bdev *bd;
	struct bdev_io ios[32];
	unsigned char *w, *r;
	unsigned i;
	int rc;

	if (deny_syscalls(SYS_io_uring_setup, no_aio ? SYS_io_setup : SYS_io_uring_setup))
		return 77;
	snprintf(uri, sizeof(uri), "file:%s?engine=uring", img);
	if (bdev_open(uri, 0, &bd) != -EOPNOTSUPP)
		return 2;
	snprintf(uri, sizeof(uri), "file:%s?engine=aio", img);
	if (bdev_open(uri, 0, &bd) != (no_aio ? -EOPNOTSUPP : 0))
		return 3;
	if (!no_aio)
		bdev_close(bd);
	if (bdev_open(img, 0, &bd) || strcmp(bd->engine, want_auto))
		return 4;
	/* No cmocka asserts in a child: plain checks and exit codes. */
	w = bdev_alloc(IMG_SIZE);
	r = bdev_alloc(IMG_SIZE);
	t_fill(w, IMG_SIZE, 0, 9);
	for (i = 0; i < 32; i++)
		ios[i] = (struct bdev_io){BDEV_OP_WRITE, w + i * (IMG_SIZE / 32),
					  i * (IMG_SIZE / 32), IMG_SIZE / 32, 1};
	rc = bdev_submit(bd, ios, 32);
	for (i = 0; i < 32; i++)
		ios[i] = (struct bdev_io){BDEV_OP_READ, r + i * (IMG_SIZE / 32),
					  i * (IMG_SIZE / 32), IMG_SIZE / 32, 1};
	if (rc == 0)
		rc = bdev_submit(bd, ios, 32);
	rc = rc ? 5 : memcmp(w, r, IMG_SIZE) ? 6 : 0;
	bdev_close(bd);
	bdev_free(w);
	bdev_free(r);
	return rc;
}

static void test_engine_fallback(void **state)
{
	const char *img = t_path("fallback.img");
	int no_aio, status;
	struct bdev *bd;
	char uri[4200];

	(void)state;
	t_image(img, IMG_SIZE);
	snprintf(uri, sizeof(uri), "file:%s?engine=aio", img);
	if (bdev_open(uri, 0, &bd) < 0) {
		print_message("skipped: no AIO here\n");
		skip();
	}
	bdev_close(bd);
	for (no_aio = 0; no_aio <= 1; no_aio++) {
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0)
			_exit(fallback_child(img, no_aio, no_aio ? "sync" : "aio"));
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		if (WEXITSTATUS(status) == 77) {
			print_message("skipped: seccomp not available\n");
			skip();
		}
		assert_int_equal(WEXITSTATUS(status), 0);
	}
}

/* Threads sharing one bdev submit batches at once, each in its own quarter. */
struct thr {
	struct bdev *bd;
	unsigned id;
	int failures;
};

#define NTHR 4
static void *thr_main(void *arg)
{
	struct thr *th = arg;
	uint64_t quarter = th->bd->size / NTHR, base = th->id * quarter;
	unsigned char *w = bdev_alloc(quarter), *r = bdev_alloc(quarter);
	struct bdev_io ios[16];
	unsigned round, i;
	size_t piece = quarter / 8;

	for (round = 0; round < 60; round++) {
		t_fill(w, quarter, base, round);
		for (i = 0; i < 8; i++)
			ios[i] = (struct bdev_io){BDEV_OP_WRITE, w + i * piece, base + i * piece,
						  piece, 1};
		if (bdev_submit(th->bd, ios, 8))
			th->failures++;
		for (i = 0; i < 16; i++)
			ios[i] = (struct bdev_io){BDEV_OP_READ, r + i * (piece / 2),
						  base + i * (piece / 2), piece / 2, 1};
		if (bdev_submit(th->bd, ios, 16) || memcmp(w, r, quarter))
			th->failures++;
	}
	bdev_free(w);
	bdev_free(r);
	return NULL;
}

static void test_threads_share(void **state)
{
	const char *img = t_path("thr.img");
	struct thr th[NTHR];
	pthread_t tid[NTHR];
	struct bdev *bd;
	unsigned i;

	(void)state;
	t_image(img, 1u << 20);
	bd = t_open(img, 0);
	for (i = 0; i < NTHR; i++) {
		th[i] = (struct thr){bd, i, 0};
		assert_int_equal(pthread_create(&tid[i], NULL, thr_main, &th[i]), 0);
	}
	for (i = 0; i < NTHR; i++) {
		pthread_join(tid[i], NULL);
		assert_int_equal(th[i].failures, 0);
	}
	bdev_close(bd);
}

static void test_strerror(void **state)
{
	(void)state;
	assert_string_equal(bdev_strerror(-BDEV_E_MISCOMPARE),
			    "atomic compare-and-write miscompare");
	assert_non_null(strstr(bdev_strerror(-BDEV_E_CRASHED), "crash"));
	assert_non_null(strstr(bdev_strerror(-BDEV_E_INJECTED), "injected"));
	assert_non_null(strstr(bdev_strerror(-BDEV_E_URI), "URI"));
	assert_string_equal(bdev_strerror(-ENOENT), strerror(ENOENT));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rt_sync512),
	    cmocka_unit_test(rt_sync4k),
	    cmocka_unit_test(rt_aio512),
	    cmocka_unit_test(rt_aio4k),
	    cmocka_unit_test(rt_uring512),
	    cmocka_unit_test(rt_uring4k),
	    cmocka_unit_test(rt_uring_buffered),
	    cmocka_unit_test(rt_aio_buffered),
	    cmocka_unit_test(rt_uring_maxio),
	    cmocka_unit_test(rt_aio_maxio),
	    cmocka_unit_test(rt_auto512),
	    cmocka_unit_test(rt_mem512),
	    cmocka_unit_test(rt_mem4k),
	    cmocka_unit_test(rt_fault_empty),
	    cmocka_unit_test(rt_fault_armed_late),
	    cmocka_unit_test(rt_crash_nocrash),
	    cmocka_unit_test(rt_crash4k),
	    cmocka_unit_test(rt_trace),
	    cmocka_unit_test(rt_nested),
	    cmocka_unit_test_teardown(test_block_device, loop_detach),
	    cmocka_unit_test_teardown(test_tmpfs, shm_unlink_img),
	    cmocka_unit_test(test_short_device),
	    cmocka_unit_test(test_refresh_size),
	    cmocka_unit_test(test_missing_and_empty),
	    cmocka_unit_test(test_readonly),
	    cmocka_unit_test(test_bad_uris),
	    cmocka_unit_test(test_engine_names),
	    cmocka_unit_test(test_engine_fallback),
	    cmocka_unit_test(test_threads_share),
	    cmocka_unit_test(test_strerror),
	};

	unsetenv("BDEV_WRAP");
	if (argc > 1)
		cmocka_set_test_filter(argv[1]); /* e.g. "test_procs*" */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
