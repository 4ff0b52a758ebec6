/*
 * bdev.h - the block-device interface of libvmfs (prefix bdev_).
 *
 * Everything above this layer (lockmgr/, libvmfs/, the tools) talks to a
 * shared disk only through this interface. A backend is an ops table with a
 * version field; each backend lives in its own file (bdev_file.c, ...).
 *
 * Invariants every backend keeps (callers rely on them):
 *  1. Offsets and lengths of read/write/ats/discard are multiples of the
 *     logical sector size (bdev->lsec) and lie inside [0, bdev->size);
 *     bdev_read()/bdev_write() check this and return -EINVAL / -ERANGE
 *     before a backend sees the request.
 *  2. Buffers may have any alignment: a backend that needs aligned memory
 *     (O_DIRECT) bounces unaligned buffers itself. bdev_alloc() returns
 *     memory aligned for every backend (4096 bytes).
 *  3. A write that returned 0 is visible to every later read through any
 *     bdev opened on the same device (by this or another process); it is
 *     durable only after a later bdev_flush() returned 0. (Exception: the
 *     crash wrapper keeps writes in a private cache until a flush; other
 *     bdevs see them only then. Its ats() is write-through.)
 *  4. ats() (atomic test and set, SCSI COMPARE AND WRITE) of one logical
 *     sector is atomic against every other ats() on that sector by any
 *     process. It returns 0 when the sector held `expect` and now holds
 *     `newdata`; -BDEV_E_MISCOMPARE when it did not (then, if `actual` is
 *     not NULL, it holds the sector's current content and nothing was
 *     written). A sector that is changed by ats() must only ever be changed
 *     by ats().
 *  5. Every function returns 0 (or a count where stated) or a negative
 *     errno; the few private codes are listed below and named by
 *     bdev_strerror().
 *  6. bdev_submit() checks every request first: if one is invalid, none
 *     runs (the invalid ones get their error, the others -ECANCELED).
 *     Otherwise every request runs, each gets its own result, and the call
 *     returns the first error in array order. Requests of one batch may run
 *     in any order and concurrently: they must not overlap if one writes.
 *  7. One bdev may be shared by the threads of a process; it must not be
 *     used on both sides of a fork() (the io_uring ring / AIO context
 *     belong to the opening process): open it again in the child.
 *
 * Device URIs (bdev_open()):
 *   /path/img  or  file:/path/img[?opt=val&...]   file or block device
 *       options: sector=512|4096 (logical sector size to present; an image
 *       file presents 512 by default), engine=auto|uring|aio|sync (for
 *       bdev_submit() batches; auto tries them in this order),
 *       direct=0|1 (O_DIRECT, default 1 when the file system allows it),
 *       ro=0|1 (read-only), maxio=BYTES (split engine requests larger than
 *       this; a multiple of the sector size). Unknown options are errors.
 *   mem:SIZE[?sector=N]            anonymous in-memory device (tests, fuzzers)
 *   fault:SPEC:INNER-URI           fault injection around INNER (see
 *                                  below for SPEC)
 *   crash:SPEC:INNER-URI           crash simulation around INNER
 *                                  (SPEC below)
 *   trace:LOGFILE:INNER-URI        appends a line per write, ats, flush,
 *                                  discard to LOGFILE (bdev_trace.c)
 *   iscsi://[user%password@]host[:port]/target-iqn/lun[?opt=val&...]
 *                                  an iSCSI LUN through libiscsi
 *                                  (bdev_iscsi.c; options: timeout=SECONDS,
 *                                  retries=N, qd=N, initiator=IQN,
 *                                  ats=auto|caw|pr, stale=SECONDS, ro=0|1;
 *                                  docs/BLOCKDEV.md section 6)
 * Wrappers nest: "trace:/tmp/log:fault:write=9:crash:flush=3:/tmp/img".
 * docs/BLOCKDEV.md describes all of it with examples.
 * The environment variable BDEV_WRAP, when set (for example
 * BDEV_WRAP='fault:write=3' ), wraps every device a program opens by
 * bdev_open() as if the URI had been prefixed with "$BDEV_WRAP:"; the
 * command-line tools use this for fault injection without new options.
 */
