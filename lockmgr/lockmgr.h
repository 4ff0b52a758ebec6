/*
 * lockmgr.h - the lock manager of libvmfs (prefixes lm_, hb_, lock_): on-disk
 * heartbeat slots, on-disk lock records taken by atomic compare-and-write
 * (ATS), liveness judged on the observer's monotonic clock, takeover of dead
 * hosts and self-fencing. It knows nothing about files: any shared-disk
 * program can use it (compare sanlock's delta leases + resource leases).
 *
 * The protocol, its invariants, the state machine and the timeline of a
 * takeover are described at the top of lockmgr.c and in docs/LOCKING.md.
 *
 * Conventions: opaque handles; every function returns 0 or a negative errno
 * (or one of the private LM_E_* codes below, negated); lm_strerror() names
 * any of them. lm_errmsg() gives the detail of the last error of a handle
 * (which record was corrupt and why, how full the heartbeat region is ...).
 *
 * Threads: one struct lm may be used by several threads at once (locks,
 * guarded writes); the heartbeat runs in a thread of its own started by
 * lm_join(). One host = one struct lm = one heartbeat slot.
 */
#ifndef LIBVMFS_LOCKMGR_H
#define LIBVMFS_LOCKMGR_H

#include <stddef.h>
#include <stdint.h>

struct bdev;
struct lm;
struct lm_lock;

/* Private error codes, returned negated. */
enum {
	LM_E_FENCED = 3001,    /* this host is fenced: lease expired or slot taken over */
	LM_E_LOST = 3002,      /* the lock record no longer names this host as a holder */
	LM_E_NOTJOINED = 3003, /* lm_join() has not succeeded (or lm_leave() ran) */
};

/* Size of one heartbeat slot or lock record unit; records live in its first
 * LM_REC_SIZE bytes, ATS covers its first logical sector (bd->lsec bytes). */
#define LM_UNIT	    4096u
#define LM_REC_SIZE 512u
/* Maximum holders of one shared (read-only or multi-writer) lock: every host
 * of a default 64-host volume can share one lock (record version 2; version 1
 * records, with 48, are still read). */
#define LM_MAX_HOLDERS 64u
/* Largest number of heartbeat slots a geometry may have. */
#define LM_MAX_SLOTS	65536u
#define LM_HOSTNAME_MAX 64u /* bytes on disk, NUL-padded (63 chars + NUL) */
#define LM_NAME_MAX	64u /* named-lock name bytes on disk, NUL-padded */

#define LM_DEFAULT_INTERVAL_MS 1000u
#define LM_DEFAULT_TIMEOUT_MS  8000u

/* Geometry of the heartbeat region, given by the user (a file system takes
 * it from its volume header). Slot i is the unit at hb_off + i * LM_UNIT.
 * hb_interval_ms / hb_timeout_ms of 0 mean the defaults (1 s / 8 s); the
 * timeout must be at least 4 intervals. */
struct lm_geom {
	uint64_t hb_off;
	uint32_t nslots;
	uint32_t hb_interval_ms;
	uint32_t hb_timeout_ms;
};

/* Called, before a lock is granted, for every dead host whose slot this host
 * took over (the file system replays the dead host's journal here). The slot
 * is in state "being replayed by me" during the call; after a return >= 0
 * (the number of journal transactions replayed) the slot's recovery record
 * is written (struct lm_recovery: by this host, when, that count) and the
 * slot is freed. A negative return aborts the acquisition with that error
 * and leaves the slot in "being replayed" (this host retries on its next
 * acquisition that meets it). It may call lm_guarded_write(). */
typedef int (*lm_takeover_cb)(void *arg, uint32_t dead_slot, uint32_t dead_gen,
			      const uint8_t dead_uuid[16]);
/* Called once when this host becomes fenced, from the thread that noticed
 * (heartbeat thread or a caller's); must not block. */
typedef void (*lm_fence_cb)(void *arg, const char *why);

