/*
 * vmfs.h - the public API of the libvmfs file system (prefix vmfs_): mount a
 * native volume (formatted by vmfs_mkfs_write() / `vmfsctl mkfs`) on a shared
 * disk from any number of hosts at once, and work with files and
 * directories by path. docs/FILESYSTEM.md describes the design; the design
 * note at the top of fs_core.c lists the invariants, lock order and commit
 * order.
 *
 * Conventions
 *  - Opaque handles. Every function returns 0 (or a byte count where stated)
 *    or a negative errno; the private codes of the lower layers
 *    (-LM_E_FENCED: this host is fenced and must remount; -BDEV_E_*) pass
 *    through; vmfs_strerror() names any of them. -EUCLEAN means corrupt
 *    on-disk metadata; vmfs_errmsg() then names the structure and field.
 *  - Paths are absolute ("/a/b"), components at most 255 bytes; "." and ".."
 *    components are not interpreted (the caller, e.g. FUSE, resolves them).
 *    Symbolic links are never followed by the library.
 *  - Errors every path function may return in addition to those listed:
 *    -ENOENT (a component is missing), -ENOTDIR (a component is not a
 *    directory), -ENAMETOOLONG, -EINVAL (not absolute), -EBUSY (a lock is
 *    held by another live host for longer than the lock timeout),
 *    -EUCLEAN, -ENOMEM, -EIO and other device errors, -LM_E_FENCED.
 *    After a commit failed midway (device error, fence) the mount is
 *    broken: every later call returns that first error; unmount and mount
 *    again (the journal is replayed).
 *    Functions that change anything also return -EROFS on a read-only
 *    mount and -ENOSPC when the journal, a resource type or a directory is
 *    full.
 *  - One struct vmfs may be used by several threads (metadata operations
 *    of one mount are serialised by a mutex; vmfs_read() and in-place
 *    vmfs_write() of files open here run concurrently, see
 *    docs/FILESYSTEM.md). One struct vmfs_file may be used by several
 *    threads too, but not while another thread closes it.
 */
#ifndef LIBVMFS_VMFS_H
#define LIBVMFS_VMFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct bdev;
struct vmfs;
struct vmfs_file;

struct vmfs_mount_opts {
	const char *hostname;	  /* NULL: gethostname() */
	int read_only;		  /* no heartbeat slot, no writes, locks not taken */
	unsigned lock_timeout_ms; /* waits for a busy lock; 0: 2 x (hb timeout + interval) */
	int no_recover;		  /* no replay of dead hosts' journals at mount nor in the
				   * background: vmfs_recover() (or an operation waiting
				   * for a dead host's lock) does it */
	uint32_t uid, gid;	  /* owner of new files and directories (default 0) */
	int cache_mb;		  /* metadata cache, MiB: 0 = 32, < 0 = none (every
				   * metadata read goes to the disk) */
	int keep_locks;		  /* keep EX locks after transactions and defer the
				   * in-place writes to checkpoints (handed over on
				   * request; docs/FILESYSTEM.md "Kept locks"). 0:
				   * release every lock at the end of its
				   * transaction, write in place at every commit.
				   * Off by default until the crash harnesses pass
				   * with it (issue 9/10 notes). */
};

/* Opens the device by URI (see bdev.h), reads the volume header, joins the
 * heartbeat region (claims a slot) and, unless no_recover, replays the
 * journals of dead hosts that left committed work (waiting up to twice
 * the heartbeat timeout for each to be judged dead). Errors: -EUCLEAN (not a
 * native volume / corrupt header; vmfs_errmsg()), -EROFS (unknown ro_compat
 * features, read-write asked), -ENOSPC (no free heartbeat slot), -ENOMEM,
 * bdev and lock manager errors. On error *out is NULL and vmfs_errmsg(NULL)
 * says why. */
int vmfs_mount(const char *uri, const struct vmfs_mount_opts *opts, struct vmfs **out);
/* The same on an open device; bd is not owned and must outlive the mount. */
int vmfs_mount_bdev(struct bdev *bd, const struct vmfs_mount_opts *opts, struct vmfs **out);
/* Closes every file still open (their handles are freed: do not use them
 * afterwards), releases the locks, leaves the heartbeat region and frees
 * fs. Returns the first error met (fs is freed regardless): -LM_E_FENCED,
 * device errors. */
