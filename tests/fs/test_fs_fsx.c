/*
 * test_fs_fsx.c - fsx: random writes, truncates (shrink and extend),
 * fallocates (every mode), reads (each checked against an in-memory model)
 * and reopens (close and open
 * again, read-write or read-only for the next reads) of one file, across
 * the inline / sub-block / file-block modes, holes and (with 64 KiB blocks)
 * single-indirect pointer blocks; every read checked against the model and
 * a full compare every 1 000 ops; remount and
 * full compare at the end; fsck clean. The image is used through the page
 * cache (direct=0) so that the CI run can afford thousands of operations.
 * The image is opened with nosync=1 (flush does nothing): this test checks
 * the data model, not durability, which the crash tests (fs_crash,
 * fs_thick, fs_dir) prove at every flush point.
 * FSX_OPS / FSX_SEED override the count and seed; FSX_TRACE=N prints every
 * op from op N on (to find the first one that disagrees with the model).
 */
#include "fstest.h"

/* The 100 000 operations per block size (about 50 s each here);
 * ASan builds run a fifth of that to keep `./run asan` short. */
#if defined(__SANITIZE_ADDRESS__)
#define FSX_NOPS 20000
#else
#define FSX_NOPS 100000
#endif

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void verify(struct vmfs_file *f, const uint8_t *model, uint64_t size, uint8_t *buf)
{
	struct vmfs_stat st;

	assert_int_equal(vmfs_fstat(f, &st), 0);
	assert_int_equal(st.size, size);
	assert_int_equal(vmfs_read(f, buf, size + 100, 0), (ssize_t)size);
	assert_memory_equal(buf, model, size);
}

/* One fallocate of [off, off + len) in a mode picked by bits of r, applied
 * to the model as Linux defines it: allocating changes no content and
 * extends the size unless KEEP_SIZE; PUNCH_HOLE (always with KEEP_SIZE) and
 * ZERO_RANGE zero the range inside the size; ZERO_RANGE extends like an
 * allocation. Beyond the size the model is all zeroes already. */
static void fallocate_op(struct vmfs_file *f, uint64_t r, uint64_t off, uint64_t len,
			 uint8_t *model, uint64_t *size)
{
	static const int modes[] = {
	    0, VMFS_FALLOC_KEEP_SIZE, VMFS_FALLOC_PUNCH_HOLE | VMFS_FALLOC_KEEP_SIZE,
	    VMFS_FALLOC_ZERO_RANGE, VMFS_FALLOC_ZERO_RANGE | VMFS_FALLOC_KEEP_SIZE};
	int mode = modes[(r >> 12) % 5];
	uint64_t end = off + len;

	assert_int_equal(vmfs_fallocate(f, mode, off, len), 0);
	if ((mode & (VMFS_FALLOC_PUNCH_HOLE | VMFS_FALLOC_ZERO_RANGE)) && off < *size)
		memset(model + off, 0, (end < *size ? end : *size) - off);
	if (!(mode & VMFS_FALLOC_KEEP_SIZE) && end > *size)
		*size = end;
}

/* FSX_OPS / FSX_SEED in the environment override the operation count and
 * the seed (for longer runs by hand). */
