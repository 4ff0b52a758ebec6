/*
 * test_format.c - the native on-disk format (libvmfs/format.h): pins every
 * field offset and record size with literal numbers (docs/FORMAT.md has the
 * same tables), round-trips every structure through encode/decode, checks
 * that decoders reject bad magic, bad CRC and hostile field values with
 * -EUCLEAN and a reason, fuzzes decoders with resealed random mutations, and
 * runs mkfs + header read + check on an in-memory device.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bdev.h"
#include "crc32c.h"
#include "format.h"
#include "le.h"

#define GIB (1ull << 30)
#define MIB (1ull << 20)

static uint8_t blk[4096];
static char why[512];

/* Recomputes the CRC of a record of rec_len bytes (crc at 8, read as 0). */
static void reseal(uint8_t *b, uint32_t rec_len)
{
	le32_put(b + 8, 0);
	le32_put(b + 8, crc32c(0, b, rec_len));
}

static void layout8g(struct vmfs_vh *vh)
{
	static const uint8_t uuid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	struct vmfs_mkfs_opts o = {.label = "pinned", .uuid = uuid};

	assert_int_equal(vmfs_layout(8 * GIB, 512, &o, vh, why, sizeof(why)), 0);
	vh->created_ns = 0x1122334455667788ull;
}

static void check_common(const uint8_t *b, const char *magic, uint32_t rec_len)
{
	assert_memory_equal(b, magic, 4);
	assert_int_equal(le16_get(b + 4), 1);
	assert_int_equal(le16_get(b + 6), 0);
	assert_int_equal(le32_get(b + 0xC), rec_len);
	{
		uint8_t tmp[4096];

		memcpy(tmp, b, rec_len);
		le32_put(tmp + 8, 0);
		assert_int_equal(le32_get(b + 8), crc32c(0, tmp, rec_len));
	}
}

/* ---- volume header ------------------------------------------------------- */

static void test_vh_offsets(void **state)
{
	struct vmfs_vh vh;
	(void)state;

	layout8g(&vh);
	vmfs_vh_encode(&vh, blk);
	check_common(blk, "VMVH", 512);
	assert_int_equal(blk[0x10], 1);
	assert_int_equal(blk[0x1F], 16);
	assert_string_equal((char *)blk + 0x20, "pinned");
	assert_int_equal(le64_get(blk + 0x60), 8 * GIB);
	assert_int_equal(le64_get(blk + 0x68), 0x1122334455667788ull);
	assert_int_equal(le32_get(blk + 0x70), 512);
	assert_int_equal(le32_get(blk + 0x74), 4096);
	assert_int_equal(le32_get(blk + 0x78), 1 << 20);
	assert_int_equal(le32_get(blk + 0x7C), 64);
	assert_int_equal(le32_get(blk + 0x80), 1000);
	assert_int_equal(le32_get(blk + 0x84), 8000);
	assert_int_equal(le32_get(blk + 0x88), 256);
	assert_int_equal(le32_get(blk + 0x8C), 0);
	assert_int_equal(le32_get(blk + 0x90), 7); /* incompat: JH2 | XRES | IXA */
	assert_int_equal(le32_get(blk + 0x94), 0);
	assert_int_equal(le64_get(blk + 0x98), 4 * MIB);
	/* The worked example of docs/FORMAT.md (8 GiB, defaults). */
	assert_int_equal(le64_get(blk + 0xA0), 0x101000);
	assert_int_equal(le64_get(blk + 0xA8), 0x102000);
	assert_int_equal(le64_get(blk + 0xB0), 0x142000);
	assert_int_equal(le64_get(blk + 0xB8), 0x242000);
	assert_int_equal(le64_get(blk + 0xC0), 0x15400000);
	assert_int_equal(le64_get(blk + 0xC8), 7851);
	assert_int_equal(le64_get(blk + 0xD0), 8 * GIB - 4096);
	assert_int_equal(le64_get(blk + 0xD8), 4ull << 60);
	/* Region table: FD, PB, SB, FB. */
	assert_int_equal(le64_get(blk + 0xE0), 0x10242000);
	assert_int_equal(le32_get(blk + 0xE8), 32);
	assert_int_equal(le32_get(blk + 0xEC), 256);
	assert_int_equal(le32_get(blk + 0xF0), 8192);
	assert_int_equal(le32_get(blk + 0xF4), 8192 + 256 * 8192);
	assert_int_equal(le32_get(blk + 0xF8), VMFS_RT_FD);
	assert_int_equal(le64_get(blk + 0x100), 0x14282000);
	assert_int_equal(le32_get(blk + 0x108), 1);
	assert_int_equal(le32_get(blk + 0x110), 4096);
	assert_int_equal(le32_get(blk + 0x118), VMFS_RT_PB);
	assert_int_equal(le64_get(blk + 0x120), 0x14384000);
	assert_int_equal(le32_get(blk + 0x128), 8);
	assert_int_equal(le32_get(blk + 0x130), 8192);
	assert_int_equal(le32_get(blk + 0x138), VMFS_RT_SB);
	assert_int_equal(le64_get(blk + 0x140), 0x15394000);
	assert_int_equal(le32_get(blk + 0x148), 1);
	assert_int_equal(le32_get(blk + 0x14C), 8192);
	assert_int_equal(le32_get(blk + 0x150), 1 << 20);
	assert_int_equal(le32_get(blk + 0x154), 8192);
	assert_int_equal(le32_get(blk + 0x158), VMFS_RT_FB);
	/* Extension table: after the FB clusters, 17 blocks a type. */
	assert_int_equal(le64_get(blk + 0x160), 0x15396000);
	assert_int_equal(le32_get(blk + 0x168), 17);
	for (unsigned i = 0x16C; i < 4096; i++)
		assert_int_equal(blk[i], 0);
}

static void test_vh_roundtrip(void **state)
{
	struct vmfs_vh vh, out;
	uint8_t again[4096];
	(void)state;

	layout8g(&vh);
	vmfs_vh_encode(&vh, blk);
	assert_int_equal(vmfs_vh_decode(blk, 8 * GIB, &out, why, sizeof(why)), 0);
	assert_string_equal(out.label, "pinned");
	assert_memory_equal(out.uuid, vh.uuid, 16);
	assert_int_equal(out.created_ns, vh.created_ns);
	assert_int_equal(out.hb_off, vh.hb_off);
	assert_int_equal(out.hb_len, 64 * 4096);
	assert_int_equal(out.lock_len, 256 * 4096);
	assert_int_equal(out.journal_len, 64 * 4 * MIB);
	assert_int_equal(out.data_len, vh.data_len);
	for (unsigned t = 1; t <= VMFS_RT_MAX; t++) {
		assert_int_equal(out.res[t].off, vh.res[t].off);
		assert_int_equal(out.res[t].len, vh.res[t].len);
		assert_int_equal(out.res[t].ncl, vh.res[t].ncl);
	}
	vmfs_vh_encode(&out, again);
	assert_memory_equal(again, blk, 4096);
}

/* One hostile volume header: field at off set to v (width w), resealed. */
struct vh_bad {
	unsigned off, w;
	uint64_t v;
	const char *expect; /* substring of the reason */
};

