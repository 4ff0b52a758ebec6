/*
 * fs_core.c - the libvmfs file system: mount, recovery, open files, and the
 * path operations. Transactions and the journal are in fs_journal.c, the
 * allocator in fs_alloc.c, file data and mapping in fs_file.c, directories
 * in fs_dir.c. docs/FILESYSTEM.md has the long version of this note.
 *
 * DESIGN NOTE
 *
 * Hosts share the disk only. Every host mounts with its own heartbeat slot
 * (lockmgr) and its own journal (the journal of its slot). Metadata blocks
 * are kept in the mount's block cache (fs_cache.c), each tagged with the
 * lock covering it and a generation of that lock, and used only when the
 * lock's generation proves nobody can have changed the block since
 * (fs_cache.c C1/C2; DESIGN.md 5.5); the decoded mapping of a file this
 * host holds open, SH or EX for a writer, never MW, is kept in its inode
 * (fs_file.c, "cached mapping"). Metadata
 * operations hold the mount's mutex (enter()/leave()); reads and overwrites
 * through a cached mapping run outside it (I6).
 *
 * Invariants
 *  I1. A metadata block is changed only inside a transaction that holds EX
 *      the lock covering it: an FD's lock covers its inode block, its
 *      pointer blocks and (directories) its directory blocks; a cluster's
 *      lock covers its header/bitmap. A new FD is covered by its cluster
 *      lock until the creating transaction commits (its own lock is taken
 *      too).
 *  I2. Commit order (fs_journal.c): journal images, flush, commit record,
 *      flush, in-place writes, flush, journal head advanced, flush, locks
 *      released. So a host's journal holds at most one unretired
 *      transaction, and only while its locks are held: whoever needs one of
 *      those locks must first take the dead host's slot over, and the
 *      lock manager calls fs_takeover() which replays that journal. With
 *      keep_locks (opt-in) commits are grouped (one log write per group,
 *      within 5 ms or at fsync/sync), the in-place writes wait for a
 *      checkpoint and the log holds several groups, all covered by EX
 *      locks this host keeps until the checkpoint (fs_journal.c G1-G2,
 *      K1-K3).
 *  I3. Every write goes through lm_guarded_write() (or lm_write_guard()
 *      just before it): a fenced host writes nothing.
 *  I4. Metadata reads take no lock and write nothing (fs_opt_read):
 *      lookup, getattr, readdir, readlink and xattr reads read the lock
 *      record, the blocks, and the lock record again, and count only if
 *      no other host held it EX at the first read and its generation did
 *      not move (writers change blocks in place only while holding EX, and
 *      each acquisition bumps the generation); otherwise they retry, and
 *      after ~30 ms of a writer elsewhere fall back: getattr/getxattr to a
 *      CRC-checked snapshot of the inode (a file open for writing
 *      elsewhere), the others to a SH lock (which waits and takes a dead
 *      writer over). Opens take their VMFS lock (SH read-only, EX, MW);
 *      data reads run under the open's lock.
 *  I5. File data is never journaled; a block is written in full before the
 *      transaction that links it commits.
 *  I6. Data I/O outside the mutex (vmfs_read/vmfs_write fast paths) holds
 *      the inode's rw lock shared from the mapping lookup to the end of its
 *      I/O; whatever frees or relinks the blocks of an open file
 *      (fs_set_size, fs_fallocate, the slow write path, the last writer's
 *      close) holds the mutex and then that rw lock exclusively. Lock
 *      order: fs->mu, ino->rw, ino->map_mu; a fast path never waits for
 *      fs->mu while holding ino->rw.
 *
 * Lock order (deadlock avoidance): FD locks in ascending address order
 * (operations on several FDs look them up first, lock the set sorted, then
 * check that the names still lead to the same FDs, and retry otherwise);
 * then cluster locks, tried without waiting while another cluster lock is
 * held (fs_alloc.c). Locks held by open files are "borrowed" by
 * transactions of this host. Every wait is bounded (lock timeout =
 * 2 x (heartbeat timeout + interval) by default): a wait for a lock held
 * long-term by another host's open file ends in -EBUSY.
 *
 * State of an in-memory inode (one per FD open on this host):
 *
 *    (none) --open RO--> SH --open RW--> EX (convert, waits for others)
 *       |                 ^               | last writer closes, readers left:
 *       +--open RW--> EX -+---------------+ convert EX -> SH
 *       +--open MW--> MW      (a plain open against MW: -EBUSY)
 *    any --last close--> released (freed first if unlinked meanwhile)
 *
 * Mount: read the header; join (claim a slot); read our journal header;
 * replay dead hosts' journals (vmfs_recover: for each other slot that is
 * LIVE or REPLAYING and whose journal holds a committed transaction,
 * lm_takeover_slot() waits for the writer's heartbeat to stop for the
 * timeout, takes its slot over and calls fs_takeover()); then, when a
 * journal header says so (VMFS_JHF_ORPHANS), free the FDs flagged UNLINKED
 * whose opener is gone (recover_orphans). A join on a full heartbeat region
 * reclaims a dead slot (replaying its journal inside lm_join()); the lock
 * manager's reclaim thread takes dead hosts over in the background
 * (fs_takeover_bg, without the mount mutex); retries from the
 * 6th on watch the region for an interval (fs_backoff). A failed commit keeps its locks
 * (lm_lock_forget); an unmount whose own replay fails leaves the slot LIVE
 * (lm_close_noleave) so a survivor replays it.
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "bdev.h"

#define MAX_RETRY 20

/* Error details are per thread: the message of this thread's last failed
 * call on a mount, so threads sharing a mount never read each other's (or a
 * half-written) message. */
static __thread char err_msg[320];
static __thread const struct vmfs *err_fs;
static __thread char mount_err[320]; /* why this thread's last mount failed */

void fs_seterr(struct vmfs *fs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
	va_end(ap);
	err_fs = fs;
}

static void clear_err(struct vmfs *fs)
{
	err_fs = fs;
	err_msg[0] = '\0';
}

const char *vmfs_errmsg(struct vmfs *fs)
{
	if (!fs)
		return mount_err;
	return err_fs == fs ? err_msg : "";
}

const char *vmfs_strerror(int err)
{
	return lm_strerror(err);
}

/* Per-thread xorshift64, seeded from getrandom(): hosts forked from one
 * process must not back off in lockstep (rand() unseeded did). */
static uint64_t jitter(void)
{
	static __thread uint64_t x;
	static __thread pid_t seeded; /* a forked child reseeds */

	if (seeded != getpid()) {
		seeded = getpid();
		if (getrandom(&x, sizeof(x), 0) != (ssize_t)sizeof(x) || !x)
			x = (uint64_t)seeded << 32 ^ fs_now_ns() ^ 1;
	}
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

void fs_backoff(struct vmfs *fs, int tries)
{
	unsigned us = 500u << (tries < 5 ? tries : 5);

	/* A lock a try-once take found busy may be kept by a host that
	 * nobody asked (it would keep it until idle): ask, so its keeper
	 * hands it over within a poll (keep_locks hosts ask, as readers do). */
	if (fs->keep && fs->busy_off && fs->lm) {
		lm_lock_ask(fs->lm, fs->busy_off);
		fs->busy_off = 0;
	}

	if (tries >= 5 && fs->lm && !fs->ro && lm_recover(fs->lm, (int)fs->vh.hb_interval_ms) >= 0)
		return;
	usleep(us + (unsigned)(jitter() % us));
}

int fs_wait_ms(const struct vmfs *fs)
{
	return (int)fs->lock_tmo_ms;
}

struct fs_inode *fs_inode_find(struct vmfs *fs, uint64_t addr)
{
	for (struct fs_inode *i = fs->inodes; i; i = i->next)
		if (i->addr == addr)
			return i;
	return NULL;
}

struct fs_inode *fs_inode_alloc(uint64_t addr)
{
	struct fs_inode *ino = calloc(1, sizeof(*ino));
	pthread_rwlockattr_t a;

	if (!ino)
		return NULL;
	ino->addr = addr;
	/* a stream of fast reads must not starve a truncate */
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&ino->rw, &a);
	pthread_rwlockattr_destroy(&a);
	pthread_mutex_init(&ino->map_mu, NULL);
	return ino;
}

void fs_inode_free(struct fs_inode *ino)
{
	if (!ino)
		return;
	fs_map_drop(ino);
	pthread_rwlock_destroy(&ino->rw);
	pthread_mutex_destroy(&ino->map_mu);
	free(ino);
}

/* ---- mount ------------------------------------------------------------------- */

static int fs_takeover(void *arg, uint32_t dead_slot, uint32_t dead_gen, const uint8_t uuid[16])
{
	struct vmfs *fs = arg;
	int n, rc;

	(void)dead_gen;
	(void)uuid;
	if (dead_slot >= fs->vh.max_hosts)
		return -EINVAL;
	rc = fs_replay(fs, dead_slot, &n);
	if (rc) {
		char d[sizeof(err_msg)]; /* what replay said, kept */

		snprintf(d, sizeof(d), "%s", err_fs == fs ? err_msg : "");
		fs_seterr(fs, "replay of journal %" PRIu32 " failed: %s%s%.220s", dead_slot,
			  vmfs_strerror(rc), d[0] ? ": " : "", d);
	}
	/* >= 0: the count goes into the slot's recovery record */
	return rc < 0 ? rc : n < 0 ? 0 : n;
}

/* The same from the lock manager's reclaim thread (a live host recovering
 * dead hosts in the background). It runs without the mount's mutex: a
 * foreground operation may hold that mutex while it waits for this very
 * slot (the lock manager then treats the slot as busy), so taking it here
 * could let the foreground time out and leave the journal unreplayed.
 * Replay needs no mount state but the device, the lock manager and the
 * journal geometry: it writes only blocks the dead host's locks cover
 * (which no operation of this mount can hold) and that host's journal;
 * flushed_seq is atomic and a race costs at most one extra flush; error
 * messages are per thread. */
static int fs_takeover_bg(void *arg, uint32_t dead_slot, uint32_t dead_gen, const uint8_t uuid[16])
{
	struct vmfs *fs = arg;

	if (fs->no_recover)
		return -EAGAIN; /* left to vmfs_recover() or an operation that waits */
	return fs->broken ? fs->broken : fs_takeover(arg, dead_slot, dead_gen, uuid);
}

