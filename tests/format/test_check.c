/*
 * test_check.c - the offline checker (vmfs_check(), behind `vmfsctl fsck`) on
 * a volume populated by hand with the format's encoders: a file using direct,
 * single- and double-indirect addressing (with a TBZ block), a subdirectory
 * with two buckets and an overflow chain, an inline file with six hard links.
 * The populated volume must check clean; each targeted corruption (every one
 * with valid CRCs) must be reported; random resealed mutations of every
 * metadata block must never crash the checker.
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

static struct bdev *bd;
static struct vmfs_vh vh;
static char why[512];
static char msgs[1 << 20];
static int nmsgs;

#define FD(r)	 vmfs_addr_make(VMFS_RT_FD, 0, r)
#define SB(r)	 vmfs_addr_make(VMFS_RT_SB, 0, r)
#define PB(r)	 vmfs_addr_make(VMFS_RT_PB, 0, r)
#define FB(r)	 vmfs_addr_make(VMFS_RT_FB, 0, r)
#define INODE(a) (vmfs_addr_off(&vh, a) + VMFS_UNIT)
#define CLHDR(t) (vmfs_cl_off(&vh, t, 0) + VMFS_UNIT)

static void cb(void *arg, const char *region, const char *msg)
{
	size_t n = strlen(msgs);

	(void)arg;
	nmsgs++;
	snprintf(msgs + n, sizeof(msgs) - n, "%s: %s\n", region, msg);
}

static struct vmfs_check_stats st;

static int check(void)
{
	unsigned fixed;

	msgs[0] = 0;
	nmsgs = 0;
	return vmfs_check(bd, 0, cb, NULL, &st, &fixed);
}

static void wr(const void *b, uint64_t off)
{
	assert_int_equal(bdev_write(bd, b, off, VMFS_UNIT), 0);
}

static void set_bits(unsigned t, unsigned n)
{
	uint8_t b[4096];
	struct vmfs_ch ch;

	assert_int_equal(bdev_read(bd, b, CLHDR(t), VMFS_UNIT), 0);
	assert_int_equal(vmfs_ch_decode(b, &vh, &ch, why, sizeof(why)), 0);
	for (unsigned i = 0; i < n; i++)
		vmfs_bit_set(ch.bitmap, i, 1);
	ch.nfree = ch.nres - n;
	vmfs_ch_encode(&ch, b);
	wr(b, CLHDR(t));
}

static void base_fd(struct vmfs_fd *fd, uint64_t self, uint32_t type)
{
	memset(fd, 0, sizeof(*fd));
	fd->self = self;
	fd->type = type;
	fd->mode = 0644;
	fd->nlink = 1;
	fd->generation = 1;
}

static void put_fd(const struct vmfs_fd *fd)
{
	uint8_t b[4096];

	vmfs_fd_encode(fd, b);
	wr(b, INODE(fd->self));
}

static void put_db(const struct vmfs_db *db, uint64_t off)
{
	uint8_t b[4096];

	vmfs_db_encode(db, b);
	wr(b, off);
}

/* Names whose hash bit 0 is `bit`. */
static void name_for(unsigned bit, unsigned k, char *out)
{
	for (unsigned i = 0;; i++) {
		snprintf(out, 32, "n%u", i);
		if ((vmfs_name_hash(out, strlen(out)) & 1) == bit && k-- == 0)
			return;
	}
}