/*
 * Which thread runs the takeover callback, and what it may do:
 *  - `takeover` runs in the thread that called lm_lock_acquire(),
 *    lm_lock_acquire_named(), lm_lock_convert(), lm_recover(),
 *    lm_takeover_slot() or lm_join() (a join on a full heartbeat region
 *    reclaims a dead host's slot, see lm_join()), with whatever locks that
 *    caller holds and no lock of the lock manager held.
 *  - `reclaim_takeover` (NULL: `takeover` with `takeover_arg`) runs only in
 *    the lock manager's reclaim thread (lm_opts.reclaim_interval_ms), which
 *    holds no lock of the application: it may take the application's own
 *    mutexes (the file system takes its volume mutex there).
 * Either may call lm_guarded_write(), lm_write_guard(), lm_slot(),
 * lm_lock_acquire() (never of a lock the calling thread already waits for)
 * and lm_lock_release() on this handle; neither may call lm_leave(),
 * lm_close(), lm_close_noleave() or lm_reclaim_stop() (they wait for the
 * reclaim thread). One handle never runs two callbacks for the same dead
 * slot at once: a thread that meets a slot another thread of this handle is
 * replaying waits like for any live holder.
 */

struct lm_opts {
	const char *hostname; /* NULL: gethostname(); stored truncated to 63 chars */
	const uint8_t *uuid;  /* 16 bytes; NULL: a random UUID per lm_open() */
	lm_takeover_cb takeover;
	void *takeover_arg;
	lm_fence_cb on_fence;
	void *fence_arg;
	/* A second handle on the same device for the heartbeat thread (not
	 * owned). NULL: lm_open() reopens bd->uri itself when that is a file
	 * or trace: URI, else shares bd. A handle of its own keeps heartbeats
	 * from queueing behind this process's ATS on contended lock sectors
	 * (the file backend serialises one handle's ATS calls). */
	struct bdev *hb_bd;
	/* Background reclaim: when not 0, lm_join() starts a thread that every
	 * reclaim_interval_ms reads every slot (keeping this handle's liveness
	 * history current, so a lock held by a host dead for longer than the
	 * timeout is broken at once) and takes over each slot judged dead,
	 * running reclaim_takeover (or takeover) in that thread. lm_leave(),
	 * lm_close(), lm_close_noleave() and lm_reclaim_stop() stop it; call
	 * them without holding a mutex that the callback takes. */
	uint32_t reclaim_interval_ms;
	lm_takeover_cb reclaim_takeover; /* NULL: takeover / takeover_arg */
	void *reclaim_arg;
	/* lm_join() on a full heartbeat region: how long to watch the slots for
	 * one that is dead (silent for the timeout) or freed, and reclaim it
	 * (ms). 0 (default): no reclaim, -ENOSPC at once (the old behaviour: a
	 * handle that cannot replay a dead host's journal must not free its
	 * slot); LM_JOIN_WAIT_AUTO: timeout + 2 intervals (enough to judge
	 * slots first seen now). The takeover callback runs inside lm_join():
	 * the application must be able to replay before it has joined. */
	int join_wait_ms;
};

#define LM_JOIN_WAIT_AUTO (-1)

/* Counters of a handle (lm_stats_get()). */
struct lm_stats {
	uint64_t release_errors;    /* lm_lock_release() calls that returned an error */
	uint64_t ats_errors;	    /* ATS calls that returned an I/O error ... */
	uint64_t ats_lost_landed;   /* ... of which the re-read showed the write had landed */
	uint64_t takeovers;	    /* dead slots taken over (callback returned 0) */
	uint64_t join_reclaims;	    /* slots reclaimed by lm_join() on a full region */
	uint64_t reclaim_sweeps;    /* passes of the reclaim thread */
	uint64_t hb_lost_replies;   /* heartbeat ATS errors resolved by a re-read */
	uint64_t spec_tries;	    /* acquires/releases whose ATS used the remembered
				     * image instead of a read ... */
	uint64_t spec_misses;	    /* ... of which the ATS miscompared */
	uint64_t handover_asks;	    /* wanted marks written while waiting (hand-over) */
	uint64_t pr_registers;	    /* reservation keys registered (one per slot claim) */
	uint64_t pr_preempts;	    /* dead hosts' keys preempted before a replay ... */
	uint64_t pr_preempt_absent; /* ... of which neither key was registered */
	uint64_t pr_conflicts;	    /* commands refused with RESERVATION CONFLICT */
};