static int replay_slot(struct vmfs *fs, uint32_t s)
{
	uint64_t locks[16];
	unsigned n;
	int tmo = (int)(fs->vh.hb_timeout_ms + 4 * fs->vh.hb_interval_ms);
	int rc = fs_journal_pending(fs, s, locks, 16, &n);

	if (rc != 1)
		return rc;
	/* a committed, unretired transaction: its writer is mid-commit (alive)
	 * or dead; the takeover callback replays the journal */
	rc = lm_takeover_slot(fs->lm, s, tmo);
	if (rc == -ETIMEDOUT)
		return 0; /* alive: it retires the transaction itself */
	return rc < 0 ? rc : rc == 1;
}

static int recover_orphans(struct vmfs *fs);

int vmfs_recover(struct vmfs *fs)
{
	struct lm_geom g;
	int done = 0, rc = 0;

	if (fs->ro)
		return 0;
	pthread_mutex_lock(&fs->mu);
	lm_geom_get(fs->lm, &g);
	for (uint32_t s = 0; s < fs->vh.max_hosts && rc >= 0; s++) {
		struct lm_slot_info si;

		if (s == fs->slot)
			continue;
		rc = lm_slot_read(fs->bd, &g, s, &si, NULL, 0);
		if (rc == -EUCLEAN) {
			rc = 0; /* fsck reports it; nothing we can replay */
			continue;
		}
		if (rc || si.never_used || si.state == LM_SLOT_FREE)
			continue;
		rc = replay_slot(fs, s);
		if (rc > 0)
			done++;
	}
	if (rc >= 0)
		rc = recover_orphans(fs);
	pthread_mutex_unlock(&fs->mu);
	return rc < 0 ? rc : done;
}

static int mount_vh(struct vmfs *fs)
{
	char why[256];
	int rc = vmfs_vh_read(fs->bd, &fs->vh, why, sizeof(why));

	if (rc) {
		fs_seterr(fs, "%s", rc == -EUCLEAN ? why : bdev_strerror(rc));
		return rc;
	}
	if (fs->vh.incompat & ~VMFS_INCOMPAT_KNOWN) {
		fs_seterr(fs, "volume header: unknown incompatible features 0x%" PRIx32,
			  fs->vh.incompat);
		return -EUCLEAN;
	}
	if ((fs->vh.ro_compat & ~VMFS_RO_COMPAT_KNOWN) && !fs->ro) {
		fs_seterr(fs, "volume header: unknown read-only-compatible features");
		return -EROFS;
	}
	/* A bad table block may be one torn by a crash, which the replay of
	 * its host's journal rewrites: load again after recovery
	 * (mount_xtab_again()). */
	fs->vh.refresh = 1; /* learn a grow by another host (fs_volume.c V4) */
	rc = vmfs_xtab_load(fs->bd, &fs->vh, why, sizeof(why));
	if (rc == -EUCLEAN && !fs->ro) {
		fs->xtab_bad = 1;
		return 0;
	}
	if (rc)
		fs_seterr(fs, "%s", rc == -EUCLEAN ? why : bdev_strerror(rc));
	return rc;
}

static int mount_xtab_again(struct vmfs *fs)
{
	char why[256];
	int rc;

	if (!fs->xtab_bad)
		return 0;
	rc = vmfs_xtab_load(fs->bd, &fs->vh, why, sizeof(why));
	if (rc)
		fs_seterr(fs, "%s", rc == -EUCLEAN ? why : bdev_strerror(rc));
	fs->xtab_bad = rc != 0;
	return rc;
}

static int mount_join(struct vmfs *fs, const struct vmfs_mount_opts *o)
{
	struct lm_geom g = {fs->vh.hb_off, fs->vh.max_hosts, fs->vh.hb_interval_ms,
			    fs->vh.hb_timeout_ms};
	/* A full heartbeat region: lm_join() reclaims a dead host's slot,
	 * replaying its journal through fs_takeover() (which needs the journal
	 * geometry); live hosts reclaim dead ones in the background too. */
	struct lm_opts lo = {.hostname = o->hostname,
			     .takeover = fs_takeover,
			     .takeover_arg = fs,
			     .reclaim_interval_ms = fs->vh.hb_interval_ms,
			     .reclaim_takeover = fs_takeover_bg,
			     .reclaim_arg = fs,
			     .join_wait_ms = LM_JOIN_WAIT_AUTO};
	int rc;

	fs->jnlog = vmfs_journal_nlog(fs->vh.journal_size);
	rc = lm_open(fs->bd, &g, &lo, &fs->lm);

	if (!rc)
		rc = lm_join(fs->lm);
	if (rc) {
		fs_seterr(fs, "joining the heartbeat region: %s %s", lm_strerror(rc),
			  fs->lm ? lm_errmsg(fs->lm) : "");
		return rc;
	}
	lm_slot(fs->lm, &fs->slot, &fs->gen);
	for (unsigned t = VMFS_RT_FB; t <= VMFS_RT_MAX; t++)
		fs->cursor[t] =
		    (uint32_t)((uint64_t)fs->slot * fs->vh.res[t].ncl / fs->vh.max_hosts);
	return fs_journal_init(fs);
}

int vmfs_mount_bdev(struct bdev *bd, const struct vmfs_mount_opts *opts, struct vmfs **out)
{
	static const struct vmfs_mount_opts defaults;
	const struct vmfs_mount_opts *o = opts ? opts : &defaults;
	struct vmfs *fs = calloc(1, sizeof(*fs));
	int rc;

	*out = NULL;
	if (!fs)
		return -ENOMEM;
	fs->bd = bd;
	fs->ro = o->read_only || (bd->caps & BDEV_CAP_READONLY);
	fs->uid = o->uid;
	fs->gid = o->gid;
	fs->slot = UINT32_MAX;
	fs->no_recover = o->no_recover;
	fs->keep = o->keep_locks && !fs->ro;
	pthread_mutex_init(&fs->mu, NULL);
	pthread_mutex_init(&fs->jmu, NULL);
	rc = mount_vh(fs);
	if (!rc && o->cache_mb >= 0)
		rc = fs_cache_init(fs, o->cache_mb ? (unsigned)o->cache_mb : 32);
	fs->lock_tmo_ms = o->lock_timeout_ms ? o->lock_timeout_ms
					     : 2 * fs->vh.hb_timeout_ms + 2 * fs->vh.hb_interval_ms;
	if (!rc && !fs->ro)
		rc = mount_join(fs, o);
	if (!rc)
		rc = fs_journal_start(fs);
	if (!rc && !fs->ro && !o->no_recover) {
		rc = vmfs_recover(fs);
		rc = rc > 0 ? 0 : rc;
	}
	if (!rc)
		rc = mount_xtab_again(fs);
	if (rc) {
		snprintf(mount_err, sizeof(mount_err), "%s", vmfs_errmsg(fs));
		fs_journal_stop(fs);
		lm_close(fs->lm);
		fs_cache_fini(fs);
		pthread_mutex_destroy(&fs->mu);
		pthread_mutex_destroy(&fs->jmu);
		vmfs_xtab_free(&fs->vh);
		free(fs);
		return rc;
	}
	*out = fs;
	return 0;
}

int vmfs_mount(const char *uri, const struct vmfs_mount_opts *opts, struct vmfs **out)
{
	struct bdev *bd;
	int rc = bdev_open(uri, opts && opts->read_only ? BDEV_O_RDONLY : 0, &bd);

	*out = NULL;
	if (rc)
		return rc;
	rc = vmfs_mount_bdev(bd, opts, out);
	if (rc)
		bdev_close(bd);
	else
		(*out)->own_bd = 1;
	return rc;
}

static int inode_drop(struct vmfs *fs, struct fs_inode *ino);

int vmfs_umount(struct vmfs *fs)
{
	int rc = 0, r;

	if (!fs)
		return -EINVAL;
	if (fs->lm)
		lm_reclaim_stop(fs->lm); /* its callback takes fs->mu */
	pthread_mutex_lock(&fs->mu);
	while (fs->files) {
		struct vmfs_file *f = fs->files;

		fs->files = f->next;
		free(f);
	}
	while (fs->inodes) {
		r = inode_drop(fs, fs->inodes);
		rc = rc ? rc : r;
	}
	fs_journal_stop(fs); /* checkpoint, kept locks released */
	if (fs->broken && !fs->ro) {
		int n;

		/* Redo our own committed transaction; if that fails the slot
		 * stays (LIVE, still) for a survivor to take over and replay. */
		r = fs_replay(fs, fs->slot, &n);
		rc = rc ? rc : r ? r : fs->broken;
		if (r) {
			lm_close_noleave(fs->lm);
			fs->lm = NULL;
		}
	}
	if (fs->lm && !fs->ro && !fs->left) {
		r = lm_leave(fs->lm);
		rc = rc ? rc : r;
	}
	lm_close(fs->lm);
	pthread_mutex_unlock(&fs->mu);
	pthread_mutex_destroy(&fs->mu);
	pthread_mutex_destroy(&fs->jmu);
	fs_cache_fini(fs);
	vmfs_xtab_free(&fs->vh);
	if (fs->own_bd)
		bdev_close(fs->bd);
	free(fs);
	return rc;
}

void vmfs_cache_stats(struct vmfs *fs, struct vmfs_cache_stats *st)
{
	fs_cache_stats(fs, &st->hits, &st->misses, &st->blocks, &st->max_blocks);
}

int vmfs_statfs(struct vmfs *fs, struct vmfs_statfs *st)
{
	int rc;

	memset(st, 0, sizeof(*st));
	if (!fs->left)
		fs_vh_refresh(fs); /* a grow or tune by another host (V4) */
	st->block_size = fs->vh.block_size;
	st->name_max = VMFS_NAME_MAX;
	st->max_hosts = fs->vh.max_hosts;
	st->slot = fs->slot;
	memcpy(st->uuid, fs->vh.uuid, 16);
	snprintf(st->label, sizeof(st->label), "%s", fs->vh.label);
	rc = fs_count_free(fs, VMFS_RT_FB, &st->blocks_free, &st->blocks);
	if (!rc)
		rc = fs_count_free(fs, VMFS_RT_FD, &st->files_free, &st->files);
	if (!rc && fs->vh.xtab_off) {
		/* FDs can grow into free file blocks (up to the table's room):
		 * count those, as file systems with dynamic inodes do */
		uint64_t room = vmfs_ncl_max(&fs->vh, VMFS_RT_FD) - vmfs_ncl(&fs->vh, VMFS_RT_FD);
		uint64_t more = (st->blocks_free < room ? st->blocks_free : room) *
				vmfs_xt_nres(&fs->vh, VMFS_RT_FD);

		st->files += more;
		st->files_free += more;
	}
	return rc;
}

