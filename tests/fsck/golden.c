/*
 * golden.c - makes the damaged images of the fsck golden tests (in the style
 * of e2fsprogs' tests/f_*) and checks what survives a repair.
 *
 *   fsck_golden list                 the kinds of damage, one a line
 *   fsck_golden make KIND IMAGE      fresh volume + files, then KIND's damage
 *   fsck_golden verify KIND IMAGE    every file KIND does not touch is intact
 *
 * The volume is made with fixed parameters and UUID (64 MiB, 64 KiB blocks,
 * 4 hosts, 256 KiB journals, 250 ms / 2 s heartbeat: relaxed enough that
 * a loaded machine does not fence the populating host) and populated
 * through the library by one host, so its layout and fsck's report are the
 * same on every run. Each damage is written at a precise place found through
 * the format's decoders (the FD of a path, its blocks, a cluster header...),
 * re-encoded with a valid CRC unless the damage is the CRC itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bdev.h"
#include "crc32c.h"
#include "format.h"
#include "lockmgr.h"
#include "vmfs.h"

#define VOL_SIZE (64ull << 20)
#define BS	 (64u << 10)

static struct bdev *bd;
static struct vmfs_vh vh;

static void die(const char *what, int rc)
{
	fprintf(stderr, "fsck_golden: %s: %s\n", what, rc ? vmfs_strerror(rc) : "failed");
	exit(2);
}

#define CK(expr)                                                                                   \
	do {                                                                                       \
		int rc_ = (expr);                                                                  \
		if (rc_ < 0)                                                                       \
			die(#expr, rc_);                                                           \
	} while (0)

/* ---- the files --------------------------------------------------------------- */

struct gfile {
	const char *path;
	uint64_t size;
};

static const struct gfile files[] = {
    {"/small.txt", 100},	 /* inline */
    {"/sb.bin", 20000},		 /* 3 sub-blocks */
    {"/big.bin", 258ull * BS},	 /* 256 direct + a single-indirect PB */
    {"/dir1/a.txt", 300},	 /* inline, in a subdirectory */
    {"/dir1/b.bin", 9000},	 /* 2 sub-blocks */
    {"/dir1/sub/deep.txt", 50},	 /* two levels down */
    {"/x.attr", 10},		 /* with an extended attribute */
    {"/sparse.bin", 40ull * BS}, /* holes and two blocks */
};
#define NFILES (sizeof(files) / sizeof(files[0]))

