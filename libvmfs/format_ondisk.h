/*
 * format_ondisk.h - private to libvmfs/format_*.c: byte offsets of every
 * field of every on-disk structure (docs/FORMAT.md has the same tables;
 * tests/format/test_format.c pins them with literal numbers), the common
 * record header and the reason-string helper.
 */
#ifndef LIBVMFS_FORMAT_ONDISK_H
#define LIBVMFS_FORMAT_ONDISK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"

/* Common header of every record. */
enum {
	/*0x000*/ REC_MAGIC = 0x000, /* u32 */
	/*0x004*/ REC_MAJOR = 0x004, /* u16 */
	/*0x006*/ REC_MINOR = 0x006, /* u16 */
	/*0x008*/ REC_CRC = 0x008,   /* u32 CRC32C of rec_len bytes, this field as 0 */
	/*0x00C*/ REC_LEN = 0x00C,   /* u32 rec_len */
	/*0x010*/ REC_BODY = 0x010,
};

/* Volume header (512-byte record). */
enum {
	/*0x010*/ VH_UUID = 0x010,	   /* u8[16] */
	/*0x020*/ VH_LABEL = 0x020,	   /* char[64], NUL-terminated */
	/*0x060*/ VH_VOL_SIZE = 0x060,	   /* u64 */
	/*0x068*/ VH_CREATED = 0x068,	   /* u64 ns */
	/*0x070*/ VH_LSEC = 0x070,	   /* u32 */
	/*0x074*/ VH_UNIT = 0x074,	   /* u32 */
	/*0x078*/ VH_BLOCK_SIZE = 0x078,   /* u32 */
	/*0x07C*/ VH_MAX_HOSTS = 0x07C,	   /* u32 */
	/*0x080*/ VH_HB_INTERVAL = 0x080,  /* u32 ms */
	/*0x084*/ VH_HB_TIMEOUT = 0x084,   /* u32 ms */
	/*0x088*/ VH_NLOCKS = 0x088,	   /* u32 */
	/*0x08C*/ VH_COMPAT = 0x08C,	   /* u32 */
	/*0x090*/ VH_INCOMPAT = 0x090,	   /* u32 */
	/*0x094*/ VH_RO_COMPAT = 0x094,	   /* u32 */
	/*0x098*/ VH_JOURNAL_SIZE = 0x098, /* u64 */
	/*0x0A0*/ VH_VOL_LOCK_OFF = 0x0A0, /* u64 */
	/*0x0A8*/ VH_HB_OFF = 0x0A8,	   /* u64 */
	/*0x0B0*/ VH_LOCK_OFF = 0x0B0,	   /* u64 */
	/*0x0B8*/ VH_JOURNAL_OFF = 0x0B8,  /* u64 */
	/*0x0C0*/ VH_DATA_OFF = 0x0C0,	   /* u64 */
	/*0x0C8*/ VH_NBLOCKS = 0x0C8,	   /* u64 */
	/*0x0D0*/ VH_BACKUP_OFF = 0x0D0,   /* u64 */
	/*0x0D8*/ VH_ROOT_FD = 0x0D8,	   /* u64 block address */
	/*0x0E0*/ VH_RES = 0x0E0,	   /* 4 x 32-byte region entries: FD, PB, SB, FB */
	/*0x160*/ VH_XTAB_OFF = 0x160,	   /* u64 extension table (XRES), else 0 */
	/*0x168*/ VH_XTAB_NBLK = 0x168,	   /* u32 table blocks per type */
	/*0x16C*/ VH_XTAB_PAD = 0x16C,	   /* u32 zero */
	/*0x170*/ VH_RESERVED = 0x170,	   /* zero up to 0x200 */
};
/* Resource region entry (32 bytes, at VH_RES + 32 * i). */
enum {
	/*0x00*/ RR_OFF = 0x00,	     /* u64 */
	/*0x08*/ RR_NCL = 0x08,	     /* u32 */
	/*0x0C*/ RR_PER_CL = 0x0C,   /* u32 */
	/*0x10*/ RR_RES_SIZE = 0x10, /* u32 */
	/*0x14*/ RR_CL_SIZE = 0x14,  /* u32 */
	/*0x18*/ RR_TYPE = 0x18,     /* u32 */
	/*0x1C*/ RR_PAD = 0x1C,	     /* u32 zero */
	RR_SIZE = 0x20,
};
_Static_assert(VH_RES + 4 * RR_SIZE == VH_XTAB_OFF, "volume header region table");
_Static_assert(VH_RESERVED <= VMFS_VH_SIZE, "volume header record size");

