/*
 * test_fs_threads.c - several threads on one mount: reads, writes,
 * extensions and truncations of the same and of different files at once
 * (the data path runs outside the mount's mutex on files held EX, with a
 * cached mapping; fs_file.c "cached mapping").
 *
 *  - Private files (one per thread, direct, single- and double-indirect
 *    windows of a 64 KiB-block volume): an exact in-memory model; every
 *    read is compared with it, and again after unmount, fsck and remount.
 *  - Shared files (every thread has its own handles): each 8-byte word at
 *    offset o is only ever written as PAT(file, o), so whatever the
 *    interleaving of writes and truncations, a read sees PAT or zero per
 *    word. A block freed by a truncation and reused by another file while a
 *    read still maps it would show the other file's bytes (random data or
 *    another pattern). chmod and reopen read-only run meanwhile (they drop
 *    cached mappings or convert the lock).
 *  - A file read only through read-only handles (SH, reads outside the
 *    mutex without a cached mapping), written through short write-opens
 *    and truncated by path meanwhile: same pattern rule.
 * VMFS_TEST_FAST_DELAY_US (20 ms, set here) makes each fast read sleep
 * between its lookup and its I/O, longer than a truncation plus another
 * file's allocating write: one that did not wait for the read (no rw lock)
 * is caught within a run (checked by removing the lock). Threads report failures through `failed`
 * (cmocka asserts only in the main thread).
 */
#include "fstest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define NT	  4
#define ITERS	  1500
#define WIN	  (2u << 20)
#define NSHARED	  2
#define SH_MAX	  (6u << 20)
#define PAT(f, o) ((uint64_t)(0xA0u + (f)) << 56 | (uint64_t)(o))

static const uint64_t win_off[3] = {0, 20ull << 20, 4100ull << 20}; /* direct, single, double */

static struct vmfs *g_fs;
static atomic_int failed;

#define CHECK(c, ...)                                                                              \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "thread check failed (%s:%d): ", __FILE__, __LINE__);      \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			atomic_store(&failed, 1);                                                  \
			return;                                                                    \
		}                                                                                  \
	} while (0)

struct model {
	uint64_t size;
	uint8_t *win[3];
};

struct thr {
	int id;
	uint64_t seed;
	char path[32];
	struct model m;
	struct vmfs_file *f, *sh[NSHARED], *rh;
	uint8_t *buf, *got;
};

static uint64_t rnd(struct thr *t)
{
	t->seed ^= t->seed << 13;
	t->seed ^= t->seed >> 7;
	t->seed ^= t->seed << 17;
	return t->seed;
}

/* A random range inside a window: sector-aligned 4 KiB multiples half of
 * the time (the fast path), any bytes otherwise. */
static void pick(struct thr *t, uint64_t *off, size_t *len)
{
	unsigned w = (unsigned)(rnd(t) % 3);
	uint64_t o, n;

	if (rnd(t) % 2) {
		o = rnd(t) % (WIN / 4096) * 4096;
		n = (rnd(t) % 32 + 1) * 4096;
	} else {
		o = rnd(t) % WIN;
		n = rnd(t) % 70000 + 1;
	}
	if (o + n > WIN)
		n = WIN - o;
	*off = win_off[w] + o;
	*len = (size_t)n;
}

static uint8_t model_byte(const struct model *m, uint64_t o)
{
	for (unsigned w = 0; w < 3; w++)
		if (o >= win_off[w] && o < win_off[w] + WIN)
			return m->win[w][o - win_off[w]];
	return 0;
}

static void model_write(struct model *m, const uint8_t *b, uint64_t off, size_t len)
{
	for (unsigned w = 0; w < 3; w++)
		if (off >= win_off[w] && off < win_off[w] + WIN)
			memcpy(m->win[w] + (off - win_off[w]), b, len);
	if (off + len > m->size)
		m->size = off + len;
}

static void model_trunc(struct model *m, uint64_t size)
{
	for (unsigned w = 0; w < 3; w++) {
		uint64_t from = size > win_off[w] ? size - win_off[w] : 0;

		if (from < WIN)
			memset(m->win[w] + from, 0, WIN - from);
	}
	m->size = size;
}

static void check_private(struct thr *t, struct vmfs_file *f, uint64_t off, size_t len)
{
	ssize_t n = vmfs_read(f, t->got, len, off);
	size_t want =
	    off >= t->m.size ? 0 : (size_t)(t->m.size - off < len ? t->m.size - off : len);

	CHECK(n == (ssize_t)want, "%s: read %zu at %llu: %zd, want %zu (size %llu)", t->path, len,
	      (unsigned long long)off, n, want, (unsigned long long)t->m.size);
	for (size_t i = 0; i < want; i++)
		CHECK(t->got[i] == model_byte(&t->m, off + i),
		      "%s: byte at %llu is %u, want %u (seed %llu)", t->path,
		      (unsigned long long)(off + i), t->got[i], model_byte(&t->m, off + i),
		      (unsigned long long)t->seed);
}

