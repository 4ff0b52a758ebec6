/*
 * vmfsr_int.h - internals of the real-VMFS reader shared by vmfsr*.c.
 * On-disk offsets are documented here and in docs/VMFS-REAL.md; every
 * structure is decoded field by field with le*_get(), never cast.
 */
#ifndef LIBVMFS_VMFSR_INT_H
#define LIBVMFS_VMFSR_INT_H

#include <stdint.h>

#include "vmfsr.h"

/* LVM device header, at 1 MiB on the device. */
#define LVM_HDR_OFF	  0x100000u
#define LVM_MAGIC	  0xc001d00du
#define LVM_O_MAGIC	  0x00	 /* u32 */
#define LVM_O_MAJOR	  0x04	 /* u32: 3, 5 or 6 */
#define LVM_O_MINOR	  0x08	 /* u32 */
#define LVM_O_DISK_BLOCK  0x5a	 /* u32: sector size */
#define LVM_O_TOTAL	  0x5e	 /* u64: device bytes as seen by ESXi */
#define LVM_O_NUM_VOLUMES 0x66	 /* u32 */
#define LVM_O_NUM_PES	  0x6a	 /* u32 */
#define LVM_O_DATA_OFF	  0x7a	 /* u64: where logical volume offset 0 lies */
#define LVM_O_DEV_UUID	  0x82	 /* 16 bytes */
#define LVM_O_MD_ALIGN	  0xca	 /* u32 (LVM6): offset of the volume descriptor */
#define LVM5_VOLDESC_OFF  0x200u /* LVM5: volume descriptor, relative to the header */

/* Volume descriptor (one per device here). */
#define LVD_O_SIZE     0x00 /* u64: logical volume size */
#define LVD_O_STATE    0x10 /* u32 */
#define LVD_O_UUID_STR 0x14 /* char[64] */
#define LVD_O_UUID     0x54 /* 16 bytes */
#define LVD_O_NUM_PES  0x74 /* u32 */
#define LVD_O_FIRST_PE 0x78 /* u64 */
#define LVD_O_LAST_PE  0x80 /* u64 */
#define LVD_O_NUM_DEVS 0x90 /* u32 */

/* FS3 descriptor, at logical 2 MiB. */
#define FSD_OFF		  0x200000u
#define FSD_MAGIC	  0x2fabf15eu
#define FSD_MAGIC_L	  0x2fabf15fu /* VMFS-L (ESXi system volumes) */
#define FSD_O_MAGIC	  0x000	      /* u32 */
#define FSD_O_MAJOR	  0x004	      /* u32 */
#define FSD_O_MINOR	  0x008	      /* u8 */
#define FSD_O_UUID	  0x009	      /* 16 bytes */
#define FSD_O_CONFIG	  0x019	      /* u32 */
#define FSD_O_LABEL	  0x01d	      /* char[128] */
#define FSD_O_DISK_BLOCK  0x09d	      /* u32 */
#define FSD_O_BLOCK_SIZE  0x0a1	      /* u64 */
#define FSD_O_CTIME	  0x0a9	      /* u32 */
#define FSD_O_LVM_UUID	  0x0b1	      /* 16 bytes */
#define FSD_O_SUB_BLOCK	  0x0d9	      /* u32 */
#define FSD_O_MD_ALIGN	  0x134	      /* u32 (VMFS6) */
#define FSD_O_LFB_SHIFT	  0x138	      /* u16 (VMFS6): log2(LFB size / FB size) */
#define FSD_CONFIG_SB_EXT 0x4u	      /* sub-block addresses carry 2 more resource bits */
#define FSD_VMFS6_MAJOR	  0x18u	      /* majors above 0x17 are VMFS6 */

/* Heartbeat region, at logical 3 MiB. */
#define HB_OFF	     0x300000u
#define HB_FREE	     0xabcdef01u
#define HB_LIVE	     0xabcdef02u
#define HB_O_STATE   0x00 /* u32 */
#define HB_O_ADDR    0x04 /* u64 */
#define HB_O_GEN     0x0c /* u64 */
#define HB_O_STAMP   0x14 /* u64 */
#define HB_O_OWNER   0x1c /* 16 bytes */
#define HB_O_JOURNAL 0x2c /* u32 */
#define HB_O_IP	     0x36 /* char[46] */
#define HB_O_REPLAY  0x6c /* 16 bytes */

/* Lock record at the start of every FD and resource cluster. */
#define LK_O_TYPE    0x00 /* u32 */
#define LK_O_OFFSET  0x04 /* u64 */
#define LK_O_HB_ADDR 0x0c /* u64 */
#define LK_O_HB_GEN  0x14 /* u64 */
#define LK_O_GEN     0x1c /* u64 */
#define LK_O_MODE    0x24 /* u32 */
#define LK_O_OWNER   0x28 /* 16 bytes */
#define LK_O_MTIME   0x38 /* u64 */
#define LK_O_HOLDERS 0x40 /* u32 */
#define LK_TYPE_FD   0x10c00001u