/* Lock modes. */
enum lm_mode {
	LM_MODE_FREE = 0,
	LM_MODE_EX = 1, /* exclusive: one holder */
	LM_MODE_SH = 2, /* read-only shared: up to LM_MAX_HOLDERS holders */
	LM_MODE_MW = 3, /* multi-writer shared: up to LM_MAX_HOLDERS holders */
};

/* Slot states. */
enum lm_slot_state {
	LM_SLOT_FREE = 0,
	LM_SLOT_LIVE = 1,
	LM_SLOT_REPLAYING = 2, /* its dead owner is being recovered by replayer_slot */
};

/* ---- handle, heartbeat, fencing -------------------------------------- */

/* Creates a handle on `bd` (not joined yet). bd stays owned by the caller and
 * must outlive the handle. Errors: -EINVAL (geometry outside the device, not
 * 4 KiB aligned, timeout < 4 intervals, bd->lsec > LM_UNIT), -ENOMEM. */
int lm_open(struct bdev *bd, const struct lm_geom *geom, const struct lm_opts *opts,
	    struct lm **out);
/* Leaves (if joined) and frees. Locks still held are not released on disk
 * (they become stale when the slot is freed). */
void lm_close(struct lm *lm);
/* Stops the heartbeat and frees the handle without leaving: the slot stays
 * LIVE and stops moving, so other hosts judge it dead after the timeout,
 * take it over and run their takeover callback (replay this host's
 * journal), and this host's lock records become stale then. For a host
 * that cannot finish its own recovery (a failed journal replay). */
void lm_close_noleave(struct lm *lm);

/* Claims a free heartbeat slot (ATS free -> live, generation + 1) and starts
 * the heartbeat thread (and the reclaim thread, see lm_opts). When no slot
 * is free it watches the region for up to lm_opts.join_wait_ms and reclaims
 * the slot of a dead host (live but silent for the timeout on this host's
 * clock, or being replayed by a host that died): ATS to "being replayed by
 * its new owner" (the slot heartbeats during the replay, so other hosts wait
 * and do not break the dead host's locks), runs the takeover callback in the
 * calling thread (lm_guarded_write() works there: lm_slot() already names
 * the reclaimed slot), then ATS to live with this host's identity. A failed
 * callback returns its error and leaves the slot being replayed and still,
 * for another host to finish. Errors: -ENOSPC (no free or dead slot;
 * lm_errmsg() counts live / being-replayed / corrupt slots), -EALREADY, -EIO
 * and other bdev errors, -LM_E_FENCED (after a fence the handle cannot
 * rejoin), errors of the takeover callback. */
int lm_join(struct lm *lm);
/* Stops the heartbeat and frees the slot (ATS live -> free). Errors:
 * -LM_E_NOTJOINED, -LM_E_FENCED (slot not touched), bdev errors. */
int lm_leave(struct lm *lm);

/* Stops the reclaim thread (waits for a callback it is running). */
void lm_reclaim_stop(struct lm *lm);
/* Copies the handle's counters. */
void lm_stats_get(struct lm *lm, struct lm_stats *out);

/* This host's slot index and slot generation (-LM_E_NOTJOINED if none). */
int lm_slot(struct lm *lm, uint32_t *slot, uint32_t *gen);
/* Effective geometry (defaults filled in). */
void lm_geom_get(struct lm *lm, struct lm_geom *out);

/* 1 when fenced (permanent for this handle), else 0. */
int lm_fenced(struct lm *lm);
/* An eventfd that becomes readable when this host is fenced (poll it). */
int lm_fence_fd(struct lm *lm);
/* Why this host is fenced ("" when it is not). */
const char *lm_fence_reason(struct lm *lm);

/* 0 when this host may issue writes that depend on its lease right now:
 * joined, not fenced, and the last successful heartbeat was issued less than
 * timeout/2 ago on this host's monotonic clock. Otherwise fences the host (if
 * joined) and returns -LM_E_FENCED, or -LM_E_NOTJOINED. */
int lm_write_guard(struct lm *lm);
/* lm_write_guard() then bdev_write(); the file system does all its writes
 * through this. Errors: those of lm_write_guard() and bdev_write(). */
