/*
 * fs_int.h - private to libvmfs/fs_*.c: the mount, in-memory inodes (FDs
 * this host has open), transactions and the helpers shared by the files of
 * the file system. The design note is at the top of fs_core.c.
 */
#ifndef LIBVMFS_FS_INT_H
#define LIBVMFS_FS_INT_H

#include <pthread.h>
#include <stdint.h>

#include "format.h"
#include "lockmgr.h"
#include "vmfs.h"

/* The mapping of a file this host holds SH, or EX for a writer (never MW):
 * a copy of its inode and of the pointer blocks read so far (fs_file.c, "cached
 * mapping"). l1[i]: the PB named by inode slot i (i >= VMFS_NDIRECT); l2[j]
 * (j = double slot index): the level-1 PBs named by that PB's entries. */
struct fs_map {
	struct vmfs_fd fd;
	struct vmfs_pb *l1[VMFS_NADDR];
	struct vmfs_pb **l2[VMFS_NDOUBLE];
	unsigned npb;
};

/* An FD this host has open (at least one struct vmfs_file). */
struct fs_inode {
	uint64_t addr;
	struct lm_lock *lk; /* held while nopen > 0 */
	enum lm_mode mode;
	unsigned n_ex, n_sh, n_mw; /* opens by kind */
	int unlinked;		   /* no entry names it: free at the last close */
	int mtime_dirty; /* written in place: set mtime at the last writer's close (atomic) */
	/* Data I/O outside fs->mu holds rw shared; whatever changes the
	 * file's mapping or frees its blocks holds fs->mu, then rw exclusive
	 * (lock order: fs->mu, rw, map_mu). */
	pthread_rwlock_t rw;
	pthread_mutex_t map_mu; /* guards map */
	struct fs_map *map;	/* NULL unless held SH, or EX with a writer; no MW */
	struct fs_inode *next;
};

struct vmfs_file {
	struct vmfs *fs;
	struct fs_inode *ino;
	int flags;
	int rd, wr;
	struct vmfs_file *next; /* fs->files */
};

struct vmfs {
	struct bdev *bd;
	int own_bd;
	struct lm *lm;
	struct vmfs_vh vh;
	uint32_t slot, gen;
	int ro;
	int broken;	/* a commit failed after its journal writes began */
	int no_recover; /* vmfs_mount_opts.no_recover: vmfs_recover() replays dead hosts */
	unsigned lock_tmo_ms;
	uint32_t uid, gid;
	pthread_mutex_t mu;
	/* this host's journal */
	uint64_t joff, jnlog; /* journal offset, log blocks */
	struct vmfs_jh jh;
	uint64_t flushed_seq;		  /* lm_write_seq() covered by this host's last flush */
	uint32_t cursor[VMFS_RT_MAX + 1]; /* allocation affinity: next cluster to try */
	struct fs_inode *inodes;
	struct vmfs_file *files; /* open handles, freed by vmfs_umount() */
	int xtab_bad;		 /* mount: a table block was bad before recovery */
	int left;		 /* vmfs_tune() changed the heartbeat timing and left: -ESTALE */
	struct fs_cache *cache;	 /* metadata blocks (fs_cache.c); NULL: off */
	/* Deferred checkpoints and kept locks (fs_journal.c, "Kept locks"):
	 * all under jmu (lock order: fs->mu, jmu). */
	pthread_mutex_t jmu;
	int keep;		  /* keep EX locks after transactions */
	uint64_t tail, tail_txid; /* next log position and txid (jh: the retired head) */
	struct fs_pend **pend;	  /* committed images not yet in place, by offset */
	unsigned npend;
	unsigned nrun;	      /* pending images not in the log yet (the running group) */
	int64_t run_ns;	      /* monotonic: when the running group got its first image */
	int run_freed;	      /* the running group frees file blocks or sub-blocks */
	uint64_t busy_off;    /* a lock last found busy by a try-once take (under mu) */
	struct fs_kept *kept; /* EX locks held with no user, kept for reuse */
	unsigned nkept;
	pthread_t keeper; /* polls the kept locks' records (hand-over, idle) */
	int keeper_on, keeper_stop;
	pthread_cond_t kcond;
	struct vmfs_engine_stats est;
	struct fs_asked { /* fs_opt_read() asks: (lock, generation) and when, under mu */
		uint64_t off, gen;
		int64_t ns;
	} asked[64];
};