#ifndef LIBVMFS_BDEV_H
#define LIBVMFS_BDEV_H

#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#define BDEV_OPS_VERSION 3

/* Private error codes, returned negated. */
enum {
	BDEV_E_MISCOMPARE = 2001, /* ats(): sector did not hold `expect` */
	BDEV_E_CRASHED = 2002,	  /* crash backend: the simulated machine died */
	BDEV_E_INJECTED = 2003,	  /* fault backend: an injected I/O error */
	BDEV_E_URI = 2004,	  /* malformed device URI */
	/* SCSI RESERVATION CONFLICT: this session is not registered (its key
	 * was preempted) or a reservation held by another session excludes
	 * the command. A host that sees it on a write must fence itself. */
	BDEV_E_RESV_CONFLICT = 2005,
	/* The target did not answer within the timeout and reconnecting
	 * failed (or the command could not be retried safely). */
	BDEV_E_TARGET_LOST = 2006,
	/* A "scheme://" URI of no backend (nbd://, rbd://...): not taken for
	 * a file name. */
	BDEV_E_SCHEME = 2007,
};

/* Capability bits (bdev->caps). */
enum {
	BDEV_CAP_DISCARD = 1u << 0,    /* discard() frees space */
	BDEV_CAP_ZEROES = 1u << 1,     /* write_zeroes() without writing data */
	BDEV_CAP_ATS_NATIVE = 1u << 2, /* ats() is a device command */
	BDEV_CAP_DIRECT = 1u << 3,     /* bypasses the page cache */
	BDEV_CAP_READONLY = 1u << 4,   /* opened read-only */
	BDEV_CAP_PR = 1u << 5,	       /* bdev_pr_*() work (SCSI-3 reservations) */
};

/* How ats() is made atomic (bdev->ats_method, bdev_ats_method_name()). */
enum bdev_ats_method {
	BDEV_ATS_EMULATED = 0, /* in-host lock around read-compare-write (OFD
				* lock, mutex): atomic on one machine only */
	BDEV_ATS_CAW = 1,      /* SCSI COMPARE AND WRITE on the target */
	BDEV_ATS_PR = 2,       /* SCSI-3 persistent reservation as a mutex
				* around read-compare-write (targets without
				* COMPARE AND WRITE) */
};

/* SCSI-3 persistent reservation types (the SPC codes). */
enum bdev_pr_type {
	BDEV_PR_WRITE_EXCLUSIVE = 1,
	BDEV_PR_EXCLUSIVE_ACCESS = 3,
	BDEV_PR_WE_REGISTRANTS_ONLY = 5,
	BDEV_PR_EA_REGISTRANTS_ONLY = 6,
	BDEV_PR_WE_ALL_REGISTRANTS = 7,
	BDEV_PR_EA_ALL_REGISTRANTS = 8,
};

enum bdev_pr_action {
	BDEV_PR_REGISTER = 0, /* sa_key becomes this session's key (0: unregister) */
	BDEV_PR_RESERVE,      /* key, type */
	BDEV_PR_RELEASE,      /* key, type */
	BDEV_PR_PREEMPT,      /* key, sa_key = victim, type */
	BDEV_PR_CLEAR,	      /* key: drops every registration and the reservation */
	BDEV_PR_READ_KEYS,    /* keys[max_keys] -> nkeys, generation */
	BDEV_PR_READ_RESV,    /* -> held, resv_key, resv_type, generation */
};

/* One persistent-reservation command (struct bdev_ops.pr). */
struct bdev_pr_cmd {
	enum bdev_pr_action action;
	uint64_t key;		/* in: this session's current key */
	uint64_t sa_key;	/* in: new key (register), victim (preempt) */
	enum bdev_pr_type type; /* in: reserve, release, preempt */
	uint64_t *keys;		/* in/out: READ_KEYS fills up to max_keys */
	unsigned max_keys;
	unsigned nkeys;		     /* out: number of registrations (may exceed max_keys) */
	uint32_t generation;	     /* out: PRgeneration */
	int held;		     /* out (READ_RESV): 1 if a reservation exists */
	uint64_t resv_key;	     /* out (READ_RESV): its holder's key */
	enum bdev_pr_type resv_type; /* out (READ_RESV) */
};

