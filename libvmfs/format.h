/*
 * format.h - the native on-disk format of libvmfs (prefix vmfs_): constants,
 * decoded structures, encode/decode of every on-disk structure, the volume
 * header reader, mkfs and the offline checker. docs/FORMAT.md documents every
 * structure offset by offset; format_ondisk.h has the same offsets as enums
 * with offset comments, and tests/format pins them with literal numbers.
 *
 * Design note
 * -----------
 * Volume layout (all offsets in bytes, little-endian, 4 KiB aligned):
 *
 *   0                 reserved (1 MiB: partition table, boot area; never written)
 *   1 MiB             primary volume header (record in the first 512 bytes)
 *   1 MiB + 4 KiB     volume lock unit
 *   hb_off            heartbeat region: max_hosts units of 4 KiB
 *   lock_off          general lock area: nlocks units of 4 KiB (named locks)
 *   journal_off       max_hosts journals of journal_size bytes; each begins
 *                     with two journal header blocks (alternating copies),
 *                     then the circular log
 *   res[FD].off       FD clusters, then PB, SB and FB clusters; each cluster =
 *                     lock unit (4 KiB) + header/bitmap block (4 KiB) + its
 *                     resources (FB clusters hold no resources: their bitmap
 *                     covers blocks of the data area)
 *   data_off          data area: nblocks file blocks (aligned to block_size)
 *   backup_off        backup volume header (= vol_size - 4 KiB), identical
 *
 * Invariants (decoders enforce them; fsck checks the cross-structure ones):
 *  1. An "atomic unit" (volume lock, heartbeat slot, lock record, cluster
 *     lock, FD lock) is a 4 KiB aligned 4 KiB unit owned by lockmgr; ALL-ZERO
 *     means free and never used. mkfs zeroes them; nothing here writes them.
 *  2. Every record starts with the common header: magic u32, major u16,
 *     minor u16, crc u32, rec_len u32. The CRC32C covers rec_len bytes with
 *     the crc field read as zero. rec_len is 512 for records that must be
 *     written atomically within one sector (volume header, journal header,
 *     journal commit) and 4096 for whole metadata blocks.
 *  3. A reader accepts major == VMFS_MAJOR and any minor; unknown incompat
 *     feature bits make the volume unreadable, unknown ro_compat bits make it
 *     read-only, unknown compat bits are ignored.
 *  4. Regions are in the order above, non-overlapping, inside
 *     [1 MiB + 4 KiB, backup_off), and their lengths follow from the counts.
 *  5. A block address (u64) is 0 (none / hole) or
 *       bits 63..60 type (1 FB, 2 SB, 3 PB, 4 FD), bits 59..56 flags
 *       (bit 56 = TBZ, to be zeroed: FB only), bits 55..24 cluster index,
 *       bits 23..0 resource index inside the cluster.
 *     A valid address names a resource that exists (cluster < count, index <
 *     resources of that cluster).
 *  6. Every decoder validates every field and returns -EUCLEAN with a reason
 *     that names the structure and the field; nothing is trusted before it.
 */
#ifndef LIBVMFS_FORMAT_H
#define LIBVMFS_FORMAT_H

#include <stddef.h>
#include <stdint.h>

struct bdev;

/* ---- constants ---------------------------------------------------------- */

#define VMFS_MAJOR 1u
#define VMFS_MINOR 0u

#define VMFS_UNIT      4096u /* metadata block and atomic unit size */
#define VMFS_REC_SMALL 512u  /* rec_len of sector-atomic records */
#define VMFS_MAX_LSEC  4096u /* largest supported logical sector */
#define VMFS_RESERVED  (1ull << 20)
#define VMFS_VH_OFF    (1ull << 20)