int vmfs_umount(struct vmfs *fs);

/* Replays the journal of every dead host that left committed work: takes
 * one of the locks that host holds (the lock manager then takes its slot
 * over and calls the replay). Called by vmfs_mount(). Returns the number of
 * journals replayed (>= 0) or an error. */
int vmfs_recover(struct vmfs *fs);

struct vmfs_statfs {
	uint32_t block_size;
	uint64_t blocks, blocks_free; /* file blocks */
	uint64_t files, files_free;   /* FDs */
	uint32_t name_max;
	uint32_t max_hosts, slot; /* this host's heartbeat slot (UINT32_MAX read-only) */
	uint8_t uuid[16];
	char label[64];
};
/* The metadata cache of the mount (blocks validated by lock generation
 * before each use; see fs_cache.c): hits and misses so far, blocks held
 * and the most it may hold (all 0 when the cache is off). */
struct vmfs_cache_stats {
	uint64_t hits, misses, blocks, max_blocks;
};
void vmfs_cache_stats(struct vmfs *fs, struct vmfs_cache_stats *st);

/* The journal and lock keeping of the mount (docs/FILESYSTEM.md "Kept locks
 * and checkpoints"): transactions committed to the log, checkpoints (the
 * log's images written in place and the log retired), lock acquisitions
 * served from the kept set, kept locks given up because another host asked
 * (hand-over) or because they sat unused, and locks kept right now. */
struct vmfs_engine_stats {
	uint64_t commits, checkpoints, kept_reuses, handovers, idle_releases, kept_now;
	uint64_t groups; /* log writes: one per commit without keep_locks, one per
			  * group of commits with it (docs/FILESYSTEM.md) */
};
void vmfs_engine_stats(struct vmfs *fs, struct vmfs_engine_stats *st);

/* Totals from the cluster headers (read without locks: a snapshot). A
 * volume grown by another host is seen here (the header is re-read). */
int vmfs_statfs(struct vmfs *fs, struct vmfs_statfs *st);

/* Grows the volume into a device that grew (an image extended, a LUN
 * resized), online: other mounted hosts see the new size at their next
 * statfs or allocation (docs/FILESYSTEM.md "Growing the volume"). size:
 * the new volume size in bytes (rounded down to 4 KiB), 0 = the whole
 * device. One journaled transaction under the volume lock; a crash leaves
 * the old or the new size. info (may be NULL) gets the sizes before and
 * after. Errors: -EINVAL (smaller than the volume: volumes never shrink),
 * -ENOSPC (beyond the device), -EBUSY (the volume lock is held: another
 * host grows or tunes), -EROFS, -EUCLEAN, device errors. Growing to the
 * current size is a no-op (0). */
struct vmfs_grow_info {
	uint64_t old_size, new_size;	 /* bytes */
	uint64_t old_blocks, new_blocks; /* file blocks */
	uint32_t new_clusters;		 /* FB clusters added in the data area */
};
int vmfs_grow(struct vmfs *fs, uint64_t size, struct vmfs_grow_info *info);

/* Changes the label and/or the heartbeat timing (NULL / 0: unchanged;
 * the limits of vmfsctl mkfs: interval 100..60000 ms, timeout >= 4 x
 * interval and <= 3600000 ms). The label may change at any time. The
 * timing may change only while no other host is mounted (-EBUSY, the hosts
 * named in vmfs_errmsg()) and no file is open on this mount (-EBUSY);
 * after it changed, this mount leaves the heartbeat region (it must not
 * beat with the old timing): every later call returns -ESTALE, and
 * vmfs_umount() frees it. Errors also: -ENAMETOOLONG (label over 63
 * bytes), -EUCLEAN (a value out of range, message set), -EROFS. */
struct vmfs_tune_opts {
	const char *label;
	uint32_t hb_interval_ms, hb_timeout_ms;
};
int vmfs_tune(struct vmfs *fs, const struct vmfs_tune_opts *o);