static void op_private(struct thr *t)
{
	unsigned k = (unsigned)(rnd(t) % 16);
	uint64_t off;
	size_t len;
	ssize_t n;

	pick(t, &off, &len);
	if (k < 7) {
		t_fill(t->buf, len, rnd(t));
		n = vmfs_write(t->f, t->buf, len, off);
		CHECK(n == (ssize_t)len, "%s: write %zu at %llu: %zd", t->path, len,
		      (unsigned long long)off, n);
		model_write(&t->m, t->buf, off, len);
	} else if (k < 13) {
		check_private(t, t->f, off, len);
	} else if (k < 15) {
		uint64_t s = rnd(t) % 4 == 0 ? 0 : off;

		CHECK(vmfs_ftruncate(t->f, s) == 0, "%s: ftruncate %llu", t->path,
		      (unsigned long long)s);
		model_trunc(&t->m, s);
	} else {
		/* close the writer, read through a read-only open (EX -> SH),
		 * then write-open again (SH -> EX) */
		struct vmfs_file *ro;

		CHECK(vmfs_close(t->f) == 0, "%s: close", t->path);
		t->f = NULL;
		CHECK(vmfs_open(g_fs, t->path, O_RDONLY, 0, &ro) == 0, "%s: open ro", t->path);
		check_private(t, ro, off, len);
		CHECK(vmfs_open(g_fs, t->path, O_RDWR, 0, &t->f) == 0, "%s: reopen", t->path);
		CHECK(vmfs_close(ro) == 0, "%s: close ro", t->path);
	}
}

static void check_shared(struct thr *t, unsigned s, uint64_t off, size_t len)
{
	ssize_t n = vmfs_read(s < NSHARED ? t->sh[s] : t->rh, t->got, len, off);

	CHECK(n >= 0 && (size_t)n <= len, "shared %u: read %zu at %llu: %zd", s, len,
	      (unsigned long long)off, n);
	for (size_t i = 0; i + 8 <= (size_t)n; i += 8) {
		uint64_t v;

		memcpy(&v, t->got + i, 8);
		CHECK(v == 0 || v == PAT(s, off + i),
		      "shared %u: word at %llu is %016llx: neither zero nor its pattern", s,
		      (unsigned long long)(off + i), (unsigned long long)v);
	}
}

static void op_shared(struct thr *t)
{
	unsigned s = (unsigned)(rnd(t) % NSHARED), k = (unsigned)(rnd(t) % 16);
	uint64_t off = rnd(t) % (SH_MAX / 4096) * 4096;
	size_t len = (size_t)((rnd(t) % 64 + 1) * 4096);
	char path[16];

	if (off + len > SH_MAX)
		len = (size_t)(SH_MAX - off);
	snprintf(path, sizeof(path), "/s%u", s);
	if (k < 6) {
		if (rnd(t) % 4 == 0) { /* 8-byte aligned, not sector-aligned */
			off += 8 * (rnd(t) % 64);
			len -= 8 * (rnd(t) % 64 + 1);
		}
		for (size_t i = 0; i < len; i += 8) {
			uint64_t v = PAT(s, off + i);

			memcpy(t->buf + i, &v, 8);
		}
		CHECK(vmfs_write(t->sh[s], t->buf, len, off) == (ssize_t)len, "shared %u: write",
		      s);
	} else if (k < 13) {
		check_shared(t, s, off, len);
	} else if (k < 15) {
		CHECK(vmfs_ftruncate(t->sh[s], off) == 0, "shared %u: ftruncate", s);
	} else {
		CHECK(vmfs_chmod(g_fs, path, 0600 | (unsigned)(rnd(t) % 2) * 044) == 0,
		      "shared %u: chmod", s);
	}
}

static void name_of(char *path, size_t size, unsigned s)
{
	if (s < NSHARED)
		snprintf(path, size, "/s%u", s);
	else
		snprintf(path, size, "/r");
}

/* The read-mostly file /r (pattern NSHARED). */
static void op_readers(struct thr *t)
{
	unsigned k = (unsigned)(rnd(t) % 16);
	uint64_t off = rnd(t) % (SH_MAX / 4096) * 4096;
	size_t len = (size_t)((rnd(t) % 64 + 1) * 4096);
	struct vmfs_file *w;
	int rc;

	if (off + len > SH_MAX)
		len = (size_t)(SH_MAX - off);
	if (k < 4) {
		for (size_t i = 0; i < len; i += 8) {
			uint64_t v = PAT(NSHARED, off + i);

			memcpy(t->buf + i, &v, 8);
		}
		rc = vmfs_open(g_fs, "/r", O_RDWR, 0, &w);
		CHECK(rc == 0, "/r: write-open: %d", rc);
		CHECK(vmfs_write(w, t->buf, len, off) == (ssize_t)len, "/r: write");
		CHECK(vmfs_close(w) == 0, "/r: close");
	} else if (k < 14) {
		check_shared(t, NSHARED, off, len);
	} else {
		CHECK(vmfs_truncate(g_fs, "/r", off) == 0, "/r: truncate");
	}
}

