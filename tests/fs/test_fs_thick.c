/*
 * test_fs_thick.c - vmfs_fallocate() modes against an in-memory model
 * (sizes, contents, st_blocks), TBZ blocks (read as zeroes, no zeroes
 * written, first write zeroes the rest of the block), lazily and eagerly
 * zeroed thick files, and crashes between the data write into a TBZ block
 * and the commit clearing its flag (never exposes stale data). The data
 * area of the images is pre-filled with 0xAB so that stale data shows.
 * fsck clean after every scenario.
 */
#include "fstest.h"

#define PAT 0xAB

/* Fills the data area of img with PAT; returns the volume header. */
static void prefill(const char *img, struct vmfs_vh *vh)
{
	struct bdev *bd;
	char why[256];
	uint8_t *buf = malloc(1 << 20);
	int fd;

	assert_non_null(buf);
	assert_int_equal(bdev_open(img, 0, &bd), 0);
	assert_int_equal(vmfs_vh_read(bd, vh, why, sizeof(why)), 0);
	bdev_close(bd);
	memset(buf, PAT, 1 << 20);
	fd = open(img, O_RDWR);
	assert_true(fd >= 0);
	for (uint64_t o = 0; o < vh->data_len; o += 1 << 20) {
		size_t n = vh->data_len - o < (1 << 20) ? (size_t)(vh->data_len - o) : (1 << 20);

		assert_int_equal(pwrite(fd, buf, n, (off_t)(vh->data_off + o)), (ssize_t)n);
	}
	close(fd);
	free(buf);
}

/* Counts the data-area blocks of img that are all zero and all PAT. */
static void scan(const char *img, const struct vmfs_vh *vh, uint64_t *zero, uint64_t *pat)
{
	uint8_t *buf = malloc(vh->block_size);
	int fd = open(img, O_RDONLY);

	assert_non_null(buf);
	assert_true(fd >= 0);
	*zero = *pat = 0;
	for (uint64_t b = 0; b < vh->nblocks; b++) {
		int z = 1, p = 1;

		assert_int_equal(
		    pread(fd, buf, vh->block_size, (off_t)(vh->data_off + b * vh->block_size)),
		    (ssize_t)vh->block_size);
		for (uint32_t i = 0; i < vh->block_size && (z || p); i++) {
			z &= buf[i] == 0;
			p &= buf[i] == PAT;
		}
		*zero += z;
		*pat += p;
	}
	close(fd);
	free(buf);
}

static uint64_t free_blocks(struct vmfs *fs)
{
	struct vmfs_statfs st;

	assert_int_equal(vmfs_statfs(fs, &st), 0);
	return st.blocks_free;
}

/* ---- model test --------------------------------------------------------------------- */

#define MAXF (3u << 20)
#define BS   (64u << 10)
#define NLBN (MAXF / BS + 2)

struct model {
	uint8_t *data; /* MAXF + BS bytes: zero beyond size */
	uint64_t size;
	uint8_t alloc[NLBN];
};

static void m_alloc(struct model *m, uint64_t off, uint64_t end)
{
	for (uint64_t l = off / BS; l * BS < end && l < NLBN; l++)
		m->alloc[l] = 1;
}

static void m_zero(struct model *m, uint64_t off, uint64_t end)
{
	if (off < m->size)
		memset(m->data + off, 0, (end < m->size ? end : m->size) - off);
}

static uint64_t m_blocks(const struct model *m)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < NLBN; i++)
		n += m->alloc[i];
	return n * BS / 512;
}

static void m_verify(struct vmfs *fs, const struct model *m, const char *what, int i)
{
	struct vmfs_file *f;
	struct vmfs_stat st;
	uint8_t *got = malloc(MAXF + BS);

	assert_non_null(got);
	assert_int_equal(vmfs_open(fs, "/m", O_RDONLY, 0, &f), 0);
	assert_int_equal(vmfs_fstat(f, &st), 0);
	if (st.size != m->size || st.blocks != m_blocks(m))
		fail_msg("op %d (%s): size %llu blocks %llu, model %llu / %llu", i, what,
			 (unsigned long long)st.size, (unsigned long long)st.blocks,
			 (unsigned long long)m->size, (unsigned long long)m_blocks(m));
	assert_int_equal(vmfs_read(f, got, MAXF + BS, 0), (ssize_t)m->size);
	for (uint64_t o = 0; o < m->size; o++)
		if (got[o] != m->data[o])
			fail_msg("op %d (%s): byte %llu is %u, model %u", i, what,
				 (unsigned long long)o, got[o], m->data[o]);
	assert_int_equal(vmfs_close(f), 0);
	free(got);
}