int lm_guarded_write(struct lm *lm, const void *buf, uint64_t off, size_t len);
/* How many times the application called lm_write_guard() or
 * lm_guarded_write() on this handle (the lock manager's own writes are not
 * counted): unchanged since a flush means no write of the application is
 * waiting for one. */
uint64_t lm_write_seq(struct lm *lm);

/* Recovers dead hosts without waiting for a lock (mount time, or a
 * periodic sweep): watches every other slot for wait_ms and takes over each
 * one that is live but did not move for the timeout (as judged over this
 * handle's whole observation history), or that is being replayed by a host
 * that is dead or gone, running the takeover callback for each. Call with
 * wait_ms >= the timeout to judge slots first seen now. Returns the number of
 * slots recovered, or -LM_E_FENCED, -LM_E_NOTJOINED, callback errors, bdev
 * errors. Corrupt slots are skipped (lm_errmsg() names the last one). */
int lm_recover(struct lm *lm, int wait_ms);
/* Takes over slot idx explicitly: watches it for up to wait_ms and, once it
 * is judged dead (LIVE but still for the timeout, or REPLAYING by a host
 * that is gone, or left REPLAYING by this host), takes it over, runs the
 * takeover callback and frees it. Returns 1 when taken over, 0 when the slot
 * is free (nothing to do), -ETIMEDOUT when it is still alive after
 * wait_ms (call with wait_ms >= the timeout for a slot first seen now),
 * -EINVAL (own slot, out of range), -LM_E_NOTJOINED, callback and bdev
 * errors. It returns -ETIMEDOUT early once the slot's heartbeat counter
 * moves while it watches (the host is alive). */
int lm_takeover_slot(struct lm *lm, uint32_t idx, int wait_ms);

/* ---- locks -------------------------------------------------------------- */

/* Acquires the lock record in the unit at byte offset `addr` (4 KiB
 * aligned) in `mode`. timeout_ms: 0 = try once, < 0 = wait forever, else
 * wait up to that long. While waiting, incompatible holders whose heartbeat
 * stopped for the full timeout are taken over (takeover callback first).
 * Errors: -EBUSY (try once: held incompatibly), -ETIMEDOUT, -EALREADY (this
 * host already holds it), -EINVAL (bad mode/addr), -EUCLEAN (corrupt lock or
 * slot record, see lm_errmsg()), -ENOSPC (holder list full),
 * -LM_E_FENCED, -LM_E_NOTJOINED, errors of the takeover callback, bdev errors. */
int lm_lock_acquire(struct lm *lm, uint64_t addr, enum lm_mode mode, int timeout_ms,
		    struct lm_lock **out);
/* The same for a named lock in an area of `nunits` lock units at `area_off`:
 * the name is hashed to a unit and linear probing finds the unit whose record
 * carries the name (a never-named unit is claimed by writing the name).
 * Errors: those of lm_lock_acquire(), -ENAMETOOLONG (> 63 bytes), -ENOSPC
 * (every unit of the area holds another name). */
int lm_lock_acquire_named(struct lm *lm, uint64_t area_off, uint32_t nunits, const char *name,
			  enum lm_mode mode, int timeout_ms, struct lm_lock **out);
/* Finds the unit of a named lock without acquiring it: 0 and *addr, or
 * -ENOENT (never used), -EUCLEAN, bdev errors. Needs no join. */
int lm_lock_lookup(struct bdev *bd, uint64_t area_off, uint32_t nunits, const char *name,
		   uint64_t *addr);

/* Releases and frees the handle (always freed). An ATS whose reply is lost
 * is resolved by re-reading the record (released = no longer a holder); I/O
 * errors are retried a few times. Every error is counted
 * (lm_stats.release_errors) and described by lm_errmsg(). Errors:
 * -LM_E_FENCED (the record is left for a survivor to clear), -LM_E_LOST,
 * -EUCLEAN, bdev errors. */
int lm_lock_release(struct lm_lock *lk);
/* Frees the handle without touching the record: this host stays a holder
 * on disk until its slot is taken over or freed (after a commit that
 * failed midway, the file system keeps its locks for a survivor). */
void lm_lock_forget(struct lm_lock *lk);
/* Changes the mode of a held lock: SH -> EX (upgrade: waits like acquire
 * until the other holders leave), EX -> SH (downgrade, never waits), and the
 * like. Errors: those of lm_lock_acquire() plus -LM_E_LOST. On error the
 * lock is still held in its old mode (unless -LM_E_LOST/-LM_E_FENCED). */
