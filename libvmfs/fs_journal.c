/*
 * fs_journal.c - transactions (locks + block images of one metadata change),
 * the per-host redo journal and its replay.
 *
 * Commit order (DESIGN.md 5.4; every write guarded by lm_write_guard(), so
 * a fenced host writes nothing):
 *   1. descriptor + block images at log blocks head .. head+n
 *   2. commit record at head+n+1                                flush
 *   3. in-place writes of the n blocks                          flush
 *   4. journal header: head += n+2, head_txid += 1, seq += 1,
 *      written to header copy seq % 2 (the older one)          flush
 *   5. release the transaction's locks
 * Steps 1 and 2 are one batch of writes (bdev_submit(): they may land in
 * any order, concurrently) and share one flush (as ext4's async_commit;
 * step 3 is one batch too): the commit record
 * carries the CRC32C of the descriptor and every image, so a crash that made
 * the commit record durable but not all images leaves a transaction that
 * replay rejects (CRC mismatch), and nothing was written in place before
 * that flush returned. Data the transaction links (file blocks, a
 * directory's copy to file blocks) was written before step 1; when any
 * write went out since this host's last flush (lm_write_seq()), a flush
 * comes first so the data is durable before a commit record can be. Three
 * flushes per metadata-only transaction, four when data was written.
 * One transaction of a host is in the log at a time: it is retired (4)
 * before its locks are released (5), so a replayed journal never holds an
 * image of a block whose lock its writer has released (a later writer's
 * newer image could otherwise be overwritten). Replay (fs_replay) runs from
 * the header's head: a descriptor with the expected txid, its images and a
 * commit whose txid, count and CRC32C (descriptor + images) match form a
 * committed transaction; it is written in place; the first invalid one ends
 * the replay; the header is advanced and flushed. Replaying twice writes
 * the same images again (idempotent).
 *
 * The header has two copies (format.h): a torn or lost header write leaves
 * the newer valid copy, whose head is exact; the head is never rebuilt from
 * the log (the newest descriptor there may be retired, and replaying it would
 * write old images over other hosts' newer blocks). Any failed header write
 * breaks the mount: the next one would overwrite the last good copy.
 *
 * Failure after step 2 began: the transaction may be committed but not in
 * place; the mount is marked broken (every later operation fails with -EIO)
 * and the locks are kept, so a survivor replays this journal when it takes
 * this host's slot over (vmfs_umount() first tries to replay it itself).
 */
#include "fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bdev.h"
#include "crc32c.h"

static struct lm_lock *kept_take(struct vmfs *fs, uint64_t off);
static int pend_copy(struct vmfs *fs, uint64_t off, uint8_t *buf);

void tx_begin(struct vmfs *fs, struct tx *tx)
{
	memset(tx, 0, sizeof(*tx));
	tx->fs = fs;
}

unsigned fs_tx_max(const struct vmfs *fs)
{
	uint64_t n = fs->jnlog - 2;

	return n > VMFS_JD_MAX ? VMFS_JD_MAX : (unsigned)n;
}

static struct txl *tx_find(struct tx *tx, uint64_t lock_off)
{
	for (unsigned i = 0; i < tx->nl; i++)
		if (tx->l[i].addr == lock_off)
			return &tx->l[i];
	return NULL;
}

int tx_holds(struct tx *tx, uint64_t lock_off)
{
	return tx->fs->ro || tx_find(tx, lock_off) != NULL;
}

static int borrow(struct tx *tx, struct fs_inode *ino, uint64_t off, enum lm_mode mode)
{
	struct txl *l = &tx->l[tx->nl];
	int rc;

	*l = (struct txl){.addr = off, .lk = ino->lk, .mode = ino->mode, .ino = ino};
	if (mode == LM_MODE_EX && ino->mode != LM_MODE_EX) {
		/* SH -> EX waits for other readers; MW -> EX only if alone. */
		rc = lm_lock_convert(ino->lk, LM_MODE_EX,
				     ino->mode == LM_MODE_MW ? 0 : fs_wait_ms(tx->fs));
		if (rc == -ETIMEDOUT)
			rc = -EBUSY;
		if (rc)
			return rc;
		l->restore = ino->mode;
		l->mode = LM_MODE_EX;
		ino->mode = LM_MODE_EX;
	}
	tx->nl++;
	return 0;
}

int tx_lock_fd(struct tx *tx, uint64_t addr, enum lm_mode mode)
{
	struct vmfs *fs = tx->fs;
	uint64_t off = vmfs_addr_off(&fs->vh, addr);
	struct txl *l = tx_find(tx, off);
	struct fs_inode *ino;
	int tmo, rc;

	if (fs->ro)
		return mode == LM_MODE_SH ? 0 : -EROFS;
	if (l && (l->mode == LM_MODE_EX || l->mode == mode))
		return 0;
	if (l)
		return -EDEADLK; /* SH then EX in one transaction: not used */
	if (tx->nl == TX_MAXLOCKS)
		return -ENOLCK;
	ino = fs_inode_find(fs, addr);
	if (ino && ino->lk)
		return borrow(tx, ino, off, mode);
	tmo = off < tx->maxfd ? 0 : fs_wait_ms(fs);
	l = &tx->l[tx->nl];
	l->lk = kept_take(fs, off);
	if (l->lk)
		mode = LM_MODE_EX; /* kept locks are EX: good for SH too */
	rc = l->lk ? 0 : lm_lock_acquire(fs->lm, off, mode, tmo, &l->lk);
	if (rc == -EBUSY && tmo == 0) {
		fs->busy_off = off; /* fs_backoff() asks for it */
		tx->retry_addr = addr;
		return -EAGAIN;
	}
	if (rc == -ETIMEDOUT)
		rc = -EBUSY;
	if (rc) {
		fs_seterr(fs, "lock of FD at 0x%" PRIx64 ": %s %s", off, lm_strerror(rc),
			  lm_errmsg(fs->lm));
		return rc;
	}
	l->addr = off;
	l->mode = mode;
	l->ino = NULL;
	l->restore = LM_MODE_FREE;
	l->detached = 0;
	tx->nl++;
	if (off > tx->maxfd)
		tx->maxfd = off;
	return 0;
}

struct lm_lock *tx_detach(struct tx *tx, uint64_t addr)
{
	struct txl *l = tx_find(tx, vmfs_addr_off(&tx->fs->vh, addr));

	if (!l || l->ino || l->detached)
		return NULL;
	l->detached = 1;
	return l->lk;
}

int tx_lock_cl(struct tx *tx, uint64_t cl_off)
{
	struct txl *l;
	int rc;

	if (tx->fs->ro)
		return -EROFS;
	if (tx_find(tx, cl_off))
		return 0;
	if (tx->nl == TX_MAXLOCKS)
		return -ENOLCK;
	l = &tx->l[tx->nl];
	l->lk = kept_take(tx->fs, cl_off);
	rc = l->lk ? 0 : lm_lock_acquire(tx->fs->lm, cl_off, LM_MODE_EX, 0, &l->lk);
	if (rc == -EBUSY)
		tx->fs->busy_off = cl_off; /* fs_backoff() asks for it */
	if (rc)
		return rc;
	l->addr = cl_off;
	l->mode = LM_MODE_EX;
	l->ino = NULL;
	l->restore = LM_MODE_FREE;
	l->detached = 0;
	tx->nl++;
	return 0;
}