static void fsx(uint32_t bs, uint64_t maxsize, int nops, uint64_t seed)
{
	if (getenv("FSX_OPS"))
		nops = atoi(getenv("FSX_OPS"));
	if (getenv("FSX_SEED"))
		seed ^= strtoull(getenv("FSX_SEED"), NULL, 0) * 0x9e3779b97f4a7c15ull;
	const char *img = t_mkfs("fsx", 1ull << 30, bs);
	uint8_t *model = calloc(1, maxsize + 1), *buf = malloc(maxsize + 200);
	uint64_t size = 0, s = seed;
	struct vmfs_file *f;
	struct vmfs *fs;

	assert_non_null(model);
	assert_non_null(buf);
	char uri[4300];
	int ro = 0;

	snprintf(uri, sizeof(uri), "file:%s?direct=0&nosync=1", img);
	fs = t_mount(uri, "fsx");
	assert_int_equal(vmfs_open(fs, "/f", O_CREAT | O_RDWR, 0644, &f), 0);
	for (int i = 0; i < nops; i++) {
		uint64_t r = rnd(&s), op = r % 20;
		uint64_t off = rnd(&s) % maxsize, len;

		if (ro && (op < 14 || op == 19)) { /* a change next: reopen read-write */
			assert_int_equal(vmfs_close(f), 0);
			assert_int_equal(vmfs_open(fs, "/f", O_RDWR, 0, &f), 0);
			ro = 0;
		}

		/* small offsets often, to cross the inline and sub-block limits */
		if (r & 0x100)
			off %= 20000;
		len = rnd(&s) % (r & 0x200 ? 300000 : 5000);
		if (off + len > maxsize)
			len = maxsize - off;
		if (getenv("FSX_TRACE") && i >= atoi(getenv("FSX_TRACE")))
			fprintf(stderr, "op %d: kind %llu off %llu len %llu size %llu ro %d\n", i,
				(unsigned long long)op, (unsigned long long)off,
				(unsigned long long)len, (unsigned long long)size, ro);
		if (op == 19) { /* fallocate: allocate, keep size, punch, zero range */
			fallocate_op(f, r, off, len ? len : 1, model, &size);
		} else if (op == 18) { /* reopen: close, open again (read-only half the time) */
			ro = !!(r & 0x800);
			assert_int_equal(vmfs_close(f), 0);
			assert_int_equal(vmfs_open(fs, "/f", ro ? O_RDONLY : O_RDWR, 0, &f), 0);
			verify(f, model, size, buf);
		} else if (op < 11) { /* write */
			t_fill(buf, len, rnd(&s));
			ssize_t w = vmfs_write(f, buf, len, off);

			if (w != (ssize_t)len)
				fprintf(stderr, "op %d: write %llu at %llu (size %llu): %s: %s\n",
					i, (unsigned long long)len, (unsigned long long)off,
					(unsigned long long)size, vmfs_strerror((int)w),
					vmfs_errmsg(fs));
			assert_int_equal(w, (ssize_t)len);
			memcpy(model + off, buf, len);
			/* POSIX: a zero-length write never extends the file */
			if (len && off + len > size)
				size = off + len;
		} else if (op < 14) { /* truncate */
			uint64_t ns = r & 0x400 ? off % 9000 : off;

			assert_int_equal(vmfs_ftruncate(f, ns), 0);
			if (ns < size)
				memset(model + ns, 0, size - ns);
			size = ns;
		} else { /* read a range */
			uint64_t want = off >= size ? 0 : off + len > size ? size - off : len;

			assert_int_equal(vmfs_read(f, buf, len, off), (ssize_t)want);
			assert_memory_equal(buf, model + off, want);
		}
		if (i % 1000 == 999)
			verify(f, model, size, buf);
	}
	verify(f, model, size, buf);
	assert_int_equal(vmfs_close(f), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	fs = t_mount(uri, "fsx2");
	assert_int_equal(vmfs_open(fs, "/f", O_RDONLY, 0, &f), 0);
	verify(f, model, size, buf);
	assert_int_equal(vmfs_close(f), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	free(model);
	free(buf);
}

static void test_fsx_1m(void **state)
{
	(void)state;
	fsx(1u << 20, 6u << 20, FSX_NOPS, 0x9e3779b97f4a7c15ull);
}

static void test_fsx_64k(void **state)
{
	(void)state;
	fsx(64u << 10, 20u << 20, FSX_NOPS, 0x1234567887654321ull); /* > 16 MiB: indirect */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fsx_1m),
	    cmocka_unit_test(test_fsx_64k),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
