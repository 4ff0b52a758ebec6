/*
 * lm_lock.c - on-disk locks: acquire, release, convert, named locks, and the
 * takeover of dead holders (design note and invariants at the top of
 * lockmgr.c).
 *
 * Acquire (one step, repeated until granted / timeout):
 *   1. lease check; read the lock unit; decode (corrupt -> -EUCLEAN).
 *   2. classify every holder (slot s, gen g) by reading slot s:
 *        STALE    slot FREE, or LIVE with gen != g, or REPLAYING another gen
 *        ALIVE    LIVE gen g, image changed within T (on our clock)
 *        DEAD     LIVE gen g, image unchanged for T
 *        WAIT     REPLAYING gen g's death by a live replayer
 *        ORPHAN   REPLAYING gen g's death by a replayer that is dead or gone
 *        MINE     REPLAYING gen g's death by us (an earlier callback failed)
 *   3. drop STALE holders; if the rest is compatible with the wanted mode:
 *      ATS(old -> rest + us, gen + 1): granted. Miscompare: back to 1.
 *   4. else if an incompatible holder is DEAD or ORPHAN: take its slot over
 *      (ATS -> REPLAYING by us), run the takeover callback, ATS the slot to
 *      FREE (so the holder becomes STALE), back to 1. MINE: callback + free.
 *   5. else: busy; try-once returns -EBUSY, otherwise sleep (exponential
 *      backoff 50 us .. min(interval/4, 10 ms), jittered) and back to 1.
 *
 *   An ATS I/O error is resolved by re-reading (resolve_lock_ats()): the
 *   lock is ours if the record names us in the wanted mode.
 *   A slot that another thread of this handle is taking over (busy[]) is
 *   treated as alive: one handle never runs two callbacks for one slot.
 *
 * Speculative images: an ATS compares the whole record, so its compare
 * image need not come from a read just before: any image believed current
 * does, and a wrong one only miscompares (nothing written; the device
 * returns the current record, which the next step uses instead of reading
 * it). Each handle remembers the last image it wrote to a lock unit (and
 * the current one a miscompare returned): an acquire whose remembered
 * image is FREE (no holders, nothing to classify) and a release whose
 * remembered image names this host skip their read, so a lock this host
 * alone uses costs one ATS per acquire and one per release. Never for
 * named locks (a probe decides on the name it reads) nor conversions.
 *
 * Compatibility: EX with nothing; SH with SH; MW with MW. A host holds a lock
 * at most once (-EALREADY; except a lock whose acquiring ATS had an outcome
 * we could not learn, or whose release failed: the next acquire adopts it,
 * converting our leftover entry to the wanted mode).
 */
#include "lm_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "bdev.h"
#include "crc32c.h"
#include "le.h"

enum hclass { H_STALE, H_ALIVE, H_DEAD, H_WAIT, H_ORPHAN, H_MINE, H_SELF };

/* A slot image as read now, and what we know about its movement. */
struct slot_view {
	uint8_t *img; /* lsec bytes */
	struct lm_slot_info si;
	int stalled; /* unchanged for at least T on our clock */
};

/* Records the image in obs[] and says whether it has been still for T. */
static int observe(struct lm *lm, uint32_t idx, const uint8_t *img)
{
	/* Not the CRC of the whole image: with its own CRC inside, that is the
	 * same constant for every valid record. */
	uint64_t key = (uint64_t)crc32c(0, img, SL_CRC) << 32 ^ le32_get(img + SL_COUNTER);
	int64_t now = lm_now_ns(), still;
	struct lm_obs *o = &lm->obs[idx];

	pthread_mutex_lock(&lm->mu);
	if (!o->valid || o->key != key) {
		o->valid = 1;
		o->key = key;
		o->t_change = now;
	}
	still = now - o->t_change;
	pthread_mutex_unlock(&lm->mu);
	return still >= (int64_t)lm->g.hb_timeout_ms * 1000000;
}

static int read_slot(struct lm *lm, uint32_t idx, struct slot_view *v)
{
	char why[128];
	int rc = lm_read_unit(lm, lm_slot_off(lm, idx), v->img);

	if (rc < 0)
		return rc;
	rc = lm_slot_decode(v->img, idx, lm->g.nslots, &v->si, why, sizeof(why));
	if (rc < 0) {
		lm_set_err(lm, "heartbeat slot %u at 0x%llx: %s", idx,
			   (unsigned long long)lm_slot_off(lm, idx), why);
		return rc;
	}
	v->stalled = observe(lm, idx, v->img);
	return 0;
}

/* Set in the reclaim thread: replay_and_free() runs the reclaim callback. */
static __thread int in_reclaim_thread;

/* Is the replayer of slot image v (state REPLAYING) alive? A slot reclaimed
 * by a joiner (replayer = the slot itself) heartbeats during the replay: it
 * is alive while its own image moves. 1, 0 or -errno. */
static int replayer_alive(struct lm *lm, const struct slot_view *v)
{
	const struct lm_slot_info *si = &v->si;
	struct slot_view r = {.img = NULL};
	int rc;

	if (si->replayer_slot == si->index)
		return !v->stalled;
	r.img = bdev_alloc(LM_UNIT);
	if (!r.img)
		return -ENOMEM;
	rc = read_slot(lm, si->replayer_slot, &r);
	if (rc == 0)
		rc = r.si.state == LM_SLOT_LIVE && r.si.gen == si->replayer_gen && !r.stalled;
	bdev_free(r.img);
	return rc;
}

/* Classifies holder h; v receives its slot image. Returns H_* or -errno. */
static int classify(struct lm *lm, const struct lm_holder *h, struct slot_view *v)
{
	int rc;

	if (h->slot == lm->slot)
		return h->gen == lm->gen ? H_SELF : H_STALE;
	rc = read_slot(lm, h->slot, v);
	if (rc < 0)
		return rc;
	switch (v->si.state) {
	case LM_SLOT_FREE: return H_STALE;
	case LM_SLOT_LIVE:
		if (v->si.gen != h->gen)
			return H_STALE;
		return v->stalled ? H_DEAD : H_ALIVE;
	case LM_SLOT_REPLAYING:
		if (v->si.dead_gen != h->gen)
			return H_STALE;
		if (v->si.replayer_slot == lm->slot && v->si.replayer_gen == lm->gen)
			return H_MINE;
		rc = replayer_alive(lm, v);
		return rc < 0 ? rc : rc ? H_WAIT : H_ORPHAN;
	}
	return -EUCLEAN;
}

/* Marks slot idx as being taken over by a thread of this handle: 0, or
 * -EBUSY when another thread of this handle already is. */