/* ---- the metadata cache's view of a transaction (fs_cache.c) ------------- */

static __thread struct fs_optctx *opt_cur; /* this thread's fs_opt_read(), if any */

void fs_opt_enter(struct fs_optctx *c)
{
	c->hits = c->reads = c->np = 0;
	c->wseq = fs_cache_wseq(c->fs);
	c->prev = opt_cur;
	opt_cur = c;
}

void fs_opt_leave(struct fs_optctx *c, int keep)
{
	/* a commit or replay of this host since the reads began may have
	 * written one of these blocks after it was read: keep nothing */
	if (keep && fs_cache_wseq(c->fs) != c->wseq)
		keep = 0;
	for (unsigned i = 0; i < c->np; i++) {
		if (keep)
			fs_cache_put(c->fs, c->poff[i], c->own, c->gen, c->pbuf[i]);
		bdev_free(c->pbuf[i]);
	}
	c->np = 0;
	opt_cur = c->prev;
	if (opt_cur) /* what this one read, the enclosing one did too */
		opt_cur->reads += c->reads;
}

void fs_opt_note_read(void)
{
	if (opt_cur)
		opt_cur->reads++;
}

/* Whether blocks covered by lock own may be served from and kept in the
 * cache for this transaction (1), and at which generation (fs_cache.c C2):
 * held: the transaction holds own (SH or EX; MW holders elsewhere may
 * write); else the optimistic read in progress on this thread for own,
 * returned in *ctx (NULL when the transaction's own lock decides). */
static int own_gen(struct tx *tx, uint64_t own, uint64_t *gen, int *held, struct fs_optctx **ctx)
{
	struct txl *l;

	*ctx = NULL;
	if (!own || !tx->fs->cache)
		return 0;
	l = tx_find(tx, own);
	if (l) {
		if (l->mode == LM_MODE_MW || !l->lk)
			return 0;
		*gen = lm_lock_gen(l->lk);
		*held = 1;
		return 1;
	}
	if (opt_cur && opt_cur->fs == tx->fs && opt_cur->own == own) {
		*gen = opt_cur->gen;
		*held = opt_cur->held;
		*ctx = opt_cur;
		return 1;
	}
	return 0;
}

static struct txb *tx_get(struct tx *tx, uint64_t off, int fresh, uint64_t own, int *err)
{
	struct fs_optctx *c = NULL;
	uint64_t gen = 0;
	int held = 0, use = 0;
	struct txb *b;

	for (unsigned i = 0; i < tx->nb; i++)
		if (tx->b[i].off == off) {
			if (!tx->b[i].own)
				tx->b[i].own = own;
			return &tx->b[i];
		}
	if (tx->nb == tx->cap) {
		unsigned cap = tx->cap ? 2 * tx->cap : 16;
		struct txb *nb = realloc(tx->b, cap * sizeof(*nb));

		if (!nb) {
			*err = -ENOMEM;
			return NULL;
		}
		tx->b = nb;
		tx->cap = cap;
	}
	b = &tx->b[tx->nb];
	b->off = off;
	b->own = own;
	b->dirty = 0;
	b->buf = bdev_alloc(VMFS_UNIT);
	if (!b->buf) {
		*err = -ENOMEM;
		return NULL;
	}
	*err = 0;
	if (!fresh && pend_copy(tx->fs, off, b->buf)) {
		/* committed here, not in place yet (K3): newer than disk */
		if (opt_cur)
			opt_cur->hits++;
		tx->nb++;
		return b;
	}
	if (!fresh) {
		use = own_gen(tx, own, &gen, &held, &c);
		if (use && fs_cache_get(tx->fs, off, own, gen, held, b->buf)) {
			if (c)
				c->hits++;
			tx->nb++;
			return b;
		}
		if (opt_cur)
			opt_cur->reads++;
		*err = bdev_read(tx->fs->bd, b->buf, off, VMFS_UNIT);
	}
	if (*err) {
		bdev_free(b->buf);
		return NULL;
	}
	if (!fresh && use && held) {
		fs_cache_put(tx->fs, off, own, gen, b->buf); /* read under the lock */
	} else if (!fresh && c && c->np < OPT_PENDING) {
		uint8_t *copy = bdev_alloc(VMFS_UNIT);

		if (copy) { /* kept once the second record read validates it */
			memcpy(copy, b->buf, VMFS_UNIT);
			c->poff[c->np] = off;
			c->pbuf[c->np++] = copy;
		}
	}
	tx->nb++;
	return b;
}

int tx_read_own(struct tx *tx, uint64_t off, uint64_t own, uint8_t **p)
{
	int err = 0;
	struct txb *b = tx_get(tx, off, 0, own, &err);

	if (b)
		*p = b->buf;
	return err;
}

int tx_read(struct tx *tx, uint64_t off, uint8_t **p)
{
	return tx_read_own(tx, off, 0, p);
}

int tx_write_own(struct tx *tx, uint64_t off, int fresh, uint64_t own, uint8_t **p)
{
	int err = 0;
	struct txb *b;

	if (tx->fs->ro)
		return -EROFS;
	b = tx_get(tx, off, fresh, own, &err);
	if (!b)
		return err;
	if (!b->dirty && tx_ndirty(tx) >= fs_tx_max(tx->fs))
		return -ENOSPC;
	b->dirty = 1;
	*p = b->buf;
	return 0;
}

int tx_write(struct tx *tx, uint64_t off, int fresh, uint8_t **p)
{
	return tx_write_own(tx, off, fresh, 0, p);
}

unsigned tx_ndirty(const struct tx *tx)
{
	unsigned n = 0;

	for (unsigned i = 0; i < tx->nb; i++)
		n += tx->b[i].dirty;
	return n;
}

static void tx_release(struct tx *tx, int keep)
{
	for (unsigned t = 0; t <= VMFS_RT_MAX; t++)
		if (tx->xgrow[t] && !keep) /* abandoned: the table on disk never had them */
			vmfs_xtab_pop(&tx->fs->vh, t, tx->xgrow[t]);
	memset(tx->xgrow, 0, sizeof(tx->xgrow));
	for (unsigned i = 0; i < tx->nl; i++) {
		struct txl *l = &tx->l[i];

		if (l->detached)
			continue;
		if (l->ino) {
			if (l->restore != LM_MODE_FREE && !keep &&
			    fs_downgrade(tx->fs, l->lk, l->restore) == 0)
				l->ino->mode = l->restore;
			continue;
		}
		if (keep)
			lm_lock_forget(l->lk); /* record kept for a survivor */
		else
			fs_unlock(tx->fs, l->lk);
	}
	for (unsigned i = 0; i < tx->nb; i++)
		bdev_free(tx->b[i].buf);
	free(tx->b);
	tx->b = NULL;
	tx->nb = tx->cap = tx->nl = 0;
	tx->maxfd = 0;
	tx->freed_data = 0;
}

void tx_abort(struct tx *tx)
{
	tx_release(tx, 0);
}

static uint64_t log_off(const struct vmfs *fs, uint64_t joff, uint64_t pos)
{
	return vmfs_journal_log_off(joff, fs->vh.journal_size, pos);
}