/* ---- paths -------------------------------------------------------------------- */

static int next_comp(const char **p, const char **name, size_t *len)
{
	while (**p == '/')
		(*p)++;
	if (!**p)
		return 0;
	*name = *p;
	while (**p && **p != '/')
		(*p)++;
	*len = (size_t)(*p - *name);
	return *len > VMFS_NAME_MAX ? -ENAMETOOLONG : 1;
}

/* ---- optimistic reads (fs_int.h) ----------------------------------------------- */

#define OPT_TRIES 6 /* waits of 1, 2, 4, 8, 16 ms for a writer elsewhere */
/* After asking an EX holder for the lock (hand-over), looks every 5 ms for
 * up to ~0.5 s: a host keeping the lock gives it up within its keeper's
 * poll plus a checkpoint. A holder that has not answered an ask for the
 * same generation within ASK_LONG_MS is a long-term one (a file open for
 * writing there): later reads go to the snapshot at once. */
#define OPT_TRIES_ASKED (OPT_TRIES + 100)
#define ASK_LONG_MS	500

/* Whether to wait for an answer from the EX holder of the lock at off seen
 * at generation gen; marks the record (lm_lock_ask) the first time. */
static int opt_ask(struct vmfs *fs, uint64_t off, uint64_t gen)
{
	struct fs_asked *a = &fs->asked[(off / VMFS_UNIT) % 64];
	int64_t now = (int64_t)fs_now_ns();

	if (fs->ro || !fs->lm || !fs->keep)
		return 0; /* hosts that keep locks ask (the setting is per cluster) */
	if (a->off == off && a->gen == gen)
		return now - a->ns < (int64_t)ASK_LONG_MS * 1000000;
	a->off = off;
	a->gen = gen;
	a->ns = now;
	return lm_lock_ask(fs->lm, off) >= 0;
}

/* The lock record of FD addr: its generation, and whether another host
 * holds it exclusively. */
static int opt_record(struct vmfs *fs, uint64_t addr, uint64_t *gen, int *ex)
{
	struct lm_lock_info li;
	int rc = lm_lock_read(fs->bd, vmfs_addr_off(&fs->vh, addr), fs->vh.max_hosts, &li, NULL, 0);

	if (rc)
		return rc;
	*gen = li.gen;
	*ex = li.mode == LM_MODE_EX && !(li.nholders && li.holders[0].slot == fs->slot &&
					 li.holders[0].gen == fs->gen && !fs->ro);
	return 0;
}

int fs_opt_read(struct vmfs *fs, uint64_t addr, fs_opt_fn fn, void *arg)
{
	struct fs_inode *ino = fs_inode_find(fs, addr);
	struct fs_optctx c = {.fs = fs, .own = vmfs_addr_off(&fs->vh, addr)};
	uint64_t g2;
	int ex, rc;

	if (ino && ino->lk) { /* held here in any mode: no writer elsewhere */
		if (ino->mode == LM_MODE_MW)
			return fn(fs, addr, arg);
		c.gen = lm_lock_gen(ino->lk);
		c.held = 1;
		fs_opt_enter(&c);
		rc = fn(fs, addr, arg);
		fs_opt_leave(&c, 0);
		return rc;
	}
	if (vmfs_addr_check(&fs->vh, addr, VMFS_RT_FD, NULL, 0))
		return -EUCLEAN;
	for (int t = 0, tries = OPT_TRIES, asked = 0; t < tries; t++) {
		if (t)
			usleep(t < OPT_TRIES ? 1000u << (t - 1) : 5000u);
		rc = opt_record(fs, addr, &c.gen, &ex);
		if (rc)
			return rc == -EUCLEAN ? -EBUSY : rc; /* the locking path reports it */
		if (ex) {
			if (!asked++ && opt_ask(fs, c.own, c.gen))
				tries =
				    OPT_TRIES_ASKED; /* it may be kept: wait for the hand-over */
			continue;
		}
		fs_opt_enter(&c);
		rc = fn(fs, addr, arg);
		if (c.reads == 0 && c.hits > 0) {
			/* everything came from the cache, current at the
			 * generation just read (fs_cache.c C2) */
			fs_opt_leave(&c, 0);
			return rc;
		}
		if (opt_record(fs, addr, &g2, &ex) == 0 && !ex && g2 == c.gen) {
			fs_opt_leave(&c, 1);
			return rc;
		}
		fs_opt_leave(&c, 0);
	}
	return -EBUSY;
}

static int lookup_in(struct tx *tx, uint64_t dir, const char *name, size_t len,
		     struct vmfs_dirent *e)
{
	struct vmfs_fd *fd = malloc(sizeof(*fd));
	int rc = fd ? fd_load(tx, dir, fd) : -ENOMEM;

	if (!rc && fd->type != VMFS_FT_DIR)
		rc = -ENOTDIR;
	if (!rc)
		rc = dir_lookup(tx, fd, name, len, e);
	free(fd);
	return rc;
}

struct lookup_arg {
	const char *name;
	size_t len;
	struct vmfs_dirent *e;
};

static int lookup_fn(struct vmfs *fs, uint64_t dir, void *arg)
{
	struct lookup_arg *a = arg;
	struct tx tx;
	int rc;

	tx_begin(fs, &tx);
	rc = lookup_in(&tx, dir, a->name, a->len, a->e);
	tx_abort(&tx);
	return rc;
}

/* Looks name up in directory dir: an optimistic read (no lock, nothing
 * written); while another host keeps changing the directory, under a
 * shared lock (which also takes a dead writer over). */
static int lookup(struct vmfs *fs, uint64_t dir, const char *name, size_t len,
		  struct vmfs_dirent *e)
{
	struct lookup_arg a = {name, len, e};
	struct tx tx;
	int rc = fs_opt_read(fs, dir, lookup_fn, &a);

	if (rc != -EBUSY)
		return rc;
	tx_begin(fs, &tx);
	rc = tx_lock_fd(&tx, dir, LM_MODE_SH);
	if (!rc)
		rc = lookup_in(&tx, dir, name, len, e);
	tx_abort(&tx);
	return rc;
}

/* Resolves path to an FD address. */
static int resolve(struct vmfs *fs, const char *path, uint64_t *addr)
{
	const char *p = path, *name;
	struct vmfs_dirent e;
	uint64_t cur = fs->vh.root_fd;
	size_t len;
	int rc;

	if (!path)
		return -EINVAL;
	if (!fs_at_base(&p, &cur) && path[0] != '/')
		return -EINVAL; /* else a by-inode call's base (fs_at.c) */
	while ((rc = next_comp(&p, &name, &len)) == 1) {
		rc = lookup(fs, cur, name, len, &e);
		if (rc)
			return rc;
		cur = e.fd;
	}
	*addr = cur;
	return rc;
}

/* Resolves the parent of path and returns the last component. */
static int resolve_parent(struct vmfs *fs, const char *path, uint64_t *dir, const char **name,
			  size_t *len)
{
	char *copy;
	const char *end;
	int rc;

	if (!path || (path[0] != '/' && path[0] != FS_AT_BASE0 && path[0] != FS_AT_BASE1))
		return -EINVAL;
	end = path + strlen(path);
	while (end > path + 1 && end[-1] == '/')
		end--;
	*name = end;
	while (*name > path && (*name)[-1] != '/')
		(*name)--;
	*len = (size_t)(end - *name);
	if (*len == 0)
		return -EBUSY; /* the root */
	if (*len > VMFS_NAME_MAX)
		return -ENAMETOOLONG;
	if ((*len == 1 && **name == '.') || (*len == 2 && !strncmp(*name, "..", 2)))
		return -EINVAL;
	copy = strndup(path, (size_t)(*name - path));
	if (!copy)
		return -ENOMEM;
	rc = resolve(fs, copy, dir);
	free(copy);
	return rc;
}

static int enter(struct vmfs *fs, int write)
{
	pthread_mutex_lock(&fs->mu);
	if (fs->broken || (fs->lm && lm_fenced(fs->lm))) {
		pthread_mutex_unlock(&fs->mu);
		return fs->broken ? fs->broken : -LM_E_FENCED; /* remount */
	}
	if (fs->left) { /* vmfs_tune() changed the timing and left */
		pthread_mutex_unlock(&fs->mu);
		return -ESTALE;
	}
	if (write && fs->ro) {
		pthread_mutex_unlock(&fs->mu);
		return -EROFS;
	}
	clear_err(fs);
	return 0;
}

static int leave(struct vmfs *fs, int rc)
{
	pthread_mutex_unlock(&fs->mu);
	return rc == -EAGAIN ? -EBUSY : rc; /* retries exhausted: contention */
}

/* The same for fs_xattr.c and fs_falloc.c (fs_int.h). */
int fs_enter(struct vmfs *fs, int write)
{
	return enter(fs, write);
}

int fs_leave(struct vmfs *fs, int rc)
{
	return leave(fs, rc);
}

int fs_resolve(struct vmfs *fs, const char *path, uint64_t *addr)
{
	return resolve(fs, path, addr);
}

/* Locks the FDs in a[0..n) EX in ascending order. */
static int lock_set(struct tx *tx, uint64_t *a, unsigned n)
{
	int rc = 0;

	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && a[j - 1] > a[j]; j--) {
			uint64_t t = a[j];

			a[j] = a[j - 1];
			a[j - 1] = t;
		}
	for (unsigned i = 0; i < n && !rc; i++)
		if (a[i] && (i == 0 || a[i] != a[i - 1]))
			rc = tx_lock_fd(tx, a[i], LM_MODE_EX);
	return rc;
}

/* ---- attributes ---------------------------------------------------------------- */

static int stat_fn(struct vmfs *fs, uint64_t addr, void *arg)
{
	struct tx tx;
	int rc;

	tx_begin(fs, &tx);
	rc = fd_load(&tx, addr, arg);
	tx_abort(&tx);
	return rc;
}

/* The inode: an optimistic read; when another host holds it exclusively
 * (a file open for writing there), a CRC-checked snapshot of its one block;
 * when that fails too, under a shared lock (waits; takes a dead host over). */