static void *worker(void *arg)
{
	struct thr *t = arg;
	char path[16];

	for (unsigned s = 0; s < NSHARED; s++) {
		snprintf(path, sizeof(path), "/s%u", s);
		if (vmfs_open(g_fs, path, O_RDWR, 0, &t->sh[s])) {
			atomic_store(&failed, 1);
			return NULL;
		}
	}
	if (vmfs_open(g_fs, "/r", O_RDONLY, 0, &t->rh)) {
		atomic_store(&failed, 1);
		return NULL;
	}
	for (int i = 0; i < ITERS && !atomic_load(&failed); i++) {
		unsigned k = (unsigned)(rnd(t) % 3);

		if (k == 0)
			op_private(t);
		else if (k == 1)
			op_shared(t);
		else
			op_readers(t);
		if (!t->f)
			break; /* a failed reopen */
	}
	for (unsigned s = 0; s < NSHARED; s++)
		vmfs_close(t->sh[s]);
	vmfs_close(t->rh);
	return NULL;
}

/* Whole-file comparison of a private file with its model. */
static void verify_private(struct thr *t)
{
	struct vmfs_file *f;
	struct vmfs_stat st;

	assert_int_equal(vmfs_open(g_fs, t->path, O_RDONLY, 0, &f), 0);
	assert_int_equal(vmfs_fstat(f, &st), 0);
	assert_int_equal(st.size, t->m.size);
	for (unsigned w = 0; w < 3; w++) {
		ssize_t n = vmfs_read(f, t->got, WIN, win_off[w]);
		size_t want = win_off[w] >= t->m.size	     ? 0
			      : t->m.size - win_off[w] < WIN ? (size_t)(t->m.size - win_off[w])
							     : WIN;

		assert_int_equal(n, (ssize_t)want);
		assert_memory_equal(t->got, t->m.win[w], want);
	}
	assert_int_equal(vmfs_close(f), 0);
}

static void verify_shared(struct thr *t)
{
	for (unsigned s = 0; s <= NSHARED; s++) {
		char path[16];
		struct vmfs_file **h = s < NSHARED ? &t->sh[s] : &t->rh;

		name_of(path, sizeof(path), s);
		assert_int_equal(vmfs_open(g_fs, path, O_RDONLY, 0, h), 0);
		for (uint64_t o = 0; o < SH_MAX; o += WIN)
			check_shared(t, s, o, WIN);
		assert_int_equal(vmfs_close(*h), 0);
		assert_int_equal(atomic_load(&failed), 0);
	}
}

static void test_threads_model(void **state)
{
	const char *img = t_mkfs("threads", 512ull << 20, 64u << 10);
	struct thr t[NT];
	pthread_t th[NT];
	uint64_t seed0 = (uint64_t)time(NULL);
	const char *env = getenv("THREADS_SEED");

	(void)state;
	if (env && *env)
		seed0 = strtoull(env, NULL, 0);
	fprintf(stderr, "THREADS_SEED=%llu\n", (unsigned long long)seed0);
	g_fs = t_mount(img, "h0");
	for (unsigned s = 0; s <= NSHARED; s++) {
		char path[16];
		struct vmfs_file *f;

		name_of(path, sizeof(path), s);
		assert_int_equal(vmfs_open(g_fs, path, O_RDWR | O_CREAT, 0644, &f), 0);
		assert_int_equal(vmfs_close(f), 0);
	}
	memset(t, 0, sizeof(t));
	for (int i = 0; i < NT; i++) {
		t[i].id = i;
		t[i].seed = seed0 * 2654435761u + (uint64_t)i * 0x9E3779B97F4A7C15ull + 1;
		snprintf(t[i].path, sizeof(t[i].path), "/p%d", i);
		for (unsigned w = 0; w < 3; w++)
			assert_non_null(t[i].m.win[w] = calloc(1, WIN));
		assert_non_null(t[i].buf = malloc(WIN));
		assert_non_null(t[i].got = malloc(WIN));
		assert_int_equal(vmfs_open(g_fs, t[i].path, O_RDWR | O_CREAT, 0644, &t[i].f), 0);
	}
	for (int i = 0; i < NT; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker, &t[i]), 0);
	for (int i = 0; i < NT; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(atomic_load(&failed), 0);
	for (int i = 0; i < NT; i++) {
		assert_non_null(t[i].f);
		assert_int_equal(vmfs_close(t[i].f), 0);
		verify_private(&t[i]);
	}
	verify_shared(&t[0]);
	assert_int_equal(vmfs_umount(g_fs), 0);
	assert_int_equal(t_fsck(img), 0);
	/* what the threads wrote is on disk */
	g_fs = t_mount(img, "h1");
	for (int i = 0; i < NT; i++)
		verify_private(&t[i]);
	verify_shared(&t[0]);
	assert_int_equal(vmfs_umount(g_fs), 0);
	for (int i = 0; i < NT; i++) {
		for (unsigned w = 0; w < 3; w++)
			free(t[i].m.win[w]);
		free(t[i].buf);
		free(t[i].got);
	}
}

int main(void)
{
	/* widen the window between a fast read's lookup and its I/O (fs_file.c) */
	setenv("VMFS_TEST_FAST_DELAY_US", "20000", 0);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_threads_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