static int put(struct vmfs *fs, const void *buf, uint64_t off)
{
	return lm_guarded_write(fs->lm, buf, off, VMFS_UNIT);
}

static int flush(struct vmfs *fs)
{
	int rc = lm_write_guard(fs->lm);
	uint64_t seq = lm_write_seq(fs->lm);

	if (!rc)
		rc = bdev_flush(fs->bd);
	if (!rc) /* atomic: the reclaim thread's replays flush too */
		__atomic_store_n(&fs->flushed_seq, seq, __ATOMIC_RELAXED);
	return rc;
}

/* Writes a batch of VMFS_UNIT blocks, guarded (I3); they may land in any
 * order (a flush orders them against what follows). */
static int put_batch(struct vmfs *fs, struct bdev_io *ios, unsigned n)
{
	int rc = lm_write_guard(fs->lm);

	return rc ? rc : bdev_submit(fs->bd, ios, n);
}

/* Steps 1-2: descriptor, the images imgs[0..jd->nblocks), commit, in one
 * batch at the log's tail (blk: two blocks), then a flush. */
static int write_log(struct vmfs *fs, uint8_t *blk, struct vmfs_jd *jd, uint8_t *const *imgs)
{
	uint64_t pos = fs->tail;
	uint32_t crc;
	struct vmfs_jc jc = {0};
	struct bdev_io *ios = calloc((size_t)jd->nblocks + 2, sizeof(*ios));
	unsigned k = 0;
	int rc = ios ? 0 : -ENOMEM;

	/* data written since the last flush (I5) must be durable first */
	if (!rc && lm_write_seq(fs->lm) != __atomic_load_n(&fs->flushed_seq, __ATOMIC_RELAXED))
		rc = flush(fs);
	if (rc) {
		free(ios);
		return rc;
	}
	vmfs_jd_encode(jd, blk);
	crc = crc32c(0, blk, VMFS_UNIT);
	ios[k++] = (struct bdev_io){BDEV_OP_WRITE, blk, log_off(fs, fs->joff, pos), VMFS_UNIT, 0};
	for (unsigned i = 0; i < jd->nblocks; i++) {
		crc = crc32c(crc, imgs[i], VMFS_UNIT);
		ios[k] = (struct bdev_io){BDEV_OP_WRITE, imgs[i], log_off(fs, fs->joff, pos + k),
					  VMFS_UNIT, 0};
		k++;
	}
	jc.txid = jd->txid;
	jc.nblocks = jd->nblocks;
	jc.data_crc = crc;
	jc.commit_ns = fs_now_ns();
	vmfs_jc_encode(&jc, blk + VMFS_UNIT);
	/* the commit record goes with the rest: its CRC covers the
	 * descriptor and every image, so replay rejects it unless all of
	 * them landed (see the note at the top) */
	ios[k] = (struct bdev_io){BDEV_OP_WRITE, blk + VMFS_UNIT,
				  log_off(fs, fs->joff, pos + 1 + jd->nblocks), VMFS_UNIT, 0};
	rc = put_batch(fs, ios, k + 1);
	free(ios);
	return rc ? rc : flush(fs);
}

/* Writes header seq + 1 to copy (seq + 1) % 2, the older one, and flushes.
 * A failure leaves the mount broken: the copy written may be torn, and the
 * next header write would go to the other, last good, copy. */
static int write_jh(struct vmfs *fs, uint64_t joff, struct vmfs_jh *jh, uint8_t *blk)
{
	int rc;

	jh->seq++;
	vmfs_jh_encode(jh, blk);
	rc = put(fs, blk, joff + (jh->seq % VMFS_JH_COPIES) * VMFS_UNIT);
	if (!rc)
		rc = flush(fs);
	if (rc && !fs->broken) {
		fs->broken = rc;
		fs_seterr(fs, "write of journal header %" PRIu64 " failed: %s; mount is broken",
			  jh->seq, vmfs_strerror(rc));
	}
	return rc;
}

/* ---- kept locks, group commit and deferred checkpoints --------------------
 *
 * Group commit (keep_locks). tx_commit() writes nothing: the transaction's
 * images join the running group (pending images marked run; a block
 * changed again replaces its image). group_locked() writes the group as
 * one log transaction (one flush; a flush first when data was written
 * since the last one, I5) at the keeper's first tick (KEEP_POLL_MS) after
 * it is GROUP_MS old (so within 5-10 ms), at
 * vmfs_fsync()/vmfs_sync(), before every checkpoint, and:
 * Invariant G1: the running group with the next transaction fits one
 * descriptor and the free part of the log, else it is committed first
 * (so a checkpoint never finds a group it cannot log, and never writes
 * an unlogged image in place).
 * Invariant G2: a file block or sub-block is not handed out as data while
 * the running group frees one of those kinds (fs_alloc() commits it
 * first): data goes in place unjournaled, and a crash that lost the free
 * would leave the old owner pointing at the new data.
 * Operations run one at a time (fs->mu), so a group holds whole
 * operations: a crash loses a suffix of them, never part of one. Without
 * keep_locks every commit is a group of one, logged and checkpointed at
 * once (the order at the top of this file).
 *
 * Kept locks. A transaction's EX locks are not released at its end: they go
 * to the mount's kept set (fs->kept), and the next transaction that needs
 * one takes it from there without touching the disk. A lock in the kept set
 * has no user on this host; a lock in use (a transaction's, an open
 * inode's) is not in the set.
 *
 * Deferred checkpoint. A commit writes the log (descriptor, images, commit
 * record; one flush) and stops there: the images are kept in memory
 * (fs->pend, newest image per block) and the log's tail advances. A
 * checkpoint writes every pending image in place (one batch, flush), moves
 * the journal header's head to the tail (flush) and empties fs->pend.
 *
 * Invariant K1 (replaces "one transaction in the log at a time"): every
 * block with an image in the unretired log is covered by a lock this host
 * holds EX (kept or in use). So: a checkpoint precedes every release of an
 * EX lock and every downgrade (fs_unlock() of a non-kept lock,
 * fs_downgrade(), the keeper giving locks up, unmount). A replay of this
 * log by a survivor (which first takes this host's slot over, so every
 * such lock is still held by the dead slot) writes only blocks nobody else
 * can have changed since.
 * Invariant K2: a block with a pending image is never handed out as file
 * data while that image is pending (fs_alloc() checkpoints first): data is
 * written in place without the journal, and a later checkpoint or replay
 * would otherwise write the old metadata image over it.
 * Invariant K3: reads outside transactions lay the pending images over what
 * they read (fs_meta_read()); transactions read them first (tx_get()).
 *
 * Hand-over. Another host that waits for a lock held EX marks the lock
 * record "wanted" (lockmgr, lm_lock.c). The keeper thread polls the
 * records of the kept locks every KEEP_POLL_MS (one batch read) and gives
 * up the marked ones: checkpoint, then release. It also gives up locks
 * unused for KEEP_IDLE_MS, so an idle host holds nothing and other hosts'
 * lock-free reads (fs_opt_read) never meet it. The keeper takes jmu only,
 * never fs->mu: a foreground operation waiting for another host's lock
 * (holding fs->mu) cannot stop this host from handing its kept locks over,
 * so two hosts waiting for each other's kept locks make progress. A lock in
 * use is handed over when its transaction ends (it goes back to the set,
 * the next poll sees the mark).
 *
 * Timeouts: KEEP_POLL_MS 5 ms, KEEP_IDLE_MS 100 ms; the waiter's own poll
 * (lock manager backoff, at most 10 ms) adds to the hand-over time. Lock
 * order: fs->mu, jmu; the lock manager's locks below.
 */