static void test_vh_hostile(void **state)
{
	static const struct vh_bad cases[] = {
	    {0x00, 4, 0x12345678, "bad magic"},
	    {0x04, 2, 2, "version"},
	    {0x0C, 4, 4096, "record length"},
	    {0x60, 8, 16 * GIB, "exceeds the device"},
	    {0x60, 8, 8 * GIB - 512, "volume size"},
	    {0x70, 4, 3000, "sector size"},
	    {0x74, 4, 8192, "unit"},
	    {0x78, 4, 3 << 20, "power of two"},
	    {0x78, 4, 32 << 10, "power of two"},
	    {0x7C, 4, 0, "max_hosts"},
	    {0x7C, 4, 100000, "max_hosts"},
	    {0x80, 4, 10, "interval"},
	    {0x84, 4, 3000, "timeout"},
	    {0x88, 4, 0, "nlocks"},
	    {0x90, 4, 0x80, "incompat"},
	    {0x98, 4, 100, "journal size"},
	    {0xA0, 8, 0x102000, "volume lock"},
	    {0xA8, 8, 0x101000, "heartbeat region overlaps"},
	    {0xB0, 8, 0x142800, "not aligned"},
	    {0xB0, 8, 0x1000, "lock region overlaps"},
	    {0xB8, 8, 0xfffffffffffff000ull, "journal region ends beyond"},
	    {0xB8, 8, 0x200000000ull, "journal region ends beyond"},
	    {0xC0, 8, 0x15380000, "data region offset"},
	    {0xC0, 8, 0x15300000, "data region overlaps"},
	    {0xC8, 8, 0, "block count"},
	    {0xC8, 8, 8000, "data region ends beyond"},
	    {0x148, 4, 2, "FB region has 2 clusters"},
	    {0xC8, 8, 0xffffffffffffffffull, "block count"},
	    {0xD0, 8, 0x1000, "backup"},
	    {0xD8, 8, 3ull << 60, "root FD"},
	    {0xD8, 8, (4ull << 60) | (32ull << 24), "root FD"},
	    {0xE8, 4, 0, "cluster count"},
	    {0xE8, 4, 0xffffffff, "cluster count"},
	    {0xEC, 4, 512, "geometry"},
	    {0xF8, 4, 1, "region table"},
	    {0x120, 8, 0x14282000, "SB region overlaps"},
	    {0x170, 4, 1, "reserved"},
	    {0x1FC, 4, 1, "reserved"},
	};
	struct vmfs_vh vh, out;
	uint8_t good[4096];
	(void)state;

	layout8g(&vh);
	vmfs_vh_encode(&vh, good);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct vh_bad *c = &cases[i];

		memcpy(blk, good, 4096);
		if (c->w == 2)
			le16_put(blk + c->off, (uint16_t)c->v);
		else if (c->w == 4)
			le32_put(blk + c->off, (uint32_t)c->v);
		else
			le64_put(blk + c->off, c->v);
		reseal(blk, 512);
		why[0] = 0;
		if (vmfs_vh_decode(blk, 8 * GIB, &out, why, sizeof(why)) != -EUCLEAN ||
		    !strstr(why, c->expect))
			fail_msg("case %zu (0x%x): got '%s', expected '%s'", i, c->off, why,
				 c->expect);
	}
	/* Label without NUL. */
	memcpy(blk, good, 4096);
	memset(blk + 0x20, 'A', 64);
	reseal(blk, 512);
	assert_int_equal(vmfs_vh_decode(blk, 8 * GIB, &out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "NUL"));
	/* Bad CRC: one flipped bit, not resealed. */
	memcpy(blk, good, 4096);
	blk[0x7C] ^= 0x10;
	assert_int_equal(vmfs_vh_decode(blk, 8 * GIB, &out, why, sizeof(why)), -EUCLEAN);
	assert_string_equal(why, "volume header: bad CRC");
}

/* Random mutations of the body, resealed: decode returns 0 or -EUCLEAN, and
 * anything accepted re-encodes to the same bytes. */
typedef int (*decode_fn)(const void *buf, struct vmfs_vh *vh, void *out);
typedef void (*encode_fn)(const void *in, void *buf);

static void fuzz(const uint8_t *good, uint32_t rec_len, decode_fn dec, encode_fn enc, void *obj,
		 struct vmfs_vh *vh)
{
	uint8_t b[4096], again[4096];

	srand(12345);
	for (int iter = 0; iter < 3000; iter++) {
		int n = 1 + rand() % 4, rc;

		memcpy(b, good, 4096);
		for (int k = 0; k < n; k++) {
			unsigned off = 16 + (unsigned)rand() % (rec_len - 16);

			b[off] = (uint8_t)(rand() % 3 ? (unsigned)rand()
						      : b[off] ^ (1u << (rand() % 8)));
		}
		reseal(b, rec_len);
		rc = dec(b, vh, obj);
		assert_true(rc == 0 || rc == -EUCLEAN);
		if (rc == 0) {
			enc(obj, again);
			assert_memory_equal(again, b, rec_len);
		}
	}
}

static int dec_vh(const void *b, struct vmfs_vh *vh, void *out)
{
	(void)vh;
	return vmfs_vh_decode(b, 8 * GIB, out, why, sizeof(why));
}
static void enc_vh(const void *in, void *b)
{
	vmfs_vh_encode(in, b);
}

static void test_vh_fuzz(void **state)
{
	struct vmfs_vh vh, out;
	uint8_t good[4096];
	(void)state;

	layout8g(&vh);
	vmfs_vh_encode(&vh, good);
	fuzz(good, 512, dec_vh, enc_vh, &out, &vh);
}

/* ---- addresses -------------------------------------------------------------- */

static void test_addr(void **state)
{
	struct vmfs_vh vh;
	uint64_t a = vmfs_addr_make(VMFS_RT_FB, 3, 17);
	char s[64];
	(void)state;

	assert_int_equal(a, 0x1000000003000011ull);
	assert_int_equal(vmfs_addr_make(VMFS_RT_FD, 0xffffffff, 0xffffff), 0x40ffffffffffffffull);
	assert_int_equal(vmfs_addr_type(a | VMFS_ADDR_TBZ), VMFS_RT_FB);
	assert_int_equal(VMFS_ADDR_TBZ, 1ull << 56);
	assert_int_equal(vmfs_addr_cl(a), 3);
	assert_int_equal(vmfs_addr_res(a), 17);
	vmfs_addr_str(a | VMFS_ADDR_TBZ, s, sizeof(s));
	assert_string_equal(s, "FB 3:17+TBZ");
	layout8g(&vh);
	assert_int_equal(vmfs_addr_check(&vh, vmfs_addr_make(VMFS_RT_FB, 0, 7850), 0, why, 99), 0);
	assert_int_equal(vmfs_addr_check(&vh, vmfs_addr_make(VMFS_RT_FB, 0, 7851), 0, why, 99),
			 -EUCLEAN);
	assert_int_equal(vmfs_addr_check(&vh, vmfs_addr_make(VMFS_RT_FD, 32, 0), 0, why, 99),
			 -EUCLEAN);
	assert_int_equal(
	    vmfs_addr_check(&vh, vmfs_addr_make(VMFS_RT_PB, 0, 0) | VMFS_ADDR_TBZ, 0, why, 99),
	    -EUCLEAN);
	assert_int_equal(vmfs_addr_check(&vh, 5ull << 60, 0, why, 99), -EUCLEAN);
	assert_int_equal(vmfs_addr_check(&vh, 0, 0, why, 99), -EUCLEAN);
	assert_int_equal(vmfs_addr_check(&vh, 1ull << 57 | (1ull << 60), 0, why, 99), -EUCLEAN);
	/* Offsets of resources. */
	assert_int_equal(vmfs_addr_off(&vh, vmfs_addr_make(VMFS_RT_FB, 0, 2)),
			 0x15400000 + 2 * MIB);
	assert_int_equal(vmfs_addr_off(&vh, vmfs_addr_make(VMFS_RT_FD, 1, 3)),
			 0x10242000 + (8192 + 256 * 8192) + 8192 + 3 * 8192);
	assert_int_equal(vmfs_addr_off(&vh, vmfs_addr_make(VMFS_RT_PB, 0, 1)),
			 0x14282000 + 8192 + 4096);
	/* Max file size with 1 MiB blocks exceeds 16 TiB. */
	assert_true(vmfs_fd_max_size(1 << 20) > (16ull << 40));
}

/* ---- journal ------------------------------------------------------------------ */