struct vmfs_stat {
	uint64_t ino;  /* the FD's block address */
	uint32_t mode; /* S_IFREG/DIR/LNK/FIFO/CHR/BLK/SOCK | permission bits */
	uint32_t nlink;
	uint32_t uid, gid;
	uint64_t size;
	uint64_t blocks; /* bytes allocated (data, sub-blocks, pointer blocks) / 512 */
	uint64_t atime_ns, mtime_ns, ctime_ns, btime_ns;
	uint64_t generation;
	uint64_t rdev; /* character and block devices: makedev(major, minor); else 0 */
};
int vmfs_getattr(struct vmfs *fs, const char *path, struct vmfs_stat *st);
/* Permission bits only (07777). */
int vmfs_chmod(struct vmfs *fs, const char *path, uint32_t mode);
/* (uint32_t)-1 leaves a field unchanged. */
int vmfs_chown(struct vmfs *fs, const char *path, uint32_t uid, uint32_t gid);
/* Times in ns since the epoch; VMFS_TIME_NOW / VMFS_TIME_OMIT. */
#define VMFS_TIME_NOW  UINT64_MAX
#define VMFS_TIME_OMIT (UINT64_MAX - 1)
int vmfs_utimens(struct vmfs *fs, const char *path, uint64_t atime_ns, uint64_t mtime_ns);
/* Shrinks (frees blocks) or extends (a hole) a regular file. -EISDIR,
 * -EINVAL (a symlink or special file), -EFBIG (beyond the largest file
 * size), -EBUSY (open by another host). */
int vmfs_truncate(struct vmfs *fs, const char *path, uint64_t size);

/* ---- files --------------------------------------------------------------
 * Open flags: O_RDONLY / O_WRONLY / O_RDWR, O_CREAT, O_EXCL, O_TRUNC from
 * <fcntl.h>, plus the two below. VMFS lock semantics: an open for writing
 * holds the file's FD lock exclusively until the last close on this host,
 * so an open for writing by another host fails with -EBUSY; read-only opens
 * of several hosts share the lock; VMFS_O_MULTIWRITER opens of several
 * hosts share a multi-writer lock (writes that need to allocate blocks or
 * change the size then need the lock alone: -EBUSY otherwise). */
#define VMFS_O_MULTIWRITER 0x40000000
#define VMFS_O_NOWAIT	   0x20000000 /* do not wait for a busy lock: -EBUSY at once */
/* Errors: -EEXIST (O_CREAT|O_EXCL), -EISDIR (a directory: use
 * vmfs_readdir()), -ELOOP (a symlink), -ENXIO (a FIFO, device or socket:
 * they have no data here; the kernel serves them), -EBUSY (locked
 * incompatibly by another host, or by this host in multi-writer mode
 * against a plain open). */
int vmfs_open(struct vmfs *fs, const char *path, int flags, uint32_t mode, struct vmfs_file **out);
/* Owner of a new file, directory, symlink or special file (vmfs_create(),
 * vmfs_mkdir_as(), vmfs_symlink_as(), vmfs_mknod_as()); NULL: the mount's
 * uid/gid (vmfs_mount_opts). */
struct vmfs_owner {
	uint32_t uid, gid;
};
/* vmfs_open() whose new file (O_CREAT) gets owner `own`, set in the one
 * transaction that creates it. A file this call creates is opened with the
 * lock its creating transaction took, so once created the open cannot
 * fail with -EBUSY (no other host can lock it in between). */
int vmfs_create(struct vmfs *fs, const char *path, int flags, uint32_t mode,
		const struct vmfs_owner *own, struct vmfs_file **out);
/* Releases the file's lock at the last close on this host; frees the file
 * if it was unlinked meanwhile. Always frees f. */
int vmfs_close(struct vmfs_file *f);
/* Bytes read (short at end of file; holes read as zeroes) or -errno:
 * -EBADF (not open for reading). */
ssize_t vmfs_read(struct vmfs_file *f, void *buf, size_t len, uint64_t off);
/* Bytes written (all of len) or -errno: -EBADF (not open for writing),
 * -EFBIG, -ENOSPC, -EBUSY (multi-writer: the write needs the lock alone). */
ssize_t vmfs_write(struct vmfs_file *f, const void *buf, size_t len, uint64_t off);
int vmfs_ftruncate(struct vmfs_file *f, uint64_t size);
/* Makes the file's written data durable, and every metadata change this
 * mount made before the call. Without keep_locks each metadata change is
 * durable when its call returns; with keep_locks changes are committed in
 * groups (within a few milliseconds, docs/FILESYSTEM.md "Group commit") and
 * a crash may lose the changes made since the last group: never part of
 * one, never those before a vmfs_fsync() or vmfs_sync() that returned 0. */