/* ---- transactions (fs_journal.c) ------------------------------------------ */

/* Locks one transaction may hold: its FDs, the extension table and the
 * clusters it allocates from or frees into. Freeing a directory in SB mode
 * may touch one cluster per sub-block (256) when its sub-blocks came from
 * as many clusters (extension clusters hold 127 at 1 MiB blocks); a
 * regular file that needs more is freed over several transactions
 * (budget_left() in fs_file.c). */
#define TX_MAXLOCKS 280

struct txb {
	uint64_t off;
	uint64_t own; /* lock covering the block (fs_cache.c), 0: unknown */
	uint8_t *buf; /* VMFS_UNIT bytes */
	int dirty;
};

struct txl {
	uint64_t addr;
	struct lm_lock *lk;
	enum lm_mode mode;
	struct fs_inode *ino; /* borrowed from an open inode (not released) */
	enum lm_mode restore; /* ino: mode to convert back to (FREE: none) */
	int detached;	      /* handed to the caller by tx_detach(): not released */
};

struct tx {
	struct vmfs *fs;
	struct txb *b;
	unsigned nb, cap;
	struct txl l[TX_MAXLOCKS];
	unsigned nl;
	uint64_t maxfd;			 /* highest FD lock taken in order (deadlock avoidance) */
	uint64_t retry_addr;		 /* -EAGAIN: lock this one first next time */
	uint32_t xgrow[VMFS_RT_MAX + 1]; /* extension clusters this tx added
					  * (taken back if it is abandoned) */
	int freed_data;			 /* frees a file block or sub-block (fs_free) */
};

void tx_begin(struct vmfs *fs, struct tx *tx);
/* Locks FD `addr` (its lock unit) in mode for this transaction. An FD whose
 * address is lower than one already held is tried once; busy -> -EAGAIN
 * with tx->retry_addr set (the caller restarts, locking it first). */
int tx_lock_fd(struct tx *tx, uint64_t addr, enum lm_mode mode);
/* Hands the lock of FD `addr` (taken by tx_lock_fd() in this transaction,
 * not borrowed) to the caller: the commit or abort leaves it held. NULL if
 * the transaction does not own that lock. */
struct lm_lock *tx_detach(struct tx *tx, uint64_t addr);
/* Takes a cluster lock for this transaction, try-once (-EBUSY). */
int tx_lock_cl(struct tx *tx, uint64_t cl_off);
int tx_holds(struct tx *tx, uint64_t lock_off);
/* The block at off (VMFS_UNIT) read once per transaction. */
int tx_read(struct tx *tx, uint64_t off, uint8_t **p);
/* Same, and marks it for journaling. fresh: do not read (will be fully
 * overwritten). */
int tx_write(struct tx *tx, uint64_t off, int fresh, uint8_t **p);
/* The same for a metadata block covered by the lock at own (an FD's lock
 * unit, a cluster's): served from the metadata cache when the generation of
 * own proves the cached copy current (fs_cache.c C2), kept there after. */
int tx_read_own(struct tx *tx, uint64_t off, uint64_t own, uint8_t **p);
int tx_write_own(struct tx *tx, uint64_t off, int fresh, uint64_t own, uint8_t **p);
unsigned tx_ndirty(const struct tx *tx);
/* Journals and writes the dirty blocks (commit order of fs_core.c), then
 * releases the locks. */
int tx_commit(struct tx *tx);
/* Releases locks and buffers without writing. */
void tx_abort(struct tx *tx);

/* Kept locks and checkpoints (fs_journal.c). fs_journal_start() after the
 * journal header is read (starts the keeper thread of a read-write mount
 * that keeps locks); fs_journal_stop() checkpoints, releases the kept locks
 * (forgets them on a broken mount) and stops the thread. */
int fs_journal_start(struct vmfs *fs);
void fs_journal_stop(struct vmfs *fs);
/* Writes every committed image in place and retires the log (no-op when
 * nothing is pending). Errors break the mount. */
int fs_checkpoint(struct vmfs *fs);
/* Writes the running group (transactions committed in memory, keeping
 * locks) to the log as one transaction and flushes: they are durable on
 * return. No-op when the group is empty. Errors break the mount. */
int fs_group_commit(struct vmfs *fs);
/* Before file blocks or sub-blocks are handed out as data (fs_alloc()):
 * a running group that freed any is committed first, so data written in
 * place never lands in a block whose free a crash could undo. */