static uint8_t byte_of(const char *path, uint64_t off)
{
	uint32_t h = 2166136261u;

	for (const char *p = path; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return (uint8_t)((off * 131 + h + off / 4096) & 0xff);
}

static int in_hole(const char *path, uint64_t off)
{
	return strcmp(path, "/sparse.bin") == 0 && off / BS != 3 && off / BS != 39;
}

static void write_file(struct vmfs *fs, const struct gfile *g)
{
	static uint8_t buf[BS];
	struct vmfs_file *f;

	CK(vmfs_open(fs, g->path, O_CREAT | O_RDWR, 0644, &f));
	for (uint64_t off = 0; off < g->size; off += BS) {
		size_t n = g->size - off < BS ? (size_t)(g->size - off) : BS;

		if (in_hole(g->path, off))
			continue;
		for (size_t i = 0; i < n; i++)
			buf[i] = byte_of(g->path, off + i);
		ssize_t w = vmfs_write(f, buf, n, off);

		if (w != (ssize_t)n)
			die(g->path, w < 0 ? (int)w : -EIO);
	}
	CK(vmfs_ftruncate(f, g->size));
	CK(vmfs_close(f));
}

static void populate(const char *img)
{
	struct vmfs_mount_opts o = {.hostname = "golden"};
	char big[200];
	struct vmfs *fs;

	CK(vmfs_mount(img, &o, &fs));
	CK(vmfs_mkdir(fs, "/dir1", 0755));
	CK(vmfs_mkdir(fs, "/dir1/sub", 0755));
	for (size_t i = 0; i < NFILES; i++)
		write_file(fs, &files[i]);
	CK(vmfs_link(fs, "/small.txt", "/link.txt"));
	CK(vmfs_symlink(fs, "small.txt", "/sym"));
	/* too big for the inode: an attribute block; /dir1's fits inline */
	memset(big, 'v', sizeof(big));
	memcpy(big, "value", 5);
	CK(vmfs_setxattr(fs, "/x.attr", "user.golden", big, sizeof(big), 0));
	CK(vmfs_setxattr(fs, "/dir1", "user.inline", "tiny", 4, 0));
	CK(vmfs_umount(fs));
}

static void make_volume(const char *img)
{
	static const uint8_t uuid[16] = {0x67, 0x6f, 0x6c, 0x64, 0x65, 0x6e, 0x2d, 0x66,
					 0x73, 0x63, 0x6b, 0x2d, 0x74, 0x65, 0x73, 0x74};
	struct vmfs_mkfs_opts o = {.label = "golden",
				   .block_size = BS,
				   .max_hosts = 4,
				   .journal_size = 256u << 10,
				   .hb_interval_ms = 250,
				   .hb_timeout_ms = 2000,
				   .nlocks = 4,
				   .nfds = 256,
				   .uuid = uuid};
	char why[256];
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || ftruncate(fd, (off_t)VOL_SIZE) || close(fd))
		die(img, -errno);
	CK(bdev_open(img, 0, &bd));
	if (vmfs_layout(bd->size, bd->lsec, &o, &vh, why, sizeof(why)) ||
	    vmfs_mkfs_write(bd, &vh, &o, why, sizeof(why))) {
		fprintf(stderr, "fsck_golden: mkfs: %s\n", why);
		exit(2);
	}
	bdev_close(bd);
	populate(img);
	CK(bdev_open(img, 0, &bd));
	CK(vmfs_vh_read(bd, &vh, why, sizeof(why)));
	/* The populating host's slot (chosen from its random UUID) back to
	 * "never used": every later claim is then the same on every run. */
	CK(bdev_write_zeroes(bd, vh.hb_off, vh.hb_len));
}

/* ---- reading and writing records -------------------------------------------------- */

static uint8_t blk[VMFS_UNIT] __attribute__((aligned(4096)));

static void rd(uint64_t off)
{
	CK(bdev_read(bd, blk, off, VMFS_UNIT));
}

static void wr(uint64_t off)
{
	CK(bdev_write(bd, blk, off, VMFS_UNIT));
}

static uint64_t fd_of(const char *path)
{
	struct vmfs_mount_opts o = {.read_only = 1};
	struct vmfs_stat st;
	struct vmfs *fs;

	CK(vmfs_mount_bdev(bd, &o, &fs));
	CK(vmfs_getattr(fs, path, &st));
	CK(vmfs_umount(fs));
	return st.ino;
}

static uint64_t inode_off(uint64_t a)
{
	return vmfs_addr_off(&vh, a) + VMFS_UNIT;
}

static void load_fd(uint64_t a, struct vmfs_fd *fd)
{
	rd(inode_off(a));
	CK(vmfs_fd_decode(blk, &vh, fd, NULL, 0));
}

static void store_fd(const struct vmfs_fd *fd)
{
	vmfs_fd_encode(fd, blk);
	wr(inode_off(fd->self));
}

static uint64_t ch_off(unsigned t, uint32_t cl)
{
	return vmfs_cl_off(&vh, t, cl) + VMFS_UNIT;
}

/* Sets or clears the bitmap bit of a resource, header resealed (nfree too). */
static void set_bit(uint64_t a, int v)
{
	unsigned t = vmfs_addr_type(a);
	struct vmfs_ch ch;

	rd(ch_off(t, vmfs_addr_cl(a)));
	CK(vmfs_ch_decode(blk, &vh, &ch, NULL, 0));
	if (vmfs_bit_get(ch.bitmap, vmfs_addr_res(a)) != v) {
		vmfs_bit_set(ch.bitmap, vmfs_addr_res(a), v);
		ch.nfree = v ? ch.nfree - 1 : ch.nfree + 1;
	}
	vmfs_ch_encode(&ch, blk);
	wr(ch_off(t, vmfs_addr_cl(a)));
}