static int stat_addr(struct vmfs *fs, uint64_t addr, struct vmfs_stat *st)
{
	struct vmfs_fd *fd = malloc(sizeof(*fd));
	struct tx tx;
	int rc = fd ? fs_opt_read(fs, addr, stat_fn, fd) : -ENOMEM;

	if (rc == -EBUSY)
		rc = fd_peek(fs, addr, fd);
	if (rc == -EUCLEAN && !fs->ro) {
		tx_begin(fs, &tx);
		rc = tx_lock_fd(&tx, addr, LM_MODE_SH);
		if (!rc)
			rc = fd_load(&tx, addr, fd);
		tx_abort(&tx);
	}
	if (!rc)
		fd_to_stat(fs, fd, st);
	free(fd);
	return rc;
}

int vmfs_getattr(struct vmfs *fs, const char *path, struct vmfs_stat *st)
{
	uint64_t a;
	int rc = enter(fs, 0);

	if (rc)
		return rc;
	rc = resolve(fs, path, &a);
	if (!rc)
		rc = stat_addr(fs, a, st);
	return leave(fs, rc);
}

enum { SA_MODE = 1, SA_OWNER = 2, SA_TIMES = 4 };
struct setattr {
	unsigned what;
	uint32_t mode, uid, gid;
	uint64_t atime, mtime;
};

static uint64_t pick_time(uint64_t want, uint64_t old, uint64_t now)
{
	return want == VMFS_TIME_NOW ? now : want == VMFS_TIME_OMIT ? old : want;
}

static int setattr(struct vmfs *fs, const char *path, const struct setattr *sa)
{
	struct vmfs_fd *fd = malloc(sizeof(*fd));
	uint64_t a, now = fs_now_ns();
	struct tx tx;
	int rc = enter(fs, 1);

	if (rc || !fd) {
		free(fd);
		return rc ? rc : leave(fs, -ENOMEM);
	}
	tx_begin(fs, &tx);
	rc = resolve(fs, path, &a);
	if (!rc)
		rc = tx_lock_fd(&tx, a, LM_MODE_EX);
	if (!rc)
		rc = fd_load(&tx, a, fd);
	if (!rc) {
		if (sa->what & SA_MODE)
			fd->mode = sa->mode & 07777;
		if ((sa->what & SA_OWNER) && sa->uid != UINT32_MAX)
			fd->uid = sa->uid;
		if ((sa->what & SA_OWNER) && sa->gid != UINT32_MAX)
			fd->gid = sa->gid;
		if (sa->what & SA_TIMES) {
			fd->atime_ns = pick_time(sa->atime, fd->atime_ns, now);
			fd->mtime_ns = pick_time(sa->mtime, fd->mtime_ns, now);
		}
		fd->ctime_ns = now;
		rc = fd_store(&tx, fd);
	}
	if (!rc)
		rc = tx_commit(&tx);
	else
		tx_abort(&tx);
	free(fd);
	return leave(fs, rc);
}

int vmfs_chmod(struct vmfs *fs, const char *path, uint32_t mode)
{
	struct setattr sa = {.what = SA_MODE, .mode = mode};

	return setattr(fs, path, &sa);
}

int vmfs_chown(struct vmfs *fs, const char *path, uint32_t uid, uint32_t gid)
{
	struct setattr sa = {.what = SA_OWNER, .uid = uid, .gid = gid};

	return setattr(fs, path, &sa);
}

int vmfs_utimens(struct vmfs *fs, const char *path, uint64_t atime_ns, uint64_t mtime_ns)
{
	struct setattr sa = {.what = SA_TIMES, .atime = atime_ns, .mtime = mtime_ns};

	return setattr(fs, path, &sa);
}

int vmfs_truncate(struct vmfs *fs, const char *path, uint64_t size)
{
	uint64_t a;
	int rc = enter(fs, 1);

	if (rc)
		return rc;
	rc = resolve(fs, path, &a);
	if (!rc)
		rc = fs_set_size(fs, a, size);
	return leave(fs, rc);
}

/* ---- creating names ------------------------------------------------------------- */

struct newobj {
	uint32_t type, mode;
	const char *target; /* symlink */
	size_t tlen;
	const struct vmfs_owner *own;	 /* NULL: the mount's uid/gid */
	uint32_t rdev_major, rdev_minor; /* VMFS_FT_CHR / BLK */
};

/* Creates name in dir (locked EX in tx, loaded in d). */
static int make_obj(struct tx *tx, struct vmfs_fd *d, const char *name, size_t len,
		    const struct newobj *no, uint64_t *out)
{
	struct vmfs *fs = tx->fs;
	struct vmfs_fd *fd = calloc(1, sizeof(*fd));
	uint64_t now = fs_now_ns(), a;
	int rc = fd ? fs_alloc(tx, VMFS_RT_FD, &a) : -ENOMEM;

	if (!rc)
		rc = tx_lock_fd(tx, a, LM_MODE_EX);
	if (!rc) {
		fd->self = a;
		fd->type = no->type;
		fd->mode = no->mode & 07777;
		fd->uid = no->own ? no->own->uid : fs->uid;
		fd->gid = no->own ? no->own->gid : fs->gid;
		fd->atime_ns = fd->mtime_ns = fd->ctime_ns = fd->btime_ns = now;
		fd->nlink = no->type == VMFS_FT_DIR ? 2 : 1;
		fd->generation = now;
		fd->amode = VMFS_AM_INLINE;
		if (no->type == VMFS_FT_DIR) {
			fd->parent = d->self;
			rc = dir_init(tx, fd);
			d->nlink++;
		} else if (no->type == VMFS_FT_LNK) {
			/* inline, or (> 3840 bytes) a sub-block written now */
			rc = fs_write_new(tx, fd, no->target, no->tlen);
			fd->mtime_ns = fd->ctime_ns = now;
		} else if (vmfs_ft_device(no->type)) {
			fd->rdev_major = no->rdev_major;
			fd->rdev_minor = no->rdev_minor;
		}
	}
	if (!rc)
		rc = fd_store(tx, fd);
	if (!rc)
		rc = dir_add(tx, d, name, len, a, (uint8_t)no->type);
	if (!rc) {
		d->mtime_ns = d->ctime_ns = now;
		rc = fd_store(tx, d);
	}
	if (!rc)
		*out = a;
	free(fd);
	return rc;
}

/* Creates path (or finds it: 1, unless excl: -EEXIST). keep != NULL: the new
 * FD's lock, taken EX by the creating transaction, stays held and is
 * returned in *keep, so no other host can lock the new file between its
 * creation and the caller's open (an O_EXCL create that lost its file to a
 * stat of another host, then retried, found its own file: -EEXIST, and a
 * failed open left an empty file behind; issue 9 defect 8). */
static int create(struct vmfs *fs, const char *path, const struct newobj *no, int excl,
		  uint64_t *out, struct lm_lock **keep)
{
	struct vmfs_fd *d = malloc(sizeof(*d));
	struct vmfs_dirent e;
	const char *name;
	uint64_t dir;
	size_t len;
	int rc = d ? resolve_parent(fs, path, &dir, &name, &len) : -ENOMEM;

	if (rc == -EBUSY) /* the root, which exists (open(2) and mkdir(2) say so) */
		rc = no->type == VMFS_FT_REG ? -EISDIR : -EEXIST;
	for (int tries = 0; !rc && tries < MAX_RETRY; tries++) {
		struct tx tx;

		tx_begin(fs, &tx);
		rc = tx_lock_fd(&tx, dir, LM_MODE_EX);
		if (!rc)
			rc = fd_load(&tx, dir, d);
		if (!rc && d->type != VMFS_FT_DIR)
			rc = -ENOTDIR;
		if (!rc) {
			rc = dir_lookup(&tx, d, name, len, &e);
			if (rc == 0) {
				*out = e.fd;
				rc = excl ? -EEXIST : 1;
			} else if (rc == -ENOENT) {
				rc = make_obj(&tx, d, name, len, no, out);
				if (!rc && keep)
					*keep = tx_detach(&tx, *out);
			}
		}
		if (!rc) {
			rc = tx_commit(&tx);
			if (rc && keep && *keep) {
				fs_unlock(fs, *keep); /* forgotten when broken */
				*keep = NULL;
			}
		} else {
			tx_abort(&tx);
		}
		if (rc != -EAGAIN || tries == MAX_RETRY - 1)
			break;
		fs_backoff(fs, tries);
		rc = 0;
	}
	free(d);
	return rc;
}

int vmfs_mkdir_as(struct vmfs *fs, const char *path, uint32_t mode, const struct vmfs_owner *own)
{
	struct newobj no = {VMFS_FT_DIR, mode, NULL, 0, own, 0, 0};
	uint64_t a;
	int rc = enter(fs, 1);

	return rc ? rc : leave(fs, create(fs, path, &no, 1, &a, NULL));
}

int vmfs_mkdir(struct vmfs *fs, const char *path, uint32_t mode)
{
	return vmfs_mkdir_as(fs, path, mode, NULL);
}

int vmfs_symlink_as(struct vmfs *fs, const char *target, const char *linkpath,
		    const struct vmfs_owner *own)
{
	struct newobj no = {VMFS_FT_LNK, 0777, target, target ? strlen(target) : 0, own, 0, 0};
	uint64_t a;
	int rc = enter(fs, 1);

	if (rc)
		return rc;
	if (no.tlen == 0)
		return leave(fs, -ENOENT);
	if (no.tlen > VMFS_SYMLINK_MAX)
		return leave(fs, -ENAMETOOLONG);
	return leave(fs, create(fs, linkpath, &no, 1, &a, NULL));
}

int vmfs_symlink(struct vmfs *fs, const char *target, const char *linkpath)
{
	return vmfs_symlink_as(fs, target, linkpath, NULL);
}

/* S_IFMT of mknod(2) -> file type; 0 for what mknod cannot make. */
static uint32_t mknod_type(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case 0:
	case S_IFREG: return VMFS_FT_REG;
	case S_IFIFO: return VMFS_FT_FIFO;
	case S_IFCHR: return VMFS_FT_CHR;
	case S_IFBLK: return VMFS_FT_BLK;
	case S_IFSOCK: return VMFS_FT_SOCK;
	default: return 0;
	}
}

int vmfs_mknod_as(struct vmfs *fs, const char *path, uint32_t mode, uint64_t rdev,
		  const struct vmfs_owner *own)
{
	struct newobj no = {mknod_type(mode), mode, NULL, 0, own, 0, 0};
	uint64_t a;
	int rc = enter(fs, 1);

	if (rc)
		return rc;
	if (!no.type)
		return leave(fs, -EINVAL);
	if (vmfs_ft_device(no.type)) {
		no.rdev_major = major((dev_t)rdev);
		no.rdev_minor = minor((dev_t)rdev);
	}
	return leave(fs, create(fs, path, &no, 1, &a, NULL));
}