int fs_group_commit_freed(struct vmfs *fs);
/* A device read of metadata at off, with the committed images not yet in
 * place laid over it: what any read outside a transaction must use. */
int fs_meta_read(struct vmfs *fs, void *buf, uint64_t off, size_t len);
/* Whether [off, off+len) holds a block with a committed image not yet in
 * place; fs_alloc() checkpoints before handing such a block out as data. */
int fs_pend_overlaps(struct vmfs *fs, uint64_t off, uint64_t len);
/* Lock at lock unit off in mode for a caller outside a transaction (an open
 * inode): taken from the kept set when this host keeps it (converted to
 * mode; a downgrade checkpoints first), else acquired (timeout_ms as
 * lm_lock_acquire()). */
int fs_lock_take(struct vmfs *fs, uint64_t off, enum lm_mode mode, int timeout_ms,
		 struct lm_lock **out);
/* Gives up a lock held here: EX goes to the kept set (keeping on), else it
 * is released; a broken mount forgets it (kept for a survivor). */
int fs_unlock(struct vmfs *fs, struct lm_lock *lk);
/* lm_lock_convert() to a weaker mode, after a checkpoint (what the
 * journal holds under an EX lock must be in place before others read). */
int fs_downgrade(struct vmfs *fs, struct lm_lock *lk, enum lm_mode mode);

/* Journal: replays the journal of slot (from the takeover callback). */
int fs_replay(struct vmfs *fs, uint32_t slot, int *applied);
/* 1 if the journal of slot holds a committed, unreplayed transaction; the
 * locks of its cluster-header and FD-inode targets (cluster locks first) in
 * locks[0..*n). */
int fs_journal_pending(struct vmfs *fs, uint32_t slot, uint64_t *locks, unsigned max, unsigned *n);
int fs_journal_init(struct vmfs *fs);
/* Sets VMFS_JHF_ORPHANS in this host's journal header (written and flushed
 * at once, before the transaction that flags an FD UNLINKED commits).
 * Cleared in fs->jh.flags when nothing is left to sweep: the next header
 * write persists that. */
int fs_journal_set_orphans(struct vmfs *fs);
/* Flags of the journal header of slot. */
int fs_journal_flags(struct vmfs *fs, uint32_t slot, uint32_t *flags);
/* Largest number of blocks one transaction may dirty. */
unsigned fs_tx_max(const struct vmfs *fs);

/* ---- allocator (fs_alloc.c) ------------------------------------------------ */

int fs_alloc(struct tx *tx, unsigned type, uint64_t *addr);
/* Locks a cluster (or the volume lock) EX for tx, waiting when tx holds no
 * cluster lock yet (deadlock avoidance, fs_alloc.c); -EBUSY. */
int fs_lock_cl_wait(struct tx *tx, uint64_t cl_off);
int fs_free(struct tx *tx, uint64_t addr);
int fs_count_free(struct vmfs *fs, unsigned type, uint64_t *nfree, uint64_t *total);

/* ---- FDs, mapping, data (fs_file.c) ------------------------------------------ */

int fd_load(struct tx *tx, uint64_t addr, struct vmfs_fd *fd);
int fd_store(struct tx *tx, const struct vmfs_fd *fd);
/* Reads an FD without holding its lock: the caller tolerates staleness. */
int fd_peek(struct vmfs *fs, uint64_t addr, struct vmfs_fd *fd);
uint64_t fs_now_ns(void);
void fd_to_stat(const struct vmfs *fs, const struct vmfs_fd *fd, struct vmfs_stat *st);
/* Device offset of byte `off` of the file (0 = hole); *run = bytes to the end
 * of that block. Metadata read through tx. */
int fs_bmap(struct tx *tx, const struct vmfs_fd *fd, uint64_t off, uint64_t *dev, uint64_t *run);
/* Frees every block at or beyond `size` (in pieces that fit a transaction:
 * commits and restarts tx as needed, with fd re-stored each time). */
int fs_trunc_blocks(struct tx *tx, struct vmfs_fd *fd, uint64_t size, int final);
/* Bytes written (short only after an error) or -errno; *mtime_dirty set when
 * the data went in place without updating the inode. */
ssize_t fs_write_data(struct vmfs *fs, struct fs_inode *ino, const void *buf, size_t len,
		      uint64_t off);