/* First resource of type t that is free in its bitmap. */
static uint64_t free_res(unsigned t)
{
	struct vmfs_ch ch;

	rd(ch_off(t, 0));
	CK(vmfs_ch_decode(blk, &vh, &ch, NULL, 0));
	for (uint32_t i = 0; i < ch.nres; i++)
		if (!vmfs_bit_get(ch.bitmap, i))
			return vmfs_addr_make(t, 0, i);
	die("no free resource", -ENOSPC);
	return 0;
}

/* Device offset of directory block i of directory dir (SB mode). */
static uint64_t dirblock_off(uint64_t dir, uint32_t i)
{
	struct vmfs_fd fd;

	load_fd(dir, &fd);
	return vmfs_addr_off(&vh, fd.u.addr[i / 2]) + (uint64_t)(i % 2) * VMFS_UNIT;
}

static void garble(uint64_t off, size_t at, size_t len)
{
	rd(off);
	for (size_t i = 0; i < len; i++)
		blk[at + i] ^= (uint8_t)(0xa5 + i);
	wr(off);
}

/* ---- the kinds of damage ----------------------------------------------------------- */

/* Reseals a 4 KiB record after a damage (the CRC covers it with the CRC
 * field as zero), so only the decoder's field checks can notice. */
static void reseal(void)
{
	memset(blk + 8, 0, 4);
	uint32_t crc = crc32c(0, blk, VMFS_UNIT);

	for (int i = 0; i < 4; i++)
		blk[8 + i] = (uint8_t)(crc >> (8 * i));
}

static void d_root_lock(void)
{
	garble(vmfs_addr_off(&vh, vh.root_fd), 0x10, 24);
}

static void d_fb_bit(void)
{
	struct vmfs_fd fd;

	load_fd(fd_of("/big.bin"), &fd);
	set_bit(fd.u.addr[7] & ~VMFS_ADDR_FLAGS, 0);
}

/* Grows the FD clusters (the volume has 256 FDs: 260 more empty files),
 * then clears the bit of the file block holding the extension cluster. */
static void d_xtab_fb_bit(void)
{
	struct vmfs_mount_opts o = {.hostname = "golden"};
	struct vmfs *fs;
	char why[256], path[32];
	uint64_t off, n;

	CK(vmfs_mount_bdev(bd, &o, &fs));
	CK(vmfs_mkdir(fs, "/many", 0755));
	for (int i = 0; i < 260; i++) {
		struct vmfs_file *f;

		snprintf(path, sizeof(path), "/many/e%d", i);
		CK(vmfs_open(fs, path, O_CREAT | O_RDWR, 0644, &f));
		CK(vmfs_close(f));
	}
	CK(vmfs_umount(fs));
	CK(bdev_write_zeroes(bd, vh.hb_off, vh.hb_len)); /* as make_volume() leaves it */
	CK(vmfs_xtab_load(bd, &vh, why, sizeof(why)));
	if (vmfs_ncl(&vh, VMFS_RT_FD) <= vh.res[VMFS_RT_FD].ncl)
		die("FD clusters did not grow", -ENOSPC);
	off = vmfs_cl_off(&vh, VMFS_RT_FD, vh.res[VMFS_RT_FD].ncl);
	n = (off - vh.data_off) / vh.block_size;
	set_bit(vmfs_addr_make(VMFS_RT_FB, (uint32_t)(n / VMFS_FB_PER_CL),
			       (uint32_t)(n % VMFS_FB_PER_CL)),
		0);
	vmfs_xtab_free(&vh);
}

static void d_fd_bit(void)
{
	set_bit(fd_of("/dir1/a.txt"), 0);
}

static void d_dup_block(void)
{
	struct vmfs_fd a, b;

	load_fd(fd_of("/big.bin"), &a);
	load_fd(fd_of("/sparse.bin"), &b);
	b.u.addr[3] = a.u.addr[0]; /* sparse.bin's own block 3 leaks */
	store_fd(&b);
}

static void d_link_count(void)
{
	struct vmfs_fd fd;

	load_fd(fd_of("/small.txt"), &fd);
	fd.nlink = 5;
	store_fd(&fd);
}

static void d_dir_nlink(void)
{
	struct vmfs_fd fd;

	load_fd(fd_of("/dir1"), &fd);
	fd.nlink = 7;
	store_fd(&fd);
}