#define VMFS_MAGIC4(a, b, c, d)                                                                    \
	((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define VMFS_VH_MAGIC VMFS_MAGIC4('V', 'M', 'V', 'H') /* volume header */
#define VMFS_JH_MAGIC VMFS_MAGIC4('V', 'M', 'J', 'H') /* journal header */
#define VMFS_JD_MAGIC VMFS_MAGIC4('V', 'M', 'J', 'D') /* journal descriptor */
#define VMFS_JC_MAGIC VMFS_MAGIC4('V', 'M', 'J', 'C') /* journal commit */
#define VMFS_CH_MAGIC VMFS_MAGIC4('V', 'M', 'C', 'H') /* cluster header */
#define VMFS_FD_MAGIC VMFS_MAGIC4('V', 'M', 'F', 'D') /* FD inode block */
#define VMFS_PB_MAGIC VMFS_MAGIC4('V', 'M', 'P', 'B') /* pointer block */
#define VMFS_XB_MAGIC VMFS_MAGIC4('V', 'M', 'X', 'A') /* extended-attribute block */
#define VMFS_DB_MAGIC VMFS_MAGIC4('V', 'M', 'D', 'B') /* directory block */
#define VMFS_XT_MAGIC VMFS_MAGIC4('V', 'M', 'X', 'T') /* extension table block */

/* Limits of the volume header fields. */
#define VMFS_BS_MIN	     (64u << 10)
#define VMFS_BS_MAX	     (64u << 20)
#define VMFS_BS_DEFAULT	     (1u << 20)
#define VMFS_HOSTS_MAX	     2048u
#define VMFS_HOSTS_DEFAULT   64u
#define VMFS_HB_INT_MIN	     100u
#define VMFS_HB_INT_MAX	     60000u
#define VMFS_HB_INT_DEFAULT  1000u
#define VMFS_HB_TMO_DEFAULT  8000u
#define VMFS_HB_TMO_MAX	     3600000u
#define VMFS_HB_TMO_MULT     4u /* timeout >= 4 x interval (lockmgr's rule) */
#define VMFS_JOURNAL_MIN     (256ull << 10)
#define VMFS_JOURNAL_MAX     (1ull << 30)
#define VMFS_JOURNAL_DEFAULT (4ull << 20)
#define VMFS_NLOCKS_DEFAULT  256u
#define VMFS_NLOCKS_MAX	     65536u
#define VMFS_LABEL_LEN	     64u /* bytes on disk, NUL-terminated (63 chars) */

/* Feature masks. INCOMPAT_JH2: every journal begins with two alternating
 * header copies (a torn header write leaves the other one); required: a
 * volume without it (made before 0.2) is refused. */
#define VMFS_INCOMPAT_JH2 0x1u
/* INCOMPAT_XRES: FD, PB and SB clusters grow into file blocks on demand,
 * listed in the extension table (docs/FORMAT.md, "Resources that grow");
 * readers without it would take such addresses for corruption. */
#define VMFS_INCOMPAT_XRES 0x2u
/* INCOMPAT_IXA: small extended attributes live inline in the inode
 * (vmfs_fd.ixa, docs/FORMAT.md section 5); readers without it would take
 * those bytes for corruption. mkfs sets it; without it, attributes live in
 * attribute blocks only. */
#define VMFS_INCOMPAT_IXA 0x4u
/* INCOMPAT_FBX: the volume grew (vmfs_grow) past what the FB clusters made
 * by mkfs cover; FB cluster c >= res[FB].ncl lives in the first file block
 * it covers (block c * 8192: lock unit, then header), which its own bitmap
 * marks allocated and no file uses (docs/FORMAT.md "Growing the volume").
 * Readers without it would take the FB region for too small. */
#define VMFS_INCOMPAT_FBX 0x8u
#define VMFS_COMPAT_KNOWN 0u
#define VMFS_INCOMPAT_KNOWN                                                                        \
	(VMFS_INCOMPAT_JH2 | VMFS_INCOMPAT_XRES | VMFS_INCOMPAT_IXA | VMFS_INCOMPAT_FBX)
#define VMFS_RO_COMPAT_KNOWN 0u

/* Resource types: the type tag of block addresses and of clusters. */
enum vmfs_rtype {
	VMFS_RT_NONE = 0,
	VMFS_RT_FB = 1, /* file block (data area) */
	VMFS_RT_SB = 2, /* sub-block (small files, small directories) */
	VMFS_RT_PB = 3, /* pointer block */
	VMFS_RT_FD = 4, /* file descriptor (lock unit + inode block) */
	VMFS_RT_MAX = 4,
};

/* Geometry of resource clusters (fixed in format 1.0). */
#define VMFS_CL_HDR	  8192u /* lock unit + header/bitmap block */
#define VMFS_FD_SIZE	  8192u
#define VMFS_PB_SIZE	  4096u
#define VMFS_SB_SIZE	  8192u
#define VMFS_FD_PER_CL	  256u
#define VMFS_PB_PER_CL	  256u
#define VMFS_SB_PER_CL	  256u
#define VMFS_FB_PER_CL	  8192u
#define VMFS_BITMAP_OFF	  0x100u
#define VMFS_BITMAP_BYTES (VMFS_UNIT - VMFS_BITMAP_OFF) /* 3840 */
#define VMFS_CL_MAX	  (1u << 30)			/* clusters of one type */

/* ---- block addresses ---------------------------------------------------- */

#define VMFS_ADDR_TBZ	   (1ull << 56)
#define VMFS_ADDR_FLAGS	   (0xfull << 56)
#define VMFS_ADDR_RES_MASK 0xffffffull

static inline uint64_t vmfs_addr_make(unsigned type, uint32_t cl, uint32_t res)
{
	return (uint64_t)(type & 0xf) << 60 | (uint64_t)cl << 24 | (res & VMFS_ADDR_RES_MASK);
}
static inline unsigned vmfs_addr_type(uint64_t a)
{
	return (unsigned)(a >> 60);
}
static inline uint32_t vmfs_addr_cl(uint64_t a)
{
	return (uint32_t)(a >> 24);
}
static inline uint32_t vmfs_addr_res(uint64_t a)
{
	return (uint32_t)(a & VMFS_ADDR_RES_MASK);
}

/* ---- volume header ------------------------------------------------------ */

/* One resource region (FD, PB, SB or FB clusters). */
struct vmfs_res_region {
	uint64_t off;	   /* first cluster */
	uint64_t len;	   /* ncl * cl_size (derived) */
	uint32_t ncl;	   /* clusters */
	uint32_t per_cl;   /* resources per cluster */
	uint32_t res_size; /* bytes per resource (FB: block_size) */
	uint32_t cl_size;  /* bytes per cluster: VMFS_CL_HDR + resources inside */
};

/* Decoded volume header. *_len and nblocks-derived fields are computed. */
struct vmfs_vh {
	uint16_t major, minor;
	uint8_t uuid[16];
	char label[VMFS_LABEL_LEN];
	uint64_t vol_size;   /* bytes; backup header at vol_size - 4 KiB */
	uint64_t created_ns; /* CLOCK_REALTIME at mkfs */
	uint32_t lsec;	     /* logical sector size at mkfs */
	uint32_t unit;	     /* = VMFS_UNIT */
	uint32_t block_size; /* file block size */
	uint32_t max_hosts;
	uint32_t hb_interval_ms, hb_timeout_ms;
	uint32_t nlocks;
	uint32_t compat, incompat, ro_compat;
	uint64_t journal_size; /* per host */
	uint64_t vol_lock_off;
	uint64_t hb_off, hb_len;
	uint64_t lock_off, lock_len;
	uint64_t journal_off, journal_len;
	struct vmfs_res_region res[VMFS_RT_MAX + 1]; /* indexed by enum vmfs_rtype */
	uint64_t data_off, data_len, nblocks;
	uint64_t backup_off;
	uint64_t root_fd;   /* address of the root directory's FD */
	uint64_t xtab_off;  /* extension table (INCOMPAT_XRES), else 0 */
	uint32_t xtab_nblk; /* its table blocks per type (FD, PB, SB) */
	int from_backup;    /* vmfs_vh_read(): the primary was bad, this is the backup */
	/* In memory only: set by a mount, so that vmfs_addr_check() re-reads
	 * the header (vmfs_vh_refresh) on a file block past the known end:
	 * another host may have grown the volume. Offline readers (fsck)
	 * leave it 0: their tables are sized by the layout they started with. */
	int refresh;
	/* In memory only: the extension clusters known so far (NULL: none
	 * loaded; vmfs_xtab_load()). Not copied by decode; see below. */
	struct vmfs_xtab *xt;
};

#define VMFS_VH_SIZE 512u
_Static_assert(VMFS_VH_SIZE <= VMFS_UNIT, "volume header record fits its block");

/* Encodes into buf (VMFS_UNIT bytes; bytes past the record are zeroed). */
void vmfs_vh_encode(const struct vmfs_vh *vh, void *buf);
/* Decodes and validates one header block. dev_size: the device size (0 =
 * unknown, skips the "inside device" checks). */
int vmfs_vh_decode(const void *buf, uint64_t dev_size, struct vmfs_vh *vh, char *why,
		   size_t whylen);
/* Reads the primary header, falls back to the backup; validates everything.
 * 0, -EUCLEAN (why names structure and field; both copies bad), bdev errors.
 * When the primary is bad but the backup good, returns 0 with vh->from_backup
 * set and the primary's problem in why. */
int vmfs_vh_read(struct bdev *bd, struct vmfs_vh *vh, char *why, size_t whylen);
/* Takes the growable part of a newer header nv of the same volume into vh:
 * label, heartbeat timing, vol_size, backup_off, nblocks (data_len) and
 * INCOMPAT_FBX. Everything else must be identical and the volume must not
 * shrink: else -EUCLEAN with why (vh unchanged). Returns 1 when the size
 * changed, 0 when not. Serialised by a mutex; concurrent readers of vh see
 * each field old or new (they only grow). */
int vmfs_vh_adopt(struct vmfs_vh *vh, const struct vmfs_vh *nv, char *why, size_t whylen);
/* The same checks without changing vh. */
int vmfs_vh_same_volume(const struct vmfs_vh *vh, const struct vmfs_vh *nv, char *why,
			size_t whylen);
/* Re-reads the primary header (after bdev_refresh_size()) and adopts it:
 * 1 the volume grew, 0 nothing new (or the primary does not decode: the
 * caller keeps what it has), -EUCLEAN (a different or smaller volume), or
 * a bdev error. How hosts learn that another host grew the volume. */
int vmfs_vh_refresh(struct bdev *bd, struct vmfs_vh *vh, char *why, size_t whylen);
/* FB cluster c's home when it lies in the data area (c >= res[FB].ncl,
 * INCOMPAT_FBX): 1 when off is the lock unit or header block of such a
 * cluster (*cl set), else 0. */
int vmfs_fbx_find(const struct vmfs_vh *vh, uint64_t off, uint32_t *cl);
/* 1 if the primary or backup header magic is ours, 0 if not, <0 on I/O error. */
int vmfs_probe_native(struct bdev *bd);
/* Offset of the backup header on a device of dev_size bytes. */
uint64_t vmfs_backup_off(uint64_t dev_size);

/* Byte offset of a resource named by a valid address (FD: its lock unit). */
uint64_t vmfs_addr_off(const struct vmfs_vh *vh, uint64_t addr);
/* Offset of cluster `cl` of a type (its lock unit) and of its header block. */
uint64_t vmfs_cl_off(const struct vmfs_vh *vh, unsigned type, uint32_t cl);
/* Resources in cluster cl (the last FB cluster may be partial). */
uint32_t vmfs_cl_nres(const struct vmfs_vh *vh, unsigned type, uint32_t cl);
/* 0 if addr is a valid address of type want (VMFS_RT_NONE: any type), else
 * -EUCLEAN with a reason. addr 0 is invalid here (callers test holes). */
int vmfs_addr_check(const struct vmfs_vh *vh, uint64_t addr, unsigned want, char *why,
		    size_t whylen);
/* "FB 3:17", "SB 0:0+TBZ"... for messages (out >= 48 bytes). */
void vmfs_addr_str(uint64_t addr, char *out, size_t outlen);
const char *vmfs_rtype_name(unsigned type);

/* ---- resources that grow: the extension table ------------------------------ *
 *
 * On a volume with INCOMPAT_XRES, when every FD, PB or SB cluster is full a
 * host turns one free file block into a new cluster of that type (an
 * extension cluster: lock unit, header, then as many resources as fit,
 * at most per_cl) and appends the block's FB address to the type's list in
 * the extension table, all in one journaled transaction. Extension cluster
 * k of a type has cluster index ncl + k, so block addresses keep their
 * form. The table region: a lock unit (held EX while growing), then
 * xtab_nblk table blocks for FD, then PB, then SB. Entries are only ever
 * appended while the lock is held and written in place after their
 * transaction commits, so a reader that meets a cluster index it does not
 * know re-reads the table (vmfs_addr_check() does it) and finds it. */
#define VMFS_XT_PER_BLK	 504u /* entries per table block */
#define VMFS_XT_NBLK_MAX 64u  /* table blocks per type */

struct vmfs_xt_blk {
	uint32_t type;		      /* FD, PB or SB */
	uint32_t index;		      /* block index within the type */
	uint32_t count;		      /* entries used */
	uint64_t fb[VMFS_XT_PER_BLK]; /* FB addresses of extension clusters */
};
void vmfs_xt_encode(const struct vmfs_xt_blk *xb, void *buf);
/* Checks the record, the entries (valid FB addresses without flags, none
 * past count) and type/index against where it was read from. */
int vmfs_xt_decode(const void *buf, const struct vmfs_vh *vh, unsigned type, uint32_t index,
		   struct vmfs_xt_blk *xb, char *why, size_t whylen);
/* Bytes of the table region: the lock unit and 3 * xtab_nblk blocks. */
uint64_t vmfs_xtab_len(const struct vmfs_vh *vh);
/* Offset of table block i of a type (i < xtab_nblk). */
uint64_t vmfs_xt_blk_off(const struct vmfs_vh *vh, unsigned type, uint32_t i);
/* Resources in one extension cluster of a type (0 without XRES). */
uint32_t vmfs_xt_nres(const struct vmfs_vh *vh, unsigned type);
/* Clusters of a type: the region's plus the extension clusters known. */
uint32_t vmfs_ncl(const struct vmfs_vh *vh, unsigned type);
/* Capacity: the most clusters a type can have. */
uint32_t vmfs_ncl_max(const struct vmfs_vh *vh, unsigned type);
/* Reads the whole table into vh->xt (replacing what was there). 0, or
 * -EUCLEAN with why naming the first bad block and field (what was read
 * whole before a bad block is loaded all the same: a mount replays the
 * journals, which rewrite a block torn by a crash, and loads again), or a
 * bdev error. The bdev is kept for refreshes; vmfs_xtab_free() before
 * closing it (also after an error). Without XRES: 0 and nothing loaded. */
int vmfs_xtab_load(struct bdev *bd, struct vmfs_vh *vh, char *why, size_t whylen);
void vmfs_xtab_free(struct vmfs_vh *vh);
/* Re-reads the table of one type and publishes entries appended since;
 * returns how many were added, or <0. Thread-safe against readers. */
int vmfs_xtab_refresh(const struct vmfs_vh *vh, unsigned type);
/* A growing host: publishes extension cluster fb as the next cluster of a
 * type (before its transaction commits, so the transaction can use it);
 * returns its index, or -ENOSPC when the table is full. */
int64_t vmfs_xtab_push(const struct vmfs_vh *vh, unsigned type, uint64_t fb);
/* Takes back the last n published clusters of a type (the transaction that
 * added them was abandoned). */
void vmfs_xtab_pop(const struct vmfs_vh *vh, unsigned type, uint32_t n);
/* Replay's check of image i of a transaction (targets[], imgs: all n of
 * them) whose target lies in the data area and is not a directory block:
 * 1 when it is a sealed cluster header, inode, pointer, xattr or directory
 * block (a directory's sub-block) whose home lies in an extension cluster
 * (known, or added by an extension table image of the same transaction),
 * past the cluster's lock unit. Its fields are not checked against the
 * layout: they may name clusters that only this transaction adds. */
int vmfs_xt_image_ok(const struct vmfs_vh *vh, uint32_t i, const uint64_t *targets,
		     const uint8_t *imgs, uint32_t n);
/* Cluster index of the extension cluster at device offset off, or -1. */
int64_t vmfs_xtab_find(const struct vmfs_vh *vh, unsigned type, uint64_t off);

/* ---- journal -------------------------------------------------------------- */

/* Journal header: the first two blocks of every journal hold two copies of
 * it (record in the first 512 B of each); the header with sequence number
 * seq is written to copy seq % 2, so a write that is torn or lost damages
 * only the older copy and the newer valid one is the header (LMDB's two meta
 * pages). The log is the journal's following blocks, used circularly: log
 * block i is at off + 4 KiB * (2 + i), i < nlog = journal_size / 4 KiB - 2. */
#define VMFS_JH_COPIES 2u
static inline uint64_t vmfs_journal_nlog(uint64_t journal_len)
{
	return journal_len / VMFS_UNIT - VMFS_JH_COPIES;
}
static inline uint64_t vmfs_journal_log_off(uint64_t joff, uint64_t journal_len, uint64_t pos)
{
	return joff + VMFS_UNIT * (VMFS_JH_COPIES + pos % vmfs_journal_nlog(journal_len));
}
/* Journal header flags. ORPHANS: the host of this slot may have left FDs
 * flagged UNLINKED (files unlinked while open); whoever mounts on this slot
 * or recovers a dead host sweeps them (fs_core.c). */
#define VMFS_JHF_ORPHANS 1u
#define VMFS_JHF_KNOWN	 VMFS_JHF_ORPHANS

struct vmfs_jh {
	uint32_t slot;
	uint32_t flags;	      /* VMFS_JHF_* */
	uint64_t journal_off; /* this journal's byte offset (self check) */
	uint64_t journal_len;
	uint64_t head;	    /* log block of the first transaction to replay */
	uint64_t head_txid; /* txid expected there (>= 1) */
	uint64_t seq;	    /* bumped on every header write */
	uint8_t owner_uuid[16];
	uint32_t owner_gen;
};
#define VMFS_JH_SIZE 512u

void vmfs_jh_encode(const struct vmfs_jh *jh, void *buf);
/* vh may be NULL (skips the checks against the layout); slot is the
 * journal's index (UINT32_MAX: unknown). */
int vmfs_jh_decode(const void *buf, const struct vmfs_vh *vh, uint32_t slot, struct vmfs_jh *jh,
		   char *why, size_t whylen);
/* Decodes both header copies (copy0, copy1: the first 512 B of each block)
 * and returns the valid one with the higher seq in jh (a copy is valid when
 * it decodes and seq % 2 is its position); *which (may be NULL) = 0 or 1.
 * -EUCLEAN with both reasons in why when neither is valid. */
int vmfs_jh_pick(const void *copy0, const void *copy1, const struct vmfs_vh *vh, uint32_t slot,
		 struct vmfs_jh *jh, unsigned *which, char *why, size_t whylen);
uint64_t vmfs_journal_off(const struct vmfs_vh *vh, uint32_t slot);

/* Transaction = descriptor block, nblocks block images, commit block, in
 * consecutive log blocks (mod nlog). */
#define VMFS_JD_MAX 504u
struct vmfs_jd {
	uint64_t txid;
	uint32_t nblocks; /* 1..VMFS_JD_MAX */
	uint32_t slot;
	uint64_t journal_off;
	uint64_t target[VMFS_JD_MAX]; /* byte offsets of the blocks' homes */
};
#define VMFS_JD_SIZE 4096u

void vmfs_jd_encode(const struct vmfs_jd *jd, void *buf);
/* With vh: every target must be a metadata block outside the heartbeat,
 * lock and journal regions, and nblocks + 2 must fit the journal. */
int vmfs_jd_decode(const void *buf, const struct vmfs_vh *vh, struct vmfs_jd *jd, char *why,
		   size_t whylen);

struct vmfs_jc {
	uint64_t txid;
	uint32_t nblocks;
	uint32_t data_crc; /* CRC32C of the descriptor block followed by the images */
	uint64_t commit_ns;
};
#define VMFS_JC_SIZE 512u

void vmfs_jc_encode(const struct vmfs_jc *jc, void *buf);
int vmfs_jc_decode(const void *buf, struct vmfs_jc *jc, char *why, size_t whylen);

/* ---- resource clusters -------------------------------------------------- */

struct vmfs_ch {
	uint32_t type;	  /* enum vmfs_rtype */
	uint32_t index;	  /* cluster index within its type */
	uint32_t nres;	  /* resources in this cluster */
	uint32_t nfree;	  /* clear bits of the bitmap */
	uint64_t cl_off;  /* byte offset of the cluster (its lock unit) */
	uint64_t res_off; /* byte offset of resource 0 (FB: in the data area) */
	uint32_t res_size;
	uint8_t bitmap[VMFS_BITMAP_BYTES]; /* bit i (byte i/8, bit i%8): allocated */
};
#define VMFS_CH_SIZE 4096u

void vmfs_ch_encode(const struct vmfs_ch *ch, void *buf);
/* With vh: type/index/offsets/nres must match the layout. */
int vmfs_ch_decode(const void *buf, const struct vmfs_vh *vh, struct vmfs_ch *ch, char *why,
		   size_t whylen);
static inline int vmfs_bit_get(const uint8_t *bm, uint32_t i)
{
	return bm[i / 8] >> (i % 8) & 1;
}
static inline void vmfs_bit_set(uint8_t *bm, uint32_t i, int v)
{
	if (v)
		bm[i / 8] = (uint8_t)(bm[i / 8] | 1u << (i % 8));
	else
		bm[i / 8] = (uint8_t)(bm[i / 8] & ~(1u << (i % 8)));
}

/* ---- file descriptors ---------------------------------------------------- */

/* File types (inode type, directory entry type). FIFO..SOCK are special
 * files: no data (inline, size 0); only CHR and BLK carry a device number. */
enum vmfs_ftype {
	VMFS_FT_REG = 1,
	VMFS_FT_DIR = 2,
	VMFS_FT_LNK = 3,
	VMFS_FT_FIFO = 4,
	VMFS_FT_CHR = 5,
	VMFS_FT_BLK = 6,
	VMFS_FT_SOCK = 7,
};
#define VMFS_FT_MAX VMFS_FT_SOCK
static inline int vmfs_ft_special(uint32_t t)
{
	return t >= VMFS_FT_FIFO && t <= VMFS_FT_SOCK;
}
static inline int vmfs_ft_device(uint32_t t)
{
	return t == VMFS_FT_CHR || t == VMFS_FT_BLK;
}
/* Longest symlink target (PATH_MAX - 1, as Linux): inline up to
 * VMFS_INLINE_MAX, in one sub-block beyond. */
#define VMFS_SYMLINK_MAX 4095u
enum vmfs_amode {
	VMFS_AM_INLINE = 0, /* data in the inode block (size <= VMFS_INLINE_MAX) */
	VMFS_AM_SB = 1,	    /* direct sub-block addresses only */
	VMFS_AM_FB = 2,	    /* direct, single- and double-indirect file blocks */
};

#define VMFS_INLINE_MAX 3840u
#define VMFS_NADDR	480u
#define VMFS_NDIRECT	256u /* addr[0..255] */
#define VMFS_NSINGLE	128u /* addr[256..383]: PB of FB addresses */
#define VMFS_NDOUBLE	96u  /* addr[384..479]: PB of PB addresses */
#define VMFS_PB_NADDR	504u
/* FD flags. UNLINKED: the file lost its last directory entry while open; it
 * is freed at its last close, or after a crash by recovery. nlink is 0 and no
 * directory names it; fsck counts it, it is not an orphan. */
#define VMFS_FDF_UNLINKED 1u
#define VMFS_FDF_KNOWN	  VMFS_FDF_UNLINKED
#define VMFS_IXA_SIZE	  120u /* inode bytes 0x088..0x100: inline extended attributes */

struct vmfs_fd {
	uint64_t self; /* this FD's address (self check) */
	uint32_t type; /* enum vmfs_ftype */
	uint32_t mode; /* permission bits (07777) */
	uint32_t uid, gid;
	uint64_t size;
	uint64_t atime_ns, mtime_ns, ctime_ns, btime_ns;
	uint32_t nlink;
	uint32_t flags;
	uint64_t generation;
	uint32_t amode;			 /* enum vmfs_amode */
	uint64_t parent;		 /* directories: parent's FD address (root: itself) */
	uint64_t nalloc;		 /* FB/SB/PB resources owned (not the xattr block) */
	uint64_t xattr;			 /* PB address of the extended-attribute block, 0: none */
	uint32_t rdev_major, rdev_minor; /* CHR/BLK: device number; others 0 */
	/* Inline extended attributes (INCOMPAT_IXA): entries as in an
	 * attribute block, ixa[0..ixa_used), the rest zero; only while xattr
	 * is 0 (the attributes live in one place). */
	uint32_t ixa_used;
	uint8_t ixa[VMFS_IXA_SIZE];
	union {
		uint8_t data[VMFS_INLINE_MAX];
		uint64_t addr[VMFS_NADDR];
	} u;
};
#define VMFS_FD_INODE_SIZE 4096u
_Static_assert(VMFS_NADDR * 8 == VMFS_INLINE_MAX, "address area = inline area");
_Static_assert(VMFS_NDIRECT + VMFS_NSINGLE + VMFS_NDOUBLE == VMFS_NADDR, "address slots");

void vmfs_fd_encode(const struct vmfs_fd *fd, void *buf);
/* With vh: self and every address are checked against the layout. */
int vmfs_fd_decode(const void *buf, const struct vmfs_vh *vh, struct vmfs_fd *fd, char *why,
		   size_t whylen);
/* Largest file size for a block size in FB mode. */
uint64_t vmfs_fd_max_size(uint32_t block_size);

struct vmfs_pb {
	uint64_t self;	/* this PB's address */
	uint64_t owner; /* FD address of the file */
	uint32_t level; /* 1: entries are FB addresses; 2: entries are level-1 PBs */
	uint64_t addr[VMFS_PB_NADDR];
};
#define VMFS_PB_BLOCK_SIZE 4096u

void vmfs_pb_encode(const struct vmfs_pb *pb, void *buf);
int vmfs_pb_decode(const void *buf, const struct vmfs_vh *vh, struct vmfs_pb *pb, char *why,
		   size_t whylen);

/* Extended-attribute block: one PB resource per FD that has extended
 * attributes (fd.xattr), covered by the FD's lock and journaled like its
 * pointer blocks. area[0..used) holds count entries, each: name_len u8
 * (1..255), flags u8 (0), value_len u16, name, value, zero padding to a
 * multiple of 8; names unique; bytes past used zero. */
#define VMFS_XB_SIZE	     4096u
#define VMFS_XB_AREA	     (VMFS_XB_SIZE - 0x40u) /* 4032 */
#define VMFS_XATTR_NAME_MAX  255u
#define VMFS_XATTR_VALUE_MAX (VMFS_XB_AREA - 4u - VMFS_XATTR_NAME_MAX) /* 3773 */
struct vmfs_xb {
	uint64_t self;	/* this block's PB address */
	uint64_t owner; /* FD address of the file */
	uint32_t count, used;
	uint8_t area[VMFS_XB_AREA];
};
/* Size of an entry with these lengths (8-aligned). */
static inline uint32_t vmfs_xe_size(uint32_t name_len, uint32_t value_len)
{
	return (4u + name_len + value_len + 7u) & ~7u;
}
/* Checks the entries of an attribute area (block or inline): lengths in
 * range, padding zero, names unique; *count: how many. w names the area
 * in the reason. */
int vmfs_xe_check(const uint8_t *area, uint32_t used, uint32_t *count, const char *w, char *why,
		  size_t whylen);
/* The used length of an inode's inline attribute area (entries up to the
 * first name length 0), or -1 when an entry runs past the area. */
int vmfs_ixa_used(const uint8_t *ixa);
void vmfs_xb_encode(const struct vmfs_xb *xb, void *buf);
int vmfs_xb_decode(const void *buf, const struct vmfs_vh *vh, struct vmfs_xb *xb, char *why,
		   size_t whylen);

/* ---- directories ----------------------------------------------------------
 * A directory's data (its file, addressed like any file in SB or FB mode,
 * never inline) is an array of 4 KiB directory blocks; holes are allowed.
 * Linear hashing:
 *   dir block 0                 header (kind HEADER)
 *   dir block 1 + 2*b           primary block of bucket b (kind BUCKET)
 *   dir block 2 + 2*k           k-th overflow block (kind OVERFLOW), chained
 *                               from its bucket through `next`
 * hash = vmfs_name_hash(name); b = hash mod 2^level; if b < split then
 * b = hash mod 2^(level+1). nbuckets = 2^level + split. "." and ".." are not
 * stored: "." is the directory itself, ".." is fd.parent.
 */
enum vmfs_dbkind { VMFS_DB_HEADER = 1, VMFS_DB_BUCKET = 2, VMFS_DB_OVERFLOW = 3 };
#define VMFS_DB_AREA_OFF    0x40u
#define VMFS_DB_AREA	    (4096u - VMFS_DB_AREA_OFF) /* 4032 */
#define VMFS_NAME_MAX	    255u
#define VMFS_DIRENT_HDR	    14u
#define VMFS_DIR_MAXBKT	    (1u << 30)
#define VMFS_DIR_SPLIT_LOAD 32u /* recommended: split when nentries > 32 * nbuckets */

struct vmfs_dirent {
	uint64_t fd; /* FD address */
	uint32_t hash;
	uint8_t type; /* enum vmfs_ftype */
	uint8_t name_len;
	char name[VMFS_NAME_MAX + 1]; /* NUL-terminated copy */
};

struct vmfs_db {
	uint32_t kind;
	uint32_t index;	 /* dir block index */
	uint64_t dir;	 /* owning directory's FD address */
	uint32_t next;	 /* next overflow block index in the chain, 0 = none */
	uint32_t bucket; /* BUCKET/OVERFLOW: bucket number */
	uint16_t nentries;
	uint16_t used; /* bytes of area in use */
	/* HEADER only */
	uint32_t level, split, nbuckets, novf, ovf_free;
	uint64_t total; /* entries in the directory */
	/* BUCKET/OVERFLOW: packed entries (see docs/FORMAT.md) */
	uint8_t area[VMFS_DB_AREA];
};
#define VMFS_DB_SIZE 4096u

uint32_t vmfs_name_hash(const char *name, size_t len);
static inline uint32_t vmfs_dirent_reclen(unsigned name_len)
{
	return (VMFS_DIRENT_HDR + name_len + 7u) & ~7u;
}
void vmfs_db_encode(const struct vmfs_db *db, void *buf);
int vmfs_db_decode(const void *buf, const struct vmfs_vh *vh, struct vmfs_db *db, char *why,
		   size_t whylen);
/* Iterates entries of a decoded bucket/overflow block: *pos starts at 0;
 * returns 1 with *e filled, 0 at the end. */
int vmfs_db_next(const struct vmfs_db *db, uint32_t *pos, struct vmfs_dirent *e);
/* Appends an entry (-ENOSPC when the block is full, -EINVAL bad name). */
int vmfs_db_add(struct vmfs_db *db, uint64_t fd, uint8_t type, const char *name, size_t len);
/* Removes the entry named `name` (-ENOENT if absent). */
int vmfs_db_remove(struct vmfs_db *db, const char *name, size_t len);
/* Bucket of a hash for a header's level/split. */
uint32_t vmfs_dir_bucket(uint32_t hash, uint32_t level, uint32_t split);

/* ---- mkfs ------------------------------------------------------------- */

struct vmfs_mkfs_opts {
	const char *label;   /* NULL: "" */
	uint32_t block_size; /* 0: default */
	uint32_t max_hosts;
	uint64_t journal_size;
	uint32_t hb_interval_ms, hb_timeout_ms;
	uint32_t nlocks;
	uint32_t nfds;	     /* file descriptors (rounded up to clusters); 0: 256 per 256 MiB */
	const uint8_t *uuid; /* NULL: random */
	/* Called with a phase name and 0..100 while zeroing big regions. */
	void (*progress)(void *arg, const char *phase, unsigned pct);
	void *progress_arg;
};

/* Computes the layout for a device of dev_size bytes (lsec: its sector).
 * -EINVAL with why for bad options; -ENOSPC with the minimum size in why. */
int vmfs_layout(uint64_t dev_size, uint32_t lsec, const struct vmfs_mkfs_opts *o,
		struct vmfs_vh *vh, char *why, size_t whylen);
/* Bytes mkfs zeroes/writes for this layout (for progress decisions). */
uint64_t vmfs_mkfs_bytes(const struct vmfs_vh *vh);
/* Formats bd with a layout from vmfs_layout(). */
int vmfs_mkfs_write(struct bdev *bd, const struct vmfs_vh *vh, const struct vmfs_mkfs_opts *o,
		    char *why, size_t whylen);

/* ---- check (fsck) ------------------------------------------------------ */

struct vmfs_check_stats {
	uint64_t problems;
	uint64_t fds_used, pbs_used, sbs_used, fbs_used;
	uint64_t hb_used;	   /* heartbeat slots live or being replayed (not left ones) */
	uint64_t locks_used;	   /* lock units ever used (non-zero) */
	uint64_t journals_pending; /* journals with committed, unreplayed transactions */
	uint64_t fds_unlinked;	   /* FDs flagged UNLINKED (open when unlinked) */
	int no_header;		   /* neither volume header copy is usable: nothing else checked */
	uint64_t err_off;	   /* operational error: offset of the failed read or write */
	/* VMFS_CHECK_HOSTS: what the observation of the heartbeat region saw */
	uint64_t hosts_live;	  /* slots whose heartbeat moved: repairs are refused */
	uint64_t hosts_dead;	  /* slots left LIVE / REPLAYING by a host that stopped */
	uint64_t not_fixed_risky; /* problems left because only -y repairs them */
	uint32_t rounds;	  /* check rounds run (a repair round is followed by another) */
};

/* Problem reporter: region ("volume header", "FD cluster 3 header", ...) and
 * what is wrong. */
typedef void (*vmfs_check_cb)(void *arg, const char *region, const char *msg);

/* Flags of vmfs_check(). Without REPAIR or PREEN nothing is written.
 * REPAIR (fsck -y) repairs every problem it can, PREEN (fsck -p) only those
 * whose repair loses nothing (docs/FSCK.md lists which). HOSTS observes the
 * heartbeat region first (up to the heartbeat timeout + one interval while a
 * slot is LIVE or being replayed and has not moved): a slot that moved is a
 * live host, and then nothing at all is repaired; a slot that did not is a
 * dead host (its slot and the locks it holds are problems). Without HOSTS
 * slots and lock records are checked for their format only. */
#define VMFS_CHECK_REPAIR 1u
#define VMFS_CHECK_PREEN  2u
#define VMFS_CHECK_HOSTS  4u

/* Checks the whole volume, and repairs it with REPAIR or PREEN: a round of
 * checks that repaired something is followed by another (up to 8), whose
 * new findings are reported too; lines already reported are not repeated.
 * Returns the number of problems left after the last round (>= 0) or a
 * negative errno for an operational error; *fixed counts repaired ones.
 * Problems are reported through cb; a repaired one ends with " [fixed]" or
 * " [fixed: how]", one left in a repair run with " [not fixed: why]". */
int vmfs_check(struct bdev *bd, unsigned flags, vmfs_check_cb cb, void *arg,
	       struct vmfs_check_stats *st, unsigned *fixed);

#endif