static uint64_t rnd(uint64_t *s, uint64_t n)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (*s >> 33) % n;
}

static void test_falloc_model(void **state)
{
	const char *img = t_mkfs("falloc", 64ull << 20, BS);
	struct model m = {0};
	uint64_t seed = 12345;
	uint8_t *buf = malloc(MAXF);
	struct vmfs_file *f;
	struct vmfs *fs;
	struct vmfs_vh vh;

	(void)state;
	prefill(img, &vh);
	m.data = calloc(1, MAXF + BS);
	assert_non_null(m.data);
	assert_non_null(buf);
	fs = t_mount(img, "a");
	assert_int_equal(vmfs_open(fs, "/m", O_CREAT | O_RDWR, 0644, &f), 0);
	/* argument checks */
	assert_int_equal(vmfs_fallocate(f, VMFS_FALLOC_PUNCH_HOLE, 0, 10), -EOPNOTSUPP);
	assert_int_equal(vmfs_fallocate(f, 0x100, 0, 10), -EOPNOTSUPP);
	assert_int_equal(vmfs_fallocate(f, 0, 0, 0), -EINVAL);
	assert_int_equal(vmfs_fallocate(f, 0, UINT64_MAX - 10, 100), -EFBIG);
	/* start in FB mode (beyond the sub-block limit), then random ops */
	assert_int_equal(vmfs_fallocate(f, VMFS_FALLOC_KEEP_SIZE, 0, 200000), 0);
	m_alloc(&m, 0, 200000);
	m_verify(fs, &m, "keep-size", -1);
	for (int i = 0; i < 300; i++) {
		uint64_t off = rnd(&seed, MAXF - 1), len = 1 + rnd(&seed, MAXF - off - 1);
		unsigned op = (unsigned)rnd(&seed, 7);
		const char *what = "";
		int rc = 0;

		if (rnd(&seed, 3) == 0) { /* mostly small, often block-aligned ranges */
			len = 1 + rnd(&seed, 3 * BS);
			len = len < MAXF - off ? len : MAXF - off;
		}
		if (rnd(&seed, 3) == 0)
			off -= off % BS;
		switch (op) {
		case 0:
			what = "fallocate";
			rc = vmfs_fallocate(f, 0, off, len);
			m_alloc(&m, off, off + len);
			m.size = off + len > m.size ? off + len : m.size;
			break;
		case 1:
			what = "fallocate keep";
			rc = vmfs_fallocate(f, VMFS_FALLOC_KEEP_SIZE, off, len);
			m_alloc(&m, off, off + len);
			break;
		case 2:
			what = "punch";
			rc = vmfs_fallocate(f, VMFS_FALLOC_PUNCH_HOLE | VMFS_FALLOC_KEEP_SIZE, off,
					    len);
			m_zero(&m, off, off + len);
			for (uint64_t l = (off + BS - 1) / BS;
			     (l + 1) * BS <= off + len && l < NLBN; l++)
				m.alloc[l] = 0;
			break;
		case 3:
		case 4:
			what = op == 3 ? "zero range" : "zero range keep";
			rc = vmfs_fallocate(
			    f, VMFS_FALLOC_ZERO_RANGE | (op == 4 ? VMFS_FALLOC_KEEP_SIZE : 0), off,
			    len);
			m_zero(&m, off, off + len);
			m_alloc(&m, off, off + len);
			if (op == 3)
				m.size = off + len > m.size ? off + len : m.size;
			break;
		case 5:
			what = "write";
			len = len > 3 * BS ? 1 + len % (3 * BS) : len;
			t_fill(buf, len, seed);
			rc = (int)vmfs_write(f, buf, len, off) == (int)len ? 0 : -EIO;
			memcpy(m.data + off, buf, len);
			m.size = off + len > m.size ? off + len : m.size;
			m_alloc(&m, off, off + len);
			break;
		case 6:
			what = "truncate";
			off = 1 + off; /* never 0: the file stays in FB mode */
			rc = vmfs_ftruncate(f, off);
			if (off < m.size) { /* a shrink frees from the new end on */
				memset(m.data + off, 0, m.size - off);
				for (uint64_t l = (off + BS - 1) / BS; l < NLBN; l++)
					m.alloc[l] = 0;
			}
			m.size = off; /* an extension keeps blocks preallocated beyond */
			break;
		}
		if (rc)
			fail_msg("op %d %s(%llu, %llu): %s", i, what, (unsigned long long)off,
				 (unsigned long long)len, vmfs_strerror(rc));
		if (i % 10 == 0 || i > 290)
			m_verify(fs, &m, what, i);
	}
	assert_int_equal(vmfs_close(f), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	fs = t_mount(img, "b");
	m_verify(fs, &m, "remount", 300);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	free(m.data);
	free(buf);
}

/* Small files: inline and sub-block modes. */
static void test_falloc_small(void **state)
{
	const char *img = t_mkfs("fsmall", 64ull << 20, 0);
	uint8_t buf[6000], want[6000];
	struct vmfs_file *f;
	struct vmfs_stat st;
	struct vmfs *fs;

	(void)state;
	fs = t_mount(img, "a");
	assert_int_equal(vmfs_open(fs, "/s", O_CREAT | O_RDWR, 0644, &f), 0);
	t_fill(want, 3000, 1);
	assert_int_equal(vmfs_write(f, want, 3000, 0), 3000);
	assert_int_equal(vmfs_fallocate(f, 0, 0, 3500), 0); /* inline: size only */
	memset(want + 3000, 0, 3000);
	assert_int_equal(vmfs_fstat(f, &st), 0);
	assert_int_equal(st.size, 3500);
	assert_int_equal(vmfs_fallocate(f, VMFS_FALLOC_PUNCH_HOLE | VMFS_FALLOC_KEEP_SIZE, 100, 50),
			 0);
	memset(want + 100, 0, 50);
	assert_int_equal(vmfs_read(f, buf, sizeof(buf), 0), 3500);
	assert_memory_equal(buf, want, 3500);
	assert_int_equal(vmfs_fallocate(f, 0, 0, 6000), 0); /* -> sub-blocks, zeroed */
	assert_int_equal(vmfs_fstat(f, &st), 0);
	assert_int_equal(st.size, 6000);
	assert_true(st.blocks >= 6000 / 512);
	assert_int_equal(vmfs_read(f, buf, sizeof(buf), 0), 6000);
	assert_memory_equal(buf, want, 6000);
	assert_int_equal(vmfs_fallocate(f, VMFS_FALLOC_ZERO_RANGE, 10, 20), 0);
	memset(want + 10, 0, 20);
	assert_int_equal(vmfs_read(f, buf, sizeof(buf), 0), 6000);
	assert_memory_equal(buf, want, 6000);
	assert_int_equal(vmfs_close(f), 0);
	assert_int_equal(vmfs_open(fs, "/s", O_RDONLY, 0, &f), 0);
	assert_int_equal(vmfs_fallocate(f, 0, 0, 10), -EBADF);
	assert_int_equal(vmfs_close(f), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

/* ---- thick files -------------------------------------------------------------------- */

static void test_thick(void **state)
{
	const char *img = t_mkfs("thick", 128ull << 20, 0);
	const uint64_t nb = 20;
	uint64_t zero, pat, free0, free1, bs;
	uint8_t *buf;
	struct vmfs_stat st;
	struct vmfs_file *f;
	struct vmfs_vh vh;
	struct vmfs *fs;

	(void)state;
	prefill(img, &vh);
	bs = vh.block_size;
	buf = malloc(bs);
	assert_non_null(buf);
	fs = t_mount(img, "a");
	free0 = free_blocks(fs);

	/* lazily zeroed: all blocks allocated, none written */
	assert_int_equal(vmfs_create_thick(fs, "/lazy", 0600, nb * bs, 0), 0);
	assert_int_equal(vmfs_create_thick(fs, "/lazy", 0600, bs, 0), -EEXIST);
	free1 = free_blocks(fs);
	assert_int_equal(free0 - free1, nb);
	assert_int_equal(vmfs_getattr(fs, "/lazy", &st), 0);
	assert_int_equal(st.size, nb * bs);
	assert_int_equal(st.blocks, nb * bs / 512);
	scan(img, &vh, &zero, &pat);
	assert_int_equal(zero, 0);	   /* no zeroes were written... */
	assert_int_equal(pat, vh.nblocks); /* ...and nothing else either */
	assert_int_equal(vmfs_open(fs, "/lazy", O_RDWR, 0, &f), 0);
	for (uint64_t b = 0; b < nb; b++) { /* ...yet the file reads as zeroes */
		memset(buf, 1, bs);
		assert_int_equal(vmfs_read(f, buf, bs, b * bs), (ssize_t)bs);
		for (uint64_t i = 0; i < bs; i++)
			if (buf[i])
				fail_msg("lazy block %llu byte %llu not zero",
					 (unsigned long long)b, (unsigned long long)i);
	}
	/* the first write into a TBZ block zeroes the rest of it */
	assert_int_equal(vmfs_write(f, "hello", 5, 3 * bs + 1000), 5);
	assert_int_equal(vmfs_read(f, buf, bs, 3 * bs), (ssize_t)bs);
	assert_memory_equal(buf + 1000, "hello", 5);
	for (uint64_t i = 0; i < bs; i++)
		if ((i < 1000 || i >= 1005) && buf[i])
			fail_msg("byte %llu of the written TBZ block not zero",
				 (unsigned long long)i);
	assert_int_equal(vmfs_write(f, "again", 5, 3 * bs + 5000), 5); /* now in place */
	assert_int_equal(vmfs_close(f), 0);
	scan(img, &vh, &zero, &pat);
	assert_int_equal(pat, vh.nblocks - 1); /* the written block, on disk: */
	assert_int_equal(zero, 0);	       /* data and zeroes, no PAT */
	assert_int_equal(free_blocks(fs), free1);

	/* eagerly zeroed: every block zeroed on disk */
	assert_int_equal(vmfs_create_thick(fs, "/eager", 0600, nb * bs - 100, 1), 0);
	assert_int_equal(vmfs_getattr(fs, "/eager", &st), 0);
	assert_int_equal(st.size, nb * bs - 100);
	assert_int_equal(st.blocks, nb * bs / 512);
	assert_int_equal(free_blocks(fs), free1 - nb);
	scan(img, &vh, &zero, &pat);
	assert_int_equal(zero, nb);
	assert_int_equal(pat, vh.nblocks - 1 - nb);

	/* ZERO_RANGE over written whole blocks: TBZ again, no data written */
	assert_int_equal(vmfs_open(fs, "/lazy", O_RDWR, 0, &f), 0);
	assert_int_equal(vmfs_fallocate(f, VMFS_FALLOC_ZERO_RANGE, 3 * bs, bs), 0);
	assert_int_equal(vmfs_read(f, buf, bs, 3 * bs), (ssize_t)bs);
	for (uint64_t i = 0; i < bs; i++)
		assert_int_equal(buf[i], 0);
	/* PUNCH_HOLE frees whole blocks */
	assert_int_equal(
	    vmfs_fallocate(f, VMFS_FALLOC_PUNCH_HOLE | VMFS_FALLOC_KEEP_SIZE, 5 * bs, 2 * bs), 0);
	assert_int_equal(vmfs_fstat(f, &st), 0);
	assert_int_equal(st.size, nb * bs);
	assert_int_equal(st.blocks, (nb - 2) * bs / 512);
	assert_int_equal(vmfs_close(f), 0);
	assert_int_equal(free_blocks(fs), free1 - nb + 2);

	/* far out: single- and double-indirect ranges (pointer blocks) */
	assert_int_equal(vmfs_open(fs, "/far", O_CREAT | O_RDWR, 0600, &f), 0);
	assert_int_equal(vmfs_fallocate(f, VMFS_FALLOC_KEEP_SIZE, 300 * bs - 10, 2 * bs + 20), 0);
	assert_int_equal(vmfs_fallocate(f, 0, 70000 * bs, 1), 0); /* level 2 + level 1 PB */
	assert_int_equal(vmfs_fstat(f, &st), 0);
	assert_int_equal(st.size, 70000 * bs + 1);
	assert_int_equal(st.blocks, (5 + 3) * bs / 512); /* lbns 299..302 + 70000, 3 PBs */
	assert_int_equal(free_blocks(fs), free1 - nb + 2 - 5);
	assert_int_equal(vmfs_write(f, "far", 3, 301 * bs + 7), 3);
	assert_int_equal(vmfs_read(f, buf, bs, 301 * bs), (ssize_t)bs);
	assert_memory_equal(buf + 7, "far", 3);
	for (uint64_t i = 0; i < bs; i++)
		if ((i < 7 || i >= 10) && buf[i])
			fail_msg("far block byte %llu not zero", (unsigned long long)i);
	assert_int_equal(
	    vmfs_fallocate(f, VMFS_FALLOC_PUNCH_HOLE | VMFS_FALLOC_KEEP_SIZE, 299 * bs, 1000 * bs),
	    0);
	assert_int_equal(vmfs_read(f, buf, 16, 301 * bs), 16);
	for (int i = 0; i < 16; i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(vmfs_fstat(f, &st), 0);
	assert_int_equal(st.blocks, (1 + 3) * bs / 512); /* empty PBs stay */
	assert_int_equal(vmfs_close(f), 0);
	assert_int_equal(free_blocks(fs), free1 - nb + 2 - 1);
	assert_int_equal(vmfs_unlink(fs, "/far"), 0);
	assert_int_equal(t_fsck(img), 0);

	/* no room: -ENOSPC and the file is gone */
	assert_int_equal(vmfs_create_thick(fs, "/huge", 0600, (vh.nblocks + 1) * bs, 0), -ENOSPC);
	assert_int_equal(vmfs_getattr(fs, "/huge", &st), -ENOENT);
	assert_int_equal(free_blocks(fs), free1 - nb + 2);
	assert_int_equal(vmfs_unlink(fs, "/lazy"), 0);
	assert_int_equal(vmfs_unlink(fs, "/eager"), 0);
	assert_int_equal(free_blocks(fs), free0);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	free(buf);
}

/* ---- crash between the data write into a TBZ block and the commit ------------------- */

static void test_tbz_crash(void **state)
{
	char base[4200], cmd[9000], uri[4300];
	const char *img;
	struct vmfs_vh vh;
	struct vmfs *fs;
	struct vmfs_file *f;
	uint8_t *buf;
	int crashed = 1, cases = 0, written = 0;
	uint64_t bs;

	(void)state;
	t_hb_int = 100;
	t_hb_tmo = 800;
	img = t_mkfs("tbzcrash", 96ull << 20, 0);
	prefill(img, &vh);
	bs = vh.block_size;
	buf = malloc(bs);
	assert_non_null(buf);
	fs = t_mount(img, "prep");
	assert_int_equal(vmfs_create_thick(fs, "/t", 0600, 4 * bs, 0), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	snprintf(base, sizeof(base), "%s.base", img);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", img, base);
	assert_int_equal(system(cmd), 0);
	for (unsigned n = 1; crashed && n < 60; n += 1 + n / 6) {
		int rc;

		snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", base, img);
		assert_int_equal(system(cmd), 0);
		snprintf(uri, sizeof(uri), "crash:flush=%u,mode=random,seed=%u:%s", n, n, img);
		rc = vmfs_mount(uri, NULL, &fs);
		crashed = rc != 0;
		f = NULL;
		if (!rc) {
			rc = vmfs_open(fs, "/t", O_RDWR, 0, &f);
			for (int b = 0; b < 4 && !rc; b++) /* one TBZ block per transaction */
				rc = vmfs_write(f, "DATA", 4, (uint64_t)b * bs + 100) == 4 ? 0
											   : -EIO;
			crashed = rc != 0;
			if (f)
				vmfs_close(f);
			vmfs_umount(fs);
		}
		fs = t_mount(img, "survivor");
		assert_int_equal(vmfs_open(fs, "/t", O_RDONLY, 0, &f), 0);
		for (int b = 0; b < 4; b++) {
			assert_int_equal(vmfs_read(f, buf, bs, (uint64_t)b * bs), (ssize_t)bs);
			written += !memcmp(buf + 100, "DATA", 4);
			if (!memcmp(buf + 100, "DATA", 4))
				memset(buf + 100, 0, 4);
			for (uint64_t i = 0; i < bs; i++)
				if (buf[i])
					fail_msg("flush=%u: block %d byte %llu = 0x%02x (stale)", n,
						 b, (unsigned long long)i, buf[i]);
		}
		assert_int_equal(vmfs_close(f), 0);
		assert_int_equal(vmfs_umount(fs), 0);
		assert_int_equal(t_fsck(img), 0);
		cases++;
	}
	fprintf(stderr, "%d crash points, %d blocks written before the crash\n", cases, written);
	assert_true(cases > 5);
	assert_true(written > 0);
	assert_false(crashed); /* the last case ran to the end */
	unlink(base);
	free(buf);
}

/* Crashes while creating an eagerly zeroed thick file: afterwards the file
 * is absent or reads as zeroes over its whole size (never 0xAB). */
static void test_eager_crash(void **state)
{
	char base[4200], cmd[9000], uri[4300];
	const char *img;
	struct vmfs_stat st;
	struct vmfs_vh vh;
	struct vmfs *fs;
	int crashed = 1, cases = 0, present = 0;
	uint8_t *buf;

	(void)state;
	t_hb_int = 100;
	t_hb_tmo = 800;
	img = t_mkfs("eagercrash", 96ull << 20, 0);
	prefill(img, &vh);
	buf = malloc(vh.block_size);
	assert_non_null(buf);
	snprintf(base, sizeof(base), "%s.base", img);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", img, base);
	assert_int_equal(system(cmd), 0);
	for (unsigned n = 1; crashed && n < 60; n++) {
		struct vmfs_file *f;
		int rc;

		snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", base, img);
		assert_int_equal(system(cmd), 0);
		snprintf(uri, sizeof(uri), "crash:flush=%u,mode=random,seed=%u:%s", n, n, img);
		rc = vmfs_mount(uri, NULL, &fs);
		crashed = rc != 0;
		if (!rc) {
			rc = vmfs_create_thick(fs, "/e", 0600, 6 * vh.block_size, 1);
			crashed = rc != 0;
			vmfs_umount(fs);
		}
		fs = t_mount(img, "survivor");
		rc = vmfs_getattr(fs, "/e", &st);
		assert_true(rc == 0 || rc == -ENOENT);
		if (rc == 0) {
			present += crashed && st.size > 0;
			assert_int_equal(vmfs_open(fs, "/e", O_RDONLY, 0, &f), 0);
			for (uint64_t o = 0; o < st.size; o += vh.block_size) {
				ssize_t k = vmfs_read(f, buf, vh.block_size, o);

				assert_true(k > 0);
				for (ssize_t i = 0; i < k; i++)
					if (buf[i])
						fail_msg("flush=%u: byte %llu = 0x%02x", n,
							 (unsigned long long)(o + (uint64_t)i),
							 buf[i]);
			}
			assert_int_equal(vmfs_close(f), 0);
		}
		assert_int_equal(vmfs_umount(fs), 0);
		assert_int_equal(t_fsck(img), 0);
		cases++;
	}
	fprintf(stderr, "%d crash points, %d crashed with blocks linked\n", cases, present);
	assert_true(cases > 5);
	assert_false(crashed);
	unlink(base);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_falloc_model), cmocka_unit_test(test_falloc_small),
	    cmocka_unit_test(test_thick),	 cmocka_unit_test(test_tbz_crash),
	    cmocka_unit_test(test_eager_crash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