ssize_t fs_read_data(struct vmfs *fs, struct fs_inode *ino, void *buf, size_t len, uint64_t off);
/* The same without fs->mu, from the cached mapping (caller holds ino->rw
 * shared): -FS_E_SLOW when the cache cannot serve the whole request (no
 * cache, a pointer block not cached; writes: unaligned to sectors, beyond
 * the size, over holes or TBZ blocks); nothing was done then. */
ssize_t fs_read_fast(struct vmfs *fs, struct fs_inode *ino, void *buf, size_t len, uint64_t off);
ssize_t fs_write_fast(struct vmfs *fs, struct fs_inode *ino, const void *buf, size_t len,
		      uint64_t off);
/* Drops the cached mapping of ino / of the open inode of FD addr, if any. */
void fs_map_drop(struct fs_inode *ino);
void fs_map_drop_addr(struct vmfs *fs, uint64_t addr);
/* Writes the first bytes of a file being created in tx (a long symlink
 * target goes to a sub-block, written before tx commits); sets the size. */
int fs_write_new(struct tx *tx, struct vmfs_fd *fd, const void *buf, size_t len);
/* Reads min(len, size) bytes from the start of fd (inline or blocks),
 * through tx: under the FD's lock or inside fs_opt_read(). */
int fs_read_small(struct tx *tx, const struct vmfs_fd *fd, void *buf, size_t len);
int fs_set_size(struct vmfs *fs, uint64_t addr, uint64_t size);
/* Frees an FD and all it owns; the FD is locked EX in tx. */
int fs_free_fd(struct tx *tx, struct vmfs_fd *fd);

/* ---- directories (fs_dir.c) ---------------------------------------------- */

int dir_lookup(struct tx *tx, const struct vmfs_fd *dir, const char *name, size_t len,
	       struct vmfs_dirent *e);
int dir_add(struct tx *tx, struct vmfs_fd *dir, const char *name, size_t len, uint64_t fd,
	    uint8_t type);
int dir_remove(struct tx *tx, struct vmfs_fd *dir, const char *name, size_t len);
int dir_init(struct tx *tx, struct vmfs_fd *dir);
/* Number of entries (from the header). */
int dir_count(struct tx *tx, const struct vmfs_fd *dir, uint64_t *n);
int dir_iter(struct tx *tx, const struct vmfs_fd *dir, vmfs_readdir_cb cb, void *arg);

/* ---- core (fs_core.c) -------------------------------------------------------- */

/* Internal: freeing does not fit the transaction (never returned to users). */
#define FS_E_TOOBIG 4001
/* Internal: the fast data path cannot serve this request (fs_read_fast()). */
#define FS_E_SLOW 4002
/* Sleeps a little before retry number `tries` of a contended operation. */
/* From the 6th retry on it watches the heartbeat region for an interval
 * instead (lm_recover()), taking over hosts found dead meanwhile: a
 * contended lock held by a dead host is then freed within the retries
 * (20 retries cover more than the heartbeat timeout). */
void fs_backoff(struct vmfs *fs, int tries);