/* Journal header (512-byte record). */
enum {
	/*0x010*/ JH_SLOT = 0x010,	  /* u32 */
	/*0x014*/ JH_FLAGS = 0x014,	  /* u32 */
	/*0x018*/ JH_JOURNAL_OFF = 0x018, /* u64 */
	/*0x020*/ JH_JOURNAL_LEN = 0x020, /* u64 */
	/*0x028*/ JH_HEAD = 0x028,	  /* u64 */
	/*0x030*/ JH_HEAD_TXID = 0x030,	  /* u64 */
	/*0x038*/ JH_SEQ = 0x038,	  /* u64 */
	/*0x040*/ JH_OWNER_UUID = 0x040,  /* u8[16] */
	/*0x050*/ JH_OWNER_GEN = 0x050,	  /* u32 */
	/*0x054*/ JH_RESERVED = 0x054,	  /* zero up to 0x200 */
};
_Static_assert(JH_RESERVED <= VMFS_JH_SIZE, "journal header record size");

/* Journal descriptor (4096-byte block). */
enum {
	/*0x010*/ JD_TXID = 0x010,	  /* u64 */
	/*0x018*/ JD_NBLOCKS = 0x018,	  /* u32 */
	/*0x01C*/ JD_SLOT = 0x01C,	  /* u32 */
	/*0x020*/ JD_JOURNAL_OFF = 0x020, /* u64 */
	/*0x028*/ JD_RESERVED = 0x028,	  /* zero up to 0x040 */
	/*0x040*/ JD_TARGET = 0x040,	  /* u64[504] */
};
_Static_assert(JD_TARGET + VMFS_JD_MAX * 8 == VMFS_JD_SIZE, "journal descriptor size");

/* Journal commit (512-byte record). */
enum {
	/*0x010*/ JC_TXID = 0x010,	/* u64 */
	/*0x018*/ JC_NBLOCKS = 0x018,	/* u32 */
	/*0x01C*/ JC_DATA_CRC = 0x01C,	/* u32 */
	/*0x020*/ JC_COMMIT_NS = 0x020, /* u64 */
	/*0x028*/ JC_RESERVED = 0x028,	/* zero up to 0x200 */
};
_Static_assert(JC_RESERVED <= VMFS_JC_SIZE, "journal commit record size");

/* Cluster header (4096-byte block). */
enum {
	/*0x010*/ CH_TYPE = 0x010,     /* u32 */
	/*0x014*/ CH_INDEX = 0x014,    /* u32 */
	/*0x018*/ CH_NRES = 0x018,     /* u32 */
	/*0x01C*/ CH_NFREE = 0x01C,    /* u32 */
	/*0x020*/ CH_CL_OFF = 0x020,   /* u64 */
	/*0x028*/ CH_RES_OFF = 0x028,  /* u64 */
	/*0x030*/ CH_RES_SIZE = 0x030, /* u32 */
	/*0x034*/ CH_RESERVED = 0x034, /* zero up to 0x100 */
	/*0x100*/ CH_BITMAP = 0x100,   /* u8[3840] */
};
_Static_assert(CH_BITMAP == VMFS_BITMAP_OFF, "cluster bitmap offset");
_Static_assert(CH_BITMAP + VMFS_BITMAP_BYTES == VMFS_CH_SIZE, "cluster header size");
_Static_assert(VMFS_FB_PER_CL <= VMFS_BITMAP_BYTES * 8, "FB bitmap fits");

/* Extension table block (4096 bytes). */
enum {
	/*0x010*/ XT_TYPE = 0x010,     /* u32 */
	/*0x014*/ XT_INDEX = 0x014,    /* u32 */
	/*0x018*/ XT_COUNT = 0x018,    /* u32 */
	/*0x01C*/ XT_RESERVED = 0x01C, /* zero up to 0x040 */
	/*0x040*/ XT_FB = 0x040,       /* u64[504] */
};
_Static_assert(XT_FB + 8 * VMFS_XT_PER_BLK == VMFS_UNIT, "extension table block size");

/* FD inode block (4096 bytes, second half of the 8 KiB FD). */
enum {
	/*0x010*/ FD_SELF = 0x010,	 /* u64 */
	/*0x018*/ FD_TYPE = 0x018,	 /* u32 */
	/*0x01C*/ FD_MODE = 0x01C,	 /* u32 */
	/*0x020*/ FD_UID = 0x020,	 /* u32 */
	/*0x024*/ FD_GID = 0x024,	 /* u32 */
	/*0x028*/ FD_SIZE = 0x028,	 /* u64 */
	/*0x030*/ FD_ATIME = 0x030,	 /* u64 ns */
	/*0x038*/ FD_MTIME = 0x038,	 /* u64 ns */
	/*0x040*/ FD_CTIME = 0x040,	 /* u64 ns */
	/*0x048*/ FD_BTIME = 0x048,	 /* u64 ns */
	/*0x050*/ FD_NLINK = 0x050,	 /* u32 */
	/*0x054*/ FD_FLAGS = 0x054,	 /* u32 */
	/*0x058*/ FD_GEN = 0x058,	 /* u64 */
	/*0x060*/ FD_AMODE = 0x060,	 /* u32 */
	/*0x064*/ FD_PAD = 0x064,	 /* u32 zero */
	/*0x068*/ FD_PARENT = 0x068,	 /* u64 */
	/*0x070*/ FD_NALLOC = 0x070,	 /* u64 */
	/*0x078*/ FD_XATTR = 0x078,	 /* u64: PB address of the xattr block or 0 */
	/*0x080*/ FD_RDEV_MAJOR = 0x080, /* u32: CHR/BLK device major, others 0 */
	/*0x084*/ FD_RDEV_MINOR = 0x084, /* u32: CHR/BLK device minor, others 0 */
	/*0x088*/ FD_IXA = 0x088,	 /* inline xattrs (INCOMPAT_IXA), up to 0x100 */
	/*0x100*/ FD_AREA = 0x100,	 /* inline data or u64 addr[480] */
};
_Static_assert(FD_AREA + VMFS_INLINE_MAX == VMFS_FD_INODE_SIZE, "FD inode size");