static void d_dirblock_crc(void)
{
	garble(dirblock_off(vh.root_fd, 1), 8, 2); /* the CRC field itself */
}

static void d_dirblock_garbage(void)
{
	garble(dirblock_off(fd_of("/dir1"), 1), 0x40, 64); /* the entries */
}

static void add_entry(uint64_t dir, const char *name, uint64_t fd, uint8_t type)
{
	uint64_t hoff = dirblock_off(dir, 0), boff;
	struct vmfs_db h, db;

	rd(hoff);
	CK(vmfs_db_decode(blk, &vh, &h, NULL, 0));
	boff = dirblock_off(
	    dir, 1 + 2 * vmfs_dir_bucket(vmfs_name_hash(name, strlen(name)), h.level, h.split));
	rd(boff);
	CK(vmfs_db_decode(blk, &vh, &db, NULL, 0));
	CK(vmfs_db_add(&db, fd, type, name, strlen(name)));
	vmfs_db_encode(&db, blk);
	wr(boff);
	h.total++;
	vmfs_db_encode(&h, blk);
	wr(hoff);
}

static void d_dangling(void)
{
	add_entry(vh.root_fd, "ghost", vmfs_addr_make(VMFS_RT_FD, 0, 200), VMFS_FT_REG);
}

/* Both header copies lost (one bad copy is harmless: a torn write). */
static void d_journal_header(void)
{
	for (unsigned k = 0; k < VMFS_JH_COPIES; k++) {
		rd(vmfs_journal_off(&vh, 1) + k * VMFS_UNIT);
		memset(blk, 0xee, 512);
		wr(vmfs_journal_off(&vh, 1) + k * VMFS_UNIT);
	}
}

static void d_orphan(void)
{
	uint64_t dir = fd_of("/dir1"), hoff = dirblock_off(dir, 0), boff;
	struct vmfs_db h, db;

	rd(hoff);
	CK(vmfs_db_decode(blk, &vh, &h, NULL, 0));
	boff = dirblock_off(dir,
			    1 + 2 * vmfs_dir_bucket(vmfs_name_hash("a.txt", 5), h.level, h.split));
	rd(boff);
	CK(vmfs_db_decode(blk, &vh, &db, NULL, 0));
	CK(vmfs_db_remove(&db, "a.txt", 5));
	vmfs_db_encode(&db, blk);
	wr(boff);
	h.total--;
	vmfs_db_encode(&h, blk);
	wr(hoff);
}

static void d_leak_sb(void)
{
	set_bit(free_res(VMFS_RT_SB), 1);
}
static void d_leak_pb(void)
{
	set_bit(free_res(VMFS_RT_PB), 1);
}
static void d_leak_fb(void)
{
	set_bit(free_res(VMFS_RT_FB), 1);
}
static void d_leak_fd(void)
{
	set_bit(free_res(VMFS_RT_FD), 1);
}

static void d_backup_header(void)
{
	garble(vh.backup_off, 0x30, 8);
}

static void d_primary_header(void)
{
	garble(VMFS_VH_OFF, 0x80, 8);
}

static struct lm *dead_host(const char *name)
{
	struct lm_geom g = {vh.hb_off, vh.max_hosts, vh.hb_interval_ms, vh.hb_timeout_ms};
	uint8_t uuid[16] = {0};
	struct lm_opts o = {.hostname = name, .uuid = uuid};
	struct lm *lm;

	memcpy(uuid, name,
	       strlen(name) < sizeof(uuid) ? strlen(name) : sizeof(uuid)); /* fixed: a fixed slot */

	CK(lm_open(bd, &g, &o, &lm));
	CK(lm_join(lm));
	return lm;
}

static void d_dead_slot(void)
{
	lm_close_noleave(dead_host("deadhost"));
}

static void d_stale_lock(void)
{
	struct lm *lm = dead_host("gonehost");
	struct lm_lock *lk;

	CK(lm_lock_acquire(lm, vmfs_addr_off(&vh, fd_of("/big.bin")), LM_MODE_EX, 1000, &lk));
	lm_lock_forget(lk); /* the record stays held ... */
	CK(lm_leave(lm));   /* ... by a slot that is then free */
	lm_close(lm);
}