#define KEEP_POLL_MS 5
#define KEEP_IDLE_MS 100
#define GROUP_MS     5	/* the running group is committed once this old */
#define KEEP_MAX     64 /* kept locks; more: the oldest quarter goes */
#define PEND_BUCKETS 256

struct fs_pend {
	uint64_t off;
	uint8_t *buf; /* VMFS_UNIT bytes */
	int run;      /* newer than its image in the log, if any: in the running group */
	struct fs_pend *next;
};

struct fs_kept {
	uint64_t off;
	struct lm_lock *lk;
	int64_t last_ns; /* monotonic: when it was last put back */
};

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static unsigned pend_hash(uint64_t off)
{
	return (unsigned)((off / VMFS_UNIT) * 0x9e3779b97f4a7c15ull >> 56) % PEND_BUCKETS;
}

static struct fs_pend *pend_find(struct vmfs *fs, uint64_t off)
{
	if (!fs->pend)
		return NULL;
	for (struct fs_pend *p = fs->pend[pend_hash(off)]; p; p = p->next)
		if (p->off == off)
			return p;
	return NULL;
}

/* Copies the pending image of the block at off into buf: 1, else 0. */
static int pend_copy(struct vmfs *fs, uint64_t off, uint8_t *buf)
{
	struct fs_pend *p;
	int found = 0;

	pthread_mutex_lock(&fs->jmu);
	p = pend_find(fs, off);
	if (p) {
		memcpy(buf, p->buf, VMFS_UNIT);
		found = 1;
	}
	pthread_mutex_unlock(&fs->jmu);
	return found;
}

/* The committed transaction's images become the pending ones (jmu held). */
static int pend_add(struct tx *tx)
{
	struct vmfs *fs = tx->fs;

	if (!fs->pend)
		fs->pend = calloc(PEND_BUCKETS, sizeof(*fs->pend));
	if (!fs->pend)
		return -ENOMEM;
	for (unsigned i = 0; i < tx->nb; i++) {
		struct txb *b = &tx->b[i];
		struct fs_pend *p;

		if (!b->dirty)
			continue;
		p = pend_find(fs, b->off);
		if (!p) {
			p = calloc(1, sizeof(*p));
			if (!p || !(p->buf = bdev_alloc(VMFS_UNIT))) {
				free(p);
				return -ENOMEM;
			}
			p->off = b->off;
			p->next = fs->pend[pend_hash(b->off)];
			fs->pend[pend_hash(b->off)] = p;
			fs->npend++;
		}
		memcpy(p->buf, b->buf, VMFS_UNIT);
		if (!p->run) {
			if (!fs->nrun)
				fs->run_ns = mono_ns();
			p->run = 1;
			fs->nrun++;
		}
	}
	return 0;
}

static void pend_clear(struct vmfs *fs)
{
	for (unsigned h = 0; fs->pend && h < PEND_BUCKETS; h++)
		while (fs->pend[h]) {
			struct fs_pend *p = fs->pend[h];

			fs->pend[h] = p->next;
			bdev_free(p->buf);
			free(p);
		}
	fs->npend = 0;
	fs->nrun = 0;
	fs->run_freed = 0;
}

/* Log blocks holding unretired transactions (tail == head: empty or full,
 * told apart by the txids). */
static uint64_t log_used(const struct vmfs *fs)
{
	uint64_t u = (fs->tail + fs->jnlog - fs->jh.head) % fs->jnlog;

	return fs->tail_txid == fs->jh.head_txid ? 0 : u ? u : fs->jnlog;
}

/* A failed write after a commit began: the mount is broken; the locks stay
 * named on disk (forgotten here) so a survivor replays this journal. */
static void broke(struct vmfs *fs, int rc, const char *what, uint64_t txid)
{
	if (!fs->broken) {
		fs->broken = rc;
		fs_seterr(fs, "%s %" PRIu64 " failed: %s; mount is broken", what, txid,
			  vmfs_strerror(rc));
	}
	for (unsigned i = 0; i < fs->nkept; i++)
		lm_lock_forget(fs->kept[i].lk);
	fs->nkept = 0;
}

/* Group commit (jmu held): the running group's images, one transaction at
 * the log's tail (G1: it fits, tx_commit() sees to it). */
static int group_locked(struct vmfs *fs)
{
	struct vmfs_jd *jd;
	uint8_t **imgs, *blk;
	unsigned k = 0;
	int rc;

	if (fs->broken)
		return fs->broken;
	if (!fs->nrun)
		return 0;
	jd = calloc(1, sizeof(*jd));
	imgs = calloc(fs->nrun, sizeof(*imgs));
	blk = bdev_alloc(2 * VMFS_UNIT);
	rc = jd && imgs && blk ? 0 : -ENOMEM;
	for (unsigned h = 0; !rc && h < PEND_BUCKETS; h++)
		for (struct fs_pend *p = fs->pend[h]; p; p = p->next)
			if (p->run) {
				jd->target[k] = p->off;
				imgs[k++] = p->buf;
			}
	if (!rc) {
		jd->txid = fs->tail_txid;
		jd->nblocks = k;
		jd->slot = fs->slot;
		jd->journal_off = fs->joff;
		rc = write_log(fs, blk, jd, imgs);
	}
	if (!rc) {
		fs->tail = (fs->tail + k + 2) % fs->jnlog;
		fs->tail_txid++;
		fs->est.groups++;
		for (unsigned h = 0; h < PEND_BUCKETS; h++)
			for (struct fs_pend *p = fs->pend[h]; p; p = p->next)
				p->run = 0;
		fs->nrun = 0;
		fs->run_freed = 0;
	} else {
		broke(fs, rc, "commit of transaction", fs->tail_txid);
	}
	free(jd);
	free(imgs);
	bdev_free(blk);
	return rc;
}

int fs_group_commit(struct vmfs *fs)
{
	int rc;

	if (fs->ro)
		return 0;
	pthread_mutex_lock(&fs->jmu);
	rc = group_locked(fs);
	pthread_mutex_unlock(&fs->jmu);
	return rc;
}

int fs_group_commit_freed(struct vmfs *fs)
{
	int rc = 0;

	if (fs->ro)
		return 0;
	pthread_mutex_lock(&fs->jmu);
	if (fs->run_freed)
		rc = group_locked(fs);
	pthread_mutex_unlock(&fs->jmu);
	return rc;
}

/* Checkpoint (jmu held): the running group to the log, then every pending
 * image in place in one batch, flush, then the header's head moves to the
 * tail (write_jh flushes). */