/* root: "file1" (FD 0:1), "sub" (FD 0:2). sub: 6 links to FD 0:3. */
static void populate(void)
{
	struct vmfs_fd fd;
	struct vmfs_pb pb;
	struct vmfs_db db;
	uint8_t b[4096];
	char nm[32];

	/* Root directory: bucket 0 gets the two entries (level 0). */
	memset(&db, 0, sizeof(db));
	db.kind = VMFS_DB_HEADER;
	db.dir = vh.root_fd;
	db.nbuckets = 1;
	db.total = 2;
	put_db(&db, vmfs_addr_off(&vh, SB(0)));
	memset(&db, 0, sizeof(db));
	db.kind = VMFS_DB_BUCKET;
	db.index = 1;
	db.dir = vh.root_fd;
	assert_int_equal(vmfs_db_add(&db, FD(1), VMFS_FT_REG, "file1", 5), 0);
	assert_int_equal(vmfs_db_add(&db, FD(2), VMFS_FT_DIR, "sub", 3), 0);
	put_db(&db, vmfs_addr_off(&vh, SB(0)) + 4096);
	assert_int_equal(bdev_read(bd, b, INODE(vh.root_fd), 4096), 0);
	assert_int_equal(vmfs_fd_decode(b, &vh, &fd, why, sizeof(why)), 0);
	fd.nlink = 3;
	put_fd(&fd);

	/* file1: direct FB 0, FB 1 (TBZ); single PB 0 -> FB 2, FB 3; double
	 * PB 1 -> PB 2 -> FB 4. */
	base_fd(&fd, FD(1), VMFS_FT_REG);
	fd.amode = VMFS_AM_FB;
	fd.u.addr[0] = FB(0);
	fd.u.addr[1] = FB(1) | VMFS_ADDR_TBZ;
	fd.u.addr[256] = PB(0);
	fd.u.addr[384] = PB(1);
	fd.nalloc = 8;
	fd.size = (uint64_t)(256 + 128 * 504 + 2) * vh.block_size;
	put_fd(&fd);
	memset(&pb, 0, sizeof(pb));
	pb.self = PB(0);
	pb.owner = FD(1);
	pb.level = 1;
	pb.addr[0] = FB(2);
	pb.addr[5] = FB(3);
	vmfs_pb_encode(&pb, b);
	wr(b, vmfs_addr_off(&vh, PB(0)));
	memset(&pb, 0, sizeof(pb));
	pb.self = PB(1);
	pb.owner = FD(1);
	pb.level = 2;
	pb.addr[0] = PB(2);
	vmfs_pb_encode(&pb, b);
	wr(b, vmfs_addr_off(&vh, PB(1)));
	memset(&pb, 0, sizeof(pb));
	pb.self = PB(2);
	pb.owner = FD(1);
	pb.level = 1;
	pb.addr[1] = FB(4);
	vmfs_pb_encode(&pb, b);
	wr(b, vmfs_addr_off(&vh, PB(2)));

	/* sub: SB 1 = dir blocks 0 (header) and 1 (bucket 0); SB 2 = dir blocks
	 * 2 (overflow of bucket 0) and 3 (bucket 1). level 1, 2 buckets. */
	base_fd(&fd, FD(2), VMFS_FT_DIR);
	fd.mode = 0755;
	fd.nlink = 2;
	fd.amode = VMFS_AM_SB;
	fd.parent = vh.root_fd;
	fd.u.addr[0] = SB(1);
	fd.u.addr[1] = SB(2);
	fd.nalloc = 2;
	fd.size = 4 * 4096;
	put_fd(&fd);
	memset(&db, 0, sizeof(db));
	db.kind = VMFS_DB_HEADER;
	db.dir = FD(2);
	db.level = 1;
	db.nbuckets = 2;
	db.total = 6;
	db.novf = 1;
	put_db(&db, vmfs_addr_off(&vh, SB(1)));
	for (unsigned bk = 0; bk < 2; bk++) {
		memset(&db, 0, sizeof(db));
		db.kind = VMFS_DB_BUCKET;
		db.index = 1 + 2 * bk;
		db.bucket = bk;
		db.dir = FD(2);
		db.next = bk == 0 ? 2 : 0;
		for (unsigned k = 0; k < 2; k++) {
			name_for(bk, k, nm);
			assert_int_equal(vmfs_db_add(&db, FD(3), VMFS_FT_REG, nm, strlen(nm)), 0);
		}
		put_db(&db, vmfs_addr_off(&vh, bk ? SB(2) : SB(1)) + 4096);
	}
	memset(&db, 0, sizeof(db));
	db.kind = VMFS_DB_OVERFLOW;
	db.index = 2;
	db.bucket = 0;
	db.dir = FD(2);
	for (unsigned k = 2; k < 4; k++) {
		name_for(0, k, nm);
		assert_int_equal(vmfs_db_add(&db, FD(3), VMFS_FT_REG, nm, strlen(nm)), 0);
	}
	put_db(&db, vmfs_addr_off(&vh, SB(2)));

	/* FD 0:3: inline "hello", six links. */
	base_fd(&fd, FD(3), VMFS_FT_REG);
	fd.nlink = 6;
	fd.size = 5;
	memcpy(fd.u.data, "hello", 5);
	put_fd(&fd);

	set_bits(VMFS_RT_FD, 4);
	set_bits(VMFS_RT_SB, 3);
	set_bits(VMFS_RT_PB, 3);
	set_bits(VMFS_RT_FB, 5);
}