static int busy_get(struct lm *lm, uint32_t idx)
{
	int rc = 0;

	pthread_mutex_lock(&lm->mu);
	if (lm->busy[idx])
		rc = -EBUSY;
	else
		lm->busy[idx] = 1;
	pthread_mutex_unlock(&lm->mu);
	return rc;
}

static void busy_put(struct lm *lm, uint32_t idx)
{
	pthread_mutex_lock(&lm->mu);
	lm->busy[idx] = 0;
	pthread_mutex_unlock(&lm->mu);
}

static int run_callback(struct lm *lm, uint32_t idx, uint32_t dead_gen, const uint8_t *uuid)
{
	lm_takeover_cb cb = in_reclaim_thread ? lm->reclaim_cb : lm->takeover;
	void *arg = in_reclaim_thread ? lm->reclaim_arg : lm->takeover_arg;
	int rc = cb ? cb(arg, idx, dead_gen, uuid) : 0;

	if (rc < 0)
		lm_set_err(lm, "takeover callback for dead slot %u failed: %s", idx,
			   lm_strerror(rc));
	return rc;
}

/* After a replay of slot idx's dead owner (REPLAYING record si) by slot
 * (by_slot, by_gen) that applied `replayed` transactions: its recovery
 * record. On 512-byte sectors it is written now (its own sector: we own the
 * slot while it is being replayed); on larger ones it goes into img, the
 * ATS image that ends the replay. */
static int put_recovery(struct lm *lm, uint32_t idx, const struct lm_slot_info *si,
			uint32_t by_slot, uint32_t by_gen, int replayed, uint8_t *img)
{
	struct lm_recovery r = {.dead_gen = si->dead_gen,
				.by_slot = by_slot,
				.by_gen = by_gen,
				.replayed = (uint32_t)replayed};
	struct timespec ts;
	uint8_t *rec;
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	r.time_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	memcpy(r.dead_uuid, si->uuid, 16);
	snprintf(r.dead_host, sizeof(r.dead_host), "%s", si->hostname);
	memcpy(r.by_uuid, lm->uuid, 16);
	snprintf(r.by_host, sizeof(r.by_host), "%s", lm->hostname);
	if (lm->lsec > LM_RECOV_OFF) {
		lm_recov_encode(&r, img + LM_RECOV_OFF);
		return 0;
	}
	rec = bdev_alloc(LM_REC_SIZE);
	if (!rec)
		return -ENOMEM;
	lm_recov_encode(&r, rec);
	rc = lm_guard(lm);
	if (rc == 0)
		rc = bdev_write(lm->bd, rec, lm_slot_off(lm, idx) + LM_RECOV_OFF, LM_REC_SIZE);
	bdev_free(rec);
	return rc;
}

/* Slot is REPLAYING by us (image cur; busy[idx] held): run the callback,
 * write the recovery record, then free the slot. */
static int replay_and_free_locked(struct lm *lm, uint32_t idx, const uint8_t *cur,
				  const struct lm_slot_info *si)
{
	struct lm_slot_info f = *si;
	uint8_t *img, *now;
	/* R3 (lm_pr.c): the dead host's keys go before its journal is replayed */
	int rc = lm_pr_preempt(lm, idx, si->dead_gen, si->uuid);

	int replayed = 0;

	if (rc == 0)
		rc = replayed = run_callback(lm, idx, si->dead_gen, si->uuid);
	if (rc < 0)
		return rc;
	rc = lm_guard(lm);
	if (rc < 0)
		return rc;
	img = bdev_alloc(LM_UNIT);
	now = bdev_alloc(LM_UNIT);
	if (!img || !now) {
		bdev_free(img);
		bdev_free(now);
		return -ENOMEM;
	}
	memcpy(img, cur, lm->lsec);
	f.state = LM_SLOT_FREE;
	f.replayer_slot = f.replayer_gen = f.dead_gen = 0;
	lm_slot_encode(&f, img);
	rc = put_recovery(lm, idx, si, lm->slot, lm->gen, replayed, img);
	if (rc < 0) {
		bdev_free(img);
		bdev_free(now);
		return rc;
	}
	rc = lm_ats(lm, lm->bd, lm_slot_off(lm, idx), cur, img);
	if (rc < 0 && rc != -BDEV_E_MISCOMPARE) { /* lost reply? the slot decides */
		LM_STAT_INC(lm, ats_errors);
		if (lm_reread(lm, lm_slot_off(lm, idx), now) == 0 &&
		    memcmp(now, img, lm->lsec) == 0) {
			LM_STAT_INC(lm, ats_lost_landed);
			rc = 0;
		}
	}
	if (rc == 0)
		LM_STAT_INC(lm, takeovers);
	bdev_free(img);
	bdev_free(now);
	return rc == -BDEV_E_MISCOMPARE ? -EAGAIN : rc;
}

static int replay_and_free(struct lm *lm, uint32_t idx, const uint8_t *cur,
			   const struct lm_slot_info *si)
{
	int rc = busy_get(lm, idx);

	if (rc < 0)
		return rc;
	rc = replay_and_free_locked(lm, idx, cur, si);
	busy_put(lm, idx);
	return rc;
}

/* The REPLAYING image a taker writes over slot image v: generation + 1
 * (skipping 0), the dead generation, the replayer (rslot, rgen). */
static void replaying_rec(const struct slot_view *v, uint32_t rslot, uint32_t rgen,
			  struct lm_slot_info *r)
{
	*r = v->si;
	r->state = LM_SLOT_REPLAYING;
	r->dead_gen = v->si.state == LM_SLOT_LIVE ? v->si.gen : v->si.dead_gen;
	r->gen = lm_next_gen(v->si.gen);
	r->replayer_slot = rslot;
	r->replayer_gen = rgen == UINT32_MAX ? r->gen : rgen;
}

/* Takes over slot idx whose image v has been still for T (or whose replayer
 * is gone): ATS -> REPLAYING by us, then the callback and the free.
 * -EBUSY: another thread of this handle is taking it over. */
static int takeover(struct lm *lm, uint32_t idx, const struct slot_view *v)
{
	struct lm_slot_info r;
	uint8_t *img;
	int rc = busy_get(lm, idx);

	if (rc < 0)
		return rc;
	img = bdev_alloc(LM_UNIT);
	if (!img) {
		busy_put(lm, idx);
		return -ENOMEM;
	}
	replaying_rec(v, lm->slot, lm->gen, &r);
	lm_slot_encode(&r, img);
	rc = lm_guard(lm);
	if (rc == 0)
		rc = lm_slot_ats_owned(lm, idx, v->img, img);
	if (rc == 0)
		rc = replay_and_free_locked(lm, idx, img, &r);
	else if (rc == -BDEV_E_MISCOMPARE)
		rc = -EAGAIN; /* it moved after all, or someone else took it */
	busy_put(lm, idx);
	bdev_free(img);
	return rc;
}