static int ckpt_locked(struct vmfs *fs)
{
	struct bdev_io *ios;
	uint8_t *blk;
	unsigned k = 0;
	int rc = group_locked(fs);

	if (rc)
		return rc;
	if (fs->tail_txid == fs->jh.head_txid)
		return 0; /* nothing unretired */
	ios = calloc(fs->npend ? fs->npend : 1, sizeof(*ios));
	blk = bdev_alloc(VMFS_UNIT);
	rc = ios && blk ? 0 : -ENOMEM;
	for (unsigned h = 0; !rc && h < PEND_BUCKETS; h++)
		for (struct fs_pend *p = fs->pend[h]; p; p = p->next)
			ios[k++] = (struct bdev_io){BDEV_OP_WRITE, p->buf, p->off, VMFS_UNIT, 0};
	if (!rc)
		rc = put_batch(fs, ios, k);
	if (!rc)
		rc = flush(fs);
	if (!rc) {
		fs->jh.head = fs->tail;
		fs->jh.head_txid = fs->tail_txid;
		rc = write_jh(fs, fs->joff, &fs->jh, blk);
	}
	if (!rc) {
		pend_clear(fs);
		fs->est.checkpoints++;
	} else {
		broke(fs, rc, "checkpoint up to transaction", fs->tail_txid);
	}
	free(ios);
	bdev_free(blk);
	return rc;
}

int fs_checkpoint(struct vmfs *fs)
{
	int rc;

	if (fs->ro)
		return 0;
	pthread_mutex_lock(&fs->jmu);
	rc = ckpt_locked(fs);
	pthread_mutex_unlock(&fs->jmu);
	return rc;
}

int fs_meta_read(struct vmfs *fs, void *buf, uint64_t off, size_t len)
{
	int rc = bdev_read(fs->bd, buf, off, len);

	if (rc)
		return rc;
	pthread_mutex_lock(&fs->jmu);
	for (uint64_t u = off & ~(uint64_t)(VMFS_UNIT - 1); u < off + len; u += VMFS_UNIT) {
		struct fs_pend *p = pend_find(fs, u);
		uint64_t lo = u < off ? off : u, hi = u + VMFS_UNIT;

		if (!p)
			continue;
		hi = hi > off + len ? off + len : hi;
		memcpy((uint8_t *)buf + (lo - off), p->buf + (lo - u), hi - lo);
	}
	pthread_mutex_unlock(&fs->jmu);
	return 0;
}

int fs_pend_overlaps(struct vmfs *fs, uint64_t off, uint64_t len)
{
	int found = 0;

	pthread_mutex_lock(&fs->jmu);
	for (uint64_t u = off & ~(uint64_t)(VMFS_UNIT - 1); u < off + len && !found; u += VMFS_UNIT)
		found = pend_find(fs, u) != NULL;
	pthread_mutex_unlock(&fs->jmu);
	return found;
}

/* Takes the lock at off out of the kept set (NULL: not kept). */
static struct lm_lock *kept_take(struct vmfs *fs, uint64_t off)
{
	struct lm_lock *lk = NULL;

	pthread_mutex_lock(&fs->jmu);
	for (unsigned i = 0; i < fs->nkept; i++)
		if (fs->kept[i].off == off) {
			lk = fs->kept[i].lk;
			fs->kept[i] = fs->kept[--fs->nkept];
			fs->est.kept_reuses++;
			break;
		}
	pthread_mutex_unlock(&fs->jmu);
	return lk;
}

/* Gives up kept locks i with give[i] set (jmu held): checkpoint first. */
static int kept_give(struct vmfs *fs, const int *give)
{
	int rc = ckpt_locked(fs);
	unsigned j = 0;

	if (rc)
		return rc; /* broke() forgot them */
	for (unsigned i = 0; i < fs->nkept; i++) {
		if (give[i] < 0)
			lm_lock_forget(fs->kept[i].lk); /* no longer ours */
		else if (give[i])
			lm_lock_release(fs->kept[i].lk);
		else
			fs->kept[j++] = fs->kept[i];
	}
	fs->nkept = j;
	return 0;
}

int fs_unlock(struct vmfs *fs, struct lm_lock *lk)
{
	int rc = 0;

	if (!lk)
		return 0;
	pthread_mutex_lock(&fs->jmu);
	if (fs->broken) {
		lm_lock_forget(lk);
		rc = fs->broken;
	} else if (lm_lock_mode(lk) != LM_MODE_EX) {
		rc = lm_lock_release(lk); /* K1: nothing pending under it */
	} else if (fs->keep && fs->kept) {
		if (fs->nkept == KEEP_MAX) {
			int give[KEEP_MAX] = {0};
			int64_t cut;
			unsigned older = 0;

			/* the oldest quarter goes: find the cut by counting */
			for (cut = 0;; cut = cut ? cut * 2 : 1000000) {
				older = 0;
				for (unsigned i = 0; i < fs->nkept; i++)
					older += fs->kept[i].last_ns < mono_ns() - cut;
				if (older <= KEEP_MAX / 4 || cut > 60000000000)
					break;
			}
			for (unsigned i = 0, n = 0; i < fs->nkept; i++)
				if (fs->kept[i].last_ns < mono_ns() - cut ||
				    n < KEEP_MAX / 4 - older)
					n += give[i] = 1;
			rc = kept_give(fs, give);
		}
		if (!rc) {
			/* the keeper sleeps without a timeout only when it has
			 * nothing: wake it then (not at every put back, which
			 * made it read every kept record once per operation) */
			if (!fs->nkept && !fs->nrun)
				pthread_cond_signal(&fs->kcond);
			fs->kept[fs->nkept++] = (struct fs_kept){lm_lock_addr(lk), lk, mono_ns()};
		} else {
			lm_lock_forget(lk);
		}
	} else {
		rc = ckpt_locked(fs);
		if (rc)
			lm_lock_forget(lk);
		else
			rc = lm_lock_release(lk);
	}
	pthread_mutex_unlock(&fs->jmu);
	return rc;
}

int fs_downgrade(struct vmfs *fs, struct lm_lock *lk, enum lm_mode mode)
{
	int rc = fs_checkpoint(fs);

	if (rc)
		return rc;
	rc = lm_lock_convert(lk, mode, 0);
	if (rc) {
		/* A downgrade never waits, so this is a device error or a lost
		 * lock: the record may name us in either mode (a lost reply
		 * whose re-read failed too). Believing EX while the disk says
		 * SH would let this host write while others read-share the
		 * file, so the mount is broken (its holder forgets the lock
		 * at fs_unlock(): it stays named for a survivor to take over;
		 * test_fs_ioerr test_downgrade_unknown). */
		pthread_mutex_lock(&fs->jmu);
		broke(fs, rc, "lock downgrade after transaction", fs->tail_txid);
		pthread_mutex_unlock(&fs->jmu);
	}
	return rc;
}

int fs_lock_take(struct vmfs *fs, uint64_t off, enum lm_mode mode, int timeout_ms,
		 struct lm_lock **out)
{
	struct lm_lock *lk = kept_take(fs, off);
	int rc;

	if (!lk)
		return lm_lock_acquire(fs->lm, off, mode, timeout_ms, out);
	rc = mode == LM_MODE_EX ? 0 : fs_downgrade(fs, lk, mode);
	if (rc) {
		fs_unlock(fs, lk);
		return rc;
	}
	*out = lk;
	return 0;
}

/* One look of the keeper (jmu held): the kept locks another host asks for,
 * or that sat unused for KEEP_IDLE_MS, are given up. */