int lm_lock_convert(struct lm_lock *lk, enum lm_mode mode, int timeout_ms);
/* Lock generation seen when this host acquired/converted (bumped by every
 * acquisition and upgrade), its mode and its address. */
/* Hand-over: reads the records of the n locks held here (one batch) and
 * sets wanted[i] to 1 when a waiter has marked lock i wanted (another host
 * asks for it: give it up soon), 0 when not, -LM_E_LOST when the record no
 * longer names this host. The waiting side marks by itself: every
 * lm_lock_acquire()/lm_lock_convert() with a timeout other than 0 that
 * finds the lock held EX by a live host writes its slot into the record
 * (docs/LOCKING.md "Hand-over"). Returns 0 or a device error. */
int lm_locks_wanted(struct lm_lock **lks, unsigned n, int *wanted);
/* Asks for the lock at addr without waiting for it: marks its record
 * wanted when another host holds it EX and nobody asked yet (1: marked, 0:
 * nothing to do). For lock-free readers that meet a holder that may be
 * keeping the lock (libvmfs fs_opt_read()). */
int lm_lock_ask(struct lm *lm, uint64_t addr);
uint64_t lm_lock_gen(const struct lm_lock *lk);
enum lm_mode lm_lock_mode(const struct lm_lock *lk);
uint64_t lm_lock_addr(const struct lm_lock *lk);

/* ---- decoding, for tools (no join needed) ------------------------------ */

/* The last recovery of a slot (its recovery record, docs/FORMAT.md): who
 * replayed which dead owner, when, and how many journal transactions. */
struct lm_recovery {
	int valid; /* 0: the slot was never recovered (or by a lockmgr before records) */
	uint32_t dead_gen;
	uint32_t by_slot, by_gen;
	uint32_t replayed;
	uint64_t time_ms; /* the recovering host's wall clock, ms since the epoch */
	uint8_t dead_uuid[16];
	char dead_host[LM_HOSTNAME_MAX + 1];
	uint8_t by_uuid[16];
	char by_host[LM_HOSTNAME_MAX + 1];
};

struct lm_slot_info {
	uint32_t index;
	int never_used; /* all-zero unit */
	enum lm_slot_state state;
	uint32_t gen;
	uint64_t counter;
	uint8_t uuid[16];
	char hostname[LM_HOSTNAME_MAX + 1];
	uint32_t replayer_slot, replayer_gen, dead_gen; /* REPLAYING only */
	uint32_t interval_ms, timeout_ms;		/* as configured by the owner */
	uint8_t machine[16]; /* the owner's machine id; zero: unknown (version 1) */
	/* Filled by lm_slot_read() only: the slot's recovery record (rec.valid
	 * 0 when none), or rec_bad with the reason when it is corrupt (the
	 * slot record itself is still returned). */
	struct lm_recovery rec;
	int rec_bad;
	char rec_why[96];
};

struct lm_holder {
	uint32_t slot;
	uint32_t gen;
};

struct lm_lock_info {
	uint64_t addr;
	int never_used; /* all-zero unit */
	enum lm_mode mode;
	uint64_t gen;
	uint8_t owner_uuid[16]; /* EX: the owner's UUID */
	char name[LM_NAME_MAX + 1];
	uint32_t nholders; /* EX: 1, holders[0] is the owner */
	struct lm_holder holders[LM_MAX_HOLDERS];
	uint32_t wanted; /* 1 + slot of a host waiting for it (hand-over), 0 none */
};

/* Reads and decodes slot `index` / the lock unit at `addr`. Errors: -EINVAL,
 * -EUCLEAN (message in why, if not NULL), bdev errors. */
int lm_slot_read(struct bdev *bd, const struct lm_geom *geom, uint32_t index,
		 struct lm_slot_info *out, char *why, size_t whylen);
int lm_lock_read(struct bdev *bd, uint64_t addr, uint32_t nslots, struct lm_lock_info *out,
		 char *why, size_t whylen);

/* For fsck/info: 0 if the unit (len >= LM_REC_SIZE bytes) is all-zero or a
 * valid slot or lock record; -EUCLEAN with a reason in why otherwise. */