/* File descriptor body, at md_align inside the FD resource. */
#define FD_O_ADDR    0x00 /* u32: the FD's own address */
#define FD_O_GEN     0x04 /* u32 */
#define FD_O_NLINK   0x08 /* u32 */
#define FD_O_TYPE    0x0c /* u32 */
#define FD_O_FLAGS   0x10 /* u32 */
#define FD_O_SIZE    0x14 /* u64 */
#define FD_O_BSIZE   0x1c /* u64 */
#define FD_O_NBLOCKS 0x24 /* u64 */
#define FD_O_MTIME   0x2c /* u32 */
#define FD_O_CTIME   0x30 /* u32 */
#define FD_O_ATIME   0x34 /* u32 */
#define FD_O_UID     0x38 /* u32 */
#define FD_O_GID     0x3c /* u32 */
#define FD_O_MODE    0x40 /* u32 */
#define FD_O_ZLA     0x44 /* u32 */
#define FD_O_BSHIFT  0x89 /* u8: log2(bsize) (0: derive) */

#define ZLA_EXT_BASE 4301u /* zla >= this: the "extended" (double indirect) form */

/* Resource file header (Res3_Metadata), at offset 0 of a .*.sf file. */
#define RES_O_PER_CLUSTER 0x00 /* u32 */
#define RES_O_CL_PER_GRP  0x04 /* u32 */
#define RES_O_FIRST_GRP	  0x08 /* u32 */
#define RES_O_RES_SIZE	  0x0c /* u32 */
#define RES_O_GRP_SIZE	  0x10 /* u32 */
#define RES_O_NUM_LO	  0x14 /* u32 */
#define RES_O_NUM_GRPS	  0x18 /* u32 */
#define RES_O_NUM_HI	  0x1c /* u32 */
#define RES_O_SIGNATURE	  0x20 /* u32 (VMFS6) */
#define RES_SIGNATURE	  0x72666d64u

/* Directory entries. */
#define DIR5_ENTRY     0x8c
#define DIR5_NAME      128
#define DIR6_VERSION   0xf50001u
#define DIR6_VERSION_F 0xfdc001u
#define DIR6_SELF      0x3b8
#define DIR6_BLOCKS    0x10000u
#define DIR6_BLK_HDR   0x40
#define DIR6_BLK_DENT  0x10001u
#define DIR6_ENTRY     0x120
#define DIR6_NAME      256

/* Address types (low 3 bits). */
enum { A_NONE = 0, A_FB = 1, A_SB = 2, A_PB = 3, A_FD = 4, A_PB2 = 5, A_JB = 6, A_LFB = 7 };

/* System file FD addresses. */
#define SYS_FBB 0x00400004u
#define SYS_FDC 0x00800004u
#define SYS_PBC 0x00c00004u
#define SYS_SBC 0x01000004u
#define SYS_PB2 0x01800004u

/* One resource file (.fdc.sf, .sbc.sf, ...). */
struct vmfsr_res {
	const char *name;
	int present;
	uint32_t per_cluster, cl_per_grp, first_grp, res_size, grp_size, ngrps;
	uint64_t nres;
	uint64_t res_area; /* offset of the first resource inside a group */
	struct vmfsr_file *file;
	char why[160];	   /* why an optional resource file is unusable */
	uint64_t boot_off; /* FDC while bootstrapping: logical offset of the file */
	uint64_t boot_len;
};

struct vmfsr {
	struct bdev *bd;
	int version;
	uint32_t fs_major, fs_minor, lvm_major, lvm_minor, config, ctime, disk_block;
	uint64_t data_off, vol_size, bsize, nblocks, sbsize, lfb_size, sfb_per_cluster;
	unsigned bshift, lfb_shift;
	uint32_t md_align, fd_size, fd_blk_off, fd_nblk, fd_res_off, fd_res_size, asize;
	uint32_t pb_per; /* addresses per pointer block */
	uint32_t hb_slot, hb_count;
	char label[129], uuid[36], lvm_uuid[36];
	struct vmfsr_res fdc, sbc, pbc, pb2, fbb;
	char err[320];
};

struct vmfsr_file {
	struct vmfsr *fs;
	struct vmfsr_stat st;
	uint8_t *raw; /* fd_size bytes */
	uint32_t zla;
	int ext; /* double indirection */
	unsigned shift;
	uint64_t bsize;
	uint64_t cache_addr[2]; /* pointer blocks cached per level */
	uint8_t *cache[2];
	uint32_t cache_len[2];
};

/* vmfsr.c */
int vmfsr_corrupt(struct vmfsr *fs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int vmfsr_vol_read(struct vmfsr *fs, uint64_t off, void *buf, size_t len, const char *what);
int vmfsr_res_read(struct vmfsr *fs, struct vmfsr_res *r, uint64_t cluster, uint64_t res, void *buf,
		   uint32_t off, uint32_t len);
void vmfsr_uuid_fmt(const uint8_t *p, char out[36]);

/* vmfsr_file.c */
int vmfsr_fd_load(struct vmfsr *fs, uint32_t addr, uint8_t *raw);
int vmfsr_fd_decode(struct vmfsr *fs, uint32_t addr, const uint8_t *raw, struct vmfsr_stat *st);

#endif