static void d_dead_lock(void)
{
	struct lm *lm = dead_host("crashed");
	struct lm_lock *lk;

	CK(lm_lock_acquire(lm, vmfs_addr_off(&vh, fd_of("/sb.bin")), LM_MODE_SH, 1000, &lk));
	lm_lock_forget(lk);
	lm_close_noleave(lm); /* slot left live, lock held: a crash */
}

/* A host that committed a transaction (a chmod of /small.txt to 0600) and
 * died before writing it in place: its slot is live and still, its journal
 * holds the committed transaction. fsck -y must replay it. */
static void d_dead_journal(void)
{
	static uint8_t d[VMFS_UNIT], im[VMFS_UNIT], cm[VMFS_UNIT];
	uint64_t a = fd_of("/small.txt"), joff;
	struct lm *lm = dead_host("journalhost");
	struct vmfs_jh jh = {0};
	struct vmfs_jd *jd = calloc(1, sizeof(*jd));
	struct vmfs_jc jc = {0};
	struct vmfs_fd fd;
	uint32_t slot, gen;

	CK(lm_slot(lm, &slot, &gen));
	lm_close_noleave(lm);
	joff = vmfs_journal_off(&vh, slot);
	load_fd(a, &fd);
	fd.mode = 0600;
	vmfs_fd_encode(&fd, im);
	jd->txid = 1;
	jd->nblocks = 1;
	jd->slot = slot;
	jd->journal_off = joff;
	jd->target[0] = inode_off(a);
	vmfs_jd_encode(jd, d);
	free(jd);
	jc.txid = 1;
	jc.nblocks = 1;
	jc.data_crc = crc32c(crc32c(0, d, VMFS_UNIT), im, VMFS_UNIT);
	vmfs_jc_encode(&jc, cm);
	jh.slot = slot;
	jh.journal_off = joff;
	jh.journal_len = vh.journal_size;
	jh.head_txid = 1;
	memcpy(jh.owner_uuid, "journalhost", 11);
	jh.owner_gen = gen;
	/* The slot's journal may hold the files' mount's transactions and
	 * headers of any seq: start from an empty log and write both header
	 * copies, so this header is the one picked whatever was there. */
	CK(bdev_write_zeroes(bd, joff, vh.journal_size));
	for (jh.seq = 2; jh.seq < 4; jh.seq++) {
		vmfs_jh_encode(&jh, blk);
		wr(joff + (jh.seq % 2) * VMFS_UNIT);
	}
	memcpy(blk, d, VMFS_UNIT);
	wr(vmfs_journal_log_off(joff, vh.journal_size, 0));
	memcpy(blk, im, VMFS_UNIT);
	wr(vmfs_journal_log_off(joff, vh.journal_size, 1));
	memcpy(blk, cm, VMFS_UNIT);
	wr(vmfs_journal_log_off(joff, vh.journal_size, 2));
}

static void d_bad_type(void)
{
	struct vmfs_fd fd;

	load_fd(fd_of("/small.txt"), &fd);
	vmfs_fd_encode(&fd, blk);
	blk[0x18] = 9; /* type */
	reseal();
	wr(inode_off(fd.self));
}

static void d_size_beyond(void)
{
	struct vmfs_fd fd;
	uint8_t *p = blk + 0x28;
	uint64_t size = 5ull << 20; /* beyond what sub-blocks address (2 MiB) */

	load_fd(fd_of("/dir1/b.bin"), &fd);
	vmfs_fd_encode(&fd, blk);
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(size >> (8 * i));
	reseal();
	wr(inode_off(fd.self));
}

static void d_nalloc(void)
{
	struct vmfs_fd fd;

	load_fd(fd_of("/big.bin"), &fd);
	fd.nalloc += 3;
	store_fd(&fd);
}

static void d_dir_total(void)
{
	uint64_t off = dirblock_off(vh.root_fd, 0);
	struct vmfs_db h;

	rd(off);
	CK(vmfs_db_decode(blk, &vh, &h, NULL, 0));
	h.total += 2;
	vmfs_db_encode(&h, blk);
	wr(off);
}

static void d_cluster_crc(void)
{
	garble(ch_off(VMFS_RT_SB, 0), 0x100, 1); /* a bitmap byte, CRC stale */
}

