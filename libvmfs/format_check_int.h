/*
 * format_check_int.h - private to format_check.c (the checker: passes and
 * findings) and format_repair.c (the fixes, the host recovery and the
 * bitmap rewrite). One struct ck per round of checking; one struct ck_run
 * for the whole vmfs_check() call (what survives the rounds: what was seen
 * of the heartbeats, the lines already reported, the lock manager handle).
 */
#ifndef LIBVMFS_FORMAT_CHECK_INT_H
#define LIBVMFS_FORMAT_CHECK_INT_H

#include <stddef.h>
#include <stdint.h>

#include "format_ondisk.h"
#include "lockmgr.h"

/* How a problem may be repaired (e2fsck's -p / -y). */
enum ck_fix {
	FIX_NONE = 0,  /* no repair exists: always left */
	FIX_SAFE = 1,  /* loses nothing: -p and -y */
	FIX_RISKY = 2, /* may drop data or names: -y only */
	FIX_DEFER = 3, /* would be safe, but depends on a structure left
			* unreadable (a directory block: link counts and
			* orphans are unknown; an inode or pointer block: its
			* blocks look leaked) */
};

/* Verdict on a heartbeat slot after the observation (VMFS_CHECK_HOSTS). */
enum ck_host {
	HOST_FREE = 0, /* never used or free */
	HOST_ALIVE,    /* its record moved (or its replayer's did) */
	HOST_DEAD,     /* LIVE or REPLAYING but nobody moved for the timeout */
	HOST_BAD,      /* does not decode (reported by the unit pass) */
};

struct ck_slot {
	enum ck_host verdict;
	struct lm_slot_info si;
};

struct ck_run {
	struct bdev *bd;
	struct vmfs_vh vh; /* as read by the latest round */
	unsigned flags;	   /* VMFS_CHECK_* */
	vmfs_check_cb cb;
	void *arg;
	uint32_t *seen; /* hashes of the lines already reported (later rounds) */
	size_t nseen, cseen;
	int hosts_done;	       /* the observation ran (first round) */
	uint32_t nslots;       /* entries of slots[] */
	struct ck_slot *slots; /* per heartbeat slot, after the observation */
	uint64_t live;	       /* slots judged alive: no repair at all */
	int recovered;	       /* dead hosts' journals and slots handled */
	struct lm *lm;	       /* fsck's own host, joined on first need */
	unsigned fixed;	       /* total over the rounds */
	int round;
};

struct ck_type {
	uint8_t *alloc;	  /* bitmap from the cluster headers (repairs update it) */
	uint8_t *ref;	  /* bitmap of references found */
	uint8_t *valid;	  /* per cluster: header decoded (or rebuilt) */
	uint8_t *dirty;	  /* per cluster: alloc changed, header to rewrite */
	uint8_t *rebuild; /* per cluster: header was bad and is rebuilt from alloc */
	uint64_t nres;	  /* ncl * per_cl */
};

/* A pointer to a block already referenced by another file, to be cloned or
 * dropped once every reference is known. */
struct ck_dup {
	uint64_t fd;	/* the file holding the second reference */
	uint64_t where; /* device offset of the inode block or PB holding it */
	uint32_t slot;	/* index in that block's address array */
	int in_pb;	/* where is a pointer block (else an inode block) */
	uint64_t addr;	/* the doubly referenced address */
	int drop;	/* drop the pointer (a bad PB) instead of cloning */
};

/* A held lock record, kept to judge its holders once the hosts are known. */
struct ck_held {
	uint64_t off;
	char region[64];
};

struct ck {
	struct ck_run *run;
	struct bdev *bd;
	struct vmfs_vh vh;
	struct vmfs_check_stats *st;
	struct ck_type t[VMFS_RT_MAX + 1];
	uint32_t *links;    /* per FD: directory entries naming it */
	uint32_t *subdirs;  /* per FD: subdirectory entries in it */
	uint8_t *checked;   /* per FD: inode checked this round */
	uint8_t *buf;	    /* scratch, 2 units */
	int err;	    /* first operational error */
	unsigned fixed;	    /* this round */
	uint64_t *root_map; /* the root directory's block map (lost+found links) */
	uint64_t root_nmap;
	struct ck_dup *dups;
	size_t ndups, cdups;
	struct ck_held *held;
	size_t nheld, cheld;
	int in_hb;	/* checking heartbeat slots (not lock records) */
	int incomplete; /* a directory was not read entirely (problem left) */
	int unwalked;	/* a file's block tree was not read entirely */
	/* the finding being reported (ck_prob() -> ck_fixed()) */
	char region[128];
	char msg[512];
};

/* format_check.c. ck_prob() formats a finding; when the run may repair it
 * now it returns 1 and the caller repairs, then ends the finding with
 * ck_fixed_how() (rc 0: fixed, "how" says what was done); otherwise the
 * finding is reported as left and 0 is returned. */
int ck_prob(struct ck *c, enum ck_fix fix, const char *region, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int ck_read(struct ck *c, void *buf, uint64_t off, size_t len);
uint64_t ck_res_idx(const struct ck *c, uint64_t a);
int ck_bit(const uint8_t *bm, uint64_t i);
void ck_setbit(uint8_t *bm, uint64_t i, int v);
void ck_mark_alloc(struct ck *c, uint64_t a, int v);
int ck_append(void **arr, size_t *n, size_t *cap, size_t size, const void *item);
uint64_t ck_journal_pending(struct bdev *bd, const struct vmfs_vh *vh, uint32_t slot);
void ck_fixed_how(struct ck *c, int rc, const char *how);

/* format_repair.c */
int rp_write(struct ck *c, const void *buf, uint64_t off, size_t len);
int rp_zero_unit(struct ck *c, uint64_t off);
int rp_fd_store(struct ck *c, const struct vmfs_fd *fd);
int rp_fd_salvage(struct ck *c, uint64_t a, uint8_t *raw, struct vmfs_fd *fd, char *what,
		  size_t whatlen);
int rp_fd_clear(struct ck *c, uint64_t a);
int rp_db_store(struct ck *c, uint64_t off, const struct vmfs_db *db);
int rp_db_salvage(struct ck *c, uint64_t off, uint8_t *raw, uint64_t dir, uint32_t index,
		  uint32_t bucket, struct vmfs_db *db);
int rp_set_addr(struct ck *c, uint64_t where, int in_pb, uint32_t slot, uint64_t addr);
int rp_journal_reset(struct ck *c, uint32_t slot);
int rp_orphan_link(struct ck *c, struct vmfs_fd *fd, const char *name);
void rp_dups(struct ck *c);
void rp_bitmaps(struct ck *c);
void rp_hosts(struct ck *c);
int rp_lock_release(struct ck *c, uint64_t off);
void rp_run_end(struct ck_run *r);

#endif