int vmfs_fsync(struct vmfs_file *f);
/* syncfs(2): every change this mount made before the call is durable on
 * return (the running group committed, the device flushed). */
int vmfs_sync(struct vmfs *fs);
int vmfs_fstat(struct vmfs_file *f, struct vmfs_stat *st);

/* ---- directories and names ----------------------------------------------- */

/* -EEXIST. */
int vmfs_mkdir(struct vmfs *fs, const char *path, uint32_t mode);
int vmfs_mkdir_as(struct vmfs *fs, const char *path, uint32_t mode, const struct vmfs_owner *own);
/* -ENOTEMPTY, -EBUSY (the root), -ENOTDIR. */
int vmfs_rmdir(struct vmfs *fs, const char *path);
/* -EISDIR. An open file's entry goes at once; its space at the last close
 * on this host. Another host's open makes it -EBUSY. */
int vmfs_unlink(struct vmfs *fs, const char *path);
/* Moves an entry, within or across directories, replacing an existing
 * target atomically (one transaction). -EINVAL (a directory into its own
 * subtree), -ENOTEMPTY (target a non-empty directory), -EISDIR / -ENOTDIR
 * (type mismatch with the target), -EBUSY (the root). */
int vmfs_rename(struct vmfs *fs, const char *from, const char *to);
/* vmfs_rename() with Linux's renameat2() flags, decided under the
 * directories' locks, so atomic against every host: NOREPLACE fails with
 * -EEXIST when `to` exists; EXCHANGE swaps two existing names (-ENOENT if
 * either is missing; directories may be exchanged with files). -EINVAL:
 * both flags, unknown flags, or a directory exchanged into its own
 * subtree. */
#define VMFS_RENAME_NOREPLACE 1u
#define VMFS_RENAME_EXCHANGE  2u
int vmfs_rename2(struct vmfs *fs, const char *from, const char *to, unsigned flags);
/* Hard link: -EEXIST, -EPERM (a directory), -EMLINK. */
int vmfs_link(struct vmfs *fs, const char *oldpath, const char *newpath);
/* Special files (mknod(2)): mode's S_IFMT is S_IFIFO, S_IFCHR, S_IFBLK,
 * S_IFSOCK or S_IFREG (or 0: a regular file, empty); permission bits
 * 07777; rdev (makedev(major, minor)) is kept for S_IFCHR and S_IFBLK and
 * ignored otherwise. The node is created with its mode and owner (NULL:
 * the mount's) in one transaction. A FIFO, device or socket has no data:
 * vmfs_open() refuses it (-ENXIO), vmfs_truncate() too (-EINVAL); getattr
 * (mode, rdev), chmod, chown, utimens, xattrs, link, rename and unlink
 * work as on any file. Errors: -EEXIST, -EINVAL (S_IFDIR, S_IFLNK or an
 * unknown type). */
int vmfs_mknod(struct vmfs *fs, const char *path, uint32_t mode, uint64_t rdev);
int vmfs_mknod_as(struct vmfs *fs, const char *path, uint32_t mode, uint64_t rdev,
		  const struct vmfs_owner *own);
/* -EEXIST, -ENAMETOOLONG (target longer than VMFS_SYMLINK_MAX = 4095 bytes,
 * PATH_MAX - 1: up to 3840 bytes inline in the inode, beyond in one
 * sub-block). */
int vmfs_symlink(struct vmfs *fs, const char *target, const char *linkpath);
int vmfs_symlink_as(struct vmfs *fs, const char *target, const char *linkpath,
		    const struct vmfs_owner *own);
/* Copies the target, NUL-terminated and truncated to size-1 bytes; returns
 * its full length. -EINVAL (not a symlink). */
int vmfs_readlink(struct vmfs *fs, const char *path, char *buf, size_t size);

/* Called per entry ("." and ".." first); a non-zero return stops the walk and
 * is returned by vmfs_readdir(). type: VMFS_FT_REG / DIR / LNK / FIFO / CHR /
 * BLK / SOCK (format.h).
 * The callback runs with the mount's mutex held: it must not call vmfs_
 * functions on the same mount (collect names, then stat them). */
/* S_IFREG, S_IFDIR... of a VMFS_FT_* type (0 for an unknown one): d_type. */
uint32_t vmfs_ftype_mode(uint32_t type);
typedef int (*vmfs_readdir_cb)(void *arg, const char *name, unsigned type, uint64_t ino);
int vmfs_readdir(struct vmfs *fs, const char *path, vmfs_readdir_cb cb, void *arg);