static void test_journal(void **state)
{
	struct vmfs_vh vh;
	struct vmfs_jh jh = {0}, jo;
	struct vmfs_jd jd = {0}, dout;
	struct vmfs_jc jc = {0}, cout;
	uint8_t again[4096];
	(void)state;

	layout8g(&vh);
	jh.slot = 3;
	jh.journal_off = vmfs_journal_off(&vh, 3);
	jh.journal_len = vh.journal_size;
	jh.head = 7;
	jh.head_txid = 99;
	jh.seq = 5;
	memset(jh.owner_uuid, 0xAB, 16);
	jh.owner_gen = 42;
	vmfs_jh_encode(&jh, blk);
	check_common(blk, "VMJH", 512);
	assert_int_equal(le32_get(blk + 0x10), 3);
	assert_int_equal(le32_get(blk + 0x14), 0);
	assert_int_equal(le64_get(blk + 0x18), 0x242000 + 3 * 4 * MIB);
	assert_int_equal(le64_get(blk + 0x20), 4 * MIB);
	assert_int_equal(le64_get(blk + 0x28), 7);
	assert_int_equal(le64_get(blk + 0x30), 99);
	assert_int_equal(le64_get(blk + 0x38), 5);
	assert_int_equal(blk[0x40], 0xAB);
	assert_int_equal(blk[0x4F], 0xAB);
	assert_int_equal(le32_get(blk + 0x50), 42);
	assert_int_equal(vmfs_jh_decode(blk, &vh, 3, &jo, why, sizeof(why)), 0);
	vmfs_jh_encode(&jo, again);
	assert_memory_equal(again, blk, 4096);
	assert_int_equal(vmfs_jh_decode(blk, &vh, 4, &jo, why, sizeof(why)), -EUCLEAN);
	le64_put(blk + 0x28, 1022); /* head beyond 1022 log blocks (1024 - 2 header copies) */
	reseal(blk, 512);
	assert_int_equal(vmfs_jh_decode(blk, &vh, 3, &jo, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "head"));
	le64_put(blk + 0x28, 1021);
	reseal(blk, 512);
	assert_int_equal(vmfs_jh_decode(blk, &vh, 3, &jo, why, sizeof(why)), 0);

	jd.txid = 77;
	jd.nblocks = 2;
	jd.slot = 3;
	jd.journal_off = jh.journal_off;
	jd.target[0] = vh.res[VMFS_RT_FD].off + 4096;
	jd.target[1] = vh.res[VMFS_RT_SB].off + 8192;
	vmfs_jd_encode(&jd, blk);
	check_common(blk, "VMJD", 4096);
	assert_int_equal(le64_get(blk + 0x10), 77);
	assert_int_equal(le32_get(blk + 0x18), 2);
	assert_int_equal(le32_get(blk + 0x1C), 3);
	assert_int_equal(le64_get(blk + 0x20), jh.journal_off);
	assert_int_equal(le64_get(blk + 0x40), jd.target[0]);
	assert_int_equal(le64_get(blk + 0x48), jd.target[1]);
	assert_int_equal(le64_get(blk + 0x50), 0);
	assert_int_equal(vmfs_jd_decode(blk, &vh, &dout, why, sizeof(why)), 0);
	vmfs_jd_encode(&dout, again);
	assert_memory_equal(again, blk, 4096);
	le64_put(blk + 0x48, vh.hb_off); /* heartbeat units are never journaled */
	reseal(blk, 4096);
	assert_int_equal(vmfs_jd_decode(blk, &vh, &dout, why, sizeof(why)), -EUCLEAN);
	assert_int_equal(vmfs_jd_decode(blk, NULL, &dout, why, sizeof(why)), 0);
	le32_put(blk + 0x18, 505);
	reseal(blk, 4096);
	assert_int_equal(vmfs_jd_decode(blk, NULL, &dout, why, sizeof(why)), -EUCLEAN);

	jc.txid = 77;
	jc.nblocks = 2;
	jc.data_crc = 0xdeadbeef;
	jc.commit_ns = 123456789;
	vmfs_jc_encode(&jc, blk);
	check_common(blk, "VMJC", 512);
	assert_int_equal(le64_get(blk + 0x10), 77);
	assert_int_equal(le32_get(blk + 0x18), 2);
	assert_int_equal(le32_get(blk + 0x1C), 0xdeadbeef);
	assert_int_equal(le64_get(blk + 0x20), 123456789);
	assert_int_equal(vmfs_jc_decode(blk, &cout, why, sizeof(why)), 0);
	assert_int_equal(cout.data_crc, 0xdeadbeef);
	blk[0x1C] ^= 1;
	assert_int_equal(vmfs_jc_decode(blk, &cout, why, sizeof(why)), -EUCLEAN);
	assert_string_equal(why, "journal commit: bad CRC");
}

/* The two header copies: the newer valid one wins; a torn (garbled) newer
 * copy falls back to the older; a copy whose seq parity is not its position
 * is refused; both bad is -EUCLEAN naming both. */
static void test_journal_copies(void **state)
{
	static uint8_t c0[4096], c1[4096];
	struct vmfs_vh vh;
	struct vmfs_jh jh = {0}, jo;
	unsigned which = 9;
	(void)state;

	layout8g(&vh);
	assert_true(vh.incompat & VMFS_INCOMPAT_JH2);
	assert_int_equal(vmfs_journal_nlog(vh.journal_size), vh.journal_size / 4096 - 2);
	assert_int_equal(vmfs_journal_log_off(1000 * 4096, vh.journal_size, 0), 1002 * 4096);
	assert_int_equal(vmfs_journal_log_off(1000 * 4096, vh.journal_size,
					      vmfs_journal_nlog(vh.journal_size) + 1),
			 1003 * 4096);
	jh.slot = 2;
	jh.journal_off = vmfs_journal_off(&vh, 2);
	jh.journal_len = vh.journal_size;
	jh.head_txid = 10;
	jh.seq = 6;
	vmfs_jh_encode(&jh, c0);
	jh.head_txid = 11;
	jh.seq = 7;
	vmfs_jh_encode(&jh, c1);
	assert_int_equal(vmfs_jh_pick(c0, c1, &vh, 2, &jo, &which, why, sizeof(why)), 0);
	assert_int_equal(which, 1);
	assert_int_equal(jo.head_txid, 11);
	c1[100] ^= 0x40; /* the newer copy torn */
	assert_int_equal(vmfs_jh_pick(c0, c1, &vh, 2, &jo, &which, why, sizeof(why)), 0);
	assert_int_equal(which, 0);
	assert_int_equal(jo.head_txid, 10);
	memset(c1, 0, sizeof(c1)); /* never written */
	assert_int_equal(vmfs_jh_pick(c0, c1, &vh, 2, &jo, &which, why, sizeof(why)), 0);
	assert_int_equal(which, 0);
	jh.seq = 9; /* odd seq in copy 0: misplaced */
	vmfs_jh_encode(&jh, c0);
	assert_int_equal(vmfs_jh_pick(c0, c1, &vh, 2, &jo, &which, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "both journal header copies"));
	assert_non_null(strstr(why, "seq 9 in copy 0"));
	vmfs_jh_encode(&jh, c1); /* seq 9 in copy 1 is right, whatever copy 0 holds */
	assert_int_equal(vmfs_jh_pick(c0, c1, &vh, 2, &jo, &which, why, sizeof(why)), 0);
	assert_int_equal(which, 1);
	assert_int_equal(vmfs_jh_pick(c1, c1, &vh, 3, &jo, &which, why, sizeof(why)), -EUCLEAN);
}

/* ---- cluster header ------------------------------------------------------------- */