static int setup(void **state)
{
	struct vmfs_mkfs_opts o = {
	    .max_hosts = 2, .journal_size = 256 << 10, .block_size = 64 << 10};

	(void)state;
	if (bdev_open("mem:48M", 0, &bd))
		return -1;
	if (vmfs_layout(bd->size, bd->lsec, &o, &vh, why, sizeof(why)) ||
	    vmfs_mkfs_write(bd, &vh, &o, why, sizeof(why)))
		return -1;
	populate();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	bdev_close(bd);
	return 0;
}

static void test_clean(void **state)
{
	(void)state;
	if (check() != 0)
		fail_msg("populated volume not clean:\n%s", msgs);
}

/* Saves a block, lets the caller corrupt it, checks, restores. */
static void expect_problem(uint64_t off, void (*mutate)(uint8_t *b), const char *want)
{
	uint8_t save[4096], b[4096];
	int rc;

	assert_int_equal(bdev_read(bd, save, off, 4096), 0);
	memcpy(b, save, 4096);
	mutate(b);
	wr(b, off);
	rc = check();
	wr(save, off);
	if (rc < 1 || !strstr(msgs, want))
		fail_msg("expected a problem with '%s', got %d:\n%s", want, rc, msgs);
	assert_int_equal(check(), 0);
}

static void m_double_ref(uint8_t *b) /* PB 2 entry 1 -> FB 2 (already in PB 0) */
{
	struct vmfs_pb pb;

	assert_int_equal(vmfs_pb_decode(b, &vh, &pb, why, sizeof(why)), 0);
	pb.addr[1] = FB(2);
	vmfs_pb_encode(&pb, b);
}

static void m_clear_fb4(uint8_t *b)
{
	struct vmfs_ch ch;

	assert_int_equal(vmfs_ch_decode(b, &vh, &ch, why, sizeof(why)), 0);
	vmfs_bit_set(ch.bitmap, 4, 0);
	ch.nfree++;
	vmfs_ch_encode(&ch, b);
}

static void m_leak_pb(uint8_t *b)
{
	struct vmfs_ch ch;

	assert_int_equal(vmfs_ch_decode(b, &vh, &ch, why, sizeof(why)), 0);
	vmfs_bit_set(ch.bitmap, 7, 1);
	ch.nfree--;
	vmfs_ch_encode(&ch, b);
}

static void m_nlink5(uint8_t *b)
{
	struct vmfs_fd fd;

	assert_int_equal(vmfs_fd_decode(b, &vh, &fd, why, sizeof(why)), 0);
	fd.nlink = 5;
	vmfs_fd_encode(&fd, b);
}

static void m_nalloc(uint8_t *b)
{
	struct vmfs_fd fd;

	assert_int_equal(vmfs_fd_decode(b, &vh, &fd, why, sizeof(why)), 0);
	fd.nalloc = 7;
	vmfs_fd_encode(&fd, b);
}

static void m_pb_owner(uint8_t *b)
{
	struct vmfs_pb pb;

	assert_int_equal(vmfs_pb_decode(b, &vh, &pb, why, sizeof(why)), 0);
	pb.owner = FD(2);
	vmfs_pb_encode(&pb, b);
}

