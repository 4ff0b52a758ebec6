/*
 * lm_int.h - private to lockmgr/: on-disk layout of heartbeat slots and lock
 * records, the handle's state, and helpers shared by lockmgr.c (heartbeat,
 * fencing), lm_lock.c (locks, takeover) and lm_ondisk.c (encode/decode).
 */
#ifndef LIBVMFS_LM_INT_H
#define LIBVMFS_LM_INT_H

#include "lockmgr.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/*
 * Heartbeat slot record (first 512 bytes of its 4 KiB unit; rest zero).
 *
 *   OFFSET SIZE DESCRIPTION
 *   0x000  4    magic LM_SLOT_MAGIC ("LMHB")
 *   0x004  2    format version (2; version 1, without the machine id, is
 *               still decoded; every write produces version 2)
 *   0x006  2    state: 0 free, 1 live, 2 being replayed
 *   0x008  4    slot index (must equal the slot's position)
 *   0x00c  4    slot generation (bumped by every claim and every takeover)
 *   0x010  8    heartbeat counter (bumped by the owner every interval)
 *   0x018  16   owner UUID (live) / dead owner's UUID (being replayed)
 *   0x028  64   owner hostname, NUL-padded
 *   0x068  4    replayer slot (being replayed)
 *   0x06c  4    replayer slot generation (being replayed)
 *   0x070  4    generation of the dead owner being replayed
 *   0x074  4    owner's heartbeat interval, ms (informational)
 *   0x078  4    owner's heartbeat timeout, ms (informational)
 *   0x07c  4    reserved, zero
 *   0x080  16   owner's machine id (/etc/machine-id; zero: unknown)
 *   0x090  364  reserved, zero
 *   0x1fc  4    CRC32C of bytes 0x000-0x1fb
 */
#define LM_SLOT_MAGIC 0x42484d4cu /* "LMHB" */
#define LM_LOCK_MAGIC 0x4b4c4d4cu /* "LMLK" */
#define LM_VERSION    2u
#define LM_VERSION_1  1u /* read only: no machine id */
#define SL_MAGIC      0x000
#define SL_VERSION    0x004
#define SL_STATE      0x006
#define SL_INDEX      0x008
#define SL_GEN	      0x00c
#define SL_COUNTER    0x010
#define SL_UUID	      0x018
#define SL_HOST	      0x028
#define SL_REPL_SLOT  0x068
#define SL_REPL_GEN   0x06c
#define SL_DEAD_GEN   0x070
#define SL_INTERVAL   0x074
#define SL_TIMEOUT    0x078
#define SL_RESERVED1  0x07c
#define SL_MACHINE    0x080
#define SL_RESERVED   0x090
#define SL_CRC	      0x1fc
_Static_assert(SL_HOST + LM_HOSTNAME_MAX == SL_REPL_SLOT, "slot layout");
_Static_assert(SL_CRC + 4 == LM_REC_SIZE, "slot record is 512 bytes");

/*
 * Recovery record: the second 512 bytes of a heartbeat slot unit (unit
 * offset 0x200; the rest of the unit stays zero). Written by the host that
 * replayed the slot's dead owner, just before it frees (or, reclaiming at
 * join, keeps) the slot; kept until the next recovery of that slot
 * overwrites it. Outside the slot record on purpose: lockmgr versions
 * before it decode only the first 512 bytes of a slot and refuse any
 * non-zero reserved byte inside them, so they still join, lock and take
 * over on a volume that carries recovery records (only their fsck/info,
 * lm_unit_check(), calls the unit's tail "not zero").
 *
 *   OFFSET SIZE DESCRIPTION (relative to the record, unit offset + 0x200)
 *   0x000  4    magic LM_RECOV_MAGIC ("LMRC")
 *   0x004  2    version (1)
 *   0x006  2    reserved, zero
 *   0x008  4    generation of the dead owner that was recovered
 *   0x00c  4    recovering host's slot
 *   0x010  4    recovering host's slot generation
 *   0x014  4    journal transactions replayed
 *   0x018  8    when: the recovering host's wall clock, ms since the Unix
 *               epoch (informational: never compared for liveness)
 *   0x020  16   dead owner's UUID
 *   0x030  64   dead owner's hostname, NUL-padded
 *   0x070  16   recovering host's UUID
 *   0x080  64   recovering host's hostname, NUL-padded
 *   0x0c0  316  reserved, zero
 *   0x1fc  4    CRC32C of bytes 0x000-0x1fb
 * On a device whose logical sector is 512 bytes the record is a separate
 * sector, written (lease-guarded) while the slot is being replayed by its
 * writer; on larger sectors it is part of the ATS image that frees the
 * slot.
 */
#define LM_RECOV_MAGIC	 0x43524d4cu /* "LMRC" */
#define LM_RECOV_VERSION 1u
#define LM_RECOV_OFF	 0x200 /* in the slot unit */
#define RC_MAGIC	 0x000
#define RC_VERSION	 0x004
#define RC_DEAD_GEN	 0x008
#define RC_BY_SLOT	 0x00c
#define RC_BY_GEN	 0x010
#define RC_REPLAYED	 0x014
#define RC_TIME		 0x018
#define RC_DEAD_UUID	 0x020
#define RC_DEAD_HOST	 0x030
#define RC_BY_UUID	 0x070
#define RC_BY_HOST	 0x080
#define RC_RESERVED	 0x0c0
#define RC_CRC		 0x1fc
_Static_assert(RC_BY_HOST + LM_HOSTNAME_MAX == RC_RESERVED, "recovery layout");

/*
 * Lock record (first 512 bytes of its 4 KiB unit; rest zero), version 2.
 *
 *   OFFSET SIZE DESCRIPTION
 *   0x000  4    magic LM_LOCK_MAGIC ("LMLK")
 *   0x004  2    format version (2; version 1 is still decoded, see below)
 *   0x006  2    mode: 0 free, 1 exclusive, 2 read-only shared, 3 multi-writer
 *   0x008  8    lock generation (bumped by every acquisition and upgrade)
 *   0x010  8    address: byte offset of this unit (must match where it is read)
 *   0x018  4    number of holders (free 0, exclusive 1, shared 1..64)
 *   0x01c  4    wanted: 1 + slot index of a host waiting for this lock (set by
 *               the waiter, see "hand-over" in lm_lock.c), 0 none; always 0
 *               in a free record
 *   0x020  16   owner UUID (exclusive; zero otherwise)
 *   0x030  64   lock name, NUL-padded (named locks; empty otherwise)
 *   0x070  128  64 holder slot indexes, u16 each (LM_MAX_SLOTS = 65536, so
 *               every index fits); exclusive: entry 0 is the owner
 *   0x0f0  256  64 holder slot generations, u32 each, same order
 *   0x1f0  12   reserved, zero
 *   0x1fc  4    CRC32C of bytes 0x000-0x1fb
 * Unused holder entries (index >= number of holders) are zero.
 *
 * Version 1 (read only; every write produces version 2): 0x070 holds 48
 * holders of 8 bytes (slot u32, generation u32), the rest as above.
 */
#define LM_LOCK_VERSION	  2u
#define LM_LOCK_VERSION_1 1u
#define LK_MAGIC	  0x000
#define LK_VERSION	  0x004
#define LK_MODE		  0x006
#define LK_GEN		  0x008
#define LK_ADDR		  0x010
#define LK_NHOLD	  0x018
#define LK_WANTED	  0x01c
#define LK_UUID		  0x020
#define LK_NAME		  0x030
#define LK_HSLOT	  0x070 /* u16 x LM_MAX_HOLDERS */
#define LK_HGEN		  0x0f0 /* u32 x LM_MAX_HOLDERS */
#define LK_RESERVED	  0x1f0
#define LK_CRC		  0x1fc
#define LK1_HOLDERS	  0x070 /* version 1: (u32 slot, u32 gen) x 48 */
#define LK1_MAX_HOLDERS	  48u
_Static_assert(LK_NAME + LM_NAME_MAX == LK_HSLOT, "lock layout");
_Static_assert(LK_HSLOT + LM_MAX_HOLDERS * 2 == LK_HGEN, "lock layout");
_Static_assert(LK_HGEN + LM_MAX_HOLDERS * 4 == LK_RESERVED, "lock layout");
_Static_assert(LK1_HOLDERS + LK1_MAX_HOLDERS * 8 == LK_RESERVED, "lock layout v1");
_Static_assert(LK_CRC + 4 == LM_REC_SIZE, "lock record is 512 bytes");
_Static_assert(LM_MAX_SLOTS - 1 <= 0xffff, "holder slot index fits in u16");

/* lm_ondisk.c */
int lm_is_zero(const void *buf, size_t len);
void lm_slot_encode(const struct lm_slot_info *s, uint8_t *rec);
int lm_slot_decode(const uint8_t *rec, uint32_t index, uint32_t nslots, struct lm_slot_info *s,
		   char *why, size_t whylen);
void lm_lock_encode(const struct lm_lock_info *l, uint8_t *rec);
int lm_lock_decode(const uint8_t *rec, uint64_t addr, uint32_t nslots, struct lm_lock_info *l,
		   char *why, size_t whylen);
void lm_recov_encode(const struct lm_recovery *r, uint8_t *rec);
/* 0 (r->valid set when a record is there, clear when all zero) or -EUCLEAN. */
int lm_recov_decode(const uint8_t *rec, uint32_t nslots, struct lm_recovery *r, char *why,
		    size_t whylen);

/* What this host last saw of another slot, timed on its monotonic clock. */
struct lm_obs {
	int valid;
	uint64_t key;	  /* CRC32C of the record (sans CRC field), counter: change = movement */
	int64_t t_change; /* when the current image was first seen */
};

#define LM_MEMO 512 /* speculative lock images kept per handle */

struct lm {
	struct bdev *bd;
	struct bdev *hb_bd; /* heartbeat thread's handle (== bd when shared) */
	int own_hb_bd;
	struct lm_geom g;
	uint32_t lsec; /* ATS length */
	char hostname[LM_HOSTNAME_MAX];
	uint8_t uuid[16];
	uint8_t machine[16]; /* machine id (lm_machine_id()); zero: unknown */
	lm_takeover_cb takeover;
	void *takeover_arg;
	lm_fence_cb on_fence;
	void *fence_arg;

	pthread_mutex_t mu; /* obs[], busy[], errmsg, uncertain[], stats */
	struct lm_obs *obs;
	uint8_t *busy; /* busy[i]: a thread of this handle is taking over slot i */
	char errmsg[256];
	/* Lock units whose acquiring ATS failed with an I/O error that a re-read
	 * could not resolve: if a later acquire finds this host named there, its
	 * own ATS had landed, and it adopts the lock instead of -EALREADY. */
	uint64_t uncertain[16];
	unsigned nuncertain;
	/* The last image this host wrote (or met in a miscompare) of recently
	 * used lock units, direct-mapped by address: the compare image of
	 * the next ATS on that unit, tried before reading it (lm_lock.c,
	 * "speculative images"). memo_mu guards both arrays. */
	pthread_mutex_t memo_mu;
	uint64_t *memo_addr; /* LM_MEMO entries, 0: empty */
	uint8_t *memo_img;   /* LM_MEMO x lsec bytes */
	struct lm_stats st;
	lm_takeover_cb reclaim_cb;
	void *reclaim_arg;
	uint32_t reclaim_ms;
	int join_wait_ms;
	pthread_t rc_thread;
	int rc_running;
	int rc_stop;
	pthread_cond_t rc_cv;

	int joined;
	uint32_t slot, gen;
	uint8_t *slot_img; /* our slot unit as last written (lsec bytes) */
	uint64_t counter;
	_Atomic int64_t last_hb_ns; /* issue time of the last successful heartbeat ATS */
	_Atomic int fenced;
	_Atomic int fence_done;	    /* lm_fence() finished: reason, eventfd, callback */
	_Atomic uint64_t write_seq; /* lm_write_guard() calls by the application */
	char fence_why[160];
	int efd;

	/* Persistent-reservation fencing (lm_pr.c): pr set when the device
	 * has reservations and is writable; pr_key is the key registered for
	 * this host's session, 0 while none; pr_type the type used to
	 * preempt. */
	int pr;
	int pr_type;
	uint64_t pr_key;

	pthread_t hb_thread;
	int hb_running;
	int hb_stop;
	pthread_cond_t hb_cv;
};

struct lm_lock {
	struct lm *lm;
	uint64_t addr;
	enum lm_mode mode;
	uint64_t gen;
};

/* Speculative images (lm_lock.c). */
int lm_memo_init(struct lm *lm);
void lm_memo_free(struct lm *lm);

int64_t lm_now_ns(void);
/* Sleeps ms milliseconds (any value >= 0: seconds and nanoseconds are split
 * correctly), resuming after signals. */
void lm_sleep_ms(int64_t ms);
/* The generation after g, skipping 0 (which marks "never written"). */
uint32_t lm_next_gen(uint32_t g);
/* Bumps one counter of lm->st under the mutex. */
#define LM_STAT_INC(lm, field)                                                                     \
	do {                                                                                       \
		pthread_mutex_lock(&(lm)->mu);                                                     \
		(lm)->st.field++;                                                                  \
		pthread_mutex_unlock(&(lm)->mu);                                                   \
	} while (0)
/* Re-reads a unit after an ATS error (a few tries: the error may persist
 * for a moment). 0 and buf, or the last read error. */
int lm_reread(struct lm *lm, uint64_t off, uint8_t *buf);
void lm_set_err(struct lm *lm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lm_fence(struct lm *lm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t lm_slot_off(const struct lm *lm, uint32_t index);
/* Reads a unit's first logical sector into buf (lsec bytes). */
int lm_read_unit(struct lm *lm, uint64_t off, uint8_t *buf);
/* bdev_ats() of the unit's first sector (one place to instrument). */
int lm_ats(struct lm *lm, struct bdev *bd, uint64_t off, const uint8_t *expect,
	   const uint8_t *newdata);
/* The same; on a miscompare, actual (if not NULL) holds the current unit. */
int lm_ats_cur(struct lm *lm, struct bdev *bd, uint64_t off, const uint8_t *expect,
	       const uint8_t *newdata, uint8_t *actual);

/* lockmgr.c: heartbeat thread, slot claims. */
int lm_hb_start(struct lm *lm);
void lm_hb_stop(struct lm *lm);
int lm_hb_claim(struct lm *lm, uint32_t idx, const uint8_t *old, const struct lm_slot_info *o);
int lm_slot_ats_owned(struct lm *lm, uint32_t idx, const uint8_t *old, const uint8_t *img);
void lm_full_msg(struct lm *lm, const char *extra);

/* lm_lock.c: one pass of the reclaim thread over every other slot, taking
 * over the dead ones (runs the reclaim callback). */
int lm_sweep(struct lm *lm);
/* lm_join() on a full region: watches for a free or dead slot and reclaims
 * it (see lm_join()); 0 with lm->joined set and the heartbeat running. */
int lm_join_reclaim(struct lm *lm);
/* lm_pr.c: reservation keys (design note there). All are no-ops (0) on a
 * device without BDEV_CAP_PR. */
void lm_pr_setup(struct lm *lm);    /* at open: lm->pr, conflict hooks */
void lm_pr_teardown(struct lm *lm); /* at free: hooks removed */
/* Registers this host's keys for (slot, gen) on its sessions: before the ATS
 * that claims that slot generation. */
int lm_pr_enter(struct lm *lm, uint32_t slot, uint32_t gen);
/* After a successful join: the standing reservation (COMPARE AND WRITE
 * targets), made by the first host. */
int lm_pr_reserve(struct lm *lm);
/* Removes the keys of the host that held (slot, gen, uuid): after our
 * takeover ATS, before its journal is replayed. */
int lm_pr_preempt(struct lm *lm, uint32_t slot, uint32_t gen, const uint8_t uuid[16]);
/* Removes our own keys (clean leave, failed join). */
void lm_pr_leave(struct lm *lm);

/* lm_write_guard() without counting (lm_write_seq()): the lock manager's
 * own lock and heartbeat writes. */
int lm_guard(struct lm *lm);

#endif