int vmfs_mknod(struct vmfs *fs, const char *path, uint32_t mode, uint64_t rdev)
{
	return vmfs_mknod_as(fs, path, mode, rdev, NULL);
}

struct linkread {
	struct vmfs_fd fd;
	char target[VMFS_SYMLINK_MAX + 1];
};

/* Loads the symlink and its target (inline, or its sub-block: a symlink is
 * never changed, and freeing it takes its lock EX, which fs_opt_read()
 * notices). */
static int link_fn(struct vmfs *fs, uint64_t addr, void *arg)
{
	struct linkread *l = arg;
	struct tx tx;
	int rc;

	tx_begin(fs, &tx);
	rc = fd_load(&tx, addr, &l->fd);
	if (!rc && l->fd.type != VMFS_FT_LNK)
		rc = -EINVAL;
	if (!rc)
		rc = fs_read_small(&tx, &l->fd, l->target, VMFS_SYMLINK_MAX);
	tx_abort(&tx);
	return rc;
}

int vmfs_readlink(struct vmfs *fs, const char *path, char *buf, size_t size)
{
	struct linkread *l = malloc(sizeof(*l));
	uint64_t a;
	struct tx tx;
	int rc = enter(fs, 0);

	if (rc || !l) {
		free(l);
		return rc ? rc : leave(fs, -ENOMEM);
	}
	rc = resolve(fs, path, &a);
	if (!rc)
		rc = fs_opt_read(fs, a, link_fn, l);
	if (rc == -EBUSY) { /* changing elsewhere: under a shared lock */
		tx_begin(fs, &tx);
		rc = tx_lock_fd(&tx, a, LM_MODE_SH);
		tx_abort(&tx);
		rc = rc ? rc : link_fn(fs, a, l);
	}
	if (!rc && size) {
		size_t n = l->fd.size < size - 1 ? (size_t)l->fd.size : size - 1;

		memcpy(buf, l->target, n);
		buf[n] = '\0';
	}
	if (!rc)
		rc = (int)l->fd.size;
	free(l);
	return leave(fs, rc);
}

/* ---- removing names ---------------------------------------------------------------- */

/* Drops one link of fd (locked EX in tx) whose entry is being removed.
 * Frees it when that was the last link and no open file holds it here;
 * -EAGAIN when freeing does not fit the transaction. */
static int drop_link(struct tx *tx, struct vmfs_fd *fd, struct vmfs_fd *parent)
{
	struct fs_inode *ino = fs_inode_find(tx->fs, fd->self);

	fd->ctime_ns = fs_now_ns();
	if (fd->type == VMFS_FT_DIR) {
		parent->nlink--;
		return fs_free_fd(tx, fd);
	}
	if (fd->nlink > 1) {
		fd->nlink--;
		return fd_store(tx, fd);
	}
	if (ino) {
		/* freed at the last close, or by recovery after a crash */
		int rc = fs_journal_set_orphans(tx->fs);

		if (rc)
			return rc;
		ino->unlinked = 1;
		fd->nlink = 0;
		fd->flags |= VMFS_FDF_UNLINKED;
		return fd_store(tx, fd);
	}
	return fs_free_fd(tx, fd);
}

/* Shrinks a file to nothing in its own transactions (before removing its
 * last link, when freeing it does not fit one transaction). */
static int empty_file(struct vmfs *fs, uint64_t addr)
{
	return fs_set_size(fs, addr, 0);
}

static int remove_name(struct vmfs *fs, const char *path, int want_dir)
{
	struct vmfs_fd *d = malloc(sizeof(*d)), *fd = malloc(sizeof(*fd));
	struct vmfs_dirent e;
	const char *name;
	uint64_t dir, set[2];
	size_t len;
	int rc = d && fd ? resolve_parent(fs, path, &dir, &name, &len) : -ENOMEM, tries;

	if (!rc)
		rc = lookup(fs, dir, name, len, &e);
	for (tries = 0; !rc && tries < MAX_RETRY; tries++) {
		struct tx tx;
		uint64_t n = 0;
		int big = 0;

		tx_begin(fs, &tx);
		set[0] = dir;
		set[1] = e.fd;
		rc = lock_set(&tx, set, 2);
		if (!rc)
			rc = fd_load(&tx, dir, d);
		if (!rc)
			rc = dir_lookup(&tx, d, name, len, &e);
		if (!rc && e.fd != set[0] && e.fd != set[1])
			rc = -EAGAIN; /* the name moved meanwhile */
		if (!rc)
			rc = fd_load(&tx, e.fd, fd);
		if (!rc && want_dir && fd->type != VMFS_FT_DIR)
			rc = -ENOTDIR;
		if (!rc && !want_dir && fd->type == VMFS_FT_DIR)
			rc = -EISDIR;
		if (!rc && want_dir)
			rc = dir_count(&tx, fd, &n);
		if (!rc && n)
			rc = -ENOTEMPTY;
		if (!rc)
			rc = dir_remove(&tx, d, name, len);
		if (!rc) {
			rc = drop_link(&tx, fd, d);
			big = rc == -FS_E_TOOBIG;
		}
		if (!rc) {
			d->mtime_ns = d->ctime_ns = fs_now_ns();
			rc = fd_store(&tx, d);
		}
		if (!rc) {
			rc = tx_commit(&tx);
			break;
		}
		tx_abort(&tx);
		if (big) /* too big to free in one transaction: empty it first */
			rc = empty_file(fs, e.fd);
		else if (rc == -EAGAIN)
			fs_backoff(fs, tries);
		if (rc && rc != -EAGAIN)
			break;
		rc = 0;
	}
	free(d);
	free(fd);
	return !rc && tries == MAX_RETRY ? -EBUSY : rc;
}

int vmfs_unlink(struct vmfs *fs, const char *path)
{
	int rc = enter(fs, 1);

	return rc ? rc : leave(fs, remove_name(fs, path, 0));
}

int vmfs_rmdir(struct vmfs *fs, const char *path)
{
	int rc = enter(fs, 1);

	return rc ? rc : leave(fs, remove_name(fs, path, 1));
}

/* ---- link and rename ------------------------------------------------------------------- */

int vmfs_link(struct vmfs *fs, const char *oldpath, const char *newpath)
{
	struct vmfs_fd *d = malloc(sizeof(*d)), *fd = malloc(sizeof(*fd));
	struct vmfs_dirent e;
	const char *name;
	uint64_t a, dir, set[2];
	size_t len;
	int rc = enter(fs, 1);

	if (rc) {
		free(d);
		free(fd);
		return rc;
	}
	rc = d && fd ? resolve(fs, oldpath, &a) : -ENOMEM;
	if (!rc)
		rc = resolve_parent(fs, newpath, &dir, &name, &len);
	for (int tries = 0; !rc && tries < MAX_RETRY; tries++) {
		struct tx tx;

		tx_begin(fs, &tx);
		set[0] = dir;
		set[1] = a;
		rc = lock_set(&tx, set, 2);
		if (!rc)
			rc = fd_load(&tx, a, fd);
		if (!rc)
			rc = fd_load(&tx, dir, d);
		if (!rc && fd->type == VMFS_FT_DIR)
			rc = -EPERM;
		if (!rc && d->type != VMFS_FT_DIR)
			rc = -ENOTDIR;
		if (!rc && fd->nlink >= 65000)
			rc = -EMLINK;
		if (!rc)
			rc = dir_lookup(&tx, d, name, len, &e) == 0 ? -EEXIST : 0;
		if (!rc)
			rc = dir_add(&tx, d, name, len, a, (uint8_t)fd->type);
		if (!rc) {
			fd->nlink++;
			fd->ctime_ns = d->mtime_ns = d->ctime_ns = fs_now_ns();
			rc = fd_store(&tx, fd);
		}
		if (!rc)
			rc = fd_store(&tx, d);
		if (!rc)
			rc = tx_commit(&tx);
		else
			tx_abort(&tx);
		if (rc != -EAGAIN || tries == MAX_RETRY - 1)
			break;
		fs_backoff(fs, tries);
		rc = 0;
	}
	free(d);
	free(fd);
	return leave(fs, rc);
}

/* 1 if directory `dir` is `anc` or below it. */
static int is_below(struct vmfs *fs, uint64_t dir, uint64_t anc)
{
	struct vmfs_fd *fd = malloc(sizeof(*fd));
	int rc = fd ? 0 : -ENOMEM;

	for (unsigned depth = 0; !rc && depth < 4096; depth++) {
		if (dir == anc) {
			rc = 1;
			break;
		}
		if (dir == fs->vh.root_fd)
			break;
		rc = fd_peek(fs, dir, fd);
		dir = fd->parent;
	}
	free(fd);
	return rc;
}

struct ren {
	uint64_t d1, d2;
	const char *n1, *n2;
	size_t l1, l2;
	uint64_t c, t;	/* moved FD, replaced FD (0: none) */
	unsigned flags; /* VMFS_RENAME_* */
};

/* RENAME_EXCHANGE under the locks of rename_tx(): from and to swap the FDs
 * they name; directories change parent (and their parents' link counts). */
static int exchange_tx(struct tx *tx, struct ren *r, struct vmfs_fd *p1, struct vmfs_fd *p2,
		       struct vmfs_fd *c, struct vmfs_fd *t)
{
	uint64_t now = fs_now_ns();
	int rc = dir_remove(tx, p1, r->n1, r->l1);

	if (!rc)
		rc = dir_remove(tx, p2, r->n2, r->l2);
	if (!rc)
		rc = dir_add(tx, p1, r->n1, r->l1, r->t, (uint8_t)t->type);
	if (!rc)
		rc = dir_add(tx, p2, r->n2, r->l2, r->c, (uint8_t)c->type);
	if (rc)
		return rc;
	if (p1 != p2) {
		if (c->type == VMFS_FT_DIR) {
			c->parent = r->d2;
			p1->nlink--;
			p2->nlink++;
		}
		if (t->type == VMFS_FT_DIR) {
			t->parent = r->d1;
			p2->nlink--;
			p1->nlink++;
		}
	}
	c->ctime_ns = t->ctime_ns = now;
	p1->mtime_ns = p1->ctime_ns = p2->mtime_ns = p2->ctime_ns = now;
	rc = fd_store(tx, c);
	if (!rc)
		rc = fd_store(tx, t);
	if (!rc)
		rc = fd_store(tx, p1);
	if (!rc && p2 != p1)
		rc = fd_store(tx, p2);
	return rc;
}