static void m_wrong_bucket(uint8_t *b) /* move bucket 1's entries into bucket 0's block */
{
	struct vmfs_db db;
	char nm[32];

	assert_int_equal(vmfs_db_decode(b, &vh, &db, why, sizeof(why)), 0);
	name_for(1, 5, nm);
	assert_int_equal(vmfs_db_add(&db, FD(3), VMFS_FT_REG, nm, strlen(nm)), 0);
	vmfs_db_encode(&db, b);
}

static void m_loop(uint8_t *b) /* the overflow block chains to itself */
{
	struct vmfs_db db;

	assert_int_equal(vmfs_db_decode(b, &vh, &db, why, sizeof(why)), 0);
	db.next = 2;
	vmfs_db_encode(&db, b);
}

static void m_free_fd(uint8_t *b) /* a root entry names free FD 0:9 */
{
	struct vmfs_db db;

	assert_int_equal(vmfs_db_decode(b, &vh, &db, why, sizeof(why)), 0);
	assert_int_equal(vmfs_db_remove(&db, "file1", 5), 0);
	assert_int_equal(vmfs_db_add(&db, FD(9), VMFS_FT_REG, "file1", 5), 0);
	vmfs_db_encode(&db, b);
}

static void m_orphan(uint8_t *b) /* FD 0:1 no longer named: rename entry to FD 0:3 */
{
	struct vmfs_db db;

	assert_int_equal(vmfs_db_decode(b, &vh, &db, why, sizeof(why)), 0);
	assert_int_equal(vmfs_db_remove(&db, "file1", 5), 0);
	assert_int_equal(vmfs_db_add(&db, FD(3), VMFS_FT_REG, "file1", 5), 0);
	vmfs_db_encode(&db, b);
}

static void m_bad_crc(uint8_t *b)
{
	b[0x200] ^= 1;
}

static void test_corruptions(void **state)
{
	(void)state;
	expect_problem(vmfs_addr_off(&vh, PB(2)), m_double_ref, "referenced twice");
	expect_problem(CLHDR(VMFS_RT_FB), m_clear_fb4, "FB 0:4, which is free");
	expect_problem(CLHDR(VMFS_RT_PB), m_leak_pb, "PB 0:7 is allocated but not referenced");
	expect_problem(INODE(FD(3)), m_nlink5, "link count 5, expected 6");
	expect_problem(INODE(FD(1)), m_nalloc, "owns 8 blocks, nalloc says 7");
	expect_problem(vmfs_addr_off(&vh, PB(0)), m_pb_owner, "self/owner/level");
	expect_problem(vmfs_addr_off(&vh, SB(1)) + 4096, m_wrong_bucket, "wrong bucket");
	expect_problem(vmfs_addr_off(&vh, SB(2)), m_loop, "loops");
	expect_problem(vmfs_addr_off(&vh, SB(0)) + 4096, m_free_fd, "names a free FD");
	expect_problem(vmfs_addr_off(&vh, SB(0)) + 4096, m_orphan,
		       "FD 0:1: FD is allocated but no");
	expect_problem(vmfs_addr_off(&vh, SB(2)) + 4096, m_bad_crc, "FD 0:2 directory block 3");
	expect_problem(INODE(FD(2)), m_bad_crc, "FD 0:2: FD inode: bad CRC");
	expect_problem(CLHDR(VMFS_RT_SB), m_bad_crc, "SB cluster 0 header: bad CRC");
}

/* Every metadata block that holds a record: mutate 1-4 body bytes, reseal,
 * check. The checker must return >= 0 (problems) and never crash. */