enum bdev_op { BDEV_OP_READ = 0, BDEV_OP_WRITE = 1 };

/* One request of a batch submitted with bdev_submit(). */
struct bdev_io {
	enum bdev_op op;
	void *buf; /* read into / write from; len bytes */
	uint64_t off;
	size_t len;
	int result; /* out: 0 or negative errno */
};

struct bdev;

struct bdev_ops {
	unsigned version; /* BDEV_OPS_VERSION */
	const char *name;
	int (*read)(struct bdev *bd, void *buf, uint64_t off, size_t len);
	int (*write)(struct bdev *bd, const void *buf, uint64_t off, size_t len);
	/* Runs a batch concurrently (queue depth up to n) and waits for all of
	 * it; NULL means the generic loop over read/write. */
	int (*submit)(struct bdev *bd, struct bdev_io *ios, unsigned n);
	int (*flush)(struct bdev *bd);
	int (*ats)(struct bdev *bd, uint64_t off, const void *expect, const void *newdata,
		   void *actual);
	int (*discard)(struct bdev *bd, uint64_t off, uint64_t len);	  /* may be NULL */
	int (*write_zeroes)(struct bdev *bd, uint64_t off, uint64_t len); /* may be NULL */
	void (*close)(struct bdev *bd);
	/* Persistent reservations (version 2); NULL: -EOPNOTSUPP. */
	int (*pr)(struct bdev *bd, struct bdev_pr_cmd *cmd);
	/* Version 3: the device's current size in bytes, asked again (a LUN
	 * or image that grew); NULL: the size never changes. */
	int (*refresh_size)(struct bdev *bd, uint64_t *size);
};

struct bdev {
	const struct bdev_ops *ops;
	uint64_t size;	 /* bytes, a multiple of lsec */
	uint32_t lsec;	 /* logical sector size: the unit of I/O and of ats() */
	uint32_t psec;	 /* physical sector size (>= lsec) */
	uint32_t caps;	 /* BDEV_CAP_* */
	char engine[16]; /* the I/O engine in use, for reports ("uring", ...) */
	int ats_method;	 /* enum bdev_ats_method */
	char *uri;	 /* as given to bdev_open() */
	void *priv;	 /* backend state */
	/* Called when a write, batch, flush, ats, discard or write_zeroes of
	 * this bdev returns -BDEV_E_RESV_CONFLICT (bdev_set_conflict_hook()). */
	void (*_Atomic on_conflict)(void *arg);
	void *_Atomic conflict_arg;
};

/* Opens a device by URI (see the top of this file). flags: BDEV_O_RDONLY. */
#define BDEV_O_RDONLY 1u
int bdev_open(const char *uri, unsigned flags, struct bdev **out);
void bdev_close(struct bdev *bd);

/* Checked entry points: validate alignment and range, then call the ops. */
int bdev_read(struct bdev *bd, void *buf, uint64_t off, size_t len);
int bdev_write(struct bdev *bd, const void *buf, uint64_t off, size_t len);
int bdev_submit(struct bdev *bd, struct bdev_io *ios, unsigned n);
int bdev_flush(struct bdev *bd);
int bdev_ats(struct bdev *bd, uint64_t off, const void *expect, const void *newdata, void *actual);
/* Frees or zeroes a range; falls back to writing zeroes when the device has
 * no cheaper way. The range reads back as zeroes afterwards. */
int bdev_discard(struct bdev *bd, uint64_t off, uint64_t len);
int bdev_write_zeroes(struct bdev *bd, uint64_t off, uint64_t len);
/* Asks the device for its size again (the file's size, BLKGETSIZE64, READ
 * CAPACITY(16)) and sets bd->size to it, rounded down to lsec, when it grew:
 * a device never shrinks under an open bdev (requests beyond the new end
 * would fail anyway). Returns 0 (size unchanged or grown) or a negative
 * errno; a backend without the op keeps its size. Callers sharing bd with
 * other threads may see bd->size change between two requests. */