static int rename_tx(struct vmfs *fs, struct ren *r, struct vmfs_fd **v)
{
	struct vmfs_fd *p1 = v[0], *p2 = r->d1 == r->d2 ? v[0] : v[1], *c = v[2], *t = v[3];
	uint64_t set[4] = {r->d1, r->d2, r->c, r->t}, n = 0;
	struct vmfs_dirent e;
	struct tx tx;
	int rc;

	tx_begin(fs, &tx);
	rc = lock_set(&tx, set, 4);
	if (!rc)
		rc = fd_load(&tx, r->d1, p1);
	if (!rc && p2 != p1)
		rc = fd_load(&tx, r->d2, p2);
	if (!rc && p2->type != VMFS_FT_DIR)
		rc = -ENOTDIR;
	if (!rc)
		rc = dir_lookup(&tx, p1, r->n1, r->l1, &e);
	if (!rc && e.fd != r->c)
		rc = -EAGAIN;
	if (!rc) {
		rc = dir_lookup(&tx, p2, r->n2, r->l2, &e);
		if (rc == -ENOENT && !r->t)
			rc = 0;
		else if (rc == 0 && e.fd != r->t)
			rc = -EAGAIN;
	}
	/* decided under the directories' locks: atomic against every host */
	if (!rc && (r->flags & VMFS_RENAME_NOREPLACE) && r->t)
		rc = -EEXIST;
	if (!rc && (r->flags & VMFS_RENAME_EXCHANGE) && !r->t)
		rc = -ENOENT;
	if (!rc && r->t == r->c)
		rc = 1; /* same file: nothing to do */
	if (!rc)
		rc = fd_load(&tx, r->c, c);
	if (!rc && (r->flags & VMFS_RENAME_EXCHANGE)) {
		rc = fd_load(&tx, r->t, t);
		if (!rc)
			rc = exchange_tx(&tx, r, p1, p2, c, t);
		if (!rc)
			return tx_commit(&tx);
		tx_abort(&tx);
		return rc;
	}
	if (!rc && r->t) {
		rc = fd_load(&tx, r->t, t);
		if (!rc && c->type == VMFS_FT_DIR && t->type != VMFS_FT_DIR)
			rc = -ENOTDIR;
		if (!rc && c->type != VMFS_FT_DIR && t->type == VMFS_FT_DIR)
			rc = -EISDIR;
		if (!rc && t->type == VMFS_FT_DIR)
			rc = dir_count(&tx, t, &n);
		if (!rc && n)
			rc = -ENOTEMPTY;
		if (!rc)
			rc = dir_remove(&tx, p2, r->n2, r->l2);
		if (!rc)
			rc = drop_link(&tx, t, p2);
	}
	if (!rc)
		rc = dir_remove(&tx, p1, r->n1, r->l1);
	if (!rc)
		rc = dir_add(&tx, p2, r->n2, r->l2, r->c, (uint8_t)c->type);
	if (!rc) {
		uint64_t now = fs_now_ns();

		if (c->type == VMFS_FT_DIR && p1 != p2) {
			c->parent = r->d2;
			p1->nlink--;
			p2->nlink++;
		}
		c->ctime_ns = p1->mtime_ns = p1->ctime_ns = p2->mtime_ns = p2->ctime_ns = now;
		rc = fd_store(&tx, c);
		if (!rc)
			rc = fd_store(&tx, p1);
		if (!rc && p2 != p1)
			rc = fd_store(&tx, p2);
	}
	if (!rc)
		return tx_commit(&tx);
	tx_abort(&tx);
	return rc == 1 ? 0 : rc;
}

static int rename_prep(struct vmfs *fs, const char *from, const char *to, unsigned flags,
		       struct ren *r)
{
	struct vmfs_dirent e;
	int rc = resolve_parent(fs, from, &r->d1, &r->n1, &r->l1);

	r->flags = flags;
	if (!rc)
		rc = resolve_parent(fs, to, &r->d2, &r->n2, &r->l2);
	if (!rc)
		rc = lookup(fs, r->d1, r->n1, r->l1, &e);
	if (rc)
		return rc;
	r->c = e.fd;
	rc = lookup(fs, r->d2, r->n2, r->l2, &e);
	r->t = rc == 0 ? e.fd : 0;
	if (rc && rc != -ENOENT)
		return rc;
	if ((flags & VMFS_RENAME_NOREPLACE) && r->t)
		return -EEXIST; /* checked again under the locks */
	if ((flags & VMFS_RENAME_EXCHANGE) && !r->t)
		return -ENOENT;
	rc = is_below(fs, r->d2, r->c);
	if (rc == 0 && (flags & VMFS_RENAME_EXCHANGE))
		rc = is_below(fs, r->d1, r->t);
	return rc == 1 ? -EINVAL : rc;
}

int vmfs_rename(struct vmfs *fs, const char *from, const char *to)
{
	return vmfs_rename2(fs, from, to, 0);
}

int vmfs_rename2(struct vmfs *fs, const char *from, const char *to, unsigned flags)
{
	struct vmfs_fd *v[4] = {0};
	struct ren r;
	int rc = enter(fs, 1);

	if (rc)
		return rc;
	if ((flags & ~(unsigned)(VMFS_RENAME_NOREPLACE | VMFS_RENAME_EXCHANGE)) ||
	    flags == (VMFS_RENAME_NOREPLACE | VMFS_RENAME_EXCHANGE))
		return leave(fs, -EINVAL);
	for (int i = 0; i < 4; i++)
		if (!(v[i] = calloc(1, sizeof(struct vmfs_fd))))
			rc = -ENOMEM;
	for (int tries = 0; !rc && tries < MAX_RETRY; tries++) {
		rc = rename_prep(fs, from, to, flags, &r);
		if (!rc)
			rc = rename_tx(fs, &r, v);
		if (rc == -FS_E_TOOBIG) /* the replaced file: empty it first */
			rc = empty_file(fs, r.t) ? -EAGAIN : -EAGAIN;
		else if (rc == -EAGAIN)
			fs_backoff(fs, tries);
		if (rc != -EAGAIN)
			break;
		rc = tries == MAX_RETRY - 1 ? -EAGAIN : 0;
	}
	for (int i = 0; i < 4; i++)
		free(v[i]);
	return leave(fs, rc == -EAGAIN ? -EBUSY : rc);
}

/* ---- readdir ------------------------------------------------------------------------ */

/* Entries collected by an optimistic readdir, delivered once the read is
 * known to be consistent: records of ino (8), type (1), name length (1),
 * name. */
struct dlist {
	uint8_t *b;
	size_t len, cap;
	uint64_t parent;
};

static int dlist_add(void *arg, const char *name, unsigned type, uint64_t ino)
{
	struct dlist *l = arg;
	size_t n = strlen(name);

	if (l->len + 10 + n > l->cap) {
		size_t cap = l->cap ? 2 * l->cap + n : 4096;
		uint8_t *b = realloc(l->b, cap);

		if (!b)
			return -ENOMEM;
		l->b = b;
		l->cap = cap;
	}
	memcpy(l->b + l->len, &ino, 8);
	l->b[l->len + 8] = (uint8_t)type;
	l->b[l->len + 9] = (uint8_t)n;
	memcpy(l->b + l->len + 10, name, n);
	l->len += 10 + n;
	return 0;
}

static int readdir_in(struct tx *tx, uint64_t a, vmfs_readdir_cb cb, void *arg, uint64_t *parent)
{
	struct vmfs_fd *fd = malloc(sizeof(*fd));
	int rc = fd ? fd_load(tx, a, fd) : -ENOMEM;

	if (!rc && fd->type != VMFS_FT_DIR)
		rc = -ENOTDIR;
	if (!rc) {
		*parent = fd->parent;
		rc = dir_iter(tx, fd, cb, arg);
	}
	free(fd);
	return rc;
}

static int readdir_fn(struct vmfs *fs, uint64_t a, void *arg)
{
	struct dlist *l = arg;
	struct tx tx;
	int rc;

	l->len = 0;
	tx_begin(fs, &tx);
	rc = readdir_in(&tx, a, dlist_add, l, &l->parent);
	tx_abort(&tx);
	return rc;
}

int vmfs_readdir(struct vmfs *fs, const char *path, vmfs_readdir_cb cb, void *arg)
{
	struct dlist l = {0};
	struct tx tx;
	uint64_t a;
	int rc = enter(fs, 0);

	if (rc)
		return rc;
	rc = resolve(fs, path, &a);
	if (!rc)
		rc = fs_opt_read(fs, a, readdir_fn, &l);
	if (rc == -EBUSY) { /* changing elsewhere: under a shared lock */
		tx_begin(fs, &tx);
		rc = tx_lock_fd(&tx, a, LM_MODE_SH);
		if (!rc) {
			l.len = 0;
			rc = readdir_in(&tx, a, dlist_add, &l, &l.parent);
		}
		tx_abort(&tx);
	}
	if (!rc)
		rc = cb(arg, ".", VMFS_FT_DIR, a);
	if (!rc)
		rc = cb(arg, "..", VMFS_FT_DIR, l.parent);
	for (size_t o = 0; !rc && o < l.len; o += 10u + l.b[o + 9]) {
		char name[VMFS_NAME_MAX + 1];
		uint64_t ino;

		memcpy(&ino, l.b + o, 8);
		memcpy(name, l.b + o + 10, l.b[o + 9]);
		name[l.b[o + 9]] = '\0';
		rc = cb(arg, name, l.b[o + 8], ino);
	}
	free(l.b);
	return leave(fs, rc);
}

/* ---- open files ----------------------------------------------------------------------- */

static enum lm_mode open_mode(int flags, int wr)
{
	return flags & VMFS_O_MULTIWRITER ? LM_MODE_MW : wr ? LM_MODE_EX : LM_MODE_SH;
}

/* Takes (or upgrades) the inode lock for a new open in mode m. */
static int inode_get(struct vmfs *fs, uint64_t addr, enum lm_mode m, int nowait,
		     struct fs_inode **out)
{
	struct fs_inode *ino = fs_inode_find(fs, addr);
	int tmo = nowait ? 0 : fs_wait_ms(fs), rc = 0;