static int compatible(enum lm_mode held, enum lm_mode want)
{
	return held == want && want != LM_MODE_EX;
}

struct step {
	uint64_t addr;
	int pre;	  /* old holds the current record (a miscompare returned it) */
	int spec;	  /* old is the remembered image, not read */
	const char *name; /* named lock: the record must carry it or be unnamed+free */
	enum lm_mode want;
	struct lm_lock *cur; /* converting this held lock; NULL: acquiring */
	int mark;	     /* a waiting call: ask an EX holder for hand-over */
	uint64_t gen;	     /* out */
	uint8_t *old, *new;  /* unit buffers */
	struct slot_view v;
	int adopt; /* our entry in the record is a leftover (uncertain()) */
};

/* Deals with one incompatible holder: 1 if it was taken over/replayed (step
 * again at once), 0 if it is alive (wait), or -errno. */
static int break_holder(struct lm *lm, const struct lm_holder *h, struct step *st)
{
	int c = classify(lm, h, &st->v);

	switch (c) {
	case H_DEAD:
	case H_ORPHAN: c = takeover(lm, h->slot, &st->v); break;
	case H_MINE: c = replay_and_free(lm, h->slot, st->v.img, &st->v.si); break;
	case H_STALE: return 1; /* freed meanwhile */
	default: return c < 0 ? c : 0;
	}
	if (c == -EBUSY)
		return 0; /* another thread of this handle is replaying it: wait */
	return c == -EAGAIN ? 1 : c < 0 ? c : 1;
}

static int name_ok(const struct lm_lock_info *l, const char *name)
{
	if (!name)
		return 1;
	if (l->name[0])
		return strcmp(l->name, name) == 0;
	return l->mode == LM_MODE_FREE; /* an unnamed unit may be claimed only when free */
}

/* Builds the new record from the old one minus stale holders; returns the
 * number of kept others in *nothers, or -errno. self: our entry was found. */
static int filter_holders(struct lm *lm, const struct lm_lock_info *old, struct lm_lock_info *nl,
			  int *self, struct step *st)
{
	*self = 0;
	nl->nholders = 0;
	for (uint32_t i = 0; i < old->nholders; i++) {
		int c = classify(lm, &old->holders[i], &st->v);

		if (c < 0)
			return c;
		if (c == H_SELF)
			*self = 1;
		if (c == H_STALE || c == H_SELF)
			continue;
		nl->holders[nl->nholders++] = old->holders[i];
	}
	return 0;
}

/* Forgets (1) or records (rec) that the acquiring ATS of addr had an
 * unresolved outcome. Returns 1 if addr was recorded. */
static int uncertain(struct lm *lm, uint64_t addr, int rec)
{
	int found = 0;

	pthread_mutex_lock(&lm->mu);
	for (unsigned i = 0; i < lm->nuncertain; i++)
		if (lm->uncertain[i] == addr) {
			found = 1;
			lm->uncertain[i] = lm->uncertain[--lm->nuncertain];
			break;
		}
	if (rec && lm->nuncertain < sizeof(lm->uncertain) / sizeof(lm->uncertain[0]))
		lm->uncertain[lm->nuncertain++] = addr;
	pthread_mutex_unlock(&lm->mu);
	return found;
}

/* The record in buf names this host (slot, generation) as a holder in mode
 * `mode`; returns the record's lock generation in *gen. */
static int names_me(struct lm *lm, const uint8_t *buf, uint64_t addr, enum lm_mode mode,
		    uint64_t *gen)
{
	struct lm_lock_info l;

	if (lm_lock_decode(buf, addr, lm->g.nslots, &l, NULL, 0) < 0 || l.mode != mode)
		return 0;
	for (uint32_t i = 0; i < l.nholders; i++)
		if (l.holders[i].slot == lm->slot && l.holders[i].gen == lm->gen) {
			*gen = l.gen;
			return 1;
		}
	return 0;
}

/* The record names this host as a holder, in any mode. */
static int names_me_any(struct lm *lm, const uint8_t *buf, uint64_t addr, uint64_t *gen)
{
	struct lm_lock_info l;

	return lm_lock_decode(buf, addr, lm->g.nslots, &l, NULL, 0) == 0 &&
	       names_me(lm, buf, addr, l.mode, gen);
}

/* The lock ATS of a step failed with an I/O error (err): the write may have
 * landed with its reply lost. Ownership decides: re-read the record; if it
 * names this host in the wanted mode, the lock is ours (0); if it does not,
 * nothing landed (err). A re-read that fails leaves the outcome unknown:
 * err, and an acquire remembers the address (a later acquire that finds
 * this host named there adopts the lock instead of failing -EALREADY). */
static int resolve_lock_ats(struct lm *lm, struct step *st, int err)
{
	uint64_t gen;

	LM_STAT_INC(lm, ats_errors);
	if (lm_reread(lm, st->addr, st->old) < 0) {
		if (!st->cur)
			uncertain(lm, st->addr, 1);
		lm_set_err(lm, "lock at 0x%llx: ATS failed (%s) and the record cannot be re-read",
			   (unsigned long long)st->addr, lm_strerror(err));
		return err;
	}
	if (!names_me(lm, st->old, st->addr, st->want, &gen)) {
		lm_set_err(lm, "lock at 0x%llx: ATS failed: %s", (unsigned long long)st->addr,
			   lm_strerror(err));
		return err;
	}
	LM_STAT_INC(lm, ats_lost_landed); /* st->gen: the generation we wrote */
	return 0;
}

/* ---- speculative images ---------------------------------------------------- */

int lm_memo_init(struct lm *lm)
{
	pthread_mutex_init(&lm->memo_mu, NULL);
	lm->memo_addr = calloc(LM_MEMO, sizeof(*lm->memo_addr));
	lm->memo_img = malloc((size_t)LM_MEMO * lm->lsec);
	return lm->memo_addr && lm->memo_img ? 0 : -ENOMEM;
}

void lm_memo_free(struct lm *lm)
{
	pthread_mutex_destroy(&lm->memo_mu);
	free(lm->memo_addr);
	free(lm->memo_img);
}

static unsigned memo_idx(const struct lm *lm, uint64_t addr)
{
	return (unsigned)((addr / lm->lsec) % LM_MEMO);
}

static int memo_get(struct lm *lm, uint64_t addr, uint8_t *buf)
{
	unsigned i = memo_idx(lm, addr);
	int hit;

	pthread_mutex_lock(&lm->memo_mu);
	hit = lm->memo_addr[i] == addr;
	if (hit)
		memcpy(buf, lm->memo_img + (size_t)i * lm->lsec, lm->lsec);
	pthread_mutex_unlock(&lm->memo_mu);
	return hit;
}