static void test_fuzz(void **state)
{
	uint64_t offs[32];
	unsigned n = 0;
	uint8_t save[4096], b[4096];
	(void)state;

	offs[n++] = VMFS_VH_OFF;
	offs[n++] = vh.backup_off;
	offs[n++] = vh.journal_off;
	for (unsigned t = VMFS_RT_FB; t <= VMFS_RT_MAX; t++)
		offs[n++] = CLHDR(t);
	for (unsigned r = 0; r < 4; r++)
		offs[n++] = INODE(FD(r));
	for (unsigned r = 0; r < 3; r++)
		offs[n++] = vmfs_addr_off(&vh, PB(r));
	for (unsigned r = 0; r < 3; r++) {
		offs[n++] = vmfs_addr_off(&vh, SB(r));
		offs[n++] = vmfs_addr_off(&vh, SB(r)) + 4096;
	}
	srand(4242);
	for (int iter = 0; iter < 800; iter++) {
		uint64_t off = offs[(unsigned)rand() % n];
		uint32_t len;
		int rc;

		assert_int_equal(bdev_read(bd, save, off, 4096), 0);
		memcpy(b, save, 4096);
		len = le32_get(b + 12);
		if (len != 512 && len != 4096)
			len = 4096;
		for (int k = 1 + rand() % 4; k > 0; k--) {
			unsigned at = 16 + (unsigned)rand() % (len - 16);

			b[at] =
			    (uint8_t)(rand() % 2 ? (unsigned)rand() : b[at] ^ (1u << (rand() % 8)));
		}
		le32_put(b + 8, 0);
		le32_put(b + 8, crc32c(0, b, len));
		wr(b, off);
		rc = check();
		wr(save, off);
		assert_true(rc >= 0);
	}
	assert_int_equal(check(), 0);
}

/* A committed transaction in journal 1 (head 3, txid 7): counted as pending,
 * not a problem; a bad data CRC or txid makes it invalid (not counted). */
static void test_journal_pending(void **state)
{
	uint64_t joff = vmfs_journal_off(&vh, 1), target = CLHDR(VMFS_RT_PB);
	uint8_t hdr[4096], desc[4096], img[4096], com[4096], save[4096];
	struct vmfs_jh jh = {0};
	struct vmfs_jd jd = {0};
	struct vmfs_jc jc = {0};
	(void)state;

	assert_int_equal(bdev_read(bd, save, joff, 4096), 0);
	jh.slot = 1;
	jh.journal_off = joff;
	jh.journal_len = vh.journal_size;
	jh.head = 3;
	jh.head_txid = 7;
	jh.seq = 2; /* copy 0, newer than mkfs's copy 1 (seq 1) */
	vmfs_jh_encode(&jh, hdr);
	wr(hdr, joff);
	jd.txid = 7;
	jd.nblocks = 1;
	jd.slot = 1;
	jd.journal_off = joff;
	jd.target[0] = target;
	vmfs_jd_encode(&jd, desc);
	assert_int_equal(bdev_read(bd, img, target, 4096), 0);
	jc.txid = 7;
	jc.nblocks = 1;
	jc.data_crc = crc32c(crc32c(0, desc, 4096), img, 4096);
	vmfs_jc_encode(&jc, com);
	wr(desc, joff + 4096 * 5); /* log block 3 = journal block 2 + 3 */
	wr(img, joff + 4096 * 6);
	wr(com, joff + 4096 * 7);
	assert_int_equal(check(), 0);
	assert_int_equal(st.journals_pending, 1);
	img[100] ^= 1; /* image does not match the commit's CRC */
	wr(img, joff + 4096 * 6);
	assert_int_equal(check(), 0);
	assert_int_equal(st.journals_pending, 0);
	img[100] ^= 1;
	wr(img, joff + 4096 * 6);
	jh.head_txid = 8; /* head expects another txid */
	vmfs_jh_encode(&jh, hdr);
	wr(hdr, joff);
	assert_int_equal(check(), 0);
	assert_int_equal(st.journals_pending, 0);
	wr(save, joff);
	memset(img, 0, sizeof(img));
	for (int i = 5; i <= 7; i++)
		wr(img, joff + 4096 * (uint64_t)i);
	assert_int_equal(check(), 0);
}

/* file1 unlinked while open: no entry, nlink 0, UNLINKED: counted, not a
 * problem; the same FD without the flag (and nlink 1) is an orphan. */