	if (fs->ro && m != LM_MODE_SH)
		return -EROFS;
	if (!ino) {
		ino = fs_inode_alloc(addr);
		if (!ino)
			return -ENOMEM;
		if (!fs->ro)
			rc = fs_lock_take(fs, vmfs_addr_off(&fs->vh, addr), m, tmo, &ino->lk);
		if (rc) {
			fs_inode_free(ino);
			return rc == -ETIMEDOUT ? -EBUSY : rc;
		}
		ino->mode = m;
		ino->next = fs->inodes;
		fs->inodes = ino;
	} else if (ino->mode == LM_MODE_MW && m != LM_MODE_MW && m != LM_MODE_SH) {
		return -EBUSY;
	} else if (ino->mode != LM_MODE_MW && m == LM_MODE_MW) {
		return -EBUSY;
	} else if (ino->mode == LM_MODE_SH && m == LM_MODE_EX && !fs->ro) {
		rc = lm_lock_convert(ino->lk, LM_MODE_EX, tmo);
		if (rc)
			return rc == -ETIMEDOUT ? -EBUSY : rc;
		ino->mode = LM_MODE_EX;
	}
	if (m == LM_MODE_EX)
		ino->n_ex++;
	else if (m == LM_MODE_MW)
		ino->n_mw++;
	else
		ino->n_sh++;
	*out = ino;
	return 0;
}

static void inode_unlink(struct vmfs *fs, struct fs_inode *ino)
{
	for (struct fs_inode **p = &fs->inodes; *p; p = &(*p)->next)
		if (*p == ino) {
			*p = ino->next;
			return;
		}
}

/* 1 if an open inode other than `but` was unlinked. */
static int other_unlinked(struct vmfs *fs, const struct fs_inode *but)
{
	for (struct fs_inode *i = fs->inodes; i; i = i->next)
		if (i != but && i->unlinked)
			return 1;
	return 0;
}

/* Frees an unlinked file at its last close (lock still held). */
static int free_unlinked(struct vmfs *fs, struct fs_inode *ino)
{
	struct vmfs_fd *fd = malloc(sizeof(*fd));
	int rc = fd ? fs_set_size(fs, ino->addr, 0) : -ENOMEM;

	if (!rc) {
		struct tx tx;

		tx_begin(fs, &tx);
		rc = tx_lock_fd(&tx, ino->addr, LM_MODE_EX);
		if (!rc)
			rc = fd_load(&tx, ino->addr, fd);
		if (!rc && !(fd->flags & VMFS_FDF_UNLINKED))
			rc = -ESTALE; /* recovery sweep: freed and reused meanwhile */
		if (!rc)
			rc = fs_free_fd(&tx, fd);
		if (!rc) {
			if (!other_unlinked(fs, ino))
				fs->jh.flags &= ~VMFS_JHF_ORPHANS; /* written by this commit */
			rc = tx_commit(&tx);
		} else {
			tx_abort(&tx);
		}
	}
	free(fd);
	return rc;
}

/* ---- orphan sweep -------------------------------------------------------------
 * An FD flagged UNLINKED whose lock this host can take at once has no
 * opener left (its opener closed it or died and was taken over): it is
 * freed like at a last close. Busy ones are counted in *busy. */
static int sweep_one(struct vmfs *fs, uint64_t addr, unsigned *busy, uint8_t *holders)
{
	struct fs_inode *ino;
	struct vmfs_fd fd;
	int rc;

	if (fs_inode_find(fs, addr) || fd_peek(fs, addr, &fd) || !(fd.flags & VMFS_FDF_UNLINKED))
		return 0; /* ours, or not flagged (fsck reports undecodable FDs) */
	ino = fs_inode_alloc(addr);
	if (!ino)
		return -ENOMEM;
	ino->mode = LM_MODE_EX;
	ino->n_ex = 1;
	rc = fs_lock_take(fs, vmfs_addr_off(&fs->vh, addr), LM_MODE_EX, 0, &ino->lk);
	if (rc == -EBUSY) {
		struct lm_lock_info li;

		(*busy)++;
		fs_inode_free(ino);
		if (!lm_lock_read(fs->bd, vmfs_addr_off(&fs->vh, addr), fs->vh.max_hosts, &li, NULL,
				  0))
			for (uint32_t h = 0; h < li.nholders; h++)
				if (li.holders[h].slot < fs->vh.max_hosts)
					holders[li.holders[h].slot] = 1;
		return 0;
	}
	if (!rc && (fd_peek(fs, addr, &fd) || !(fd.flags & VMFS_FDF_UNLINKED)))
		rc = -ESTALE; /* freed (and maybe reused) before we locked it */
	if (rc == -ESTALE) {
		fs_unlock(fs, ino->lk);
		fs_inode_free(ino);
		return 0;
	}
	if (!rc) {
		ino->next = fs->inodes; /* borrowed by the freeing transactions */
		fs->inodes = ino;
		rc = free_unlinked(fs, ino);
		rc = rc == -ESTALE ? 0 : rc;
		inode_unlink(fs, ino);
		fs_unlock(fs, ino->lk);
	}
	fs_inode_free(ino);
	return rc;
}

static int sweep_orphans(struct vmfs *fs, unsigned *busy, uint8_t *holders)
{
	uint8_t *buf = bdev_alloc(VMFS_UNIT);
	struct vmfs_ch *ch = malloc(sizeof(*ch));
	char why[256];
	int rc = buf && ch ? 0 : -ENOMEM;

	*busy = 0;
	for (uint32_t cl = 0; cl < vmfs_ncl(&fs->vh, VMFS_RT_FD) && !rc; cl++) {
		rc = fs_meta_read(fs, buf, vmfs_cl_off(&fs->vh, VMFS_RT_FD, cl) + VMFS_UNIT,
				  VMFS_UNIT);
		if (rc || vmfs_ch_decode(buf, &fs->vh, ch, why, sizeof(why)))
			continue; /* fsck reports bad cluster headers */
		for (uint32_t i = 0; i < ch->nres && !rc; i++)
			if (vmfs_bit_get(ch->bitmap, i))
				rc =
				    sweep_one(fs, vmfs_addr_make(VMFS_RT_FD, cl, i), busy, holders);
	}
	free(ch);
	bdev_free(buf);
	return rc;
}

/* Watches the slots marked in want[] for up to two heartbeat intervals and
 * clears those whose counter moves (live hosts: their orphans are still
 * open); the others stay marked. */
static void drop_live(struct vmfs *fs, uint8_t *want)
{
	uint32_t n = fs->vh.max_hosts, left = 0;
	uint64_t *c0 = calloc(n, sizeof(*c0));
	int step = (int)fs->vh.hb_interval_ms / 4 + 1;
	struct lm_slot_info si;
	struct lm_geom g;

	if (!c0)
		return;
	lm_geom_get(fs->lm, &g);
	for (uint32_t s = 0; s < n; s++) {
		c0[s] = UINT64_MAX; /* not watched: not LIVE, takeover decides */
		if (want[s] && !lm_slot_read(fs->bd, &g, s, &si, NULL, 0) &&
		    si.state == LM_SLOT_LIVE) {
			c0[s] = si.counter;
			left++;
		}
	}
	for (int t = 0; left && t <= 2 * (int)fs->vh.hb_interval_ms; t += step) {
		usleep((useconds_t)step * 1000);
		for (uint32_t s = 0; s < n; s++)
			if (want[s] && c0[s] != UINT64_MAX &&
			    !lm_slot_read(fs->bd, &g, s, &si, NULL, 0) &&
			    si.state == LM_SLOT_LIVE && si.counter != c0[s]) {
				want[s] = 0; /* it beats: alive */
				left--;
			}
	}
	free(c0);
}

/* Some journal header (this host's, left by the slot's previous user, or a
 * dead or departed host's) says orphans may exist: sweeps them. Orphans
 * whose lock is busy are open on their holder's host, or that host died:
 * holders seen heartbeating within two intervals are alive and left alone
 * (their files are freed at their last close), so a mount does not wait
 * the heartbeat timeout for live hosts (issue 9 defect 5). Only holders
 * that stay silent are taken over (waiting the timeout: their locks are
 * needed), then the sweep runs again. */
static int recover_orphans(struct vmfs *fs)
{
	uint32_t flags, want = 0;
	uint8_t *holders;
	unsigned busy = 0;
	int rc = 0;

	for (uint32_t s = 0; s < fs->vh.max_hosts && !rc; s++) {
		if (s == fs->slot)
			flags = fs->jh.flags;
		else if (fs_journal_flags(fs, s, &flags))
			continue; /* corrupt: fsck reports it */
		want |= flags & VMFS_JHF_ORPHANS;
	}
	if (!want)
		return 0;
	holders = calloc(fs->vh.max_hosts, 1);
	if (!holders)
		return -ENOMEM;
	rc = sweep_orphans(fs, &busy, holders);
	if (!rc && busy) {
		int dead = 0;

		drop_live(fs, holders);
		for (uint32_t s = 0; s < fs->vh.max_hosts && rc >= 0; s++)
			if (holders[s] && s != fs->slot) {
				rc = lm_takeover_slot(
				    fs->lm, s,
				    (int)(fs->vh.hb_timeout_ms + 2 * fs->vh.hb_interval_ms));
				dead += rc >= 0; /* taken over, or found free */
				rc = rc == -ETIMEDOUT ? 0 : rc;
			}
		memset(holders, 0, fs->vh.max_hosts);
		if (rc >= 0 && dead)
			rc = sweep_orphans(fs, &busy, holders);
	}
	free(holders);
	rc = rc < 0 ? rc : 0;
	if (!rc && !other_unlinked(fs, NULL))
		fs->jh.flags &= ~VMFS_JHF_ORPHANS; /* this slot's previous user's: swept */
	return rc;
}

/* Sets the mtime of a file written in place (lock held by the inode). */
static int flush_mtime(struct vmfs *fs, struct fs_inode *ino)
{
	struct vmfs_fd *fd;
	struct tx tx;
	int rc;

	if (fs->ro || fs->broken || !__atomic_exchange_n(&ino->mtime_dirty, 0, __ATOMIC_ACQ_REL))
		return 0; /* cleared first: a fast write meanwhile sets it again */
	fd = malloc(sizeof(*fd));
	if (!fd) {
		__atomic_store_n(&ino->mtime_dirty, 1, __ATOMIC_RELEASE);
		return -ENOMEM;
	}
	tx_begin(fs, &tx);
	rc = tx_lock_fd(&tx, ino->addr, LM_MODE_EX);
	if (!rc)
		rc = fd_load(&tx, ino->addr, fd);
	if (!rc) {
		fd->mtime_ns = fd->ctime_ns = fs_now_ns();
		rc = fd_store(&tx, fd);
	}
	if (!rc)
		rc = tx_commit(&tx);
	else
		tx_abort(&tx);
	free(fd);
	if (rc == -EBUSY)
		rc = 0; /* multi-writer with others: the next close sets it */
	if (rc)
		__atomic_store_n(&ino->mtime_dirty, 1, __ATOMIC_RELEASE);
	return rc;
}

