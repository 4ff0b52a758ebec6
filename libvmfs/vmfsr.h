/*
 * vmfsr.h - read-only reader of real VMFS5 and VMFS6 datastores made by
 * VMware ESXi (prefix vmfsr_). See docs/VMFS-REAL.md for the on-disk layout.
 *
 * The reader never writes: open the bdev read-only. Every field read from
 * the image is validated before use; a damaged or hostile image makes a
 * function return -EUCLEAN and vmfsr_errmsg() names the structure and what
 * is wrong ("vmfs5: FD 0x00c00004: pointer block address out of range").
 *
 * Files are named by their FD address (a 32-bit VMFS address of type FD),
 * which serves as the inode number. The root directory is VMFSR_ROOT.
 *
 * Errors every function can return: -EUCLEAN (corrupt metadata, see
 * vmfsr_errmsg()), -EIO and the other errors of bdev_read(), -ENOMEM;
 * lookups also -ENOENT, -ENOTDIR, -ELOOP, -ENAMETOOLONG; reads of a
 * directory -EISDIR; vmfsr_readlink() -EINVAL on a non-symlink; reading
 * an RDM (raw device mapping) -EOPNOTSUPP.
 *
 * Not thread-safe: callers serialise calls on one struct vmfsr.
 */
#ifndef LIBVMFS_VMFSR_H
#define LIBVMFS_VMFSR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct bdev;
struct vmfsr;
struct vmfsr_file;

#define VMFSR_ROOT 0x00000004u /* FD address of the root directory */

enum vmfsr_type {
	VMFSR_T_DIR = 2,
	VMFSR_T_REG = 3,
	VMFSR_T_LNK = 4,
	VMFSR_T_SYS = 5, /* system (resource) file, read like a regular file */
	VMFSR_T_RDM = 6, /* raw device mapping: no data on this volume */
};

struct vmfsr_stat {
	uint32_t ino;  /* FD address */
	uint32_t type; /* enum vmfsr_type */
	uint32_t mode; /* permission bits and S_IFDIR/S_IFREG/S_IFLNK */
	uint32_t nlink;
	uint32_t uid, gid;
	uint64_t size;
	int64_t atime, mtime, ctime; /* seconds since the epoch */
	uint64_t blksize;	     /* the file's block size */
	uint64_t nblocks;	     /* blocks of blksize allocated (FD field) */
	uint32_t zla;		     /* addressing mode, raw */
};

/* Volume information (vmfsr_info()). */
struct vmfsr_info {
	int version;	   /* 3, 5 or 6 */
	uint32_t fs_major; /* FS descriptor major version (0x0e VMFS5, 0x18 VMFS6) */
	uint32_t fs_minor;
	uint32_t lvm_major, lvm_minor;
	char label[129];
	char uuid[36];	   /* file-system UUID, VMFS style xxxxxxxx-xxxxxxxx-xxxx-xxxxxxxxxxxx */
	char lvm_uuid[36]; /* logical volume UUID */
	uint32_t ctime;	   /* creation time (seconds) */
	uint64_t block_size, sub_block_size;
	uint64_t lfb_size; /* VMFS6 large file block size, 0 on VMFS5 */
	uint32_t md_align; /* metadata alignment */
	uint64_t vol_size; /* logical volume size */
	uint64_t data_off; /* where the logical volume starts on the device */
	uint64_t dev_size;
	uint32_t disk_block; /* sector size the volume was made with */
	uint32_t hb_slots, hb_slot_size;
};

struct vmfsr_statfs {
	uint64_t block_size;
	uint64_t blocks; /* file blocks in the volume */
	uint64_t free;	 /* free file blocks, from the .fbb.sf bitmaps (0 if unknown) */
	uint64_t files;	 /* file descriptors */
	uint64_t free_files;
	int free_known; /* free/free_files were computed */
};

enum vmfsr_hb_state { VMFSR_HB_FREE = 1, VMFSR_HB_LIVE = 2, VMFSR_HB_BAD = 3 };

struct vmfsr_hb {
	uint32_t slot;	  /* index in the heartbeat region */
	uint64_t offset;  /* logical offset of the slot */
	uint32_t state;	  /* enum vmfsr_hb_state */
	uint32_t magic;	  /* raw state field */
	uint64_t address; /* slot address recorded in the slot (== offset) */
	uint64_t generation;
	uint64_t stamp_us; /* owner's uptime stamp, microseconds */
	char owner[36];	   /* owner host UUID */
	uint32_t journal;  /* journal FD/resource address */
	char ip[47];
	char replay_owner[36];
};