/* img NULL: forget addr. */
static void memo_put(struct lm *lm, uint64_t addr, const uint8_t *img)
{
	unsigned i = memo_idx(lm, addr);

	pthread_mutex_lock(&lm->memo_mu);
	if (img) {
		lm->memo_addr[i] = addr;
		memcpy(lm->memo_img + (size_t)i * lm->lsec, img, lm->lsec);
	} else if (lm->memo_addr[i] == addr) {
		lm->memo_addr[i] = 0;
	}
	pthread_mutex_unlock(&lm->memo_mu);
}

/* The remembered image of addr if it is a FREE record (no holders). */
static int memo_free_image(struct lm *lm, uint64_t addr, uint8_t *buf)
{
	struct lm_lock_info l;

	return memo_get(lm, addr, buf) &&
	       lm_lock_decode(buf, addr, lm->g.nslots, &l, NULL, 0) == 0 && l.nholders == 0 &&
	       l.mode == LM_MODE_FREE;
}

/* The record of a step: returned by the last miscompare, remembered (FREE,
 * first try of a plain acquire), or read. */
/* Hand-over (docs/LOCKING.md "Hand-over"): a waiter that finds the lock
 * held EX by a live host asks for it by writing its slot into the record's
 * wanted field (an ATS of the same record, generation unchanged), once per
 * image it sees without a mark. A holder that keeps locks after its
 * transactions (libvmfs) polls the records it keeps (lm_locks_wanted()) and
 * gives a marked one up. Any change of holders clears the mark (so does the
 * release), and a waiter still waiting marks the new image again. The mark
 * is advisory: the holder may also be a long-term one (an open file) that
 * ignores it; the waiter then waits for its timeout as before. -EBUSY: wait
 * and look again. */
static int mark_wanted(struct lm *lm, struct step *st, const struct lm_lock_info *old)
{
	struct lm_lock_info nl;
	int rc;

	if (old->mode != LM_MODE_EX || old->wanted)
		return -EBUSY;
	nl = *old;
	nl.wanted = lm->slot + 1;
	memset(st->new, 0, lm->lsec);
	lm_lock_encode(&nl, st->new);
	rc = lm_guard(lm);
	if (rc < 0)
		return rc;
	rc = lm_ats_cur(lm, lm->bd, st->addr, st->old, st->new, st->v.img);
	if (rc == -BDEV_E_MISCOMPARE) {
		memcpy(st->old, st->v.img, lm->lsec);
		memo_put(lm, st->addr, st->old);
		st->pre = 1;
		return -EAGAIN; /* look at the new image at once */
	}
	if (rc < 0)
		return -EBUSY; /* unknown outcome: the next look decides */
	memo_put(lm, st->addr, st->new);
	LM_STAT_INC(lm, handover_asks);
	return -EBUSY;
}

static int check_args(struct lm *lm, uint64_t addr, enum lm_mode mode);

int lm_lock_ask(struct lm *lm, uint64_t addr)
{
	struct step st = {.addr = addr};
	struct lm_lock_info l;
	int rc = check_args(lm, addr, LM_MODE_EX);

	if (rc < 0)
		return rc;
	st.old = bdev_alloc(LM_UNIT);
	st.new = bdev_alloc(LM_UNIT);
	st.v.img = bdev_alloc(LM_UNIT);
	rc = st.old && st.new &&st.v.img ? lm_read_unit(lm, addr, st.old) : -ENOMEM;
	if (rc >= 0)
		rc = lm_lock_decode(st.old, addr, lm->g.nslots, &l, NULL, 0);
	if (rc >= 0 && l.mode == LM_MODE_EX && !l.wanted &&
	    !(l.holders[0].slot == lm->slot && l.holders[0].gen == lm->gen))
		rc = mark_wanted(lm, &st, &l) == -EBUSY ? 1 : 0;
	else if (rc >= 0)
		rc = 0;
	bdev_free(st.old);
	bdev_free(st.new);
	bdev_free(st.v.img);
	return rc;
}

int lm_locks_wanted(struct lm_lock **lks, unsigned n, int *wanted)
{
	struct bdev_io *ios;
	uint8_t *bufs;
	struct lm *lm;
	int rc;

	if (!n)
		return 0;
	lm = lks[0]->lm;
	ios = calloc(n, sizeof(*ios));
	bufs = bdev_alloc((size_t)n * lm->lsec);
	rc = ios && bufs ? lm_guard(lm) : -ENOMEM;
	if (rc >= 0) {
		for (unsigned i = 0; i < n; i++)
			ios[i] = (struct bdev_io){BDEV_OP_READ, bufs + (size_t)i * lm->lsec,
						  lks[i]->addr, lm->lsec, 0};
		rc = bdev_submit(lm->bd, ios, n);
	}
	for (unsigned i = 0; i < n && rc >= 0; i++) {
		struct lm_lock_info l;
		uint8_t *b = bufs + (size_t)i * lm->lsec;
		uint64_t gen;

		wanted[i] = 0;
		if (ios[i].result < 0) {
			rc = ios[i].result;
			break;
		}
		if (lm_lock_decode(b, lks[i]->addr, lm->g.nslots, &l, NULL, 0) < 0 ||
		    !names_me(lm, b, lks[i]->addr, lks[i]->mode, &gen)) {
			wanted[i] = -LM_E_LOST;
			continue;
		}
		memo_put(lm, lks[i]->addr, b); /* the release compares against it */
		wanted[i] = l.wanted != 0;
	}
	bdev_free(bufs);
	free(ios);
	return rc < 0 ? rc : 0;
}

static int step_record(struct lm *lm, struct step *st)
{
	if (st->pre) {
		st->pre = 0;
		return 0;
	}
	if (!st->spec && !st->cur && !st->name && memo_free_image(lm, st->addr, st->old)) {
		st->spec = 1;
		LM_STAT_INC(lm, spec_tries);
		return 0;
	}
	st->spec = 2; /* read: no more speculation in this acquire */
	return lm_read_unit(lm, st->addr, st->old);
}