void fs_seterr(struct vmfs *fs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct fs_inode *fs_inode_find(struct vmfs *fs, uint64_t addr);
/* A new in-memory inode (locks initialised, not linked) / its end. */
struct fs_inode *fs_inode_alloc(uint64_t addr);
void fs_inode_free(struct fs_inode *ino);
int fs_wait_ms(const struct vmfs *fs);
/* Entry and exit of a public call (mutex, broken/fenced/read-only checks;
 * leave maps an exhausted -EAGAIN to -EBUSY) and path resolution. */
int fs_enter(struct vmfs *fs, int write);
int fs_leave(struct vmfs *fs, int rc);
int fs_resolve(struct vmfs *fs, const char *path, uint64_t *addr);

/* ---- calls by inode (fs_at.c) ---------------------------------------------------
 * The by-inode calls of vmfs.h run the path calls with a per-thread base:
 * a path starting with FS_AT_BASE0 or FS_AT_BASE1 (bytes no public path
 * starts with) is resolved from base FD 0 or 1 of this thread's current
 * by-inode call instead of from the root. fs_at_base(): 1 and the base's
 * address when path names one (*path moved past the marker), 0 when not.
 * fs_at_check(): every FD decoded (fd_load, fd_peek) that is a base of the
 * call must still be allocated (generation != 0) with the generation the
 * caller expects (0: any): -ESTALE otherwise (-ENOENT when freed and the
 * caller expects any), before anything is written under its lock. */
#define FS_AT_BASE0 '\x01'
#define FS_AT_BASE1 '\x02'
int fs_at_base(const char **path, uint64_t *addr);
int fs_at_check(const struct vmfs_fd *fd);

/* ---- optimistic reads (fs_core.c) ----------------------------------------------
 * Reads of metadata that take no lock and write nothing: fn reads what the
 * lock of FD `addr` covers (plain reads, e.g. through a tx used only for
 * tx_read(), never tx_write()); the lock record is read before and after,
 * and the try counts only if no other host held the lock exclusively at
 * the first read and its generation did not move by the second (a writer
 * changes blocks in place only while it holds the lock exclusively, and
 * every acquisition bumps the generation). fn may run several times and
 * must start afresh each time. Returns fn's result; -EBUSY when another
 * host held the lock exclusively at every try (the caller falls back to
 * taking a shared lock, which waits and takes dead hosts over). */
typedef int (*fs_opt_fn)(struct vmfs *fs, uint64_t addr, void *arg);
int fs_opt_read(struct vmfs *fs, uint64_t addr, fs_opt_fn fn, void *arg);

/* ---- metadata cache (fs_cache.c) ----------------------------------------------- */

int fs_cache_init(struct vmfs *fs, unsigned mb);
void fs_cache_fini(struct vmfs *fs);
/* Copies the block at off into dst (VMFS_UNIT) if the cache has it for lock
 * own and generation gen proves it current: held (this host holds own at
 * generation gen) or not (an optimistic read saw gen, no EX holder). 1 hit. */
int fs_cache_get(struct vmfs *fs, uint64_t off, uint64_t own, uint64_t gen, int held, void *dst);
/* Any cached copy of off, whatever its tag: a hint, checked later. */
int fs_cache_hint(struct vmfs *fs, uint64_t off, void *dst);
void fs_cache_put(struct vmfs *fs, uint64_t off, uint64_t own, uint64_t gen, const void *src);
/* Forgets every block in [off, off + len). */
void fs_cache_drop(struct vmfs *fs, uint64_t off, uint64_t len);
/* Counts puts and drops: an optimistic read that began before one keeps
 * nothing (a commit or replay may have written a block it read). */
uint64_t fs_cache_wseq(struct vmfs *fs);
void fs_cache_stats(struct vmfs *fs, uint64_t *hits, uint64_t *misses, uint64_t *n, uint64_t *max);

/* Optimistic-read context (fs_opt_read(), one per thread while fn runs):
 * tx reads of blocks owned by `own` may be served from the cache for
 * generation gen; blocks read from the disk wait in pending until the
 * second record read validates them. */
#define OPT_PENDING 16
struct fs_optctx {
	struct vmfs *fs;
	uint64_t own, gen, wseq;
	int held;	/* this host holds own (an open file): no validation */
	unsigned hits;	/* blocks served from the cache */
	unsigned reads; /* reads from the disk (any) */
	unsigned np;
	uint64_t poff[OPT_PENDING];
	uint8_t *pbuf[OPT_PENDING];
	struct fs_optctx *prev; /* an enclosing fs_opt_read() of this thread */
};
void fs_opt_enter(struct fs_optctx *c);
/* Leaves the context; keep: put the pending blocks into the cache. */
void fs_opt_leave(struct fs_optctx *c, int keep);
/* A read outside transactions (file data, snapshots) inside fn. */
void fs_opt_note_read(void);

/* ---- the volume (fs_volume.c) ------------------------------------------------- */

/* Re-reads the primary volume header and takes in a grow or tune done by
 * another host (fs_volume.c V4): 1 grew, 0 nothing new, <0 (-EUCLEAN: a
 * header this mount cannot follow, message set). */
int fs_vh_refresh(struct vmfs *fs);

/* ---- preallocation and extended attributes (fs_file.c, fs_xattr.c) ------------ */

/* Block operations of vmfs_fallocate() over [off, off + len) of an FD open
 * for writing (fs_file.c); mode as vmfs_fallocate(), plus FS_FALLOC_EAGER
 * (allocate zeroed blocks instead of TBZ ones). */
#define FS_FALLOC_EAGER 0x40000000
int fs_fallocate(struct vmfs *fs, uint64_t addr, int mode, uint64_t off, uint64_t len);
/* Frees the FD's extended-attribute block (in tx, FD locked EX). */
int fs_xattr_free(struct tx *tx, struct vmfs_fd *fd);

#endif