enum vmfsr_lock_mode {
	VMFSR_LOCK_NONE = 0,
	VMFSR_LOCK_EXCL = 1,
	VMFSR_LOCK_RO = 2,
	VMFSR_LOCK_MW = 3,
};

struct vmfsr_lock {
	uint32_t fd;	  /* FD address the lock belongs to */
	uint32_t ftype;	  /* file type of that FD */
	uint32_t type;	  /* raw lock record type */
	uint64_t offset;  /* logical offset of the record */
	uint64_t hb_addr; /* heartbeat slot of the owner (0: none) */
	uint64_t hb_gen;
	uint64_t generation;
	uint32_t mode; /* enum vmfsr_lock_mode (raw value if unknown) */
	char owner[36];
	uint64_t mtime;
	uint32_t holders;
};

typedef int (*vmfsr_dir_cb)(void *arg, const char *name, uint32_t ino, uint32_t type);
typedef int (*vmfsr_hb_cb)(void *arg, const struct vmfsr_hb *hb);
typedef int (*vmfsr_lock_cb)(void *arg, const struct vmfsr_lock *lk);

/* 1 when bd holds a real VMFS (*version = 3, 5 or 6), 0 when not,
 * negative errno on I/O error. Reads only the LVM and FS headers. */
int vmfsr_probe(struct bdev *bd, int *version);

/* Opens the datastore on bd (which stays owned by the caller and must stay
 * open until vmfsr_close()). On error *out is NULL and, when errbuf is not
 * NULL, errbuf gets the message naming what is wrong. */
int vmfsr_open(struct bdev *bd, struct vmfsr **out, char *errbuf, size_t errlen);
void vmfsr_close(struct vmfsr *fs);

/* Detailed message for the last -EUCLEAN (or I/O error) of fs. */
const char *vmfsr_errmsg(const struct vmfsr *fs);

int vmfsr_info(struct vmfsr *fs, struct vmfsr_info *info);
int vmfsr_statfs(struct vmfsr *fs, struct vmfsr_statfs *st);

/* Resolves an absolute path ("/" is the root). Symlinks in the middle are
 * followed; the last one only when follow is set (at most 40 in all). */
int vmfsr_lookup(struct vmfsr *fs, const char *path, int follow, uint32_t *ino);
/* Looks name up in directory dir. */
int vmfsr_lookup_at(struct vmfsr *fs, uint32_t dir, const char *name, uint32_t *ino);

int vmfsr_stat(struct vmfsr *fs, uint32_t ino, struct vmfsr_stat *st);

/* Calls cb for every entry of directory ino, "." and ".." included; stops
 * and returns cb's value when it is not 0. */
int vmfsr_readdir(struct vmfsr *fs, uint32_t ino, vmfsr_dir_cb cb, void *arg);

/* Copies the target of symlink ino into buf, NUL-terminated; returns the
 * target's length. -ENAMETOOLONG when it does not fit. */
int vmfsr_readlink(struct vmfsr *fs, uint32_t ino, char *buf, size_t len);

/* An open file for vmfsr_read(); keeps its FD and pointer-block cache. */
int vmfsr_fopen(struct vmfsr *fs, uint32_t ino, struct vmfsr_file **out);
void vmfsr_fclose(struct vmfsr_file *f);
const struct vmfsr_stat *vmfsr_fstat(const struct vmfsr_file *f);
/* Reads up to len bytes at off; holes and to-be-zeroed blocks read as
 * zeroes. Returns the count (0 at or past the end) or a negative errno. */
ssize_t vmfsr_read(struct vmfsr_file *f, uint64_t off, void *buf, size_t len);

/* Heartbeat slots that were ever used (free slots with no owner and
 * generation 0 are skipped). */
int vmfsr_heartbeats(struct vmfsr *fs, vmfsr_hb_cb cb, void *arg);
/* Lock records of every allocated file descriptor. */
int vmfsr_locks(struct vmfsr *fs, vmfsr_lock_cb cb, void *arg);

const char *vmfsr_lock_mode_name(uint32_t mode);

#endif