/* Message for any negative return (errno, bdev, lock manager). */
const char *vmfs_strerror(int err);
/* Detail of this thread's last error on this mount (which structure was
 * corrupt...), "" if none; per thread, so other threads' calls never
 * change it. fs NULL: why this thread's last vmfs_mount() failed. */
const char *vmfs_errmsg(struct vmfs *fs);

/* ---- preallocation, thick files, extended attributes ------------------------
 * (fs_falloc.c, fs_xattr.c; block-level work in fs_file.c.) */

/* Modes of vmfs_fallocate(): the values of Linux's FALLOC_FL_*, so a FUSE
 * fallocate mode can be passed through. */
#define VMFS_FALLOC_KEEP_SIZE  0x01
#define VMFS_FALLOC_PUNCH_HOLE 0x02 /* only with KEEP_SIZE */
#define VMFS_FALLOC_ZERO_RANGE 0x10 /* optionally with KEEP_SIZE */
/* mode 0: allocates every block of [off, off + len) that is a hole and
 * extends the size to off + len if larger; KEEP_SIZE: the same without
 * changing the size (blocks beyond the size stay allocated until a
 * truncate). New file blocks are TBZ (to be zeroed): allocated, counted in
 * st_blocks, read as zeroes, and no zeroes are written (sub-blocks of small
 * files are zeroed on disk). PUNCH_HOLE|KEEP_SIZE: frees the blocks wholly
 * inside the range, zeroes the parts of the others. ZERO_RANGE: the range
 * reads as zeroes and is allocated (whole blocks become TBZ, no data
 * written); extends the size unless KEEP_SIZE. Errors: -EBADF (not open for
 * writing), -EINVAL (len 0), -EOPNOTSUPP (other modes, PUNCH_HOLE without
 * KEEP_SIZE or with ZERO_RANGE), -EFBIG, -ENOSPC (blocks allocated before it
 * stay), -EBUSY (multi-writer: needs the lock alone). */
int vmfs_fallocate(struct vmfs_file *f, int mode, uint64_t off, uint64_t len);

/* Creates a new regular file of `size` bytes with every block allocated:
 * eager 0: lazily zeroed thick (all blocks TBZ: instant, no zeroes
 * written); eager 1: eagerly zeroed thick (every block is zeroed on the
 * device before the transaction that links it commits, so no block is ever
 * visible unzeroed). Errors: -EEXIST, -ENOSPC (the file is removed again),
 * -EFBIG, those of vmfs_open(). */
int vmfs_create_thick(struct vmfs *fs, const char *path, uint32_t mode, uint64_t size, int eager);

/* Extended attributes by path (files, directories, symlinks: the link
 * itself). Stored in one 4 KiB block per file (docs/FORMAT.md): names of
 * 1..255 bytes (any bytes but NUL; namespaces such as "user." are the
 * caller's business), values up to VMFS_XATTR_SIZE_MAX bytes, all of a
 * file's entries together at most about 4 KiB. */
#define VMFS_XATTR_CREATE   0x1 /* fail with -EEXIST if it exists (Linux XATTR_CREATE) */
#define VMFS_XATTR_REPLACE  0x2 /* fail with -ENODATA if it does not (XATTR_REPLACE) */
#define VMFS_XATTR_SIZE_MAX 3773
/* Errors: -EEXIST / -ENODATA (flags above), -ERANGE (empty or > 255-byte
 * name), -E2BIG (value > VMFS_XATTR_SIZE_MAX), -ENOSPC (the file's
 * attribute block is full), -EINVAL (unknown flags), -EBUSY (the file is
 * open for writing on another host: changes need its lock; reads do not). */
int vmfs_setxattr(struct vmfs *fs, const char *path, const char *name, const void *value,
		  size_t size, int flags);
/* Returns the value's length; copies it when size > 0. -ENODATA (no such
 * attribute), -ERANGE (size > 0 but too small). */
ssize_t vmfs_getxattr(struct vmfs *fs, const char *path, const char *name, void *value,
		      size_t size);
/* Names, each NUL-terminated, one after the other; returns the total
 * length; size 0: only the length. -ERANGE (size too small). */