static void d_cluster_nfree(void)
{
	rd(ch_off(VMFS_RT_FB, 0));
	blk[0x1c] ^= 3; /* nfree disagrees with the bitmap */
	reseal();
	wr(ch_off(VMFS_RT_FB, 0));
}

static void d_slot_garbled(void)
{
	rd(vh.hb_off + 3 * VMFS_UNIT);
	memset(blk, 0x5a, 100);
	wr(vh.hb_off + 3 * VMFS_UNIT);
}

static void d_bad_pb(void)
{
	struct vmfs_fd fd;

	load_fd(fd_of("/big.bin"), &fd);
	garble(vmfs_addr_off(&vh, fd.u.addr[VMFS_NDIRECT]), 0x10, 8); /* self/owner */
}

static void d_xattr(void)
{
	struct vmfs_fd fd;

	load_fd(fd_of("/x.attr"), &fd);
	garble(vmfs_addr_off(&vh, fd.xattr), 0x44, 4);
}

/* An inline attribute whose value length runs past the inode's area, the
 * inode resealed: the decode refuses it, fsck drops the inline attributes. */
static void d_inline_xattr(void)
{
	struct vmfs_fd fd;

	load_fd(fd_of("/dir1"), &fd);
	if (!fd.ixa_used || fd.xattr) {
		fprintf(stderr, "fsck_golden: /dir1's attribute is not inline\n");
		exit(2);
	}
	vmfs_fd_encode(&fd, blk);
	blk[0x88 + 2] = 0xf0; /* value_len 240: beyond the 120 bytes */
	reseal();
	wr(inode_off(fd.self));
}

static void d_inode_crc(void)
{
	struct vmfs_fd fd;

	load_fd(fd_of("/dir1/sub/deep.txt"), &fd);
	garble(inode_off(fd.self), 0x8, 1);
}

struct kind {
	const char *name;
	void (*damage)(void);
	const char *touched; /* paths whose name or content the repair may change */
};