int bdev_refresh_size(struct bdev *bd);

/* pthread_create() for the library's background threads (iSCSI event loop,
 * heartbeat, reclaim, keeper): the thread starts with every signal blocked,
 * so an application's signal handling (signalfd, sigwait in its own thread)
 * is never pre-empted by a default action delivered to one of ours. Returns
 * 0 or a positive error number, as pthread_create(). */
int bdev_thread_create(pthread_t *thr, void *(*fn)(void *), void *arg);

/* fn(arg) is called (in the thread that issued the command, after it
 * failed) whenever a write, batch, flush, ats, discard or write_zeroes of
 * bd returns -BDEV_E_RESV_CONFLICT: the target refused it because this
 * session's reservation key was preempted. The lock manager sets it to
 * fence the host (docs/LOCKING.md, "Fencing on SAN LUNs"). NULL removes it.
 * Reads and the bdev_pr_*() commands never call it. */
void bdev_set_conflict_hook(struct bdev *bd, void (*fn)(void *arg), void *arg);

/*
 * Persistent reservations (SCSI-3 PR; BDEV_CAP_PR), the fencing primitive of
 * shared LUNs. Registrations and reservations belong to this bdev's session
 * (I_T nexus): two bdevs are two sessions even in one process. Every
 * function returns 0 or a negative code; -EOPNOTSUPP on a device without
 * reservations (files, mem), -BDEV_E_RESV_CONFLICT when the target refuses
 * (this session is not registered under `key`, or another holds the
 * reservation).
 *   bdev_pr_register(bd, key)   this session's key becomes `key` (REGISTER
 *                               from the key it holds, or from none if it
 *                               was preempted); 0 unregisters.
 *   bdev_pr_reserve(bd, key, type) / bdev_pr_release(bd, key, type)
 *   bdev_pr_preempt(bd, key, victim, type)   removes every registration of
 *                               `victim` (and takes over the reservation if
 *                               `victim` held it); the victim's later writes
 *                               get -BDEV_E_RESV_CONFLICT under a
 *                               registrants-only or all-registrants
 *                               reservation.
 *   bdev_pr_clear(bd, key)      removes all registrations and the reservation.
 *   bdev_pr_read_keys(bd, keys, max, &n, &gen)  up to `max` registered keys;
 *                               *n = how many are registered in all.
 *   bdev_pr_read_reservation(bd, &held, &key, &type)
 * With BDEV_ATS_PR (targets without COMPARE AND WRITE) the reservation is
 * the ATS mutex: callers may register and preempt but must not reserve (a
 * reservation kept by a caller blocks every ats() until it is preempted as
 * stale).
 */
int bdev_pr(struct bdev *bd, struct bdev_pr_cmd *cmd);
int bdev_pr_register(struct bdev *bd, uint64_t key);
int bdev_pr_reserve(struct bdev *bd, uint64_t key, enum bdev_pr_type type);
int bdev_pr_release(struct bdev *bd, uint64_t key, enum bdev_pr_type type);
int bdev_pr_preempt(struct bdev *bd, uint64_t key, uint64_t victim, enum bdev_pr_type type);
int bdev_pr_clear(struct bdev *bd, uint64_t key);
int bdev_pr_read_keys(struct bdev *bd, uint64_t *keys, unsigned max, unsigned *n, uint32_t *gen);
int bdev_pr_read_reservation(struct bdev *bd, int *held, uint64_t *key, enum bdev_pr_type *type);
/* "emulated", "compare-and-write" or "reservation" (enum bdev_ats_method). */
const char *bdev_ats_method_name(const struct bdev *bd);

/* Memory aligned for any backend (4096), zero-filled; free with bdev_free(). */
void *bdev_alloc(size_t len);
void bdev_free(void *p);

/* Message for a negative return of any bdev_ function (errno or private). */
const char *bdev_strerror(int err);

/* Backend constructors, used by bdev_open(); `opts` is the URI's query part
 * (may be NULL). Wrappers take ownership of `inner`. */
