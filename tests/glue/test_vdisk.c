/*
 * test_vdisk.c - the vdisk API (hypervisor-glue/vdisk.h) on an image file:
 * descriptors (round trip, vmkfstools-style text, hostile input), create of
 * the three provisionings and their extents, lock modes between two hosts
 * with the holder named, I/O and the asynchronous queue, write-zeroes,
 * discard (blocks back to the volume, the image file's allocation drops),
 * grow, inflate, clone keeping holes, delete; fsck clean at the end.
 */
#include "../fs/fstest.h"

#include <pthread.h>

#include "vdisk.h"

#define MiB (1ull << 20)

static uint64_t img_blocks(const char *img)
{
	struct stat st;

	assert_int_equal(stat(img, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

/* ---- descriptors ------------------------------------------------------------------ */

static void test_desc_roundtrip(void **state)
{
	struct vdisk_desc d, e;
	char buf[8192], why[256];
	int n;

	(void)state;
	assert_int_equal(vdisk_desc_init(&d, "vm1-flat.vmdk", 10ull << 30, VDISK_LSILOGIC, 1), 0);
	n = vdisk_desc_format(&d, buf, sizeof(buf));
	assert_true(n > 0);
	assert_non_null(strstr(buf, "createType=\"vmfs\""));
	assert_non_null(strstr(buf, "RW 20971520 VMFS \"vm1-flat.vmdk\""));
	assert_non_null(strstr(buf, "ddb.geometry.cylinders = \"1305\""));
	assert_non_null(strstr(buf, "ddb.geometry.heads = \"255\""));
	assert_non_null(strstr(buf, "ddb.thinProvisioned = \"1\""));
	assert_int_equal(vdisk_desc_parse(buf, (size_t)n, &e, why, sizeof(why)), 0);
	assert_string_equal(e.flat, "vm1-flat.vmdk");
	assert_int_equal(e.sectors, 20971520);
	assert_int_equal(e.cid, d.cid);
	assert_int_equal(e.cylinders, 1305);
	assert_int_equal(e.thin, 1);
	assert_string_equal(e.uuid, d.uuid);
	assert_string_equal(e.extra, d.extra);
	/* IDE geometry */
	assert_int_equal(vdisk_desc_init(&d, "x-flat.vmdk", 1ull << 30, VDISK_IDE, 0), 0);
	assert_int_equal(d.heads, 16);
	assert_int_equal(d.cylinders, 2080);
	/* a descriptor as ESXi writes it (CRLF, extra keys) */
	const char *esx = "# Disk DescriptorFile\r\nversion=1\r\nencoding=\"UTF-8\"\r\n"
			  "CID=fffffffe\r\nparentCID=ffffffff\r\nisNativeSnapshot=\"no\"\r\n"
			  "createType=\"vmfs\"\r\n\r\n# Extent description\r\n"
			  "RW 8388608 VMFS \"disk 1-flat.vmdk\"\r\n\r\n# The Disk Data Base\r\n"
			  "#DDB\r\n\r\nddb.adapterType = \"pvscsi\"\r\nddb.deletable = \"true\"\r\n"
			  "ddb.longContentID = \"0123456789abcdef0123456789abcdef\"\r\n";
	assert_int_equal(vdisk_desc_parse(esx, strlen(esx), &e, why, sizeof(why)), 0);
	assert_string_equal(e.flat, "disk 1-flat.vmdk");
	assert_int_equal(e.adapter, VDISK_PVSCSI);
	assert_int_equal(e.heads, 255); /* geometry computed when absent */
	assert_non_null(strstr(e.extra, "ddb.deletable = \"true\""));
}

static void expect_bad(const char *text, int want, const char *why_has)
{
	struct vdisk_desc d;
	char why[256];
	int rc = vdisk_desc_parse(text, strlen(text), &d, why, sizeof(why));

	if (rc != want || !strstr(why, why_has))
		fprintf(stderr, "descriptor %.60s...: rc %d why '%s'\n", text, rc, why);
	assert_int_equal(rc, want);
	assert_non_null(strstr(why, why_has));
}

#define HDR "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n"

static void test_desc_hostile(void **state)
{
	char big[VDISK_DESC_MAX + 10];
	struct vdisk_desc d;

	(void)state;
	expect_bad("hello", -EINVAL, "does not start");
	expect_bad(HDR "RW 100 VMFS \"a-flat.vmdk\"\n", -EINVAL, "no createType");
	expect_bad(HDR "createType=\"vmfs\"\n", -EINVAL, "no extent");
	expect_bad(HDR "createType=\"vmfs\"\nRW 100 VMFS \"../etc/passwd\"\n", -EINVAL,
		   "one plain name");
	expect_bad(HDR "createType=\"vmfs\"\nRW 100 VMFS \"..\"\n", -EINVAL, "one plain name");
	expect_bad(HDR "createType=\"vmfs\"\nRW 0 VMFS \"a\"\n", -EINVAL, "sector count");
	expect_bad(HDR "createType=\"vmfs\"\nRW 99999999999999999999999 VMFS \"a\"\n", -EINVAL,
		   "sector count");
	expect_bad(HDR "createType=\"vmfs\"\nRW -5 VMFS \"a\"\n", -EINVAL, "sector count");
	expect_bad(HDR "createType=\"vmfs\"\nRW 100 VMFS a\n", -EINVAL, "quoted");
	expect_bad(HDR "createType=\"vmfs\"\nRW 100 VMFS \"a\nb\"\n", -EINVAL, "quoted");
	expect_bad(HDR "createType=\"vmfs\"\nRW 100 VMFS \"a\"\nRW 100 VMFS \"b\"\n", -ENOTSUP,
		   "several extents");
	expect_bad(HDR "createType=\"vmfsSparse\"\n", -ENOTSUP, "sparse");
	expect_bad(HDR "createType=\"vmfsRawDeviceMap\"\n", -ENOTSUP, "raw device");
	expect_bad(HDR "createType=\"bogus\"\n", -EINVAL, "unknown createType");
	expect_bad("# Disk DescriptorFile\nparentCID=12345678\n", -ENOTSUP, "snapshot");
	expect_bad(HDR "createType=\"vmfs\"\nRW 100 VMFSSPARSE \"a\"\n", -ENOTSUP, "sparse");
	expect_bad(HDR "createType=\"vmfs\"\nRW 100 VMFS \"a\"\nddb.adapterType = \"scsi9\"\n",
		   -EINVAL, "adapterType");
	expect_bad(HDR "createType=\"vmfs\"\nRW 100 VMFS \"a\"\nddb.geometry.heads = \"900\"\n",
		   -EINVAL, "heads");
	expect_bad(HDR "createType=\"vmfs\"\nRW 100 VMFS \"a\"\nddb.thinProvisioned = \"2\"\n",
		   -EINVAL, "thinProvisioned");
	expect_bad(HDR "createType=\"vmfs\nRW 100 VMFS \"a\"\n", -EINVAL, "quotes");
	expect_bad(HDR "createType=\"vmfs\"\nRW 100 VMFS \"a\"\n\x01\x02=3\n", -EINVAL,
		   "printable");
	expect_bad(HDR "createType=\"vmfs\"\nRW 100 VMFS \"a\" 7\n", -ENOTSUP, "offset");
	/* NUL bytes, oversize, overlong line */
	assert_int_equal(vdisk_desc_parse(HDR "\0x", sizeof(HDR) + 1, &d, NULL, 0), -EINVAL);
	memset(big, 'a', sizeof(big));
	memcpy(big, HDR, strlen(HDR));
	assert_int_equal(vdisk_desc_parse(big, sizeof(big), &d, NULL, 0), -EINVAL);
	assert_int_equal(vdisk_desc_parse(big, 4000, &d, NULL, 0), -EINVAL);
	/* random garbage after the magic never crashes */
	for (int i = 0; i < 2000; i++) {
		char t[300];
		size_t n = strlen(HDR);

		memcpy(t, HDR, n);
		t_fill((uint8_t *)t + n, sizeof(t) - n, (uint64_t)i);
		for (size_t j = n; j < sizeof(t); j++)
			t[j] = (char)(" \n\"=RWVMFS0123456789abc"[(uint8_t)t[j] % 23]);
		(void)vdisk_desc_parse(t, sizeof(t), &d, NULL, 0);
	}
}

/* Mutations of a valid descriptor: never a crash; whatever parses formats
 * and parses again to the same disk. */
static void test_desc_mutations(void **state)
{
	struct vdisk_desc d, e, f;
	char good[4096], t[4096], out[8192];
	uint8_t r[8];
	int n, accepted = 0;

	(void)state;
	assert_int_equal(vdisk_desc_init(&d, "m-flat.vmdk", 3ull << 30, VDISK_PVSCSI, 1), 0);
	n = vdisk_desc_format(&d, good, sizeof(good));
	assert_true(n > 0);
	for (int i = 0; i < 20000; i++) {
		memcpy(t, good, (size_t)n);
		t_fill(r, sizeof(r), (uint64_t)i + 99);
		for (int k = 0; k <= r[0] % 4; k++) {
			size_t at = ((size_t)r[1 + k] * 131 + (size_t)i * 7) % (size_t)n;

			t[at] = (char)(k & 1 ? r[5 + k % 3] : "0123456789\"= \nRWxyz/."[r[5] % 20]);
		}
		if (vdisk_desc_parse(t, (size_t)n, &e, NULL, 0))
			continue;
		accepted++;
		assert_true(e.sectors >= 1 && e.sectors <= VDISK_SIZE_MAX / 512);
		assert_null(strchr(e.flat, '/'));
		assert_true(e.flat[0] != '\0');
		assert_true(vdisk_desc_format(&e, out, sizeof(out)) > 0);
		assert_int_equal(vdisk_desc_parse(out, strlen(out), &f, NULL, 0), 0);
		assert_int_equal(f.sectors, e.sectors);
		assert_string_equal(f.flat, e.flat);
		assert_int_equal(f.adapter, e.adapter);
		assert_int_equal(f.thin, e.thin);
		assert_int_equal(f.cylinders, e.cylinders);
	}
	assert_true(accepted > 0);
}

/* ---- disks on a volume ------------------------------------------------------------- */

static unsigned count_ext(struct vdisk *d, uint32_t flags, uint64_t *bytes)
{
	struct vmfs_extent e[256];
	int n = vdisk_extents(d, 0, vdisk_size(d), e, 256);
	unsigned c = 0;

	assert_true(n > 0);
	*bytes = 0;
	for (int i = 0; i < n; i++)
		if (e[i].flags == flags) {
			c++;
			*bytes += e[i].len;
		}
	return c;
}

static void test_create_extents(void **state)
{
	const char *img = t_mkfs("vdcreate", 3ull << 30, 1u << 20);
	struct vmfs *fs = t_mount(img, "esx1");
	struct vdisk_create_opts co = {.prov = VDISK_THIN};
	struct vdisk_open_opts oo = {.mode = VDISK_EXCLUSIVE};
	struct vdisk *d;
	struct vdisk_info in;
	uint64_t b;
	uint8_t buf[8192];

	(void)state;
	assert_int_equal(vmfs_mkdir(fs, "/vms", 0755), 0);
	assert_int_equal(vdisk_create(fs, "/vms/t.vmdk", 256 * MiB, &co), 0);
	assert_int_equal(vdisk_create(fs, "/vms/t.vmdk", 256 * MiB, &co), -EEXIST);
	assert_int_equal(vdisk_create(fs, "/vms/odd.vmdk", 1000, &co), -EINVAL);
	assert_non_null(strstr(vdisk_errmsg(), "multiple of 512"));
	co.prov = VDISK_ZEROEDTHICK;
	assert_int_equal(vdisk_create(fs, "/vms/z.vmdk", 64 * MiB, &co), 0);
	co.prov = VDISK_EAGERZEROEDTHICK;
	assert_int_equal(vdisk_create(fs, "/vms/e.vmdk", 64 * MiB, &co), 0);
	co.prov = VDISK_THIN;
	assert_int_equal(vdisk_create(fs, "/vms/raw.img", 8 * MiB, &co), 0);

	/* thin: all hole; write straddling a block boundary -> 2 data blocks */
	assert_int_equal(vdisk_open(fs, "/vms/t.vmdk", &oo, &d), 0);
	assert_int_equal(vdisk_size(d), 256 * MiB);
	assert_int_equal(vdisk_prov(d), VDISK_THIN);
	assert_int_equal(count_ext(d, VMFS_EXT_HOLE | VMFS_EXT_ZERO, &b), 1);
	assert_int_equal(b, 256 * MiB);
	t_fill(buf, sizeof(buf), 1);
	assert_int_equal(vdisk_pwrite(d, buf, sizeof(buf), 5 * MiB - 4096), sizeof(buf));
	assert_int_equal(count_ext(d, 0, &b), 1);
	assert_int_equal(b, 2 * MiB);
	assert_int_equal(vdisk_pwrite(d, buf, 512, 256 * MiB - 256), -EINVAL); /* beyond */
	assert_int_equal(vdisk_close(d), 0);
	/* the flat file, opened directly, is the same disk */
	assert_int_equal(vdisk_open(fs, "/vms/t-flat.vmdk", &oo, &d), 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(vdisk_pread(d, buf, sizeof(buf), 5 * MiB - 4096), sizeof(buf));
	{
		uint8_t want[8192];

		t_fill(want, sizeof(want), 1);
		assert_memory_equal(buf, want, sizeof(buf));
	}
	assert_int_equal(vdisk_close(d), 0);

	/* lazy: all TBZ; eager: all data */
	assert_int_equal(vdisk_open(fs, "/vms/z.vmdk", &oo, &d), 0);
	assert_int_equal(vdisk_prov(d), VDISK_ZEROEDTHICK);
	assert_int_equal(count_ext(d, VMFS_EXT_ZERO, &b), 1);
	assert_int_equal(b, 64 * MiB);
	assert_int_equal(vdisk_close(d), 0);
	assert_int_equal(vdisk_open(fs, "/vms/e.vmdk", &oo, &d), 0);
	assert_int_equal(vdisk_prov(d), VDISK_EAGERZEROEDTHICK);
	assert_int_equal(count_ext(d, 0, &b), 1);
	assert_int_equal(b, 64 * MiB);
	assert_int_equal(vdisk_close(d), 0);

	assert_int_equal(vdisk_info(fs, "/vms/t.vmdk", &in), 0);
	assert_int_equal(in.has_desc, 1);
	assert_string_equal(in.flat_path, "/vms/t-flat.vmdk");
	assert_int_equal(in.data, 2 * MiB);
	assert_int_equal(in.prov, VDISK_THIN);
	assert_int_equal(in.lock_mode, VMFS_LOCK_FREE);
	assert_int_equal(vdisk_info(fs, "/vms/raw.img", &in), 0);
	assert_int_equal(in.has_desc, 0);
	assert_int_equal(in.size, 8 * MiB);

	/* a descriptor pointing at a missing or too small flat file */
	{
		const char *bad = HDR "createType=\"vmfs\"\nRW 999999 VMFS \"raw.img\"\n";

		t_write_file(fs, "/vms/bad.vmdk", bad, strlen(bad), 0);
	}
	assert_int_equal(vdisk_open(fs, "/vms/bad.vmdk", &oo, &d), -EUCLEAN);
	assert_non_null(strstr(vdisk_errmsg(), "descriptor says"));
	assert_int_equal(vmfs_unlink(fs, "/vms/bad.vmdk"), 0);

	assert_int_equal(vdisk_delete(fs, "/vms/t.vmdk"), 0);
	assert_int_equal(vmfs_getattr(fs, "/vms/t-flat.vmdk", &(struct vmfs_stat){0}), -ENOENT);
	assert_int_equal(vmfs_getattr(fs, "/vms/t.vmdk", &(struct vmfs_stat){0}), -ENOENT);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

static void test_locks(void **state)
{
	const char *img = t_mkfs("vdlock", 1ull << 30, 1u << 20);
	struct vmfs *a = t_mount(img, "esx1"), *b = t_mount(img, "esx2");
	struct vdisk_create_opts co = {.prov = VDISK_EAGERZEROEDTHICK};
	struct vdisk_open_opts ex = {.mode = VDISK_EXCLUSIVE}, sh = {.mode = VDISK_SHARED},
			       mw = {.mode = VDISK_MULTIWRITER};
	struct vdisk *d1, *d2;
	struct vdisk_info in;
	uint8_t x[512], y[512];

	(void)state;
	assert_int_equal(vdisk_create(a, "/vm1.vmdk", 16 * MiB, &co), 0);
	assert_int_equal(vdisk_open(a, "/vm1.vmdk", &ex, &d1), 0);
	assert_int_equal(vdisk_open(b, "/vm1.vmdk", &ex, &d2), -EBUSY);
	assert_string_equal(vdisk_errmsg(), "vm1.vmdk is locked by host esx1 (exclusive)");
	assert_int_equal(vdisk_open(b, "/vm1-flat.vmdk", &sh, &d2), -EBUSY);
	assert_non_null(strstr(vdisk_errmsg(), "locked by host esx1"));
	assert_int_equal(vdisk_delete(b, "/vm1.vmdk"), -EBUSY);
	assert_non_null(strstr(vdisk_errmsg(), "locked by host esx1"));
	assert_int_equal(vdisk_info(b, "/vm1.vmdk", &in), 0);
	assert_int_equal(in.lock_mode, VMFS_LOCK_EX);
	assert_int_equal(in.nholders, 1);
	assert_string_equal(in.holders[0].hostname, "esx1");
	assert_int_equal(vdisk_close(d1), 0);

	/* read-only shared on both hosts; a writer is refused meanwhile */
	assert_int_equal(vdisk_open(a, "/vm1.vmdk", &sh, &d1), 0);
	assert_int_equal(vdisk_open(b, "/vm1.vmdk", &sh, &d2), 0);
	assert_int_equal(vdisk_pwrite(d2, x, 512, 0), -EBADF);
	assert_int_equal(vdisk_info(a, "/vm1.vmdk", &in), 0);
	assert_int_equal(in.lock_mode, VMFS_LOCK_SH);
	assert_int_equal(in.nholders, 2);
	{
		struct vmfs *c = t_mount(img, "esx3");
		struct vdisk *d3;

		assert_int_equal(vdisk_open(c, "/vm1.vmdk", &ex, &d3), -EBUSY);
		assert_non_null(strstr(vdisk_errmsg(), "locked by hosts esx"));
		assert_non_null(strstr(vdisk_errmsg(), "read-only shared"));
		assert_int_equal(vmfs_umount(c), 0);
	}
	assert_int_equal(vdisk_close(d1), 0);
	assert_int_equal(vdisk_close(d2), 0);

	/* multi-writer on a thick disk: both write in place, different blocks */
	assert_int_equal(vdisk_open(a, "/vm1.vmdk", &mw, &d1), 0);
	assert_int_equal(vdisk_open(b, "/vm1.vmdk", &mw, &d2), 0);
	assert_int_equal(vdisk_open(b, "/vm1.vmdk", &ex, &(struct vdisk *){0}), -EBUSY);
	memset(x, 0x11, sizeof(x));
	memset(y, 0x22, sizeof(y));
	assert_int_equal(vdisk_pwrite(d1, x, 512, 0), 512);
	assert_int_equal(vdisk_pwrite(d2, y, 512, 2 * MiB), 512);
	assert_int_equal(vdisk_flush(d1), 0);
	assert_int_equal(vdisk_flush(d2), 0);
	assert_int_equal(vdisk_pread(d2, y, 512, 0), 512);
	assert_memory_equal(x, y, 512);
	/* discard is advisory in multi-writer mode */
	assert_int_equal(vdisk_discard(d1, 0, 4 * MiB), 0);
	assert_int_equal(vdisk_close(d1), 0);
	assert_int_equal(vdisk_close(d2), 0);
	assert_int_equal(vmfs_umount(a), 0);
	assert_int_equal(vmfs_umount(b), 0);
	assert_int_equal(t_fsck(img), 0);
}

struct aio_state {
	pthread_mutex_t mu;
	int done, bad;
};

static void aio_done(struct vdisk_req *r, ssize_t res)
{
	struct aio_state *s = r->arg;

	pthread_mutex_lock(&s->mu);
	s->done++;
	if (res < 0 || (r->op <= VDISK_OP_WRITE && res != (ssize_t)r->len))
		s->bad++;
	pthread_mutex_unlock(&s->mu);
}

static void test_async_zero_discard(void **state)
{
	const char *img = t_mkfs("vdaio", 2ull << 30, 1u << 20);
	struct vmfs *fs = t_mount(img, "esx1");
	struct vdisk_create_opts co = {.prov = VDISK_THIN};
	struct vdisk_open_opts oo = {.mode = VDISK_EXCLUSIVE, .queue_depth = 8};
	struct aio_state s = {.mu = PTHREAD_MUTEX_INITIALIZER};
	struct vdisk_req r[64];
	struct vmfs_statfs sf0, sf1, sf2;
	uint8_t *wbuf = malloc(64 * 65536), *rbuf = malloc(64 * 65536);
	struct vdisk *d;
	uint64_t b, a0, a1, a2;

	(void)state;
	assert_int_equal(vdisk_create(fs, "/d.vmdk", 1024 * MiB, &co), 0);
	assert_int_equal(vdisk_open(fs, "/d.vmdk", &oo, &d), 0);
	/* 64 writes of 64 KiB spread over the disk, queued at once */
	t_fill(wbuf, 64 * 65536, 7);
	for (int i = 0; i < 64; i++)
		r[i] = (struct vdisk_req){.op = VDISK_OP_WRITE,
					  .buf = wbuf + i * 65536,
					  .off = (uint64_t)i * 3 * MiB + 1536,
					  .len = 65536,
					  .done = aio_done,
					  .arg = &s};
	for (int i = 0; i < 64; i++)
		assert_int_equal(vdisk_submit(d, &r[i]), 0);
	vdisk_drain(d);
	assert_int_equal(s.done, 64);
	r[0] = (struct vdisk_req){.op = VDISK_OP_FLUSH, .done = aio_done, .arg = &s};
	assert_int_equal(vdisk_submit(d, &r[0]), 0);
	vdisk_drain(d);
	for (int i = 0; i < 64; i++)
		r[i] = (struct vdisk_req){.op = VDISK_OP_READ,
					  .buf = rbuf + i * 65536,
					  .off = (uint64_t)i * 3 * MiB + 1536,
					  .len = 65536,
					  .done = aio_done,
					  .arg = &s};
	for (int i = 0; i < 64; i++)
		assert_int_equal(vdisk_submit(d, &r[i]), 0);
	vdisk_drain(d);
	assert_int_equal(s.done, 129);
	assert_int_equal(s.bad, 0);
	assert_memory_equal(wbuf, rbuf, 64 * 65536);

	/* write-zeroes: may-trim on thin makes holes; without it TBZ */
	assert_int_equal(vdisk_write_zeroes(d, 0, 3 * MiB, VDISK_ZERO_MAY_TRIM), 0);
	assert_int_equal(vdisk_pread(d, rbuf, 65536, 1536), 65536);
	assert_true(rbuf[0] == 0 && !memcmp(rbuf, rbuf + 1, 65535));
	assert_int_equal(vdisk_write_zeroes(d, 3 * MiB, 3 * MiB, VDISK_ZERO_FAST), 0);
	assert_int_equal(vdisk_pread(d, rbuf, 65536, 3 * MiB + 1536), 65536);
	assert_true(rbuf[0] == 0 && !memcmp(rbuf, rbuf + 1, 65535));
	assert_true(count_ext(d, VMFS_EXT_ZERO, &b) >= 1);
	assert_int_equal(b, 3 * MiB);

	/* fill 512 MiB, then discard it: blocks back, image shrinks */
	memset(wbuf, 0x5a, 4 * MiB);
	for (uint64_t off = 512 * MiB; off < 1024 * MiB; off += 4 * MiB)
		assert_int_equal(vdisk_pwrite(d, wbuf, 4 * MiB, off), 4 * MiB);
	assert_int_equal(vdisk_flush(d), 0);
	assert_int_equal(vmfs_statfs(fs, &sf0), 0);
	a0 = img_blocks(img);
	assert_int_equal(vdisk_discard(d, 512 * MiB - 4096, 512 * MiB + 4096), 0);
	assert_int_equal(vmfs_statfs(fs, &sf1), 0);
	a1 = img_blocks(img);
	assert_int_equal(sf1.blocks_free - sf0.blocks_free, 512);
	assert_true(a0 - a1 >= 510 * MiB);
	assert_int_equal(vdisk_pread(d, rbuf, 65536, 700 * MiB), 65536);
	assert_true(rbuf[0] == 0 && !memcmp(rbuf, rbuf + 1, 65535));
	assert_int_equal(vdisk_close(d), 0);

	/* thick disks keep their blocks on discard */
	co.prov = VDISK_ZEROEDTHICK;
	assert_int_equal(vdisk_create(fs, "/k.vmdk", 64 * MiB, &co), 0);
	assert_int_equal(vdisk_open(fs, "/k.vmdk", &oo, &d), 0);
	assert_int_equal(vmfs_statfs(fs, &sf1), 0);
	assert_int_equal(vdisk_discard(d, 0, 64 * MiB), 0);
	assert_int_equal(vmfs_statfs(fs, &sf2), 0);
	assert_int_equal(sf2.blocks_free, sf1.blocks_free);
	assert_int_equal(vdisk_close(d), 0);
	a2 = img_blocks(img);
	(void)a2;
	free(wbuf);
	free(rbuf);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

static int count_progress(void *arg, uint64_t done, uint64_t total)
{
	unsigned *n = arg;

	assert_true(done <= total);
	(*n)++;
	return 0;
}

static int cancel_progress(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	(void)total;
	return done > 0;
}

static void test_grow_inflate_clone(void **state)
{
	const char *img = t_mkfs("vdclone", 2ull << 30, 1u << 20);
	struct vmfs *fs = t_mount(img, "esx1");
	struct vdisk_create_opts co = {.prov = VDISK_THIN};
	struct vdisk_open_opts oo = {.mode = VDISK_EXCLUSIVE};
	struct vdisk *d, *c;
	struct vdisk_info in;
	uint8_t a[4096], b2[4096];
	unsigned calls = 0;
	uint64_t bytes;
	struct vmfs_statfs sf;

	(void)state;
	assert_int_equal(vdisk_create(fs, "/s.vmdk", 300 * MiB, &co), 0);
	assert_int_equal(vdisk_open(fs, "/s.vmdk", &oo, &d), 0);
	t_fill(a, sizeof(a), 3);
	assert_int_equal(vdisk_pwrite(d, a, sizeof(a), 0), sizeof(a));
	assert_int_equal(vdisk_pwrite(d, a, sizeof(a), 299 * MiB), sizeof(a));
	/* grow: size and descriptor follow */
	assert_int_equal(vdisk_grow(d, 100 * MiB), -EINVAL);
	assert_int_equal(vdisk_grow(d, 400 * MiB), 0);
	assert_int_equal(vdisk_size(d), 400 * MiB);
	assert_int_equal(vdisk_pwrite(d, a, sizeof(a), 399 * MiB), sizeof(a));
	assert_int_equal(vdisk_info(fs, "/s.vmdk", &in), 0);
	assert_int_equal(in.desc.sectors, 400 * MiB / 512);
	assert_int_equal(in.size, 400 * MiB);

	/* clone keeps holes: 3 data blocks of 400 */
	co.progress = count_progress;
	co.progress_arg = &calls;
	assert_int_equal(vdisk_clone(d, fs, "/c.vmdk", &co), 0);
	assert_true(calls >= 1);
	assert_int_equal(
	    vdisk_open(fs, "/c.vmdk", &(struct vdisk_open_opts){.mode = VDISK_SHARED}, &c), 0);
	assert_int_equal(vdisk_size(c), 400 * MiB);
	assert_int_equal(count_ext(c, 0, &bytes), 3);
	assert_int_equal(bytes, 3 * MiB);
	assert_int_equal(vdisk_pread(c, b2, sizeof(b2), 399 * MiB), sizeof(b2));
	assert_memory_equal(a, b2, sizeof(a));
	assert_int_equal(vdisk_close(c), 0);
	/* a cancelled clone leaves nothing */
	co.progress = cancel_progress;
	assert_int_equal(vdisk_clone(d, fs, "/x.vmdk", &co), -ECANCELED);
	assert_int_equal(vmfs_getattr(fs, "/x.vmdk", &(struct vmfs_stat){0}), -ENOENT);
	assert_int_equal(vmfs_getattr(fs, "/x-flat.vmdk", &(struct vmfs_stat){0}), -ENOENT);

	/* inflate: everything allocated and zeroed, data kept */
	assert_int_equal(vmfs_statfs(fs, &sf), 0);
	calls = 0;
	assert_int_equal(vdisk_inflate(d, count_progress, &calls), 0);
	assert_true(calls >= 2);
	assert_int_equal(vdisk_prov(d), VDISK_EAGERZEROEDTHICK);
	assert_int_equal(count_ext(d, 0, &bytes), 1);
	assert_int_equal(bytes, 400 * MiB);
	assert_int_equal(vdisk_pread(d, b2, sizeof(b2), 299 * MiB), sizeof(b2));
	assert_memory_equal(a, b2, sizeof(a));
	assert_int_equal(vdisk_close(d), 0);
	assert_int_equal(vdisk_info(fs, "/s.vmdk", &in), 0);
	assert_int_equal(in.prov, VDISK_EAGERZEROEDTHICK);
	assert_int_equal(in.desc.thin, 0);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_desc_roundtrip),
	    cmocka_unit_test(test_desc_hostile),
	    cmocka_unit_test(test_desc_mutations),
	    cmocka_unit_test(test_create_extents),
	    cmocka_unit_test(test_locks),
	    cmocka_unit_test(test_async_zero_discard),
	    cmocka_unit_test(test_grow_inflate_clone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