static void keeper_pass(struct vmfs *fs)
{
	struct lm_lock *lks[KEEP_MAX];
	int wanted[KEEP_MAX], give[KEEP_MAX], any = 0, asked = 0, idle = 0;
	int64_t now = mono_ns();
	unsigned n = fs->nkept;

	if (fs->broken || lm_fenced(fs->lm)) {
		broke(fs, fs->broken ? fs->broken : -LM_E_FENCED, "keeping locks after transaction",
		      fs->tail_txid);
		return;
	}
	for (unsigned i = 0; i < n; i++)
		lks[i] = fs->kept[i].lk;
	if (lm_locks_wanted(lks, n, wanted))
		return; /* a read error: look again next time */
	for (unsigned i = 0; i < n; i++) {
		give[i] = wanted[i];
		if (!give[i] && now - fs->kept[i].last_ns > (int64_t)KEEP_IDLE_MS * 1000000) {
			give[i] = 1;
			idle++;
		} else if (give[i] > 0) {
			asked++;
		}
		any |= give[i];
	}
	if (any && kept_give(fs, give) == 0) {
		fs->est.handovers += (uint64_t)asked;
		fs->est.idle_releases += (uint64_t)idle;
	}
}

static void *keeper_main(void *arg)
{
	struct vmfs *fs = arg;

	pthread_mutex_lock(&fs->jmu);
	while (!fs->keeper_stop) {
		struct timespec ts;

		if (!fs->nkept && !fs->nrun) {
			pthread_cond_wait(&fs->kcond, &fs->jmu);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += KEEP_POLL_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&fs->kcond, &fs->jmu, &ts);
		if (!fs->keeper_stop && fs->nrun &&
		    mono_ns() - fs->run_ns >= (int64_t)GROUP_MS * 1000000)
			group_locked(fs); /* an error breaks the mount */
		if (!fs->keeper_stop && fs->nkept)
			keeper_pass(fs);
	}
	pthread_mutex_unlock(&fs->jmu);
	return NULL;
}

int fs_journal_start(struct vmfs *fs)
{
	pthread_condattr_t ca;

	if (fs->ro || !fs->keep)
		return 0;
	fs->kept = calloc(KEEP_MAX, sizeof(*fs->kept));
	if (!fs->kept)
		return -ENOMEM;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fs->kcond, &ca);
	pthread_condattr_destroy(&ca);
	if (bdev_thread_create(&fs->keeper, keeper_main, fs)) {
		pthread_cond_destroy(&fs->kcond);
		free(fs->kept);
		fs->kept = NULL;
		return -EAGAIN;
	}
	fs->keeper_on = 1;
	return 0;
}

void fs_journal_stop(struct vmfs *fs)
{
	if (fs->keeper_on) {
		pthread_mutex_lock(&fs->jmu);
		fs->keeper_stop = 1;
		pthread_cond_signal(&fs->kcond);
		pthread_mutex_unlock(&fs->jmu);
		pthread_join(fs->keeper, NULL);
		pthread_cond_destroy(&fs->kcond);
		fs->keeper_on = 0;
	}
	if (!fs->ro && fs->lm) {
		int give[KEEP_MAX];

		pthread_mutex_lock(&fs->jmu);
		for (unsigned i = 0; i < fs->nkept; i++)
			give[i] = 1;
		if (fs->nkept)
			kept_give(fs, give);
		else
			ckpt_locked(fs);
		pthread_mutex_unlock(&fs->jmu);
	}
	pend_clear(fs);
	free(fs->pend);
	fs->pend = NULL;
	free(fs->kept);
	fs->kept = NULL;
	fs->nkept = 0;
}

void vmfs_engine_stats(struct vmfs *fs, struct vmfs_engine_stats *st)
{
	pthread_mutex_lock(&fs->jmu);
	*st = fs->est;
	st->kept_now = fs->nkept;
	pthread_mutex_unlock(&fs->jmu);
}

/* The cache after a commit (fs_cache.c C1): the blocks written are kept
 * as written when the transaction holds their owner, else forgotten. */
static void cache_commit(struct tx *tx, int ok)
{
	for (unsigned i = 0; i < tx->nb; i++) {
		struct txb *b = &tx->b[i];
		struct fs_optctx *c;
		uint64_t gen;
		int held = 0;

		if (!b->dirty)
			continue;
		if (ok && own_gen(tx, b->own, &gen, &held, &c) && held)
			fs_cache_put(tx->fs, b->off, b->own, gen, b->buf);
		else
			fs_cache_drop(tx->fs, b->off, VMFS_UNIT);
	}
}

static int grew(const struct tx *tx)
{
	for (unsigned t = 0; t <= VMFS_RT_MAX; t++)
		if (tx->xgrow[t])
			return 1;
	/* a volume header (grow, tune: fs_volume.c) goes in place at once */
	for (unsigned i = 0; i < tx->nb; i++)
		if (tx->b[i].dirty && tx->b[i].off == VMFS_VH_OFF)
			return 1;
	return 0;
}

int tx_commit(struct tx *tx)
{
	struct vmfs *fs = tx->fs;
	unsigned n = tx_ndirty(tx), had_run = 0;
	int rc, stage = 0;

	if (n == 0) {
		tx_release(tx, 0);
		return 0;
	}
	pthread_mutex_lock(&fs->jmu);
	rc = fs->broken ? -EIO : 0;
	/* G1: the running group, with this transaction, fits one descriptor
	 * and the free part of the log; else it goes first, and when the
	 * log itself is full, what it holds is retired */
	if (!rc && (fs->nrun + n > fs_tx_max(fs) || log_used(fs) + fs->nrun + n + 2 > fs->jnlog))
		rc = group_locked(fs);
	if (!rc && log_used(fs) + n + 2 > fs->jnlog)
		rc = ckpt_locked(fs);
	if (!rc) {
		stage = 1;
		had_run = fs->nrun;
		rc = pend_add(tx);
	}
	if (!rc) {
		if (!had_run && !fs->nkept && fs->keeper_on) /* asleep, no timeout */
			pthread_cond_signal(&fs->kcond);
		fs->run_freed |= tx->freed_data;
		fs->est.commits++;
		/* without keeping: logged and in place at every commit (three
		 * flushes); and after a commit that added extension clusters:
		 * replay accepts images homed in them only when the table that
		 * lists them is in place or in the same transaction. With
		 * keeping, the keeper commits the group within GROUP_MS. */
		if (!fs->keep || grew(tx))
			rc = ckpt_locked(fs);
	}
	if (stage) /* in place or not: what the cache has of these blocks goes */
		cache_commit(tx, rc == 0);
	if (rc && stage)
		broke(fs, rc, "commit of transaction", fs->tail_txid);
	pthread_mutex_unlock(&fs->jmu);
	if (!rc) /* committed: the extension clusters it added are for good */
		memset(tx->xgrow, 0, sizeof(tx->xgrow));
	tx_release(tx, rc && stage);
	return rc;
}

/* ---- replay -------------------------------------------------------------- */

/* 1 if the image for data-area block t is the header of the FB cluster
 * living there (a grown volume, INCOMPAT_FBX). */