static int step_once(struct lm *lm, struct step *st)
{
	struct lm_lock_info old, nl;
	char why[128];
	int rc, self;

	rc = lm_guard(lm);
	if (rc < 0)
		return rc;
	rc = step_record(lm, st);
	if (rc < 0)
		return rc;
	rc = lm_lock_decode(st->old, st->addr, lm->g.nslots, &old, why, sizeof(why));
	if (rc < 0) {
		lm_set_err(lm, "lock at 0x%llx: %s", (unsigned long long)st->addr, why);
		return rc;
	}
	if (!name_ok(&old, st->name))
		return -EXDEV; /* named-lock probe must move on */
	nl = old;
	rc = filter_holders(lm, &old, &nl, &self, st);
	if (rc < 0)
		return rc;
	if (!st->cur && self) {
		/* our own earlier acquire whose outcome was unknown landed, or a
		 * release that failed left us named: adopt it in the wanted mode,
		 * or replace our leftover entry below */
		st->adopt = st->adopt || uncertain(lm, st->addr, 0);
		if (!st->adopt)
			return -EALREADY;
		if (old.mode == st->want) {
			st->gen = old.gen;
			return 0;
		}
	}
	if (st->cur && !self)
		return -LM_E_LOST;
	if (nl.nholders && !compatible(old.mode, st->want)) {
		for (uint32_t i = 0; i < nl.nholders; i++) {
			rc = break_holder(lm, &nl.holders[i], st);
			if (rc)
				return rc < 0 ? rc : -EAGAIN;
		}
		return st->mark ? mark_wanted(lm, st, &old) : -EBUSY;
	}
	if (nl.nholders >= LM_MAX_HOLDERS) {
		lm_set_err(lm, "lock at 0x%llx: %u holders already", (unsigned long long)st->addr,
			   nl.nholders);
		return -ENOSPC;
	}
	nl.holders[nl.nholders].slot = lm->slot;
	nl.holders[nl.nholders++].gen = lm->gen;
	nl.wanted = 0; /* a new holder: waiters mark it again */
	if (!st->cur || (st->want == LM_MODE_EX && st->cur->mode != LM_MODE_EX))
		nl.gen = old.gen + 1;
	nl.mode = st->want;
	memset(nl.owner_uuid, 0, 16);
	if (st->want == LM_MODE_EX)
		memcpy(nl.owner_uuid, lm->uuid, 16);
	if (st->name && !nl.name[0])
		snprintf(nl.name, sizeof(nl.name), "%s", st->name);
	nl.addr = st->addr;
	memset(st->new, 0, lm->lsec);
	lm_lock_encode(&nl, st->new);
	rc = lm_guard(lm);
	if (rc < 0)
		return rc;
	rc = lm_ats_cur(lm, lm->bd, st->addr, st->old, st->new, st->v.img);
	if (rc == -BDEV_E_MISCOMPARE) {
		/* the device returned the current record: the next step
		 * works on it (same freshness as a read) */
		memcpy(st->old, st->v.img, lm->lsec);
		memo_put(lm, st->addr, st->old);
		st->pre = 1;
		if (st->spec == 1)
			LM_STAT_INC(lm, spec_misses);
		return -EAGAIN;
	}
	st->gen = nl.gen;
	if (rc < 0) {
		rc = resolve_lock_ats(lm, st, rc); /* 0: st->old is the record re-read */
		memo_put(lm, st->addr, rc == 0 ? st->old : NULL);
		return rc;
	}
	memo_put(lm, st->addr, st->new);
	return 0;
}

/* Per-thread xorshift for jitter, seeded from getrandom() (or the pid, the
 * thread id and the clock): forked hosts must not back off in lockstep. */