static const struct kind kinds[] = {
    {"root_lock_garbled", d_root_lock, ""},
    {"fb_bit_cleared", d_fb_bit, ""},
    {"fd_bit_cleared", d_fd_bit, ""},
    {"xtab_fb_bit_cleared", d_xtab_fb_bit, ""},
    {"dup_block", d_dup_block, "/sparse.bin"},
    {"link_count", d_link_count, ""},
    {"dir_link_count", d_dir_nlink, ""},
    {"dirblock_crc", d_dirblock_crc, ""},
    {"dirblock_garbage", d_dirblock_garbage, "/dir1/a.txt /dir1/b.bin /dir1/sub/deep.txt"},
    {"dangling_entry", d_dangling, ""},
    {"journal_header", d_journal_header, ""},
    {"orphan_fd", d_orphan, "/dir1/a.txt"},
    {"leak_sb", d_leak_sb, ""},
    {"leak_pb", d_leak_pb, ""},
    {"leak_fb", d_leak_fb, ""},
    {"leak_fd", d_leak_fd, ""},
    {"backup_header", d_backup_header, ""},
    {"primary_header", d_primary_header, ""},
    {"dead_slot", d_dead_slot, ""},
    {"stale_lock", d_stale_lock, ""},
    {"dead_host_lock", d_dead_lock, ""},
    {"dead_host_journal", d_dead_journal, ""},
    {"bad_inode_type", d_bad_type, ""},
    {"size_beyond_blocks", d_size_beyond, "/dir1/b.bin"},
    {"bad_nalloc", d_nalloc, ""},
    {"dir_total", d_dir_total, ""},
    {"cluster_header_crc", d_cluster_crc, ""},
    {"cluster_nfree", d_cluster_nfree, ""},
    {"slot_garbled", d_slot_garbled, ""},
    {"bad_pointer_block", d_bad_pb, "/big.bin"},
    {"bad_xattr_block", d_xattr, ""},
    {"inode_crc", d_inode_crc, ""},
    {"bad_inline_xattr", d_inline_xattr, ""},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static const struct kind *find(const char *name)
{
	for (size_t i = 0; i < NKINDS; i++)
		if (strcmp(kinds[i].name, name) == 0)
			return &kinds[i];
	fprintf(stderr, "fsck_golden: unknown kind '%s'\n", name);
	exit(2);
}

/* ---- verify ------------------------------------------------------------------------ */

static int touched(const struct kind *k, const char *path)
{
	size_t n = strlen(path);

	for (const char *p = strstr(k->touched, path); p; p = strstr(p + 1, path))
		if ((p == k->touched || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return 1;
	return 0;
}

/* The file at path holds what populate() wrote for g. */
static int check_file_at(struct vmfs *fs, const char *path, const struct gfile *g)
{
	static uint8_t buf[BS];
	struct vmfs_file *f;
	int rc = vmfs_open(fs, path, O_RDONLY, 0, &f);

	if (rc) {
		fprintf(stderr, "fsck_golden: %s: %s\n", g->path, vmfs_strerror(rc));
		return 1;
	}
	for (uint64_t off = 0; off < g->size; off += BS) {
		size_t n = g->size - off < BS ? (size_t)(g->size - off) : BS;

		if (vmfs_read(f, buf, n, off) != (ssize_t)n)
			rc = 1;
		for (size_t i = 0; i < n && !rc; i++)
			if (buf[i] != (in_hole(g->path, off) ? 0 : byte_of(g->path, off + i))) {
				fprintf(stderr, "fsck_golden: %s differs at %" PRIu64 "\n", g->path,
					off + i);
				rc = 1;
			}
	}
	if (vmfs_read(f, buf, 1, g->size) != 0)
		rc = 1;
	vmfs_close(f);
	return rc;
}

static int check_file(struct vmfs *fs, const struct gfile *g)
{
	return check_file_at(fs, g->path, g);
}

static int verify(const struct kind *k, const char *img)
{
	struct vmfs_mount_opts o = {.hostname = "verify"};
	char val[200], target[32];
	struct vmfs *fs;
	int bad = 0;

	CK(vmfs_mount(img, &o, &fs));
	for (size_t i = 0; i < NFILES; i++)
		if (!touched(k, files[i].path))
			bad |= check_file(fs, &files[i]);
	if (!touched(k, "/small.txt"))
		bad |= check_file_at(fs, "/link.txt", &files[0]);
	if (vmfs_readlink(fs, "/sym", target, sizeof(target)) != 9 ||
	    memcmp(target, "small.txt", 9))
		bad |= 1, fprintf(stderr, "fsck_golden: /sym lost\n");
	if (strcmp(k->name, "bad_xattr_block") &&
	    (vmfs_getxattr(fs, "/x.attr", "user.golden", val, sizeof(val)) != sizeof(val) ||
	     memcmp(val, "value", 5)))
		bad |= 1, fprintf(stderr, "fsck_golden: /x.attr lost its attribute\n");
	if (strcmp(k->name, "bad_inline_xattr") &&
	    (vmfs_getxattr(fs, "/dir1", "user.inline", val, sizeof(val)) != 4 ||
	     memcmp(val, "tiny", 4)))
		bad |= 1, fprintf(stderr, "fsck_golden: /dir1 lost its inline attribute\n");
	if (!strcmp(k->name, "dead_host_journal")) {
		struct vmfs_stat st;

		if (vmfs_getattr(fs, "/small.txt", &st) || (st.mode & 07777) != 0600)
			bad |= 1, fprintf(stderr, "fsck_golden: the journal was not replayed\n");
	}
	/* The volume stays usable. */
	CK(vmfs_mkdir(fs, "/after-repair", 0755));
	CK(vmfs_rmdir(fs, "/after-repair"));
	CK(vmfs_umount(fs));
	return bad;
}

int main(int argc, char **argv)
{
	const struct kind *k;

	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		for (size_t i = 0; i < NKINDS; i++)
			printf("%s\n", kinds[i].name);
		return 0;
	}
	if (argc != 4 || (strcmp(argv[1], "make") && strcmp(argv[1], "verify"))) {
		fprintf(stderr, "usage: fsck_golden list | make KIND IMAGE | verify KIND IMAGE\n");
		return 2;
	}
	k = find(argv[2]);
	if (strcmp(argv[1], "verify") == 0)
		return verify(k, argv[3]);
	make_volume(argv[3]);
	k->damage();
	CK(bdev_flush(bd));
	bdev_close(bd);
	return 0;
}