ssize_t vmfs_listxattr(struct vmfs *fs, const char *path, char *list, size_t size);
/* -ENODATA. */
int vmfs_removexattr(struct vmfs *fs, const char *path, const char *name);

/* ==== Additions for the hypervisor glue (hypervisor-glue/, issue 14) =========
 * Implemented in fs_extent.c on top of the internal headers; kept apart so
 * the core files stay untouched. */

/* Extents of an open file, for SEEK_DATA/SEEK_HOLE-style maps (NBD block
 * status, qemu-img map). flags: VMFS_EXT_HOLE (nothing allocated),
 * VMFS_EXT_ZERO (reads as zeroes: holes and to-be-zeroed blocks); 0 is
 * allocated data. */
#define VMFS_EXT_HOLE 0x1u
#define VMFS_EXT_ZERO 0x2u
struct vmfs_extent {
	uint64_t off, len;
	uint32_t flags;
};
/* Describes [off, off + len) clipped to the file size in up to max
 * extents (adjacent extents have different flags; the last one may end
 * before off + len when max is reached). Returns the count (0 when off is
 * at or beyond the size). Works on any open handle (also read-only mounts,
 * where another host's changes may be seen late). Errors: -EINVAL (max 0),
 * -EUCLEAN (a corrupt pointer block, vmfs_errmsg() names it), device
 * errors. */
int vmfs_file_extents(struct vmfs_file *f, uint64_t off, uint64_t len, struct vmfs_extent *ext,
		      unsigned max);

/* Discard (TRIM/UNMAP): frees the file blocks wholly inside [off, off +
 * len) and zeroes the parts of the others, like vmfs_fallocate(PUNCH_HOLE |
 * KEEP_SIZE), and first passes each freed block's device range down with
 * bdev_discard() (hole punching on image files, UNMAP on LUNs), so the
 * backing store shrinks. The device discard happens while the blocks still
 * belong to this file (never after the free, when another host may already
 * have reused them). Errors: those of vmfs_fallocate(); -EBUSY when the
 * file is open multi-writer (freeing needs the lock alone). */
int vmfs_discard(struct vmfs_file *f, uint64_t off, uint64_t len);

/* vmfs_fallocate(mode 0) with eagerly zeroed blocks: every hole of [off,
 * off + len) gets a block zeroed on the device before it is linked; the size
 * grows to off + len if larger. Blocks already allocated (also TBZ ones)
 * are left alone. Errors: those of vmfs_fallocate(). */
int vmfs_fallocate_eager(struct vmfs_file *f, uint64_t off, uint64_t len);

/* Who holds a file's lock (compare vmkfstools -D). mode: VMFS_LOCK_*.
 * Holders whose heartbeat slot was freed or reused since (stale record
 * entries) are left out; live: the slot's heartbeat is LIVE (it may still
 * be dead and not yet taken over). */
#define VMFS_LOCK_FREE	      0
#define VMFS_LOCK_EX	      1
#define VMFS_LOCK_SH	      2
#define VMFS_LOCK_MW	      3
#define VMFS_LOCK_MAX_HOLDERS 64
struct vmfs_lock_holder {
	uint32_t slot, slot_gen;
	int self; /* this mount's own slot */
	char hostname[64];
	uint8_t uuid[16];
};
struct vmfs_lockinfo {
	int mode;
	uint64_t gen;	   /* lock generation */
	uint64_t lock_off; /* byte offset of the lock record on the device */
	unsigned nholders;
	struct vmfs_lock_holder holders[VMFS_LOCK_MAX_HOLDERS];
};
/* Reads the lock record of path's FD (no lock taken). Errors: those of path
 * lookup, -EUCLEAN (corrupt record or slot), device errors. */
int vmfs_lock_query(struct vmfs *fs, const char *path, struct vmfs_lockinfo *out);

/* ==== Calls by inode (fs_at.c) ================================================
 * For servers that keep handles rather than paths (a FUSE low-level
 * daemon). An inode is an FD address (vmfs_stat.ino) and its generation
 * (vmfs_stat.generation, never 0 for a live file): together they name one
 * life of one file, also after it lost its last name while open here
 * (unlink of an open file: getattr, setattr, xattrs keep working, nlink 0,
 * until the last close). gen 0 accepts any generation. A handle whose FD
 * was freed (by any host) or freed and reused for another file fails with
 * -ESTALE, checked under the file's lock before anything is written (a
 * freed FD with gen 0: -ENOENT). Calls by (directory, name) report a stale
 * directory as -ENOENT, as a removed directory does on a local file
 * system. name: one component (no '/': -EINVAL; empty: -ENOENT; longer
 * than 255 bytes: -ENAMETOOLONG). Otherwise the errors and semantics are
 * those of the path call each one names. */