int lm_unit_check(const void *rec, size_t len, char *why, size_t whylen);
/* One line describing a slot unit ("live host=esx1 gen=3 counter=1234",
 * "free (never used)", ...). Returns 0 or -EUCLEAN (the reason in out). */
int lm_slot_describe(const void *rec, size_t len, char *out, size_t outlen);

/* ---- liveness for readers that hold no slot (lm_watch.c) ---------------- */

enum lm_liveness {
	LM_LV_FREE = 0,	      /* free on disk */
	LM_LV_LIVE = 1,	      /* LIVE and its record moved while watched */
	LM_LV_SILENT = 2,     /* LIVE, still, watched for less than the timeout */
	LM_LV_DEAD = 3,	      /* LIVE and still for the timeout, or its replayer is gone */
	LM_LV_RECOVERING = 4, /* being replayed by a live host */
	LM_LV_CORRUPT = 5,    /* the slot record does not decode (why) */
};

struct lm_slot_watch {
	struct lm_slot_info si; /* as last read, with its recovery record */
	int bad;
	char why[128];
	enum lm_liveness lv;
	double last_move_s; /* seconds since its record last changed; < 0: not seen moving */
	double silent_s;    /* seen still for this long (a lower bound of its silence) */
};

/* Watches every slot for `watch` seconds on this process's monotonic clock
 * (at least one heartbeat interval to judge anything) and, with `extend`,
 * longer while a LIVE slot stays still, up to timeout + one interval, then
 * judges each one (o: geom->nslots entries). Reads only; needs no join.
 * *watched: how long it watched. Errors: bdev errors, -ENOMEM. */
int lm_slots_watch(struct bdev *bd, const struct lm_geom *geom, double watch, int extend,
		   struct lm_slot_watch *o, double *watched);
/* "free", "live", "silent", "dead", "being-recovered", "corrupt". */
const char *lm_liveness_name(enum lm_liveness lv);

const char *lm_mode_name(enum lm_mode mode);
const char *lm_slot_state_name(enum lm_slot_state st);
/* Formats ms since the epoch (a recovery record's time) as
 * "YYYY-MM-DD HH:MM:SS UTC" (out: at least 24 bytes); returns out. */
const char *lm_time_str(uint64_t ms, char *out, size_t len);
/* Formats a UUID as 8-4-4-4-12 hex (out: at least 37 bytes). */
void lm_uuid_str(const uint8_t uuid[16], char *out);

/* ---- fencing on SAN LUNs (persistent reservations; lm_pr.c) ------------- */

/* The reservation key of the host that claimed slot `slot` in generation
 * `gen` with UUID `uuid`: what a survivor preempts, what `vmfsctl hosts`
 * shows. Never 0; the slot is its top 16 bits. */
uint64_t lm_pr_key(uint32_t slot, uint32_t gen, const uint8_t uuid[16]);
/* The key this handle registered, 0 when none (not joined, or a device
 * without reservations). */
uint64_t lm_pr_own_key(struct lm *lm);
/* TEST HOOK: bdev_write() on the handle's device without the lease check,
 * to show that the device itself refuses a preempted host's late write (the
 * window lm_guarded_write() cannot close). Never for real writes. */
int lm_test_unguarded_write(struct lm *lm, const void *buf, uint64_t off, size_t len);

/* This machine's identity, recorded in the heartbeat slots it claims: the
 * environment variable VMFS_MACHINE_ID (32 hex digits; tests give a
 * process another machine with it), else /etc/machine-id, else all zero
 * (unknown: no check). On a device whose ATS is emulated within one
 * machine (an image file, a block device without SCSI), lm_join() refuses
 * with -EBUSY while a slot of another machine is live (docs/LOCKING.md,
 * "One machine per emulated ATS"). Returns 1 if known. */
int lm_machine_id(uint8_t out[16]);
/* 32 hex digits (out: at least 33 bytes). */
void lm_machine_str(const uint8_t id[16], char *out);

/* Message for any negative return of an lm_ function (private, bdev, errno). */
const char *lm_strerror(int err);
/* Detail of the last error returned through this handle (or ""). */
const char *lm_errmsg(struct lm *lm);

#endif