static int fbx_header_ok(struct vmfs *fs, uint64_t t, const uint8_t *img)
{
	struct vmfs_ch *ch = malloc(sizeof(*ch));
	uint32_t cl;
	int ok = ch && t >= VMFS_UNIT && vmfs_fbx_find(&fs->vh, t, &cl) &&
		 t == vmfs_cl_off(&fs->vh, VMFS_RT_FB, cl) + VMFS_UNIT &&
		 !vmfs_ch_decode(img, &fs->vh, ch, NULL, 0) && ch->type == VMFS_RT_FB &&
		 ch->index == cl;

	free(ch);
	return ok;
}

/* The volume header images of a transaction (primary, and the backup that
 * vmfs_tune journals too): each must decode against the device and be a
 * header this volume may move to (fs_volume.c V1: same volume, never
 * smaller); a journaled header that shrinks the volume is refused. 0 and
 * the new header in *nv (*has set), or -EUCLEAN. */
static int replay_vh(struct vmfs *fs, uint64_t joff, const struct vmfs_jd *jd, const uint8_t *im,
		     struct vmfs_vh *nv, int *has)
{
	char why[256];
	int rc = 0;

	*has = 0;
	for (uint32_t i = 0; i < jd->nblocks && !rc; i++) {
		uint64_t t = jd->target[i];

		if (t != VMFS_VH_OFF && t != fs->vh.backup_off)
			continue;
		if (!*has && (rc = bdev_refresh_size(fs->bd)))
			return rc;
		rc = vmfs_vh_decode(im + (size_t)i * VMFS_UNIT, fs->bd->size, nv, why, sizeof(why));
		if (!rc)
			rc = vmfs_vh_same_volume(&fs->vh, nv, why, sizeof(why));
		if (!rc && t != VMFS_VH_OFF && t != nv->backup_off) {
			snprintf(why, sizeof(why), "backup header image at 0x%" PRIx64, t);
			rc = -EUCLEAN;
		}
		if (rc)
			fs_seterr(fs, "journal at 0x%" PRIx64 " transaction %" PRIu64 ": %s", joff,
				  jd->txid, why);
		*has = 1;
	}
	return rc;
}

/* After a transaction with a header image was applied: its backup copy
 * (written before the commit by a grow; rewritten, idempotent) and the
 * mount's view, so the next transaction is read against the new layout. */
static int replay_vh_done(struct vmfs *fs, const struct vmfs_vh *nv)
{
	uint8_t *buf = bdev_alloc(VMFS_UNIT);
	char why[256];
	int rc = buf ? 0 : -ENOMEM;

	if (!rc) {
		vmfs_vh_encode(nv, buf);
		rc = put(fs, buf, nv->backup_off);
	}
	if (!rc)
		rc = flush(fs);
	if (!rc && vmfs_vh_adopt(&fs->vh, nv, why, sizeof(why)) < 0) {
		fs_seterr(fs, "%s", why);
		rc = -EUCLEAN;
	}
	bdev_free(buf);
	return rc;
}

/* A committed transaction's targets in the data area must be directory
 * blocks, or metadata records homed in extension clusters (file blocks
 * turned into FD, PB or SB clusters): each such image must be one.
 * Anything else is a corrupt journal, never written over file data. */
static int check_data_targets(struct vmfs *fs, uint64_t joff, const struct vmfs_jd *jd,
			      const uint8_t *im)
{
	struct vmfs_db *db = NULL;
	char why[256];
	int rc = 0;

	for (uint32_t i = 0; i < jd->nblocks && !rc; i++) {
		if (jd->target[i] < fs->vh.data_off || jd->target[i] == fs->vh.backup_off)
			continue; /* (the backup header: checked by replay_vh) */
		if (!db && !(db = malloc(sizeof(*db))))
			return -ENOMEM;
		if (vmfs_xt_image_ok(&fs->vh, i, jd->target, im, jd->nblocks))
			continue; /* metadata of an extension cluster */
		if (fbx_header_ok(fs, jd->target[i], im + (size_t)i * VMFS_UNIT))
			continue; /* the header of an FB cluster of a grown volume */
		if (vmfs_db_decode(im + (size_t)i * VMFS_UNIT, &fs->vh, db, why, sizeof(why))) {
			fs_seterr(fs,
				  "journal at 0x%" PRIx64 " transaction %" PRIu64 ": image %" PRIu32
				  " for data-area block 0x%" PRIx64 " is not a directory block: %s",
				  joff, jd->txid, i, jd->target[i], why);
			rc = -EUCLEAN;
		}
	}
	free(db);
	return rc;
}

/* Reads and checks the transaction at pos with txid; 0 and the images in
 * imgs (nblocks blocks) or 1 when there is none (end of the log). */
static int read_tx(struct vmfs *fs, uint64_t joff, uint64_t pos, uint64_t txid, struct vmfs_jd *jd,
		   uint8_t **imgs, uint8_t *blk)
{
	struct vmfs_jc jc;
	uint32_t crc;
	char why[256];
	uint8_t *im;
	int rc = bdev_read(fs->bd, blk, log_off(fs, joff, pos), VMFS_UNIT);

	if (rc)
		return rc;
	if (vmfs_jd_decode(blk, &fs->vh, jd, why, sizeof(why)) || jd->txid != txid ||
	    jd->journal_off != joff || jd->nblocks + 2 > fs->jnlog)
		return 1;
	crc = crc32c(0, blk, VMFS_UNIT);
	im = bdev_alloc((size_t)jd->nblocks * VMFS_UNIT);
	if (!im)
		return -ENOMEM;
	for (uint32_t i = 0; i < jd->nblocks && !rc; i++) {
		rc = bdev_read(fs->bd, im + (size_t)i * VMFS_UNIT, log_off(fs, joff, pos + 1 + i),
			       VMFS_UNIT);
		crc = crc32c(crc, im + (size_t)i * VMFS_UNIT, VMFS_UNIT);
	}
	if (!rc)
		rc = bdev_read(fs->bd, blk, log_off(fs, joff, pos + 1 + jd->nblocks), VMFS_UNIT);
	if (!rc && (vmfs_jc_decode(blk, &jc, why, sizeof(why)) || jc.txid != txid ||
		    jc.nblocks != jd->nblocks || jc.data_crc != crc))
		rc = 1;
	if (!rc)
		rc = check_data_targets(fs, joff, jd, im);
	if (rc)
		bdev_free(im);
	else
		*imgs = im;
	return rc;
}

/* Reads both header copies of the journal of slot and picks the newer valid
 * one (vmfs_jh_pick). Neither valid: -EUCLEAN, the reason in the mount's
 * error message. The head is never rebuilt from the log: the newest
 * descriptor there may be long retired (its locks released, its blocks
 * changed since by other hosts), so replaying it would write old images
 * over newer metadata. Two copies make a single torn or lost write harmless;
 * both bad is damage for fsck. */
static int read_jh(struct vmfs *fs, uint32_t slot, struct vmfs_jh *jh, uint8_t *blk2)
{
	char why[400];
	uint64_t joff = vmfs_journal_off(&fs->vh, slot);
	int rc = bdev_read(fs->bd, blk2, joff, VMFS_JH_COPIES * VMFS_UNIT);

	if (rc)
		return rc;
	rc = vmfs_jh_pick(blk2, blk2 + VMFS_UNIT, &fs->vh, slot, jh, NULL, why, sizeof(why));
	if (rc)
		fs_seterr(fs, "journal %" PRIu32 ": %s", slot, why);
	return rc;
}