/* vmfs_getattr() of name in directory dir; -ENOENT when missing. */
int vmfs_lookup(struct vmfs *fs, uint64_t dir, uint64_t dir_gen, const char *name,
		struct vmfs_stat *st);
int vmfs_getattr_ino(struct vmfs *fs, uint64_t ino, uint64_t gen, struct vmfs_stat *st);
/* Changes the attributes named by valid, the size first (vmfs_truncate(),
 * which sets mtime), then mode, owner, times (vmfs_chmod(), vmfs_chown(),
 * vmfs_utimens(): VMFS_TIME_NOW allowed), each its own transaction.
 * -EINVAL (unknown bits in valid). */
#define VMFS_SET_MODE  0x01u
#define VMFS_SET_UID   0x02u
#define VMFS_SET_GID   0x04u
#define VMFS_SET_SIZE  0x08u
#define VMFS_SET_ATIME 0x10u
#define VMFS_SET_MTIME 0x20u
struct vmfs_setattr {
	unsigned valid;
	uint32_t mode, uid, gid;
	uint64_t size, atime_ns, mtime_ns;
};
int vmfs_setattr_ino(struct vmfs *fs, uint64_t ino, uint64_t gen, const struct vmfs_setattr *sa);
/* vmfs_open() of the file itself (O_CREAT and O_EXCL are ignored). */
int vmfs_open_ino(struct vmfs *fs, uint64_t ino, uint64_t gen, int flags, struct vmfs_file **out);
int vmfs_readdir_ino(struct vmfs *fs, uint64_t ino, uint64_t gen, vmfs_readdir_cb cb, void *arg);
int vmfs_readlink_ino(struct vmfs *fs, uint64_t ino, uint64_t gen, char *buf, size_t size);
int vmfs_setxattr_ino(struct vmfs *fs, uint64_t ino, uint64_t gen, const char *name,
		      const void *value, size_t size, int flags);
ssize_t vmfs_getxattr_ino(struct vmfs *fs, uint64_t ino, uint64_t gen, const char *name,
			  void *value, size_t size);
ssize_t vmfs_listxattr_ino(struct vmfs *fs, uint64_t ino, uint64_t gen, char *list, size_t size);
int vmfs_removexattr_ino(struct vmfs *fs, uint64_t ino, uint64_t gen, const char *name);
/* vmfs_create(), vmfs_mkdir_as(), vmfs_symlink_as(), vmfs_mknod_as(),
 * vmfs_unlink(), vmfs_rmdir() of name in directory dir. */
int vmfs_create_at(struct vmfs *fs, uint64_t dir, uint64_t dir_gen, const char *name, int flags,
		   uint32_t mode, const struct vmfs_owner *own, struct vmfs_file **out);
int vmfs_mkdir_at(struct vmfs *fs, uint64_t dir, uint64_t dir_gen, const char *name, uint32_t mode,
		  const struct vmfs_owner *own);
int vmfs_symlink_at(struct vmfs *fs, const char *target, uint64_t dir, uint64_t dir_gen,
		    const char *name, const struct vmfs_owner *own);
int vmfs_mknod_at(struct vmfs *fs, uint64_t dir, uint64_t dir_gen, const char *name, uint32_t mode,
		  uint64_t rdev, const struct vmfs_owner *own);
int vmfs_unlink_at(struct vmfs *fs, uint64_t dir, uint64_t dir_gen, const char *name);
int vmfs_rmdir_at(struct vmfs *fs, uint64_t dir, uint64_t dir_gen, const char *name);
/* vmfs_link() of inode ino as name in directory dir (-ESTALE: ino). */
int vmfs_link_at(struct vmfs *fs, uint64_t ino, uint64_t gen, uint64_t dir, uint64_t dir_gen,
		 const char *name);
/* vmfs_rename2() of name in dir to newname in newdir. */
int vmfs_rename_at(struct vmfs *fs, uint64_t dir, uint64_t dir_gen, const char *name,
		   uint64_t newdir, uint64_t newdir_gen, const char *newname, unsigned flags);

#endif