static void test_cluster(void **state)
{
	struct vmfs_vh vh;
	struct vmfs_ch ch = {0}, out;
	uint8_t again[4096];
	(void)state;

	layout8g(&vh);
	ch.type = VMFS_RT_PB;
	ch.index = 0;
	ch.nres = 256;
	ch.nfree = 254;
	ch.cl_off = vmfs_cl_off(&vh, VMFS_RT_PB, 0);
	ch.res_off = ch.cl_off + 8192;
	ch.res_size = 4096;
	vmfs_bit_set(ch.bitmap, 0, 1);
	vmfs_bit_set(ch.bitmap, 9, 1);
	vmfs_ch_encode(&ch, blk);
	check_common(blk, "VMCH", 4096);
	assert_int_equal(le32_get(blk + 0x10), VMFS_RT_PB);
	assert_int_equal(le32_get(blk + 0x14), 0);
	assert_int_equal(le32_get(blk + 0x18), 256);
	assert_int_equal(le32_get(blk + 0x1C), 254);
	assert_int_equal(le64_get(blk + 0x20), 0x14282000);
	assert_int_equal(le64_get(blk + 0x28), 0x14282000 + 8192);
	assert_int_equal(le32_get(blk + 0x30), 4096);
	assert_int_equal(blk[0x100], 0x01);
	assert_int_equal(blk[0x101], 0x02);
	assert_int_equal(vmfs_ch_decode(blk, &vh, &out, why, sizeof(why)), 0);
	vmfs_ch_encode(&out, again);
	assert_memory_equal(again, blk, 4096);
	/* Hostile: free count, bit beyond nres, type, offset. */
	le32_put(blk + 0x1C, 255);
	reseal(blk, 4096);
	assert_int_equal(vmfs_ch_decode(blk, NULL, &out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "free count"));
	memcpy(blk, again, 4096);
	blk[0x100 + 32] = 1; /* bit 256 */
	le32_put(blk + 0x1C, 253);
	reseal(blk, 4096);
	assert_int_equal(vmfs_ch_decode(blk, NULL, &out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "beyond"));
	memcpy(blk, again, 4096);
	le32_put(blk + 0x10, 9);
	reseal(blk, 4096);
	assert_int_equal(vmfs_ch_decode(blk, NULL, &out, why, sizeof(why)), -EUCLEAN);
	memcpy(blk, again, 4096);
	le64_put(blk + 0x20, 0x14284000);
	reseal(blk, 4096);
	assert_int_equal(vmfs_ch_decode(blk, NULL, &out, why, sizeof(why)), 0);
	assert_int_equal(vmfs_ch_decode(blk, &vh, &out, why, sizeof(why)), -EUCLEAN);
	memcpy(blk, again, 4096);
	le32_put(blk + 0x18, 40000);
	reseal(blk, 4096);
	assert_int_equal(vmfs_ch_decode(blk, NULL, &out, why, sizeof(why)), -EUCLEAN);
}

/* ---- FD, PB ---------------------------------------------------------------------- */

static int dec_fd(const void *b, struct vmfs_vh *vh, void *out)
{
	return vmfs_fd_decode(b, vh, out, why, sizeof(why));
}
static void enc_fd(const void *in, void *b)
{
	vmfs_fd_encode(in, b);
}

static void sample_fd(struct vmfs_vh *vh, struct vmfs_fd *fd)
{
	memset(fd, 0, sizeof(*fd));
	fd->self = vmfs_addr_make(VMFS_RT_FD, 1, 2);
	fd->type = VMFS_FT_REG;
	fd->mode = 0644;
	fd->uid = 1000;
	fd->gid = 100;
	fd->size = 5 * MIB;
	fd->atime_ns = 1;
	fd->mtime_ns = 2;
	fd->ctime_ns = 3;
	fd->btime_ns = 4;
	fd->nlink = 1;
	fd->generation = 9;
	fd->amode = VMFS_AM_FB;
	fd->nalloc = 3;
	fd->u.addr[0] = vmfs_addr_make(VMFS_RT_FB, 0, 5) | VMFS_ADDR_TBZ;
	fd->u.addr[1] = vmfs_addr_make(VMFS_RT_FB, 0, 6);
	fd->u.addr[256] = vmfs_addr_make(VMFS_RT_PB, 0, 1);
	fd->xattr = vmfs_addr_make(VMFS_RT_PB, 0, 7);
	(void)vh;
}

static void test_fd_special(const struct vmfs_vh *vh, struct vmfs_fd *fd);
static void test_fd_ixa(const struct vmfs_vh *vh0, struct vmfs_fd *fd);