int fs_replay(struct vmfs *fs, uint32_t slot, int *applied)
{
	uint64_t joff = vmfs_journal_off(&fs->vh, slot);
	struct vmfs_jd *jd = malloc(sizeof(*jd));
	uint8_t *blk = bdev_alloc(VMFS_JH_COPIES * VMFS_UNIT), *im = NULL;
	struct vmfs_jh jh;
	int rc = jd && blk ? 0 : -ENOMEM;

	*applied = 0;
	if (!rc)
		rc = read_jh(fs, slot, &jh, blk);
	if (rc == -EUCLEAN) {
		/* No trusted head: replaying from a guess could write retired
		 * images over newer metadata, so nothing is replayed; the
		 * message stays for the caller, fsck reports the journal. */
		free(jd);
		bdev_free(blk);
		return 0;
	}
	if (!rc && fs->vh.refresh) { /* a mount: another host may have grown it */
		int r = fs_vh_refresh(fs);

		rc = r < 0 ? r : 0;
	}
	while (!rc) {
		struct vmfs_vh nv;
		int has;

		rc = read_tx(fs, joff, jh.head, jh.head_txid, jd, &im, blk);
		if (rc)
			break;
		rc = replay_vh(fs, joff, jd, im, &nv, &has);
		for (uint32_t i = 0; i < jd->nblocks && !rc; i++) {
			rc = put(fs, im + (size_t)i * VMFS_UNIT, jd->target[i]);
			fs_cache_drop(fs, jd->target[i], VMFS_UNIT); /* after the write */
		}
		bdev_free(im);
		if (!rc)
			rc = flush(fs);
		if (!rc && has)
			rc = replay_vh_done(fs, &nv);
		if (rc)
			break;
		jh.head = (jh.head + jd->nblocks + 2) % fs->jnlog;
		jh.head_txid++;
		(*applied)++;
	}
	if (rc == 1)
		rc = *applied ? write_jh(fs, joff, &jh, blk) : 0;
	free(jd);
	bdev_free(blk);
	return rc;
}

/* Lock unit of a cluster header or FD inode block target, else 0. */
static uint64_t target_lock(const struct vmfs *fs, uint64_t t, int want_cluster)
{
	for (unsigned ty = VMFS_RT_FB; ty <= VMFS_RT_MAX; ty++) {
		const struct vmfs_res_region *r = &fs->vh.res[ty];
		uint64_t rel;

		if (t < r->off || t >= r->off + r->len)
			continue;
		rel = (t - r->off) % r->cl_size;
		if (rel == VMFS_UNIT)
			return want_cluster ? t - VMFS_UNIT : 0;
		if (!want_cluster && ty == VMFS_RT_FD && rel >= VMFS_CL_HDR &&
		    (rel - VMFS_CL_HDR) % VMFS_FD_SIZE == VMFS_UNIT)
			return t - VMFS_UNIT;
	}
	return 0;
}

int fs_journal_pending(struct vmfs *fs, uint32_t slot, uint64_t *locks, unsigned max, unsigned *n)
{
	uint64_t joff = vmfs_journal_off(&fs->vh, slot);
	struct vmfs_jd *jd = malloc(sizeof(*jd));
	uint8_t *blk = bdev_alloc(VMFS_JH_COPIES * VMFS_UNIT), *im = NULL;
	struct vmfs_jh jh;
	int rc = jd && blk ? 0 : -ENOMEM;

	*n = 0;
	if (!rc)
		rc = read_jh(fs, slot, &jh, blk);
	if (rc == -EUCLEAN)
		rc = 1; /* no trusted head: nothing to replay (fs_replay says why) */
	if (!rc)
		rc = read_tx(fs, joff, jh.head, jh.head_txid, jd, &im, blk);
	if (rc == 0) {
		bdev_free(im);
		rc = 1;
		/* cluster locks first: always held by the writer until retired */
		for (int pass = 1; pass >= 0; pass--)
			for (uint32_t i = 0; i < jd->nblocks && *n < max; i++) {
				uint64_t l = target_lock(fs, jd->target[i], pass);

				if (l)
					locks[(*n)++] = l;
			}
	} else if (rc == 1) {
		rc = 0;
	}
	free(jd);
	bdev_free(blk);
	return rc;
}

int fs_journal_set_orphans(struct vmfs *fs)
{
	uint8_t *blk;
	int rc;

	if (fs->jh.flags & VMFS_JHF_ORPHANS)
		return 0;
	blk = bdev_alloc(VMFS_UNIT);
	if (!blk)
		return -ENOMEM;
	pthread_mutex_lock(&fs->jmu);
	fs->jh.flags |= VMFS_JHF_ORPHANS;
	rc = write_jh(fs, fs->joff, &fs->jh, blk);
	pthread_mutex_unlock(&fs->jmu);
	bdev_free(blk);
	return rc;
}

int fs_journal_flags(struct vmfs *fs, uint32_t slot, uint32_t *flags)
{
	uint8_t *blk = bdev_alloc(VMFS_JH_COPIES * VMFS_UNIT);
	struct vmfs_jh jh;
	int rc = blk ? read_jh(fs, slot, &jh, blk) : -ENOMEM;

	if (!rc)
		*flags = jh.flags;
	bdev_free(blk);
	return rc;
}

/* A new header for a journal whose two header copies are both bad: head 0
 * and a txid above every descriptor in the log, so no old transaction
 * there can ever match the head. */
static int jh_fresh(struct vmfs *fs, uint8_t *blk)
{
	struct vmfs_jd *jd = malloc(sizeof(*jd));
	uint64_t best = 0;
	int rc = jd ? 0 : -ENOMEM;

	for (uint64_t p = 0; p < fs->jnlog && !rc; p++) {
		rc = bdev_read(fs->bd, blk, log_off(fs, fs->joff, p), VMFS_UNIT);
		if (!rc && !vmfs_jd_decode(blk, &fs->vh, jd, NULL, 0) && jd->txid > best)
			best = jd->txid;
	}
	free(jd);
	memset(&fs->jh, 0, sizeof(fs->jh));
	fs->jh.slot = fs->slot;
	fs->jh.journal_off = fs->joff;
	fs->jh.journal_len = fs->vh.journal_size;
	fs->jh.head_txid = best + 1;
	return rc ? rc : write_jh(fs, fs->joff, &fs->jh, blk);
}

/* Reads this host's journal header. A freshly claimed slot has no pending
 * transaction (a clean unmount retires its last one, a takeover replays and
 * advances the header); one found anyway is not replayed: its locks are
 * gone, its images may be older than the blocks. */
int fs_journal_init(struct vmfs *fs)
{
	uint8_t *blk = bdev_alloc(VMFS_JH_COPIES * VMFS_UNIT);
	int rc;

	if (!blk)
		return -ENOMEM;
	fs->joff = vmfs_journal_off(&fs->vh, fs->slot);
	fs->jnlog = vmfs_journal_nlog(fs->vh.journal_size);
	rc = read_jh(fs, fs->slot, &fs->jh, blk);
	if (rc == -EUCLEAN)
		rc = jh_fresh(fs, blk);
	fs->tail = fs->jh.head;
	fs->tail_txid = fs->jh.head_txid;
	bdev_free(blk);
	return rc;
}