int bdev_file_open(const char *path, const char *opts, unsigned flags, struct bdev **out);
int bdev_mem_open(const char *spec, unsigned flags, struct bdev **out);
int bdev_fault_open(const char *spec, struct bdev *inner, struct bdev **out);
int bdev_crash_open(const char *spec, struct bdev *inner, struct bdev **out);
int bdev_trace_open(const char *logpath, struct bdev *inner, struct bdev **out);
/* iSCSI (bdev_iscsi.c): `uri` is the whole "iscsi://..." string; -EPROTONOSUPPORT
 * when built without libiscsi. */
int bdev_iscsi_open(const char *uri, unsigned flags, struct bdev **out);

/*
 * Fault backend (bdev_fault.c). SPEC is a comma-separated list:
 *   read=N write=N flush=N ats=N discard=N  fail the Nth operation of that
 *                 kind (1-based, counted from open or from the last
 *                 bdev_fault_arm(); discard counts discard and write_zeroes;
 *                 a batch counts each of its requests in array order)
 *   ats_lost=N    the Nth ats() is performed, then reported as failed
 *                 (a lost reply)
 *   torn=N        the Nth write is torn: only the first half of its sectors
 *                 (rounded down) reaches the inner device; it fails
 *   persist       once a kind has failed, every later operation of that kind
 *                 fails too (default: only the Nth)
 *   errno=NAME    the error to return: EIO (default), ENOSPC, EROFS, ENXIO,
 *                 ETIMEDOUT, INJECTED (-BDEV_E_INJECTED) or RESV_CONFLICT
 *                 (-BDEV_E_RESV_CONFLICT, as a target that preempted us)
 * Example: "fault:write=3,persist:/tmp/img" or BDEV_WRAP='fault:flush=1'.
 */
enum bdev_fault_kind {
	BDEV_FAULT_READ = 0,
	BDEV_FAULT_WRITE,
	BDEV_FAULT_FLUSH,
	BDEV_FAULT_ATS,
	BDEV_FAULT_DISCARD,
	BDEV_FAULT_NKINDS
};
struct bdev_fault_counts {
	uint64_t ops[BDEV_FAULT_NKINDS];      /* operations seen since (re)arming */
	uint64_t injected[BDEV_FAULT_NKINDS]; /* of them, made to fail */
};
/* Replaces the spec of a fault bdev and restarts the counts from zero; an
 * empty spec disarms. -EINVAL if bd is not a fault bdev, -BDEV_E_URI for a
 * bad spec (the old one stays). */
int bdev_fault_arm(struct bdev *bd, const char *spec);
int bdev_fault_counts(struct bdev *bd, struct bdev_fault_counts *out);

/*
 * Crash backend (bdev_crash.c), after SQLite's test6.c. Writes are kept in a
 * cache (reads see them) until a flush writes them through. SPEC:
 *   flush=N      the Nth flush (1-based) is the crash point (default: none,
 *                only bdev_crash_now())
 *   mode=keep|drop|garble|random  what happens at the crash to each pending
 *                sector: written, lost, replaced by random bytes, or one of
 *                the three chosen at random per sector (default random)
 *   seed=S       seed of the random choices and garbage (default 1)
 * At the crash point every later operation fails with -BDEV_E_CRASHED.
 * ats() is write-through: atomic on the inner device and durable at once.
 */
/* Crashes now (as the crash-point flush would); returns 0, or
 * -BDEV_E_CRASHED if it had already crashed, -EINVAL if not a crash bdev. */
int bdev_crash_now(struct bdev *bd);
/* Number of sectors written but not yet flushed through; -EINVAL. */
long bdev_crash_pending(struct bdev *bd);

/* Helpers for backends. */
struct bdev *bdev_new(const struct bdev_ops *ops, const char *uri);
/* Wrappers: copies size, sector sizes, caps and engine name of `inner`. */
void bdev_wrap_geometry(struct bdev *bd, const struct bdev *inner);
/* Finds "key=" in an "a=1&b=2" option string; copies its value into val. */
int bdev_opt(const char *opts, const char *key, char *val, size_t vallen);

#endif