static void test_fd(void **state)
{
	struct vmfs_vh vh;
	struct vmfs_fd fd, out;
	uint8_t again[4096], good[4096];
	(void)state;

	layout8g(&vh);
	sample_fd(&vh, &fd);
	vmfs_fd_encode(&fd, blk);
	check_common(blk, "VMFD", 4096);
	assert_int_equal(le64_get(blk + 0x10), fd.self);
	assert_int_equal(le32_get(blk + 0x18), 1);
	assert_int_equal(le32_get(blk + 0x1C), 0644);
	assert_int_equal(le32_get(blk + 0x20), 1000);
	assert_int_equal(le32_get(blk + 0x24), 100);
	assert_int_equal(le64_get(blk + 0x28), 5 * MIB);
	assert_int_equal(le64_get(blk + 0x30), 1);
	assert_int_equal(le64_get(blk + 0x38), 2);
	assert_int_equal(le64_get(blk + 0x40), 3);
	assert_int_equal(le64_get(blk + 0x48), 4);
	assert_int_equal(le32_get(blk + 0x50), 1);
	assert_int_equal(le32_get(blk + 0x54), 0);
	assert_int_equal(le64_get(blk + 0x58), 9);
	assert_int_equal(le32_get(blk + 0x60), VMFS_AM_FB);
	assert_int_equal(le64_get(blk + 0x68), 0);
	assert_int_equal(le64_get(blk + 0x70), 3);
	assert_int_equal(le64_get(blk + 0x78), fd.xattr);
	assert_int_equal(le64_get(blk + 0x100), fd.u.addr[0]);
	assert_int_equal(le64_get(blk + 0x108), fd.u.addr[1]);
	assert_int_equal(le64_get(blk + 0x100 + 256 * 8), fd.u.addr[256]);
	assert_int_equal(vmfs_fd_decode(blk, &vh, &out, why, sizeof(why)), 0);
	vmfs_fd_encode(&out, again);
	assert_memory_equal(again, blk, 4096);
	memcpy(good, blk, 4096);
	fuzz(good, 4096, dec_fd, enc_fd, &out, &vh);

	/* Hostile values. */
	static const struct {
		unsigned off, w;
		uint64_t v;
		const char *expect;
	} cases[] = {
	    {0x18, 4, 9, "type"},
	    {0x1C, 4, 010000, "mode"},
	    {0x50, 4, 0, "link count 0 with UNLINKED flag clear"},
	    {0x54, 4, 1, "link count 1 with UNLINKED flag set"},
	    {0x54, 4, 2, "flags"},
	    {0x60, 4, 3, "addressing"},
	    {0x28, 8, 1ull << 62, "size"},
	    {0x10, 8, 1ull << 60, "self"},
	    {0x68, 8, 5, "parent"},
	    {0x100, 8, 3ull << 60, "addr[0]"},
	    {0x100, 8, (1ull << 60) | (1ull << 24), "addr[0]"},
	    {0x900, 8, 1ull << 60, "addr[256]"},
	    {0x64, 4, 1, "reserved"},
	    {0x88, 8, 1, "inline xattrs: entry at 0: NUL in the name"},
	    {0x88, 4, 0x00f00001, "inline xattrs: bad entry lengths"},
	    {0x80, 4, 1, "device number on a non-device"},
	    {0x84, 4, 1, "device number on a non-device"},
	    {0x78, 8, 1ull << 60, "xattr block address"},
	    {0x78, 8, (3ull << 60) | (1ull << 56), "xattr block address"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(blk, good, 4096);
		if (cases[i].w == 4)
			le32_put(blk + cases[i].off, (uint32_t)cases[i].v);
		else
			le64_put(blk + cases[i].off, cases[i].v);
		reseal(blk, 4096);
		why[0] = 0;
		if (vmfs_fd_decode(blk, &vh, &out, why, sizeof(why)) != -EUCLEAN ||
		    !strstr(why, cases[i].expect))
			fail_msg("FD case %zu: got '%s', expected '%s'", i, why, cases[i].expect);
	}
	/* Inline file: data at 0x100, nothing past size. */
	memset(&fd.u, 0, sizeof(fd.u));
	fd.amode = VMFS_AM_INLINE;
	fd.size = 5;
	fd.nalloc = 0;
	memcpy(fd.u.data, "hello", 5);
	vmfs_fd_encode(&fd, blk);
	assert_memory_equal(blk + 0x100, "hello", 5);
	assert_int_equal(vmfs_fd_decode(blk, &vh, &out, why, sizeof(why)), 0);
	assert_memory_equal(out.u.data, "hello", 5);
	blk[0x100 + 5] = 'x';
	reseal(blk, 4096);
	assert_int_equal(vmfs_fd_decode(blk, &vh, &out, why, sizeof(why)), -EUCLEAN);
	le64_put(blk + 0x28, 4000);
	reseal(blk, 4096);
	assert_int_equal(vmfs_fd_decode(blk, &vh, &out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "inline size"));
	test_fd_ixa(&vh, &fd);
	test_fd_special(&vh, &fd);
}

/* Inline extended attributes at 0x088..0x100 (INCOMPAT_IXA): entries as in
 * an attribute block; not with an attribute block, not on a volume without
 * IXA, nothing past the entries. */
static void test_fd_ixa(const struct vmfs_vh *vh0, struct vmfs_fd *fd)
{
	struct vmfs_vh vh = *vh0;
	struct vmfs_fd out;

	assert_true(vh.incompat & VMFS_INCOMPAT_IXA);
	fd->xattr = 0;
	fd->size = 0;
	memset(&fd->u, 0, sizeof(fd->u));
	memset(fd->ixa, 0, sizeof(fd->ixa));
	/* "user.a" = "xyz" (16 bytes), "user.bb" = "" (16 bytes) */
	memcpy(fd->ixa, "\x06\x00\x03\x00user.axyz\0\0\0\x07\x00\x00\x00user.bb\0\0\0\0\0", 32);
	fd->ixa_used = 32;
	vmfs_fd_encode(fd, blk);
	assert_memory_equal(blk + 0x88, fd->ixa, 32);
	if (vmfs_fd_decode(blk, &vh, &out, why, sizeof(why)))
		fail_msg("inline xattrs refused: %s", why);
	assert_int_equal(out.ixa_used, 32);
	assert_memory_equal(out.ixa, fd->ixa, VMFS_IXA_SIZE);
	/* a volume without IXA */
	vh.incompat &= ~VMFS_INCOMPAT_IXA;
	assert_int_equal(vmfs_fd_decode(blk, &vh, &out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "without IXA"));
	vh.incompat |= VMFS_INCOMPAT_IXA;
	/* with an attribute block too */
	le64_put(blk + 0x78, vmfs_addr_make(VMFS_RT_PB, 0, 7));
	reseal(blk, 4096);
	assert_int_equal(vmfs_fd_decode(blk, &vh, &out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "inline xattrs and an xattr block"));
	/* a byte past the entries; a duplicate name */
	vmfs_fd_encode(fd, blk);
	blk[0x88 + 40] = 1;
	reseal(blk, 4096);
	assert_int_equal(vmfs_fd_decode(blk, &vh, &out, why, sizeof(why)), -EUCLEAN);
	vmfs_fd_encode(fd, blk);
	memcpy(blk + 0x88 + 16, "\x06\x00\x00\x00user.a", 11); /* and a zero pad */
	reseal(blk, 4096);
	assert_int_equal(vmfs_fd_decode(blk, &vh, &out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "duplicate name"));
	memset(fd->ixa, 0, sizeof(fd->ixa));
	fd->ixa_used = 0;
}

/* Special files: type and device number at 0x18 / 0x80 / 0x84; hostile
 * combinations (data, a device number on a non-device, a symlink target
 * beyond 4095 bytes or in FB mode) are rejected. */
static void test_fd_special(const struct vmfs_vh *vh, struct vmfs_fd *fd)
{
	static const uint32_t types[] = {VMFS_FT_FIFO, VMFS_FT_CHR, VMFS_FT_BLK, VMFS_FT_SOCK};
	struct vmfs_fd out;

	memset(&fd->u, 0, sizeof(fd->u));
	fd->amode = VMFS_AM_INLINE;
	fd->size = 0;
	fd->nalloc = 0;
	for (size_t i = 0; i < 4; i++) {
		fd->type = types[i];
		fd->rdev_major = vmfs_ft_device(types[i]) ? 0xabcdef01u : 0;
		fd->rdev_minor = vmfs_ft_device(types[i]) ? 7 : 0;
		vmfs_fd_encode(fd, blk);
		assert_int_equal(le32_get(blk + 0x18), types[i]);
		assert_int_equal(le32_get(blk + 0x80), fd->rdev_major);
		assert_int_equal(le32_get(blk + 0x84), fd->rdev_minor);
		assert_int_equal(vmfs_fd_decode(blk, vh, &out, why, sizeof(why)), 0);
		assert_int_equal(out.type, types[i]);
		assert_int_equal(out.rdev_major, fd->rdev_major);
		assert_int_equal(out.rdev_minor, fd->rdev_minor);
	}
	/* a device number on a FIFO */
	fd->type = VMFS_FT_FIFO;
	fd->rdev_major = 0;
	fd->rdev_minor = 1;
	vmfs_fd_encode(fd, blk);
	assert_int_equal(vmfs_fd_decode(blk, vh, &out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "device number on a non-device"));
	/* a character device with inline data, with a size, in SB mode */
	fd->type = VMFS_FT_CHR;
	fd->size = 3;
	memcpy(fd->u.data, "abc", 3);
	vmfs_fd_encode(fd, blk);
	assert_int_equal(vmfs_fd_decode(blk, vh, &out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "special file (type 5) with data"));
	memset(&fd->u, 0, sizeof(fd->u));
	fd->size = 0;
	fd->amode = VMFS_AM_SB;
	vmfs_fd_encode(fd, blk);
	assert_int_equal(vmfs_fd_decode(blk, vh, &out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "with data"));
	/* symlinks: 4095 bytes in SB mode is fine, 4096 or FB mode is not */
	fd->type = VMFS_FT_LNK;
	fd->rdev_major = fd->rdev_minor = 0;
	fd->size = 4095;
	fd->nalloc = 1;
	fd->u.addr[0] = vmfs_addr_make(VMFS_RT_SB, 0, 3);
	vmfs_fd_encode(fd, blk);
	assert_int_equal(vmfs_fd_decode(blk, vh, &out, why, sizeof(why)), 0);
	fd->size = 4096;
	vmfs_fd_encode(fd, blk);
	assert_int_equal(vmfs_fd_decode(blk, vh, &out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "symlink target of 4096 bytes"));
	fd->size = 10;
	fd->amode = VMFS_AM_FB;
	fd->u.addr[0] = vmfs_addr_make(VMFS_RT_FB, 0, 3);
	vmfs_fd_encode(fd, blk);
	assert_int_equal(vmfs_fd_decode(blk, vh, &out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "symlink target"));
}

static int dec_xb(const void *b, struct vmfs_vh *vh, void *out)
{
	return vmfs_xb_decode(b, vh, out, why, sizeof(why));
}
static void enc_xb(const void *in, void *b)
{
	vmfs_xb_encode(in, b);
}

/* ---- extension table ------------------------------------------------------ */

static void test_xt(void **state)
{
	struct vmfs_vh vh;
	struct vmfs_xt_blk *xb = calloc(1, sizeof(*xb)), *out = calloc(1, sizeof(*out));
	(void)state;

	layout8g(&vh);
	/* regions: lock unit at xtab_off, then FD, PB, SB blocks */
	assert_int_equal(vmfs_xtab_len(&vh), 4096 + 3 * 17 * 4096);
	assert_int_equal(vmfs_xt_blk_off(&vh, VMFS_RT_FD, 0), 0x15397000);
	assert_int_equal(vmfs_xt_blk_off(&vh, VMFS_RT_PB, 1), 0x15397000 + 18 * 4096);
	assert_int_equal(vmfs_xt_blk_off(&vh, VMFS_RT_SB, 16), 0x15397000 + 50 * 4096);
	/* 1 MiB blocks: (1 MiB - 8 KiB) / 8 KiB = 127 FDs, 254 PBs, 127 SBs */
	assert_int_equal(vmfs_xt_nres(&vh, VMFS_RT_FD), 127);
	assert_int_equal(vmfs_xt_nres(&vh, VMFS_RT_PB), 254);
	assert_int_equal(vmfs_xt_nres(&vh, VMFS_RT_SB), 127);
	assert_int_equal(vmfs_xt_nres(&vh, VMFS_RT_FB), 0);
	assert_int_equal(vmfs_ncl_max(&vh, VMFS_RT_FD), 32 + 17 * 504);
	assert_int_equal(vmfs_ncl(&vh, VMFS_RT_FD), 32); /* no table loaded */

	xb->type = VMFS_RT_SB;
	xb->index = 2;
	xb->count = 2;
	xb->fb[0] = vmfs_addr_make(VMFS_RT_FB, 0, 7);
	xb->fb[1] = vmfs_addr_make(VMFS_RT_FB, 0, 9);
	vmfs_xt_encode(xb, blk);
	check_common(blk, "VMXT", 4096);
	assert_int_equal(le32_get(blk + 0x10), VMFS_RT_SB);
	assert_int_equal(le32_get(blk + 0x14), 2);
	assert_int_equal(le32_get(blk + 0x18), 2);
	assert_int_equal(le64_get(blk + 0x40), vmfs_addr_make(VMFS_RT_FB, 0, 7));
	assert_int_equal(le64_get(blk + 0x48), vmfs_addr_make(VMFS_RT_FB, 0, 9));
	assert_int_equal(vmfs_xt_decode(blk, &vh, VMFS_RT_SB, 2, out, why, sizeof(why)), 0);
	assert_int_equal(out->count, 2);
	assert_int_equal(out->fb[1], xb->fb[1]);
	/* read from another place than its own */
	assert_int_equal(vmfs_xt_decode(blk, &vh, VMFS_RT_FD, 2, out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "says it is SB block 2"));
	/* hostile entries */
	xb->fb[1] = vmfs_addr_make(VMFS_RT_FB, 0, 9000); /* beyond the data area */
	vmfs_xt_encode(xb, blk);
	assert_int_equal(vmfs_xt_decode(blk, &vh, VMFS_RT_SB, 2, out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "entry 1"));
	xb->fb[1] = vmfs_addr_make(VMFS_RT_SB, 0, 9);
	vmfs_xt_encode(xb, blk);
	assert_int_equal(vmfs_xt_decode(blk, &vh, VMFS_RT_SB, 2, out, why, sizeof(why)), -EUCLEAN);
	xb->fb[1] = vmfs_addr_make(VMFS_RT_FB, 0, 9) | VMFS_ADDR_TBZ;
	vmfs_xt_encode(xb, blk);
	assert_int_equal(vmfs_xt_decode(blk, &vh, VMFS_RT_SB, 2, out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "flags set"));
	/* count beyond the block, and an entry past count */
	xb->fb[1] = vmfs_addr_make(VMFS_RT_FB, 0, 9);
	vmfs_xt_encode(xb, blk);
	le32_put(blk + 0x18, 505);
	reseal(blk, 4096);
	assert_int_equal(vmfs_xt_decode(blk, &vh, VMFS_RT_SB, 2, out, why, sizeof(why)), -EUCLEAN);
	le32_put(blk + 0x18, 1);
	reseal(blk, 4096);
	assert_int_equal(vmfs_xt_decode(blk, &vh, VMFS_RT_SB, 2, out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "reserved"));
	free(xb);
	free(out);
}

static void test_xb(void **state)
{
	struct vmfs_vh vh;
	struct vmfs_xb xb = {0}, out;
	uint8_t again[4096], good[4096];
	(void)state;

	layout8g(&vh);
	xb.self = vmfs_addr_make(VMFS_RT_PB, 0, 7);
	xb.owner = vmfs_addr_make(VMFS_RT_FD, 1, 2);
	xb.count = 2;
	xb.area[0] = 6; /* "user.a" = "xyz" */
	le16_put(xb.area + 2, 3);
	memcpy(xb.area + 4, "user.axyz", 9);
	xb.area[16] = 1; /* "b" = "" */
	memcpy(xb.area + 20, "b", 1);
	xb.used = 24;
	assert_int_equal(vmfs_xe_size(6, 3), 16);
	assert_int_equal(vmfs_xe_size(1, 0), 8);
	assert_int_equal(VMFS_XATTR_VALUE_MAX, 3773);
	assert_int_equal(vmfs_xe_size(255, VMFS_XATTR_VALUE_MAX), VMFS_XB_AREA);
	vmfs_xb_encode(&xb, blk);
	check_common(blk, "VMXA", 4096);
	assert_int_equal(le64_get(blk + 0x10), xb.self);
	assert_int_equal(le64_get(blk + 0x18), xb.owner);
	assert_int_equal(le32_get(blk + 0x20), 2);
	assert_int_equal(le32_get(blk + 0x24), 24);
	assert_int_equal(blk[0x40], 6);
	assert_int_equal(le16_get(blk + 0x42), 3);
	assert_memory_equal(blk + 0x44, "user.axyz", 9);
	assert_int_equal(blk[0x50], 1);
	assert_int_equal(vmfs_xb_decode(blk, &vh, &out, why, sizeof(why)), 0);
	vmfs_xb_encode(&out, again);
	assert_memory_equal(again, blk, 4096);
	memcpy(good, blk, 4096);
	fuzz(good, 4096, dec_xb, enc_xb, &out, &vh);

	static const struct {
		unsigned off, w;
		uint64_t v;
		const char *expect;
	} cases[] = {
	    {0x10, 8, 1ull << 60, "self"}, {0x18, 8, 3ull << 60, "owner"},
	    {0x20, 4, 3, "count"},	   {0x24, 4, 20, "used"},
	    {0x24, 4, 4096, "used"},	   {0x24, 4, 32, "entry at 24"},
	    {0x28, 4, 1, "reserved"},	   {0x40, 1, 0, "name length"},
	    {0x41, 1, 1, "flags"},	   {0x42, 2, 200, "value length"},
	    {0x4D, 1, 'q', "padding"},	   {0x58, 1, 0x75, "bytes past used"},
	    {0x50, 1, 6, "value length"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(blk, good, 4096);
		if (cases[i].w == 4)
			le32_put(blk + cases[i].off, (uint32_t)cases[i].v);
		else if (cases[i].w == 2)
			le16_put(blk + cases[i].off, (uint16_t)cases[i].v);
		else if (cases[i].w == 1)
			blk[cases[i].off] = (uint8_t)cases[i].v;
		else
			le64_put(blk + cases[i].off, cases[i].v);
		reseal(blk, 4096);
		why[0] = 0;
		if (vmfs_xb_decode(blk, &vh, &out, why, sizeof(why)) != -EUCLEAN ||
		    !strstr(why, cases[i].expect))
			fail_msg("xattr case %zu: got '%s', expected '%s'", i, why,
				 cases[i].expect);
	}
	/* duplicate names */
	memcpy(blk, good, 4096);
	blk[0x50] = 6;
	memcpy(blk + 0x54, "user.a\0\0", 8);
	le32_put(blk + 0x24, 32);
	reseal(blk, 4096);
	assert_int_equal(vmfs_xb_decode(blk, &vh, &out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "duplicate"));
}

static void test_pb(void **state)
{
	struct vmfs_vh vh;
	struct vmfs_pb pb = {0}, out;
	uint8_t again[4096];
	(void)state;

	layout8g(&vh);
	pb.self = vmfs_addr_make(VMFS_RT_PB, 0, 1);
	pb.owner = vmfs_addr_make(VMFS_RT_FD, 1, 2);
	pb.level = 1;
	pb.addr[0] = vmfs_addr_make(VMFS_RT_FB, 0, 100);
	pb.addr[503] = vmfs_addr_make(VMFS_RT_FB, 0, 101);
	vmfs_pb_encode(&pb, blk);
	check_common(blk, "VMPB", 4096);
	assert_int_equal(le64_get(blk + 0x10), pb.self);
	assert_int_equal(le64_get(blk + 0x18), pb.owner);
	assert_int_equal(le32_get(blk + 0x20), 1);
	assert_int_equal(le64_get(blk + 0x40), pb.addr[0]);
	assert_int_equal(le64_get(blk + 0xFF8), pb.addr[503]);
	assert_int_equal(vmfs_pb_decode(blk, &vh, &out, why, sizeof(why)), 0);
	vmfs_pb_encode(&out, again);
	assert_memory_equal(again, blk, 4096);
	le32_put(blk + 0x20, 2); /* level 2 must hold PB addresses */
	reseal(blk, 4096);
	assert_int_equal(vmfs_pb_decode(blk, &vh, &out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "entry 0"));
	le32_put(blk + 0x20, 3);
	reseal(blk, 4096);
	assert_int_equal(vmfs_pb_decode(blk, &vh, &out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "level"));
	memcpy(blk, again, 4096);
	blk[0x30] = 1;
	reseal(blk, 4096);
	assert_int_equal(vmfs_pb_decode(blk, &vh, &out, why, sizeof(why)), -EUCLEAN);
}

/* ---- directory blocks ------------------------------------------------------------ */

static int dec_db(const void *b, struct vmfs_vh *vh, void *out)
{
	return vmfs_db_decode(b, vh, out, why, sizeof(why));
}
static void enc_db(const void *in, void *b)
{
	vmfs_db_encode(in, b);
}

static void test_dir(void **state)
{
	struct vmfs_vh vh;
	struct vmfs_db db = {0}, out;
	struct vmfs_dirent e;
	uint8_t again[4096], good[4096];
	uint64_t fd = vmfs_addr_make(VMFS_RT_FD, 0, 4);
	uint32_t pos = 0;
	(void)state;

	layout8g(&vh);
	/* Header. */
	db.kind = VMFS_DB_HEADER;
	db.dir = vh.root_fd;
	db.level = 2;
	db.split = 1;
	db.nbuckets = 5;
	db.total = 1234;
	db.novf = 3;
	db.ovf_free = 4;
	vmfs_db_encode(&db, blk);
	check_common(blk, "VMDB", 4096);
	assert_int_equal(le32_get(blk + 0x10), VMFS_DB_HEADER);
	assert_int_equal(le32_get(blk + 0x14), 0);
	assert_int_equal(le64_get(blk + 0x18), vh.root_fd);
	assert_int_equal(le32_get(blk + 0x44), 2);
	assert_int_equal(le32_get(blk + 0x48), 1);
	assert_int_equal(le32_get(blk + 0x4C), 5);
	assert_int_equal(le64_get(blk + 0x50), 1234);
	assert_int_equal(le32_get(blk + 0x58), 3);
	assert_int_equal(le32_get(blk + 0x5C), 4);
	assert_int_equal(vmfs_db_decode(blk, &vh, &out, why, sizeof(why)), 0);
	assert_int_equal(out.nbuckets, 5);
	le32_put(blk + 0x4C, 6);
	reseal(blk, 4096);
	assert_int_equal(vmfs_db_decode(blk, &vh, &out, why, sizeof(why)), -EUCLEAN);
	le32_put(blk + 0x4C, 5);
	le32_put(blk + 0x44, 31);
	reseal(blk, 4096);
	assert_int_equal(vmfs_db_decode(blk, &vh, &out, why, sizeof(why)), -EUCLEAN);

	/* Bucket 2 = dir block 5 with two entries. */
	memset(&db, 0, sizeof(db));
	db.kind = VMFS_DB_BUCKET;
	db.index = 5;
	db.bucket = 2;
	db.dir = vh.root_fd;
	db.next = 6;
	assert_int_equal(vmfs_db_add(&db, fd, VMFS_FT_REG, "vm1.vmdk", 8), 0);
	assert_int_equal(vmfs_db_add(&db, fd + 1, VMFS_FT_DIR, "d", 1), 0);
	assert_int_equal(vmfs_db_add(&db, fd, VMFS_FT_REG, "a/b", 3), -EINVAL);
	assert_int_equal(vmfs_db_add(&db, fd, VMFS_FT_REG, "..", 2), -EINVAL);
	vmfs_db_encode(&db, blk);
	assert_int_equal(le32_get(blk + 0x20), 6);
	assert_int_equal(le16_get(blk + 0x24), 2);
	assert_int_equal(le16_get(blk + 0x26), 24 + 16);
	assert_int_equal(le32_get(blk + 0x28), 2);
	assert_int_equal(le64_get(blk + 0x40), fd);
	assert_int_equal(le32_get(blk + 0x48), vmfs_name_hash("vm1.vmdk", 8));
	assert_int_equal(vmfs_name_hash("123456789", 9), 0xE3069283);
	assert_int_equal(blk[0x4C], VMFS_FT_REG);
	assert_int_equal(blk[0x4D], 8);
	assert_memory_equal(blk + 0x4E, "vm1.vmdk", 8);
	assert_int_equal(blk[0x56], 0); /* padding to 24 */
	assert_int_equal(le64_get(blk + 0x58), fd + 1);
	assert_int_equal(blk[0x58 + 0xD], 1);
	assert_int_equal(vmfs_db_decode(blk, &vh, &out, why, sizeof(why)), 0);
	assert_int_equal(vmfs_db_next(&out, &pos, &e), 1);
	assert_string_equal(e.name, "vm1.vmdk");
	assert_int_equal(e.fd, fd);
	assert_int_equal(vmfs_db_next(&out, &pos, &e), 1);
	assert_string_equal(e.name, "d");
	assert_int_equal(e.type, VMFS_FT_DIR);
	assert_int_equal(vmfs_db_next(&out, &pos, &e), 0);
	vmfs_db_encode(&out, again);
	assert_memory_equal(again, blk, 4096);
	memcpy(good, blk, 4096);
	fuzz(good, 4096, dec_db, enc_db, &out, &vh);

	/* Remove, hostile entries. */
	assert_int_equal(vmfs_db_remove(&db, "vm1.vmdk", 8), 0);
	assert_int_equal(vmfs_db_remove(&db, "vm1.vmdk", 8), -ENOENT);
	assert_int_equal(db.nentries, 1);
	assert_int_equal(db.used, 16);
	memcpy(blk, good, 4096);
	le32_put(blk + 0x48, 0x1234); /* wrong hash */
	reseal(blk, 4096);
	assert_int_equal(vmfs_db_decode(blk, &vh, &out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "hash"));
	memcpy(blk, good, 4096);
	blk[0x4E] = '/';
	le32_put(blk + 0x48, vmfs_name_hash((char *)blk + 0x4E, 8));
	reseal(blk, 4096);
	assert_int_equal(vmfs_db_decode(blk, &vh, &out, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "bad name"));
	memcpy(blk, good, 4096);
	blk[0x4D] = 200; /* name overruns the used area */
	reseal(blk, 4096);
	assert_int_equal(vmfs_db_decode(blk, &vh, &out, why, sizeof(why)), -EUCLEAN);
	memcpy(blk, good, 4096);
	le16_put(blk + 0x26, 4040);
	reseal(blk, 4096);
	assert_int_equal(vmfs_db_decode(blk, &vh, &out, why, sizeof(why)), -EUCLEAN);
	memcpy(blk, good, 4096);
	le32_put(blk + 0x14, 6); /* bucket at an even index */
	reseal(blk, 4096);
	assert_int_equal(vmfs_db_decode(blk, &vh, &out, why, sizeof(why)), -EUCLEAN);
	/* Linear hashing bucket choice. */
	assert_int_equal(vmfs_dir_bucket(0x7, 2, 0), 3);
	assert_int_equal(vmfs_dir_bucket(0x4, 2, 1), 4);
	assert_int_equal(vmfs_dir_bucket(0x5, 2, 1), 1);
	assert_int_equal(vmfs_dir_bucket(0xffffffff, 0, 0), 0);
}

/* ---- mkfs + read + check on a memory device -------------------------------------------- */

static void count_cb(void *arg, const char *region, const char *msg)
{
	(void)region;
	(void)msg;
	(*(int *)arg)++;
}

static void test_mkfs_mem(void **state)
{
	struct vmfs_mkfs_opts o = {.label = "mem", .max_hosts = 4, .journal_size = 256 << 10};
	struct vmfs_check_stats st;
	struct vmfs_vh vh, rd;
	struct bdev *bd;
	unsigned fixed;
	int n = 0;
	(void)state;

	assert_int_equal(bdev_open("mem:64M", 0, &bd), 0);
	assert_int_equal(vmfs_probe_native(bd), 0);
	assert_int_equal(vmfs_layout(bd->size, bd->lsec, &o, &vh, why, sizeof(why)), 0);
	assert_int_equal(vmfs_mkfs_write(bd, &vh, &o, why, sizeof(why)), 0);
	assert_int_equal(vmfs_probe_native(bd), 1);
	assert_int_equal(vmfs_vh_read(bd, &rd, why, sizeof(why)), 0);
	assert_int_equal(rd.from_backup, 0);
	assert_int_equal(rd.max_hosts, 4);
	assert_int_equal(vmfs_check(bd, 0, count_cb, &n, &st, &fixed), 0);
	assert_int_equal(n, 0);
	assert_int_equal(st.fds_used, 1);
	assert_int_equal(st.sbs_used, 1);
	/* Bitmaps against references: a freed-but-used SB and a leaked FB,
	 * each with a valid CRC, are each reported once. */
	{
		struct vmfs_ch *ch = malloc(sizeof(*ch));
		uint64_t sbh = vmfs_cl_off(&vh, VMFS_RT_SB, 0) + 4096;
		uint64_t fbh = vmfs_cl_off(&vh, VMFS_RT_FB, 0) + 4096;
		uint8_t save[4096];

		assert_non_null(ch);
		assert_int_equal(bdev_read(bd, save, sbh, 4096), 0);
		assert_int_equal(vmfs_ch_decode(save, &vh, ch, why, sizeof(why)), 0);
		vmfs_bit_set(ch->bitmap, 0, 0);
		ch->nfree++;
		vmfs_ch_encode(ch, blk);
		assert_int_equal(bdev_write(bd, blk, sbh, 4096), 0);
		n = 0;
		assert_int_equal(vmfs_check(bd, 0, count_cb, &n, &st, &fixed), 1);
		assert_int_equal(n, 1);
		assert_int_equal(bdev_write(bd, save, sbh, 4096), 0);
		assert_int_equal(bdev_read(bd, save, fbh, 4096), 0);
		assert_int_equal(vmfs_ch_decode(save, &vh, ch, why, sizeof(why)), 0);
		vmfs_bit_set(ch->bitmap, 3, 1);
		ch->nfree--;
		vmfs_ch_encode(ch, blk);
		assert_int_equal(bdev_write(bd, blk, fbh, 4096), 0);
		assert_int_equal(vmfs_check(bd, 0, count_cb, &n, &st, &fixed), 1);
		assert_int_equal(bdev_write(bd, save, fbh, 4096), 0);
		assert_int_equal(vmfs_check(bd, 0, count_cb, &n, &st, &fixed), 0);
		free(ch);
	}
	/* Primary corrupt: the backup is used; check reports one problem and
	 * repairs it. */
	memset(blk, 0xEE, 4096);
	assert_int_equal(bdev_write(bd, blk, VMFS_VH_OFF + 0, 512), 0);
	assert_int_equal(vmfs_vh_read(bd, &rd, why, sizeof(why)), 0);
	assert_int_equal(rd.from_backup, 1);
	assert_non_null(strstr(why, "volume header: bad magic"));
	assert_int_equal(vmfs_check(bd, 0, count_cb, &n, &st, &fixed), 1);
	assert_int_equal(vmfs_check(bd, VMFS_CHECK_REPAIR, count_cb, &n, &st, &fixed), 0);
	assert_int_equal(fixed, 1);
	assert_int_equal(vmfs_check(bd, 0, count_cb, &n, &st, &fixed), 0);
	/* Both corrupt. */
	assert_int_equal(bdev_write(bd, blk, VMFS_VH_OFF, 512), 0);
	assert_int_equal(bdev_write(bd, blk, vh.backup_off, 512), 0);
	assert_int_equal(vmfs_vh_read(bd, &rd, why, sizeof(why)), -EUCLEAN);
	assert_non_null(strstr(why, "backup volume header"));
	assert_int_equal(vmfs_probe_native(bd), 0);
	bdev_close(bd);

	/* Too small: the error says how much is needed. */
	assert_int_equal(bdev_open("mem:4M", 0, &bd), 0);
	assert_int_equal(vmfs_layout(bd->size, bd->lsec, &o, &vh, why, sizeof(why)), -ENOSPC);
	assert_non_null(strstr(why, "at least"));
	bdev_close(bd);
	/* Bad options. */
	o.block_size = 3 << 20;
	assert_int_equal(vmfs_layout(64 * MIB, 512, &o, &vh, why, sizeof(why)), -EINVAL);
	o.block_size = 0;
	o.hb_interval_ms = 1000;
	o.hb_timeout_ms = 2000;
	assert_int_equal(vmfs_layout(64 * MIB, 512, &o, &vh, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "timeout"));
}

/* 4 KiB sectors and 64 KiB blocks; a tiny device with one host. */
static void test_mkfs_4k(void **state)
{
	struct vmfs_mkfs_opts o = {
	    .max_hosts = 1, .journal_size = 256 << 10, .block_size = 64 << 10, .nlocks = 1};
	struct vmfs_check_stats st;
	struct vmfs_vh vh, rd;
	struct bdev *bd;
	unsigned fixed;
	int n = 0;
	(void)state;

	assert_int_equal(bdev_open("mem:16M?sector=4096", 0, &bd), 0);
	assert_int_equal(bd->lsec, 4096);
	assert_int_equal(vmfs_layout(bd->size, bd->lsec, &o, &vh, why, sizeof(why)), 0);
	assert_int_equal(vmfs_mkfs_write(bd, &vh, &o, why, sizeof(why)), 0);
	assert_int_equal(vmfs_vh_read(bd, &rd, why, sizeof(why)), 0);
	assert_int_equal(rd.lsec, 4096);
	assert_int_equal(rd.block_size, 64 << 10);
	assert_int_equal(vmfs_check(bd, 0, count_cb, &n, &st, &fixed), 0);
	bdev_close(bd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vh_offsets),
	    cmocka_unit_test(test_vh_roundtrip),
	    cmocka_unit_test(test_vh_hostile),
	    cmocka_unit_test(test_vh_fuzz),
	    cmocka_unit_test(test_addr),
	    cmocka_unit_test(test_journal),
	    cmocka_unit_test(test_journal_copies),
	    cmocka_unit_test(test_cluster),
	    cmocka_unit_test(test_fd),
	    cmocka_unit_test(test_pb),
	    cmocka_unit_test(test_xb),
	    cmocka_unit_test(test_xt),
	    cmocka_unit_test(test_dir),
	    cmocka_unit_test(test_mkfs_mem),
	    cmocka_unit_test(test_mkfs_4k),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