static int inode_drop(struct vmfs *fs, struct fs_inode *ino)
{
	int rc = flush_mtime(fs, ino), r;

	if (ino->unlinked && !fs->ro)
		rc = free_unlinked(fs, ino);
	inode_unlink(fs, ino);
	if (ino->lk) {
		r = fs_unlock(fs, ino->lk);
		rc = rc ? rc : r;
	}
	fs_inode_free(ino);
	return rc;
}

static int inode_put(struct vmfs *fs, struct fs_inode *ino, enum lm_mode m)
{
	if (m == LM_MODE_EX)
		ino->n_ex--;
	else if (m == LM_MODE_MW)
		ino->n_mw--;
	else
		ino->n_sh--;
	if (!ino->n_ex && !ino->n_sh && !ino->n_mw)
		return inode_drop(fs, ino);
	if (m != LM_MODE_SH && !ino->n_ex && !ino->n_mw)
		flush_mtime(fs, ino);
	if (!ino->n_ex && ino->mode == LM_MODE_EX) {
		/* no writer left: the cached mapping goes before EX becomes SH
		 * (fast I/O in flight ends first); readers refill it under SH */
		pthread_rwlock_wrlock(&ino->rw);
		fs_map_drop(ino);
		if (ino->mode == LM_MODE_EX && ino->lk &&
		    fs_downgrade(fs, ino->lk, LM_MODE_SH) == 0)
			ino->mode = LM_MODE_SH;
		pthread_rwlock_unlock(&ino->rw);
	}
	return 0;
}

/* The open inode of a file this host just created, from the EX lock its
 * creating transaction handed over: converted to the open's mode (a
 * downgrade never waits), so the open cannot fail once the file exists. */
static int inode_new(struct vmfs *fs, uint64_t addr, enum lm_mode m, struct lm_lock *lk,
		     struct fs_inode **out)
{
	struct fs_inode *ino = fs_inode_alloc(addr);
	int rc = ino ? 0 : -ENOMEM;

	if (!rc && m != LM_MODE_EX)
		rc = fs_downgrade(fs, lk, m);
	if (rc) {
		fs_unlock(fs, lk);
		fs_inode_free(ino);
		return rc;
	}
	ino->lk = lk;
	ino->mode = m;
	ino->n_ex = m == LM_MODE_EX;
	ino->n_mw = m == LM_MODE_MW;
	ino->n_sh = m == LM_MODE_SH;
	ino->next = fs->inodes;
	fs->inodes = ino;
	*out = ino;
	return 0;
}

static int open_locked(struct vmfs *fs, const char *path, int flags, uint32_t mode,
		       const struct vmfs_owner *own, struct vmfs_file *f)
{
	int acc = flags & O_ACCMODE;
	struct newobj no = {VMFS_FT_REG, mode, NULL, 0, own, 0, 0};
	struct vmfs_fd *fd = malloc(sizeof(*fd));
	struct lm_lock *lk = NULL;
	enum lm_mode m;
	uint64_t a;
	struct tx tx;
	int rc = fd ? 0 : -ENOMEM;

	f->rd = acc == O_RDONLY || acc == O_RDWR;
	f->wr = acc == O_WRONLY || acc == O_RDWR;
	if (!rc && f->wr && fs->ro)
		rc = -EROFS;
	if (!rc && (flags & O_CREAT)) {
		rc = fs->ro ? -EROFS : create(fs, path, &no, flags & O_EXCL, &a, &lk);
		rc = rc == 1 ? 0 : rc;
	} else if (!rc) {
		rc = resolve(fs, path, &a);
	}
	m = open_mode(flags, f->wr);
	if (!rc && lk)
		rc = inode_new(fs, a, m, lk, &f->ino);
	else if (!rc)
		rc = inode_get(fs, a, m, flags & VMFS_O_NOWAIT, &f->ino);
	if (rc) {
		free(fd);
		return rc;
	}
	tx_begin(fs, &tx);
	rc = tx_lock_fd(&tx, a, LM_MODE_SH);
	if (!rc)
		rc = fd_load(&tx, a, fd); /* still there, now that we hold it */
	tx_abort(&tx);
	if (!rc && fd->type == VMFS_FT_DIR)
		rc = -EISDIR; /* directories: vmfs_readdir() (no long-term lock) */
	if (!rc && fd->type == VMFS_FT_LNK)
		rc = -ELOOP;
	if (!rc && vmfs_ft_special(fd->type))
		rc = -ENXIO; /* no data here: the kernel serves FIFOs, devices, sockets */
	if (!rc && f->wr && (flags & O_TRUNC) && fd->size)
		rc = fs_set_size(fs, a, 0);
	if (rc)
		inode_put(fs, f->ino, m);
	free(fd);
	return rc;
}

int vmfs_open(struct vmfs *fs, const char *path, int flags, uint32_t mode, struct vmfs_file **out)
{
	return vmfs_create(fs, path, flags, mode, NULL, out);
}

int vmfs_create(struct vmfs *fs, const char *path, int flags, uint32_t mode,
		const struct vmfs_owner *own, struct vmfs_file **out)
{
	struct vmfs_file *f = calloc(1, sizeof(*f));
	int rc = enter(fs, 0);

	*out = NULL;
	if (rc || !f) {
		free(f);
		return rc ? rc : leave(fs, -ENOMEM);
	}
	f->fs = fs;
	f->flags = flags;
	rc = open_locked(fs, path, flags, mode, own, f);
	if (rc) {
		free(f);
	} else {
		f->next = fs->files;
		fs->files = f;
		*out = f;
	}
	return leave(fs, rc);
}

int vmfs_close(struct vmfs_file *f)
{
	struct vmfs *fs;
	int rc;

	if (!f)
		return -EINVAL;
	fs = f->fs;
	pthread_mutex_lock(&fs->mu);
	rc = inode_put(fs, f->ino, open_mode(f->flags, f->wr));
	for (struct vmfs_file **p = &fs->files; *p; p = &(*p)->next)
		if (*p == f) {
			*p = f->next;
			break;
		}
	pthread_mutex_unlock(&fs->mu);
	free(f);
	return rc;
}

/* The fast data path (fs_file.c, "cached mapping"): without the mount's
 * mutex, under the inode's rw lock shared. -FS_E_SLOW: take the slow path. */
static ssize_t data_fast(struct vmfs_file *f, void *buf, size_t len, uint64_t off, int write)
{
	struct vmfs *fs = f->fs;
	ssize_t n;

	/* no cached mapping yet: the slow path fills it (held SH, or EX for a
	 * writer; never MW, never on a read-only mount) */
	if (!__atomic_load_n(&f->ino->map, __ATOMIC_ACQUIRE))
		return -FS_E_SLOW; /* a hint only: checked again under map_mu */
	pthread_rwlock_rdlock(&f->ino->rw);
	if (__atomic_load_n(&fs->broken, __ATOMIC_ACQUIRE))
		n = fs->broken;
	else if (fs->lm && lm_fenced(fs->lm))
		n = -LM_E_FENCED;
	else if (write)
		n = fs_write_fast(fs, f->ino, buf, len, off);
	else
		n = fs_read_fast(fs, f->ino, buf, len, off);
	pthread_rwlock_unlock(&f->ino->rw);
	return n;
}

ssize_t vmfs_read(struct vmfs_file *f, void *buf, size_t len, uint64_t off)
{
	ssize_t n = f->rd ? data_fast(f, buf, len, off, 0) : -FS_E_SLOW;
	int rc;

	if (n != -FS_E_SLOW)
		return n;
	rc = enter(f->fs, 0);
	if (rc)
		return rc;
	if (!f->rd)
		return leave(f->fs, -EBADF);
	n = fs_read_data(f->fs, f->ino, buf, len, off);
	pthread_mutex_unlock(&f->fs->mu);
	return n;
}

ssize_t vmfs_write(struct vmfs_file *f, const void *buf, size_t len, uint64_t off)
{
	ssize_t n;
	int rc;

	if (len > INT32_MAX)
		len = INT32_MAX;
	n = f->wr ? data_fast(f, (void *)buf, len, off, 1) : -FS_E_SLOW;
	if (n != -FS_E_SLOW)
		return n;
	rc = enter(f->fs, 1);
	if (rc)
		return rc;
	if (!f->wr)
		return leave(f->fs, -EBADF);
	pthread_rwlock_wrlock(&f->ino->rw); /* may allocate, convert, zero */
	n = fs_write_data(f->fs, f->ino, buf, len, off);
	pthread_rwlock_unlock(&f->ino->rw);
	pthread_mutex_unlock(&f->fs->mu);
	return n;
}

int vmfs_ftruncate(struct vmfs_file *f, uint64_t size)
{
	int rc = enter(f->fs, 1);

	if (rc)
		return rc;
	if (!f->wr)
		return leave(f->fs, -EBADF);
	return leave(f->fs, fs_set_size(f->fs, f->ino->addr, size));
}

int vmfs_fsync(struct vmfs_file *f)
{
	int rc = enter(f->fs, 0);

	if (rc)
		return rc;
	if (!f->fs->ro)
		rc = flush_mtime(f->fs, f->ino);
	if (!rc) /* what the running group holds (keep_locks) becomes durable */
		rc = fs_group_commit(f->fs);
	if (!rc && !f->fs->ro)
		rc = lm_write_guard(f->fs->lm);
	if (!rc)
		rc = bdev_flush(f->fs->bd);
	return leave(f->fs, rc);
}

int vmfs_sync(struct vmfs *fs)
{
	int rc = enter(fs, 0);

	if (rc || fs->ro)
		return rc ? rc : leave(fs, 0);
	rc = fs_group_commit(fs);
	if (!rc)
		rc = lm_write_guard(fs->lm);
	if (!rc)
		rc = bdev_flush(fs->bd);
	return leave(fs, rc);
}

int vmfs_fstat(struct vmfs_file *f, struct vmfs_stat *st)
{
	int rc = enter(f->fs, 0);

	return rc ? rc : leave(f->fs, stat_addr(f->fs, f->ino->addr, st));
}