static void test_unlinked(void **state)
{
	uint64_t dirblk = vmfs_addr_off(&vh, SB(0)) + 4096, ino = INODE(FD(1));
	uint8_t sdir[4096], sino[4096], b[4096];
	struct vmfs_db db;
	struct vmfs_fd fd;
	(void)state;

	assert_int_equal(bdev_read(bd, sdir, dirblk, 4096), 0);
	assert_int_equal(bdev_read(bd, sino, ino, 4096), 0);
	assert_int_equal(vmfs_db_decode(sdir, &vh, &db, why, sizeof(why)), 0);
	assert_int_equal(vmfs_db_remove(&db, "file1", 5), 0);
	vmfs_db_encode(&db, b);
	wr(b, dirblk);
	assert_int_equal(bdev_read(bd, b, vmfs_addr_off(&vh, SB(0)), 4096), 0);
	assert_int_equal(vmfs_db_decode(b, &vh, &db, why, sizeof(why)), 0);
	db.total = 1;
	vmfs_db_encode(&db, b);
	wr(b, vmfs_addr_off(&vh, SB(0)));
	assert_int_equal(check(), 1);
	assert_non_null(strstr(msgs, "FD 0:1: FD is allocated but no directory names it"));
	assert_int_equal(vmfs_fd_decode(sino, &vh, &fd, why, sizeof(why)), 0);
	fd.nlink = 0;
	fd.flags = VMFS_FDF_UNLINKED;
	vmfs_fd_encode(&fd, b);
	wr(b, ino);
	if (check() != 0)
		fail_msg("unlinked file reported:\n%s", msgs);
	assert_int_equal(st.fds_unlinked, 1);
	/* Restore: entry back, count 2, inode as it was. */
	wr(sdir, dirblk);
	wr(sino, ino);
	assert_int_equal(bdev_read(bd, b, vmfs_addr_off(&vh, SB(0)), 4096), 0);
	assert_int_equal(vmfs_db_decode(b, &vh, &db, why, sizeof(why)), 0);
	db.total = 2;
	vmfs_db_encode(&db, b);
	wr(b, vmfs_addr_off(&vh, SB(0)));
	assert_int_equal(check(), 0);
	assert_int_equal(st.fds_unlinked, 0);
}

static void m_pb_all_same(uint8_t *b) /* level-2 PB 1: 504 entries, all PB 2 */
{
	struct vmfs_pb pb;

	assert_int_equal(vmfs_pb_decode(b, &vh, &pb, why, sizeof(why)), 0);
	for (unsigned i = 0; i < VMFS_PB_NADDR; i++)
		pb.addr[i] = PB(2);
	vmfs_pb_encode(&pb, b);
}

/* A hostile tree is walked once per PB; a flood of problems is capped at
 * 1000 reported ones plus one line counting the rest. */
static void test_flood(void **state)
{
	uint8_t save[4][4096];
	uint64_t hdr[4];
	(void)state;

	expect_problem(vmfs_addr_off(&vh, PB(1)), m_pb_all_same,
		       "PB 0:2, which is referenced twice");
	for (unsigned t = VMFS_RT_FB; t <= VMFS_RT_MAX; t++) {
		hdr[t - 1] = CLHDR(t);
		assert_int_equal(bdev_read(bd, save[t - 1], hdr[t - 1], 4096), 0);
		set_bits(t, vmfs_cl_nres(&vh, t, 0));
	}
	assert_true(check() > 1000);
	assert_int_equal(nmsgs, 1001);
	assert_non_null(strstr(msgs, "more problems not listed"));
	for (unsigned i = 0; i < 4; i++)
		wr(save[i], hdr[i]);
	assert_int_equal(check(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_clean),    cmocka_unit_test(test_corruptions),
	    cmocka_unit_test(test_fuzz),     cmocka_unit_test(test_journal_pending),
	    cmocka_unit_test(test_unlinked), cmocka_unit_test(test_flood),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