static uint64_t jitter(void)
{
	static __thread uint64_t x;

	if (!x && getrandom(&x, sizeof(x), GRND_NONBLOCK) != (ssize_t)sizeof(x))
		x = (uint64_t)lm_now_ns() ^ ((uint64_t)gettid() << 32) ^ ((uint64_t)getpid() << 16);
	if (!x)
		x = 0x9e3779b97f4a7c15ull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

static void backoff_sleep(struct lm *lm, int64_t *delay_ns, int64_t left_ns)
{
	int64_t cap = (int64_t)lm->g.hb_interval_ms * 250000, d;
	struct timespec ts;

	if (cap > 10000000)
		cap = 10000000;
	d = *delay_ns / 2 + (int64_t)(jitter() % (uint64_t)(*delay_ns / 2 + 1));
	if (left_ns >= 0 && d > left_ns)
		d = left_ns;
	ts.tv_sec = (time_t)(d / 1000000000);
	ts.tv_nsec = (long)(d % 1000000000);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	*delay_ns = *delay_ns * 2 > cap ? cap : *delay_ns * 2;
}

static int run_steps(struct lm *lm, struct step *st, int timeout_ms)
{
	int64_t start = lm_now_ns(), delay = 50000, left = -1;
	int rc, spins = 0;

	st->old = bdev_alloc(LM_UNIT);
	st->new = bdev_alloc(LM_UNIT);
	st->v.img = bdev_alloc(LM_UNIT);
	rc = (st->old && st->new && st->v.img) ? -EAGAIN : -ENOMEM;
	st->mark = timeout_ms != 0;
	while (rc == -EAGAIN || rc == -EBUSY) {
		rc = step_once(lm, st);
		if (rc == -EAGAIN && ++spins < 1000)
			continue; /* raced with another writer: retry at once */
		if (rc != -EBUSY && rc != -EAGAIN)
			break;
		if (timeout_ms == 0 && rc == -EBUSY)
			break;
		if (timeout_ms > 0) {
			left = start + (int64_t)timeout_ms * 1000000 - lm_now_ns();
			if (left <= 0) {
				rc = -ETIMEDOUT;
				break;
			}
		}
		backoff_sleep(lm, &delay, left);
		spins = 0;
	}
	bdev_free(st->old);
	bdev_free(st->new);
	bdev_free(st->v.img);
	return rc;
}

static int check_args(struct lm *lm, uint64_t addr, enum lm_mode mode)
{
	if (mode != LM_MODE_EX && mode != LM_MODE_SH && mode != LM_MODE_MW)
		return -EINVAL;
	if (addr % LM_UNIT || addr > lm->bd->size - LM_UNIT)
		return -EINVAL;
	if (addr + LM_UNIT > lm->g.hb_off && addr < lm->g.hb_off + (uint64_t)lm->g.nslots * LM_UNIT)
		return -EINVAL; /* a lock inside the heartbeat region */
	if (atomic_load(&lm->fenced))
		return -LM_E_FENCED;
	return lm->joined ? 0 : -LM_E_NOTJOINED;
}

static int acquire(struct lm *lm, uint64_t addr, const char *name, enum lm_mode mode,
		   int timeout_ms, struct lm_lock **out)
{
	struct step st = {.addr = addr, .name = name, .want = mode};
	struct lm_lock *lk;
	int rc;

	*out = NULL;
	rc = check_args(lm, addr, mode);
	if (rc < 0)
		return rc;
	lk = calloc(1, sizeof(*lk));
	if (!lk)
		return -ENOMEM;
	rc = run_steps(lm, &st, timeout_ms);
	if (rc < 0) {
		free(lk);
		return rc;
	}
	lk->lm = lm;
	lk->addr = addr;
	lk->mode = mode;
	lk->gen = st.gen;
	*out = lk;
	return 0;
}

int lm_lock_acquire(struct lm *lm, uint64_t addr, enum lm_mode mode, int timeout_ms,
		    struct lm_lock **out)
{
	int rc = acquire(lm, addr, NULL, mode, timeout_ms, out);

	return rc == -EXDEV ? -EBUSY : rc;
}

int lm_lock_convert(struct lm_lock *lk, enum lm_mode mode, int timeout_ms)
{
	struct step st = {.addr = lk->addr, .want = mode, .cur = lk};
	int rc;

	rc = check_args(lk->lm, lk->addr, mode);
	if (rc < 0)
		return rc;
	if (mode == lk->mode)
		return 0;
	rc = run_steps(lk->lm, &st, timeout_ms);
	if (rc == 0) {
		lk->mode = mode;
		lk->gen = st.gen;
	}
	return rc;
}

/* One try of a release. *pre: old holds the current record (returned by
 * the previous try's miscompare); *spec: speculation is still allowed. */
static int release_step(struct lm *lm, uint64_t addr, uint8_t *old, uint8_t *new, int *pre,
			int *spec)
{
	struct lm_lock_info l, nl;
	char why[128];
	int rc, found = 0, used = 0;
	uint64_t g;

	rc = lm_guard(lm);
	if (rc < 0)
		return rc;
	if (*pre) {
		*pre = 0;
	} else if (*spec && memo_get(lm, addr, old) && names_me_any(lm, old, addr, &g)) {
		*spec = 0; /* once */
		used = 1;
		LM_STAT_INC(lm, spec_tries);
	} else {
		*spec = 0;
		rc = lm_read_unit(lm, addr, old);
		if (rc < 0)
			return rc;
	}
	rc = lm_lock_decode(old, addr, lm->g.nslots, &l, why, sizeof(why));
	if (rc < 0) {
		lm_set_err(lm, "lock at 0x%llx: %s", (unsigned long long)addr, why);
		return rc;
	}
	nl = l;
	nl.nholders = 0;
	memset(nl.holders, 0, sizeof(nl.holders));
	for (uint32_t i = 0; i < l.nholders; i++) {
		if (l.holders[i].slot == lm->slot && l.holders[i].gen == lm->gen)
			found = 1;
		else
			nl.holders[nl.nholders++] = l.holders[i];
	}
	if (!found)
		return -LM_E_LOST;
	nl.wanted = 0; /* waiters still waiting mark the next image */
	if (!nl.nholders) {
		nl.mode = LM_MODE_FREE;
		memset(nl.owner_uuid, 0, 16);
	}
	memset(new, 0, lm->lsec);
	lm_lock_encode(&nl, new);
	rc = lm_guard(lm);
	if (rc < 0)
		return rc;
	rc = lm_ats_cur(lm, lm->bd, addr, old, new, new + lm->lsec);
	if (rc == -BDEV_E_MISCOMPARE) {
		memcpy(old, new + lm->lsec, lm->lsec);
		memo_put(lm, addr, old);
		*pre = 1;
		if (used)
			LM_STAT_INC(lm, spec_misses);
		return -EAGAIN;
	}
	memo_put(lm, addr, rc == 0 ? new : NULL);
	if (rc < 0) {
		uint64_t gen;

		/* lost reply? released = this host is no longer named */
		LM_STAT_INC(lm, ats_errors);
		if (lm_reread(lm, addr, old) == 0 &&
		    lm_lock_decode(old, addr, lm->g.nslots, &l, NULL, 0) == 0 &&
		    !names_me(lm, old, addr, l.mode, &gen)) {
			LM_STAT_INC(lm, ats_lost_landed);
			memo_put(lm, addr, old);
			return 0;
		}
		return rc;
	}
	return 0;
}

static int is_io_error(int rc)
{
	return rc < 0 && rc != -EAGAIN && rc != -LM_E_FENCED && rc != -LM_E_LOST &&
	       rc != -LM_E_NOTJOINED && rc != -EUCLEAN && rc != -ENOMEM;
}

int lm_lock_release(struct lm_lock *lk)
{
	struct lm *lm;
	uint8_t *old, *new;
	int rc = -ENOMEM, n = 0, io = 0;

	if (!lk)
		return -EINVAL;
	lm = lk->lm;
	old = bdev_alloc(LM_UNIT);
	new = bdev_alloc(2 * LM_UNIT); /* the second half: a miscompare's record */
	if (old && new)
		for (int pre = 0, spec = 1;;) {
			rc = release_step(lm, lk->addr, old, new, &pre, &spec);
			if (rc == -EAGAIN && ++n < 100000)
				continue;
			if (is_io_error(rc) && ++io < 4) {
				lm_sleep_ms(10 << io); /* a transient error: try again */
				continue;
			}
			break;
		}
	if (rc < 0 && rc != -LM_E_LOST && rc != -LM_E_FENCED)
		uncertain(lm, lk->addr, 1); /* we may still be named: the next acquire adopts */
	if (rc < 0) {
		char prev[sizeof(lm->errmsg)];

		pthread_mutex_lock(&lm->mu);
		lm->st.release_errors++;
		memcpy(prev, lm->errmsg, sizeof(prev));
		pthread_mutex_unlock(&lm->mu);
		lm_set_err(lm, "releasing lock at 0x%llx: %s%s%s", (unsigned long long)lk->addr,
			   lm_strerror(rc), rc == -EUCLEAN ? ": " : "", rc == -EUCLEAN ? prev : "");
	}
	bdev_free(old);
	bdev_free(new);
	free(lk);
	return rc;
}

uint64_t lm_lock_gen(const struct lm_lock *lk)
{
	return lk->gen;
}

enum lm_mode lm_lock_mode(const struct lm_lock *lk)
{
	return lk->mode;
}

uint64_t lm_lock_addr(const struct lm_lock *lk)
{
	return lk->addr;
}

/* ---- recovery sweep ------------------------------------------------------- */

/* The pause between two looks at the heartbeat region while waiting for a
 * slot to die: a quarter interval (a heartbeat lands at least every interval;
 * looking 4 times per interval times its movement to within interval/4),
 * at most 250 ms, never past `end`. Through lm_sleep_ms(): an interval of
 * 4 s or more once made tv_nsec >= 10^9 here and nanosleep() fail at once. */
static void poll_sleep(struct lm *lm, int64_t end)
{
	int64_t ms = lm->g.hb_interval_ms / 4, left = (end - lm_now_ns()) / 1000000 + 1;

	if (ms > 250)
		ms = 250;
	if (ms > left)
		ms = left;
	lm_sleep_ms(ms < 1 ? 1 : ms);
}

/* One pass over the other slots: 1 if slot idx was recovered, 0 if not, -errno. */
static int recover_one(struct lm *lm, uint32_t idx, struct slot_view *v)
{
	int rc = read_slot(lm, idx, v);

	if (rc == -EUCLEAN)
		return 0; /* reported in errmsg; fsck's business */
	if (rc < 0)
		return rc;
	if (v->si.state == LM_SLOT_LIVE && v->stalled)
		rc = takeover(lm, idx, v);
	else if (v->si.state == LM_SLOT_REPLAYING && v->si.replayer_slot == lm->slot &&
		 v->si.replayer_gen == lm->gen)
		rc = replay_and_free(lm, idx, v->img, &v->si);
	else if (v->si.state == LM_SLOT_REPLAYING) {
		rc = replayer_alive(lm, v);
		if (rc == 0)
			rc = takeover(lm, idx, v);
		else if (rc > 0)
			return 0;
	} else
		return 0;
	/* -EBUSY: another thread of this handle is taking it over */
	return rc == 0 ? 1 : (rc == -EAGAIN || rc == -EBUSY) ? 0 : rc;
}

int lm_recover(struct lm *lm, int wait_ms)
{
	int64_t end = lm_now_ns() + (int64_t)(wait_ms > 0 ? wait_ms : 0) * 1000000;
	struct slot_view v = {.img = bdev_alloc(LM_UNIT)};
	int rc = 0, n = 0;

	if (!v.img)
		return -ENOMEM;
	for (;;) {
		rc = lm_guard(lm);
		for (uint32_t i = 0; rc == 0 && i < lm->g.nslots; i++) {
			if (i == lm->slot)
				continue;
			rc = recover_one(lm, i, &v);
			n += rc > 0;
			rc = rc > 0 ? 0 : rc;
		}
		if (rc < 0 || lm_now_ns() >= end)
			break;
		poll_sleep(lm, end);
	}
	bdev_free(v.img);
	return rc < 0 ? rc : n;
}

int lm_takeover_slot(struct lm *lm, uint32_t idx, int wait_ms)
{
	int64_t end = lm_now_ns() + (int64_t)(wait_ms > 0 ? wait_ms : 0) * 1000000;
	struct slot_view v;
	uint64_t first = 0;
	int rc, seen = 0;

	if (!lm->joined)
		return -LM_E_NOTJOINED;
	if (idx >= lm->g.nslots || idx == lm->slot)
		return -EINVAL;
	v.img = bdev_alloc(LM_UNIT);
	if (!v.img)
		return -ENOMEM;
	for (;;) {
		rc = lm_guard(lm);
		if (rc == 0)
			rc = recover_one(lm, idx, &v);
		if (rc != 0 || v.si.state == LM_SLOT_FREE)
			break; /* taken over (1), error, or nothing to take over (0) */
		if (v.si.state == LM_SLOT_LIVE && seen && v.si.counter != first) {
			lm_set_err(lm, "slot %u is alive (its heartbeat moved)", idx);
			rc = -ETIMEDOUT; /* a live host: no point watching it longer */
			break;
		}
		if (v.si.state == LM_SLOT_LIVE && !seen) {
			first = v.si.counter;
			seen = 1;
		}
		if (lm_now_ns() >= end) {
			lm_set_err(lm, "slot %u is still alive after %d ms", idx, wait_ms);
			rc = -ETIMEDOUT;
			break;
		}
		poll_sleep(lm, end);
	}
	bdev_free(v.img);
	return rc;
}

int lm_sweep(struct lm *lm)
{
	struct slot_view v = {.img = bdev_alloc(LM_UNIT)};
	int rc = 0, n = 0;

	if (!v.img)
		return -ENOMEM;
	in_reclaim_thread = 1;
	for (uint32_t i = 0; i < lm->g.nslots && !atomic_load(&lm->fenced); i++) {
		if (i == lm->slot)
			continue;
		rc = lm_guard(lm);
		if (rc < 0)
			break;
		rc = recover_one(lm, i, &v);
		n += rc > 0;
		if (rc < 0 && rc != -EBUSY)
			lm_set_err(lm, "reclaim of slot %u: %s", i, lm_strerror(rc));
	}
	in_reclaim_thread = 0;
	LM_STAT_INC(lm, reclaim_sweeps);
	bdev_free(v.img);
	return rc < 0 ? rc : n;
}

/* lm_join() on a full region: reclaim slot idx (image v: live and still for
 * T, or being replayed by a replayer that is gone) as our own. ATS ->
 * REPLAYING(gen + 1) by the slot itself, heartbeat it, run the callback,
 * then ATS -> LIVE with our identity (same generation). */
static int join_takeover(struct lm *lm, uint32_t idx, const struct slot_view *v)
{
	uint8_t *img = bdev_alloc(LM_UNIT);
	struct lm_slot_info r, l;
	int64_t t0;
	int replayed = 0, rc = busy_get(lm, idx);

	if (rc < 0 || !img) {
		if (rc == 0)
			busy_put(lm, idx);
		bdev_free(img);
		return rc < 0 ? rc : -ENOMEM;
	}
	replaying_rec(v, idx, UINT32_MAX, &r);
	r.counter = v->si.counter + 1;
	lm_slot_encode(&r, img);
	rc = lm_pr_enter(lm, idx, r.gen); /* our key before the claim (R1) */
	t0 = lm_now_ns();
	if (rc == 0)
		rc = lm_slot_ats_owned(lm, idx, v->img, img);
	if (rc < 0) {
		busy_put(lm, idx);
		bdev_free(img);
		return rc == -BDEV_E_MISCOMPARE ? -EAGAIN : rc;
	}
	memcpy(lm->slot_img, img, lm->lsec);
	lm->slot = idx;
	lm->gen = r.gen;
	lm->counter = r.counter;
	atomic_store(&lm->last_hb_ns, t0);
	lm->joined = 1; /* lm_guarded_write() works in the callback */
	rc = lm_hb_start(lm);
	if (rc == 0)
		rc = lm_pr_preempt(lm, idx, r.dead_gen, r.uuid); /* R3 */
	if (rc == 0)
		rc = replayed = run_callback(lm, idx, r.dead_gen, r.uuid);
	lm_hb_stop(lm); /* slot_img is stable from here */
	if (rc >= 0)
		rc = lm_guard(lm);
	if (rc == 0) {
		memcpy(img, lm->slot_img, lm->lsec);
		rc = put_recovery(lm, idx, &r, idx, r.gen, replayed, img);
	}
	if (rc == 0) {
		lm_slot_decode(lm->slot_img, idx, lm->g.nslots, &l, NULL, 0);
		l.state = LM_SLOT_LIVE;
		l.counter++;
		l.replayer_slot = l.replayer_gen = l.dead_gen = 0;
		memcpy(l.uuid, lm->uuid, 16);
		snprintf(l.hostname, sizeof(l.hostname), "%s", lm->hostname);
		l.interval_ms = lm->g.hb_interval_ms;
		l.timeout_ms = lm->g.hb_timeout_ms;
		memcpy(l.machine, lm->machine, 16);
		lm_slot_encode(&l, img);
		t0 = lm_now_ns();
		rc = lm_slot_ats_owned(lm, idx, lm->slot_img, img);
		if (rc == -BDEV_E_MISCOMPARE) {
			lm_fence(lm, "slot %u taken over while this host reclaimed it", idx);
			rc = -LM_E_FENCED;
		}
	}
	if (rc == 0) {
		memcpy(lm->slot_img, img, lm->lsec);
		lm->counter = l.counter;
		atomic_store(&lm->last_hb_ns, t0);
		rc = lm_hb_start(lm);
		LM_STAT_INC(lm, join_reclaims);
		LM_STAT_INC(lm, takeovers);
	}
	if (rc < 0) { /* slot left being replayed and still: a survivor finishes */
		lm->joined = 0;
		lm->slot = UINT32_MAX;
	}
	busy_put(lm, idx);
	bdev_free(img);
	return rc;
}

int lm_join_reclaim(struct lm *lm)
{
	int64_t end = lm_now_ns() + (int64_t)lm->join_wait_ms * 1000000;
	struct slot_view v = {.img = bdev_alloc(LM_UNIT)};
	char extra[96];
	int rc = 0;

	if (!v.img)
		return -ENOMEM;
	for (;;) {
		for (uint32_t i = 0; i < lm->g.nslots; i++) {
			int dead;

			rc = read_slot(lm, i, &v);
			if (rc == -EUCLEAN)
				continue;
			if (rc < 0)
				goto out;
			if (v.si.state == LM_SLOT_FREE) {
				rc = lm_hb_claim(lm, i, v.img, &v.si);
				if (rc == 0) {
					lm->joined = 1;
					rc = lm_hb_start(lm);
					goto out;
				}
				if (rc != -BDEV_E_MISCOMPARE)
					goto out;
				continue;
			}
			dead = v.si.state == LM_SLOT_LIVE ? v.stalled : !replayer_alive(lm, &v);
			if (!dead)
				continue;
			rc = join_takeover(lm, i, &v);
			if (rc != -EAGAIN && rc != -EBUSY)
				goto out;
		}
		if (lm_now_ns() >= end)
			break;
		poll_sleep(lm, end);
	}
	snprintf(extra, sizeof(extra), "; none freed or silent for the timeout in %d ms",
		 lm->join_wait_ms);
	lm_full_msg(lm, extra);
	rc = -ENOSPC;
out:
	bdev_free(v.img);
	return rc;
}

void lm_lock_forget(struct lm_lock *lk)
{
	free(lk);
}

/* ---- named locks --------------------------------------------------------- */

static uint32_t name_hash(const char *name)
{
	return crc32c(0, name, strlen(name));
}

static int check_name(const char *name, uint32_t nunits)
{
	if (!name || !*name || !nunits)
		return -EINVAL;
	if (strlen(name) >= LM_NAME_MAX)
		return -ENAMETOOLONG;
	for (const char *p = name; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return -EINVAL;
	return 0;
}

/* Probes for `name`: 1 and *addr for its unit, 0 and *addr for the first
 * claimable unit (name absent), -ENOSPC when neither exists, -errno. */
static int probe(struct bdev *bd, uint64_t area_off, uint32_t nunits, uint32_t nslots,
		 const char *name, uint64_t *addr, char *why, size_t whylen)
{
	uint8_t *buf = bdev_alloc(LM_UNIT);
	uint32_t h = name_hash(name);
	struct lm_lock_info l;
	int rc = -ENOSPC;

	if (!buf)
		return -ENOMEM;
	for (uint32_t k = 0; k < nunits; k++) {
		uint64_t a = area_off + (uint64_t)((h + k) % nunits) * LM_UNIT;
		int r;

		r = bdev_read(bd, buf, a, bd->lsec);
		if (r == 0)
			r = lm_lock_decode(buf, a, nslots, &l, why, whylen);
		if (r < 0) {
			rc = r;
			break;
		}
		*addr = a;
		if (l.name[0] && strcmp(l.name, name) == 0) {
			rc = 1;
			break;
		}
		if (!l.name[0] && l.mode == LM_MODE_FREE) {
			rc = 0;
			break;
		}
	}
	bdev_free(buf);
	return rc;
}

static int check_area(struct bdev *bd, uint64_t area_off, uint32_t nunits)
{
	if (area_off % LM_UNIT || area_off > bd->size ||
	    (uint64_t)nunits * LM_UNIT > bd->size - area_off)
		return -EINVAL;
	return 0;
}

int lm_lock_lookup(struct bdev *bd, uint64_t area_off, uint32_t nunits, const char *name,
		   uint64_t *addr)
{
	int rc = check_name(name, nunits);

	if (rc == 0)
		rc = check_area(bd, area_off, nunits);
	if (rc == 0)
		rc = probe(bd, area_off, nunits, LM_MAX_SLOTS, name, addr, NULL, 0);
	return rc == 1 ? 0 : rc == 0 ? -ENOENT : rc;
}

int lm_lock_acquire_named(struct lm *lm, uint64_t area_off, uint32_t nunits, const char *name,
			  enum lm_mode mode, int timeout_ms, struct lm_lock **out)
{
	char why[128] = "";
	uint64_t addr;
	int rc = check_name(name, nunits);

	*out = NULL;
	if (rc == 0)
		rc = check_area(lm->bd, area_off, nunits);
	if (rc < 0)
		return rc;
	for (int tries = 0; tries < 1000; tries++) {
		rc = probe(lm->bd, area_off, nunits, lm->g.nslots, name, &addr, why, sizeof(why));
		if (rc == -EUCLEAN)
			lm_set_err(lm, "named lock area: %s", why);
		if (rc == -ENOSPC)
			lm_set_err(lm, "named lock area full (%u units)", nunits);
		if (rc < 0)
			return rc;
		rc = acquire(lm, addr, name, mode, timeout_ms, out);
		if (rc != -EXDEV)
			return rc;
	}
	return -EAGAIN;
}

int lm_lock_read(struct bdev *bd, uint64_t addr, uint32_t nslots, struct lm_lock_info *out,
		 char *why, size_t whylen)
{
	uint8_t *buf;
	int rc;

	if (addr % LM_UNIT || addr > bd->size || bd->size - addr < LM_UNIT || bd->lsec > LM_UNIT ||
	    bd->lsec < LM_REC_SIZE)
		return -EINVAL;
	buf = bdev_alloc(LM_UNIT);
	if (!buf)
		return -ENOMEM;
	rc = bdev_read(bd, buf, addr, bd->lsec);
	if (rc == 0)
		rc = lm_lock_decode(buf, addr, nslots ? nslots : LM_MAX_SLOTS, out, why, whylen);
	bdev_free(buf);
	return rc;
}