/* Pointer block (4096 bytes). */
enum {
	/*0x010*/ PB_SELF = 0x010,     /* u64 */
	/*0x018*/ PB_OWNER = 0x018,    /* u64 */
	/*0x020*/ PB_LEVEL = 0x020,    /* u32 */
	/*0x024*/ PB_RESERVED = 0x024, /* zero up to 0x040 */
	/*0x040*/ PB_ADDR = 0x040,     /* u64[504] */
};
_Static_assert(PB_ADDR + VMFS_PB_NADDR * 8 == VMFS_PB_BLOCK_SIZE, "pointer block size");

/* Extended-attribute block (4096 bytes, a PB resource). */
enum {
	/*0x010*/ XB_SELF = 0x010,     /* u64 */
	/*0x018*/ XB_OWNER = 0x018,    /* u64 */
	/*0x020*/ XB_COUNT = 0x020,    /* u32 entries */
	/*0x024*/ XB_USED = 0x024,     /* u32 bytes of entries */
	/*0x028*/ XB_RESERVED = 0x028, /* zero up to 0x040 */
	/*0x040*/ XB_AREA = 0x040,     /* entries */
};
_Static_assert(XB_AREA + VMFS_XB_AREA == VMFS_XB_SIZE, "xattr block size");

/* Directory block (4096 bytes). */
enum {
	/*0x010*/ DB_KIND = 0x010,	/* u32 */
	/*0x014*/ DB_INDEX = 0x014,	/* u32 */
	/*0x018*/ DB_DIR = 0x018,	/* u64 */
	/*0x020*/ DB_NEXT = 0x020,	/* u32 */
	/*0x024*/ DB_NENTRIES = 0x024,	/* u16 */
	/*0x026*/ DB_USED = 0x026,	/* u16 */
	/*0x028*/ DB_BUCKET = 0x028,	/* u32 */
	/*0x02C*/ DB_RESERVED = 0x02C,	/* zero up to 0x040 */
	/*0x040*/ DB_AREA = 0x040,	/* entries, or the header fields below */
	/*0x040*/ DBH_SEED = 0x040,	/* u32 zero (reserved for a hash seed) */
	/*0x044*/ DBH_LEVEL = 0x044,	/* u32 */
	/*0x048*/ DBH_SPLIT = 0x048,	/* u32 */
	/*0x04C*/ DBH_NBUCKETS = 0x04C, /* u32 */
	/*0x050*/ DBH_TOTAL = 0x050,	/* u64 */
	/*0x058*/ DBH_NOVF = 0x058,	/* u32 */
	/*0x05C*/ DBH_OVF_FREE = 0x05C, /* u32 */
	/*0x060*/ DBH_RESERVED = 0x060, /* zero up to 0x1000 */
};
/* Directory entry inside the area (at an 8-byte aligned position). */
enum {
	/*0x00*/ DE_FD = 0x00,	 /* u64 */
	/*0x08*/ DE_HASH = 0x08, /* u32 */
	/*0x0C*/ DE_TYPE = 0x0C, /* u8 */
	/*0x0D*/ DE_NLEN = 0x0D, /* u8 */
	/*0x0E*/ DE_NAME = 0x0E, /* name_len bytes, then zero padding to 8 */
};
_Static_assert(DB_AREA == VMFS_DB_AREA_OFF && DE_NAME == VMFS_DIRENT_HDR, "dir layout");

/* Shared helpers (format_util.c). */
void vmfs__rec_seal(uint8_t *b, uint32_t magic, uint32_t rec_len);
int vmfs__rec_check(const uint8_t *b, uint32_t magic, uint32_t rec_len, const char *what, char *why,
		    size_t whylen);
int vmfs__bad(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vmfs__zero(const uint8_t *b, size_t from, size_t to);
/* Offset of extension cluster k (below the published count) of a type. */
uint64_t vmfs__xt_cl_off(const struct vmfs_vh *vh, unsigned type, uint32_t k);
/* The bdev the table was loaded from (NULL: none loaded). */
struct bdev *vmfs__xt_bdev(const struct vmfs_vh *vh);

#endif
