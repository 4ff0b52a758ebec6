/*
 * lockmgr.c - heartbeat slots, liveness, self-fencing and the write guard
 * (locks and takeover are in lm_lock.c, record formats in lm_int.h).
 *
 * DESIGN NOTE (docs/LOCKING.md has the long version)
 *
 * Hosts share one disk and nothing else. Each host that wants to write owns
 * one heartbeat slot (a 4 KiB unit; record in its first 512 bytes; every
 * change of it is an ATS of its first logical sector). Locks are records in
 * units of their own, also changed only by ATS. A lock names its holders by
 * (slot, slot generation); it is valid exactly as long as those heartbeats
 * live: there is no per-lock renewal traffic.
 *
 * Slot state machine (every arrow is one ATS of the slot's sector):
 *
 *      all-zero/FREE(g) --join by H--> LIVE(g+1, owner H) --heartbeat--> LIVE(g+1, counter+1)
 *           ^                            |      |
 *           |                  leave by H|      |counter still for T on X's clock
 *           |<---------------------------+      v
 *           |                        REPLAYING(g+2, dead_gen g+1, by X)
 *           |<--free after X's takeover callback-+   | X dead or gone: another
 *                                                    +-> REPLAYING(g+3, by Y)
 *
 *  Join on a full region (lm_opts.join_wait_ms, lm_join_reclaim()):
 *      LIVE(g, dead) / orphan REPLAYING --J--> REPLAYING(g+1, by itself)
 *           --J heartbeats it, runs the callback--> LIVE(g+1, owner J)
 *  Generations skip 0 on wrap (lm_next_gen()).
 *
 * Invariants
 *  I1. Every write to a slot or lock sector is an ATS whose expected image is
 *      what the writer last read (or wrote) there: two writers cannot both
 *      succeed from the same image, and a host whose slot was taken over
 *      learns it from its next heartbeat's miscompare. An ATS that reports
 *      an I/O error may have landed (lost reply): the writer re-reads and
 *      decides by ownership (slot state/generation/owner, lock holder and
 *      mode), see hb_ats(), lm_slot_ats_owned(), resolve_lock_ats().
 *  I2. A slot generation never repeats: it is bumped by every claim and
 *      every takeover. A lock holder (slot s, gen g) is alive only while slot
 *      s is LIVE with gen g; FREE, or LIVE/REPLAYING for another generation,
 *      makes the holder stale and droppable by anyone.
 *  I3. Liveness is judged only by movement of a slot's whole image, timed
 *      on the observer's CLOCK_MONOTONIC from the moment the observer FIRST
 *      read the current image (never earlier than when it landed). Dead =
 *      unchanged for T = hb_timeout_ms. Clocks of two hosts are never
 *      compared.
 *  I4. Lease rule (self-fencing): a host issues a write that depends on its
 *      lease (heartbeat, lock ATS, guarded data write) only when
 *      now - h < T/2, h = the time the last SUCCESSFUL heartbeat ATS was
 *      ISSUED (taken before the ATS, so h <= the moment it landed). Anything
 *      else latches `fenced`: no write is ever issued again by this handle.
 *  I5. A dead host's locks are broken only after its slot is REPLAYING by
 *      the breaker and the takeover callback (journal replay) returned >= 0;
 *      the slot is freed afterwards, then the lock ATS drops the holder.
 *  I6. The slot's recovery record (unit offset 0x200: who replayed, when,
 *      how many transactions) is written only by the host that holds the
 *      slot REPLAYING, before the ATS that ends the replay: a plain guarded
 *      write of its own sector on 512-byte sectors (no other host writes
 *      a slot being replayed by a live host), part of that ATS image on
 *      larger ones. It never decides anything: liveness and ownership come
 *      from the record at 0x000 only (I1-I3). Readers with no slot judge
 *      liveness by watching (lm_watch.c), under the same rule I3.
 *
 * Why I3 + I4 make takeover safe. Let L be the moment the victim's last
 * heartbeat landed; h <= L. The taker first read that image at s >= L and
 * takes over (an ATS expecting exactly that image, so a later heartbeat would
 * make it fail) at t >= s + T >= L + T. The victim issued its last
 * lease-dependent write before h + T/2 <= L + T/2. So the write is on the disk
 * before the takeover unless it stayed in flight for more than T/2 (4 s with
 * the defaults). A process stopped (SIGSTOP, swapped out, VM paused) and
 * resumed finds now - h >= T/2 at its next check and fences itself: the check
 * sits immediately before every write, in every write path of this library.
 * Residual window: a thread stopped between the check and the write
 * system call (a few instructions) issues that write on resumption. Against
 * that a shared file has no remedy in userspace; on a LUN with persistent
 * reservations the survivor preempts the victim's key before replaying
 * (lm_pr.c), so that write fails with RESERVATION CONFLICT.
 *
 * Timeline, defaults interval 1 s / timeout T 8 s; host A holds a lock and
 * is killed at t=0 (its last heartbeat landed in (-1, 0]); host B waits for
 * the lock, polling every <= 10 ms (backoff cap, min(interval/4, 10 ms)):
 *
 *   t (s)        A                              B
 *   -1..0        last heartbeat issued (h),     reads A's slot, sees counter c
 *                lands (L)
 *   0            killed (or stopped)
 *   0..0.01                                     first read of the final image (s)
 *   h+4 (<= 4)   a stopped A, once resumed,     keeps reading c
 *                refuses every write (I4)
 *   s+8 (7..8)                                  ATS A's slot LIVE(g) -> REPLAYING(g+1)
 *   + replay                                    takeover callback (journal replay)
 *   + 2 ATS                                     slot -> FREE(g+1); lock ATS drops A,
 *                                               adds B, lock gen + 1: granted
 *
 * Heartbeat thread: every interval (absolute monotonic deadlines) it checks
 * the lease (I4), then ATS(last image -> counter+1). Miscompare against a
 * slot that is no longer ours (state, generation or owner changed): fenced
 * ("slot taken over"). I/O error: re-read; landed = success; otherwise
 * retried next interval; the lease check fences the host once T/2 passed
 * without a success.
 *
 * Reclaim thread (lm_opts.reclaim_interval_ms): sweeps every other slot each
 * interval (lm_sweep()), keeping obs[] current and taking over dead slots
 * with the reclaim callback. With it, a dead host is taken over about T +
 * one interval after its death whoever needs its locks; without it, the
 * first host that needs one waits T from its first look at the slot.
 * Threads: callers (locks, guarded writes), the heartbeat thread, the
 * reclaim thread. lm->mu guards in-memory state only (obs[], busy[],
 * errmsg, counters), never held across I/O or sleeps.
 */
#include "lm_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sched.h>
#include <sys/random.h>
#include <unistd.h>

#include "bdev.h"
#include "crc32c.h"

int64_t lm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void lm_sleep_ms(int64_t ms)
{
	struct timespec ts, rem;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	while (nanosleep(&ts, &rem) < 0 && errno == EINTR)
		ts = rem;
}

uint32_t lm_next_gen(uint32_t g)
{
	return g + 1 ? g + 1 : 1;
}

int lm_reread(struct lm *lm, uint64_t off, uint8_t *buf)
{
	int rc = 0;

	for (int i = 0; i < 5; i++) {
		rc = lm_read_unit(lm, off, buf);
		if (rc == 0)
			return 0;
		lm_sleep_ms(1 << i);
	}
	return rc;
}

void lm_stats_get(struct lm *lm, struct lm_stats *out)
{
	pthread_mutex_lock(&lm->mu);
	*out = lm->st;
	pthread_mutex_unlock(&lm->mu);
}

void lm_set_err(struct lm *lm, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&lm->mu);
	va_start(ap, fmt);
	vsnprintf(lm->errmsg, sizeof(lm->errmsg), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&lm->mu);
}

const char *lm_errmsg(struct lm *lm)
{
	return lm ? lm->errmsg : "";
}

void lm_fence(struct lm *lm, const char *fmt, ...)
{
	uint64_t one = 1;
	va_list ap;
	int expect = 0;

	if (!atomic_compare_exchange_strong(&lm->fenced, &expect, 1))
		return; /* already fenced */
	va_start(ap, fmt);
	vsnprintf(lm->fence_why, sizeof(lm->fence_why), fmt, ap);
	va_end(ap);
	lm_set_err(lm, "fenced: %s", lm->fence_why);
	if (lm->efd >= 0 && write(lm->efd, &one, sizeof(one)) < 0) {
		/* eventfd counter overflow cannot happen with one write */
	}
	if (lm->on_fence)
		lm->on_fence(lm->fence_arg, lm->fence_why);
	atomic_store(&lm->fence_done, 1);
}

/* Another thread is inside lm_fence(): wait until the reason is written and
 * the eventfd readable, so that whoever sees "fenced" sees all of it. */
static int fenced_wait(struct lm *lm)
{
	if (!atomic_load(&lm->fenced))
		return 0;
	while (!atomic_load(&lm->fence_done))
		sched_yield();
	return 1;
}

int lm_fenced(struct lm *lm)
{
	return fenced_wait(lm);
}

int lm_fence_fd(struct lm *lm)
{
	return lm->efd;
}

const char *lm_fence_reason(struct lm *lm)
{
	return atomic_load(&lm->fenced) ? lm->fence_why : "";
}

uint64_t lm_slot_off(const struct lm *lm, uint32_t index)
{
	return lm->g.hb_off + (uint64_t)index * LM_UNIT;
}

int lm_read_unit(struct lm *lm, uint64_t off, uint8_t *buf)
{
	return bdev_read(lm->bd, buf, off, lm->lsec);
}

int lm_ats(struct lm *lm, struct bdev *bd, uint64_t off, const uint8_t *expect,
	   const uint8_t *newdata)
{
	return lm_ats_cur(lm, bd, off, expect, newdata, NULL);
}

int lm_ats_cur(struct lm *lm, struct bdev *bd, uint64_t off, const uint8_t *expect,
	       const uint8_t *newdata, uint8_t *actual)
{
	(void)lm;
	return bdev_ats(bd, off, expect, newdata, actual);
}

static int64_t half_timeout_ns(const struct lm *lm)
{
	return (int64_t)lm->g.hb_timeout_ms * 500000;
}

int lm_write_guard(struct lm *lm)
{
	int rc = lm_guard(lm);

	atomic_fetch_add(&lm->write_seq, 1);
	return rc;
}

uint64_t lm_write_seq(struct lm *lm)
{
	return atomic_load(&lm->write_seq);
}

int lm_guard(struct lm *lm)
{
	int64_t age;

	if (fenced_wait(lm))
		return -LM_E_FENCED;
	if (!lm->joined)
		return -LM_E_NOTJOINED;
	age = lm_now_ns() - atomic_load(&lm->last_hb_ns);
	if (age >= half_timeout_ns(lm)) {
		lm_fence(lm,
			 "lease expired: last successful heartbeat issued %lld ms ago (limit %u)",
			 (long long)(age / 1000000), lm->g.hb_timeout_ms / 2);
		return -LM_E_FENCED;
	}
	return 0;
}

int lm_guarded_write(struct lm *lm, const void *buf, uint64_t off, size_t len)
{
	int rc = lm_write_guard(lm);

	return rc < 0 ? rc : bdev_write(lm->bd, buf, off, len);
}

static int check_geom(struct bdev *bd, struct lm_geom *g)
{
	if (!g->hb_interval_ms)
		g->hb_interval_ms = LM_DEFAULT_INTERVAL_MS;
	if (!g->hb_timeout_ms)
		g->hb_timeout_ms = LM_DEFAULT_TIMEOUT_MS;
	if (g->hb_timeout_ms < 4 * g->hb_interval_ms || g->hb_interval_ms < 10 ||
	    g->hb_timeout_ms > 3600000)
		return -EINVAL;
	if (!g->nslots || g->nslots > LM_MAX_SLOTS || g->hb_off % LM_UNIT)
		return -EINVAL;
	if (bd->lsec > LM_UNIT || LM_UNIT % bd->lsec || bd->lsec < LM_REC_SIZE)
		return -EINVAL;
	if (g->hb_off > bd->size || (uint64_t)g->nslots * LM_UNIT > bd->size - g->hb_off)
		return -EINVAL;
	return 0;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

static int parse_machine(const char *txt, uint8_t out[16])
{
	for (int i = 0; i < 16; i++) {
		int h = hexval(txt[2 * i]), l = h < 0 ? -1 : hexval(txt[2 * i + 1]);

		if (h < 0 || l < 0)
			return 0;
		out[i] = (uint8_t)(h << 4 | l);
	}
	return !lm_is_zero(out, 16);
}

int lm_machine_id(uint8_t out[16])
{
	const char *env = getenv("VMFS_MACHINE_ID");
	char buf[64] = "";
	FILE *f;

	memset(out, 0, 16);
	if (env && *env)
		return strlen(env) >= 32 && parse_machine(env, out);
	f = fopen("/etc/machine-id", "re");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	if (strlen(buf) < 32 || !parse_machine(buf, out)) {
		memset(out, 0, 16);
		return 0;
	}
	return 1;
}

void lm_machine_str(const uint8_t id[16], char *out)
{
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", id[i]);
}

static void host_identity(struct lm *lm, const struct lm_opts *o)
{
	char host[256] = "";

	if (o && o->uuid) {
		memcpy(lm->uuid, o->uuid, 16);
	} else if (getrandom(lm->uuid, 16, 0) != 16) {
		for (int i = 0; i < 16; i++) /* never happens in practice */
			lm->uuid[i] = (uint8_t)(lm_now_ns() >> (i % 8) ^ getpid());
	} else {
		lm->uuid[6] = (uint8_t)((lm->uuid[6] & 0x0f) | 0x40); /* version 4 */
		lm->uuid[8] = (uint8_t)((lm->uuid[8] & 0x3f) | 0x80);
	}
	if (o && o->hostname)
		snprintf(host, sizeof(host), "%s", o->hostname);
	else if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "unknown");
	for (char *p = host; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
	host[LM_HOSTNAME_MAX - 1] = '\0';
	memcpy(lm->hostname, host, LM_HOSTNAME_MAX);
	lm_machine_id(lm->machine);
}

/* Reopens plain file and trace: URIs (a fresh handle = its own ATS queue);
 * shares bd for mem: (one process only), the fault/crash wrappers (whose
 * state must stay one) and devices with persistent reservations. */
static int open_hb_bd(struct lm *lm, const struct lm_opts *o)
{
	const char *uri = lm->bd->uri, *wrap = getenv("BDEV_WRAP");
	int rc;

	lm->hb_bd = lm->bd;
	if (o && o->hb_bd) {
		if (o->hb_bd->lsec != lm->bd->lsec || o->hb_bd->size != lm->bd->size)
			return -EINVAL;
		lm->hb_bd = o->hb_bd;
		return 0;
	}
	if (!uri || !strncmp(uri, "mem:", 4) || strstr(uri, "fault:") || strstr(uri, "crash:"))
		return 0;
	/* A device with reservations (a LUN): one session per host, so one
	 * registration per host (lm_pr.c); its queue serves both threads. */
	if (lm->bd->caps & BDEV_CAP_PR)
		return 0;
	if (wrap && *wrap)
		return 0;
	rc = bdev_open(uri, (lm->bd->caps & BDEV_CAP_READONLY) ? BDEV_O_RDONLY : 0, &lm->hb_bd);
	if (rc < 0 || lm->hb_bd->lsec != lm->bd->lsec || lm->hb_bd->size != lm->bd->size) {
		if (rc == 0)
			bdev_close(lm->hb_bd);
		lm->hb_bd = lm->bd; /* cannot reopen: share */
		return 0;
	}
	lm->own_hb_bd = 1;
	return 0;
}

int lm_open(struct bdev *bd, const struct lm_geom *geom, const struct lm_opts *opts,
	    struct lm **out)
{
	pthread_condattr_t ca;
	struct lm *lm;
	int rc;

	*out = NULL;
	if (!bd || !geom)
		return -EINVAL;
	lm = calloc(1, sizeof(*lm));
	if (!lm)
		return -ENOMEM;
	lm->g = *geom;
	rc = check_geom(bd, &lm->g);
	if (rc < 0) {
		free(lm);
		return rc;
	}
	pthread_mutex_init(&lm->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&lm->hb_cv, &ca);
	pthread_cond_init(&lm->rc_cv, &ca);
	pthread_condattr_destroy(&ca);
	lm->bd = bd;
	lm->lsec = bd->lsec;
	lm->slot = UINT32_MAX; /* none until joined */
	lm->obs = calloc(lm->g.nslots, sizeof(*lm->obs));
	lm->busy = calloc(lm->g.nslots, 1);
	lm->slot_img = bdev_alloc(LM_UNIT);
	lm->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	rc = lm_memo_init(lm);
	if (!lm->obs || !lm->busy || !lm->slot_img || lm->efd < 0 || rc < 0) {
		rc = lm->efd < 0 ? -errno : -ENOMEM;
		lm_close(lm);
		return rc;
	}
	host_identity(lm, opts);
	rc = open_hb_bd(lm, opts);
	if (rc < 0) {
		lm_close(lm);
		return rc;
	}
	lm_pr_setup(lm);
	if (opts) {
		lm->takeover = opts->takeover;
		lm->takeover_arg = opts->takeover_arg;
		lm->on_fence = opts->on_fence;
		lm->fence_arg = opts->fence_arg;
		lm->reclaim_ms = opts->reclaim_interval_ms;
		lm->reclaim_cb = opts->reclaim_takeover ? opts->reclaim_takeover : opts->takeover;
		lm->reclaim_arg = opts->reclaim_takeover ? opts->reclaim_arg : opts->takeover_arg;
		lm->join_wait_ms = opts->join_wait_ms;
	}
	if (lm->join_wait_ms < 0) /* LM_JOIN_WAIT_AUTO */
		lm->join_wait_ms = (int)(lm->g.hb_timeout_ms + 2 * lm->g.hb_interval_ms);
	*out = lm;
	return 0;
}

void lm_geom_get(struct lm *lm, struct lm_geom *out)
{
	*out = lm->g;
}

int lm_slot(struct lm *lm, uint32_t *slot, uint32_t *gen)
{
	if (!lm->joined)
		return -LM_E_NOTJOINED;
	if (slot)
		*slot = lm->slot;
	if (gen)
		*gen = lm->gen;
	return 0;
}

/* Slot image cur (our slot, read now) still belongs to this host: same
 * state, generation and owner as the image we last wrote. After an ATS error
 * or a miscompare, ownership decides what happened, not a byte compare. */
static int slot_still_ours(struct lm *lm, const uint8_t *cur)
{
	struct lm_slot_info s, mine;

	if (lm_slot_decode(cur, lm->slot, lm->g.nslots, &s, NULL, 0) < 0 ||
	    lm_slot_decode(lm->slot_img, lm->slot, lm->g.nslots, &mine, NULL, 0) < 0)
		return 0;
	return !s.never_used && s.state == mine.state && s.gen == mine.gen &&
	       memcmp(s.uuid, mine.uuid, 16) == 0 && s.counter >= mine.counter;
}

/* One heartbeat ATS from slot_img to img. 0 (landed), -BDEV_E_MISCOMPARE
 * (slot no longer ours), or an I/O error (did not land). An ATS error is
 * resolved by re-reading the slot (a lost reply: the write landed); a
 * miscompare against a slot that is still ours (an earlier lost reply we
 * could not resolve) adopts the image read and tries once more. */
static int hb_ats(struct lm *lm, const uint8_t *img, uint8_t *cur)
{
	uint64_t off = lm_slot_off(lm, lm->slot);
	int rc = lm_ats(lm, lm->hb_bd, off, lm->slot_img, img);

	if (rc == 0)
		return 0;
	if (rc != -BDEV_E_MISCOMPARE)
		LM_STAT_INC(lm, ats_errors);
	if (bdev_read(lm->hb_bd, cur, off, lm->lsec) < 0)
		return rc == -BDEV_E_MISCOMPARE ? -EIO : rc; /* unknown: retry next beat */
	if (!slot_still_ours(lm, cur))
		return -BDEV_E_MISCOMPARE;
	if (memcmp(cur, img, lm->lsec) == 0) { /* the reply was lost, not the write */
		LM_STAT_INC(lm, hb_lost_replies);
		LM_STAT_INC(lm, ats_lost_landed);
		return 0;
	}
	memcpy(lm->slot_img, cur, lm->lsec); /* ours: resynchronise the cached image */
	if (rc != -BDEV_E_MISCOMPARE)
		return rc;
	LM_STAT_INC(lm, hb_lost_replies);
	return lm_ats(lm, lm->hb_bd, off, lm->slot_img, img) == 0 ? 0 : -EIO;
}

/* One heartbeat: lease check (I4), then ATS(last image -> counter + 1). */
static void hb_beat(struct lm *lm)
{
	uint8_t *img = bdev_alloc(LM_UNIT), *cur = bdev_alloc(LM_UNIT);
	struct lm_slot_info s;
	char why[128];
	int64_t t0;
	int rc;

	if (!img || !cur)
		goto out;
	t0 = lm_now_ns();
	if (lm_guard(lm) < 0)
		goto out;
	rc = lm_slot_decode(lm->slot_img, lm->slot, lm->g.nslots, &s, why, sizeof(why));
	if (rc < 0) { /* our own image: cannot happen */
		lm_fence(lm, "own slot image invalid: %s", why);
		goto out;
	}
	s.counter++;
	lm_slot_encode(&s, img);
	rc = hb_ats(lm, img, cur);
	if (rc == 0) {
		memcpy(lm->slot_img, img, lm->lsec);
		lm->counter = s.counter;
		atomic_store(&lm->last_hb_ns, t0);
	} else if (rc == -BDEV_E_MISCOMPARE) {
		lm_fence(lm, "heartbeat slot %u changed under us (taken over by another host)",
			 lm->slot);
	} else {
		lm_set_err(lm, "heartbeat write failed: %s", bdev_strerror(rc));
	}
out:
	bdev_free(img);
	bdev_free(cur);
}

static void *hb_main(void *arg)
{
	struct lm *lm = arg;
	int64_t next = lm_now_ns();
	struct timespec ts;

	pthread_mutex_lock(&lm->mu);
	while (!lm->hb_stop && !atomic_load(&lm->fenced)) {
		next += (int64_t)lm->g.hb_interval_ms * 1000000;
		if (next < lm_now_ns())
			next = lm_now_ns(); /* we were late: beat now, do not burst */
		ts.tv_sec = next / 1000000000;
		ts.tv_nsec = next % 1000000000;
		while (!lm->hb_stop && pthread_cond_timedwait(&lm->hb_cv, &lm->mu, &ts) == 0)
			;
		if (lm->hb_stop)
			break;
		pthread_mutex_unlock(&lm->mu);
		hb_beat(lm);
		pthread_mutex_lock(&lm->mu);
	}
	pthread_mutex_unlock(&lm->mu);
	return NULL;
}

int lm_hb_start(struct lm *lm)
{
	int rc;

	if (lm->hb_running)
		return 0;
	lm->hb_stop = 0;
	rc = -bdev_thread_create(&lm->hb_thread, hb_main, lm);
	if (rc == 0)
		lm->hb_running = 1;
	return rc;
}

void lm_hb_stop(struct lm *lm)
{
	if (!lm->hb_running)
		return;
	pthread_mutex_lock(&lm->mu);
	lm->hb_stop = 1;
	pthread_cond_broadcast(&lm->hb_cv);
	pthread_mutex_unlock(&lm->mu);
	pthread_join(lm->hb_thread, NULL);
	lm->hb_running = 0;
}

/* ATS of slot idx from old to img (a record this host writes as its own:
 * LIVE or being replayed by itself, generation gen, our UUID for LIVE). An
 * I/O error is resolved by re-reading: landed if the slot now holds a record
 * of that state and generation naming the same owner. */
int lm_slot_ats_owned(struct lm *lm, uint32_t idx, const uint8_t *old, const uint8_t *img)
{
	uint8_t *cur;
	struct lm_slot_info want, got;
	int rc = lm_ats(lm, lm->bd, lm_slot_off(lm, idx), old, img);

	if (rc == 0 || rc == -BDEV_E_MISCOMPARE)
		return rc;
	LM_STAT_INC(lm, ats_errors);
	cur = bdev_alloc(LM_UNIT);
	if (!cur)
		return rc;
	if (lm_reread(lm, lm_slot_off(lm, idx), cur) == 0 &&
	    lm_slot_decode(img, idx, lm->g.nslots, &want, NULL, 0) == 0 &&
	    lm_slot_decode(cur, idx, lm->g.nslots, &got, NULL, 0) == 0 && !got.never_used &&
	    got.state == want.state && got.gen == want.gen &&
	    memcmp(got.uuid, want.uuid, 16) == 0 && got.replayer_slot == want.replayer_slot &&
	    got.replayer_gen == want.replayer_gen) {
		LM_STAT_INC(lm, ats_lost_landed);
		rc = memcmp(cur, img, lm->lsec) == 0 ? 0 : -BDEV_E_MISCOMPARE;
	}
	bdev_free(cur);
	return rc;
}

int lm_hb_claim(struct lm *lm, uint32_t idx, const uint8_t *old, const struct lm_slot_info *o)
{
	struct lm_slot_info s = {0};
	uint8_t *img = bdev_alloc(LM_UNIT);
	int64_t t0;
	int rc;

	if (!img)
		return -ENOMEM;
	s.index = idx;
	s.state = LM_SLOT_LIVE;
	s.gen = lm_next_gen(o->gen); /* 2^32 claims later: wrap, skipping 0 */
	s.counter = o->counter + 1;
	memcpy(s.uuid, lm->uuid, 16);
	snprintf(s.hostname, sizeof(s.hostname), "%s", lm->hostname);
	s.interval_ms = lm->g.hb_interval_ms;
	s.timeout_ms = lm->g.hb_timeout_ms;
	memcpy(s.machine, lm->machine, 16);
	lm_slot_encode(&s, img);
	rc = lm_pr_enter(lm, idx, s.gen); /* before the claim: R1 in lm_pr.c */
	if (rc < 0) {
		bdev_free(img);
		return rc;
	}
	t0 = lm_now_ns();
	rc = lm_slot_ats_owned(lm, idx, old, img);
	if (rc == 0) {
		memcpy(lm->slot_img, img, lm->lsec);
		lm->slot = idx;
		lm->gen = s.gen;
		lm->counter = s.counter;
		atomic_store(&lm->last_hb_ns, t0);
	}
	bdev_free(img);
	return rc;
}

/* Counts slot states for the "region full" message. */
void lm_full_msg(struct lm *lm, const char *extra)
{
	uint8_t *buf = bdev_alloc(LM_UNIT);
	uint32_t nlive = 0, nrep = 0, nbad = 0;
	struct lm_slot_info s;

	for (uint32_t i = 0; buf && i < lm->g.nslots; i++) {
		if (lm_read_unit(lm, lm_slot_off(lm, i), buf) < 0 ||
		    lm_slot_decode(buf, i, lm->g.nslots, &s, NULL, 0) < 0) {
			nbad++;
			continue;
		}
		nlive += s.state == LM_SLOT_LIVE;
		nrep += s.state == LM_SLOT_REPLAYING;
	}
	lm_set_err(lm, "heartbeat region full: %u slots, %u live, %u being replayed, %u corrupt%s",
		   lm->g.nslots, nlive, nrep, nbad, extra);
	bdev_free(buf);
}

/* A host that comes back takes the free slot it left (the last one whose
 * record carries its hostname), so repeated short-lived joins (every
 * vmfsctl command that writes) do not leave a trail of used slots; else
 * the scan starts at a UUID-derived slot so that simultaneous joiners
 * spread out. Pass 0 looks only for our own left slot, pass 1 for a never
 * used one (a slot another host left stays its to come back to while
 * there is room), pass 2 for any free slot. The region is read once for
 * every pass; the claim's ATS is what decides (a slot that
 * changed since is a miscompare, re-read, and the scan goes on). */
static int hb_find_and_claim(struct lm *lm)
{
	uint8_t *all = bdev_alloc((size_t)lm->g.nslots * LM_UNIT), *buf;
	uint32_t start = crc32c(0, lm->uuid, 16) % lm->g.nslots;
	struct lm_slot_info s;
	char why[128];
	int rc;

	if (!all)
		return -ENOMEM;
	rc = bdev_read(lm->bd, all, lm_slot_off(lm, 0), (size_t)lm->g.nslots * LM_UNIT);
	rc = rc < 0 ? rc : -ENOSPC;
	for (uint32_t k = 0; rc == -ENOSPC && k < 3 * lm->g.nslots; k++) {
		uint32_t idx = (start + k) % lm->g.nslots;
		uint32_t pass = k / lm->g.nslots;

		buf = all + (size_t)idx * LM_UNIT;
		if (lm_slot_decode(buf, idx, lm->g.nslots, &s, why, sizeof(why)) < 0 ||
		    s.state != LM_SLOT_FREE ||
		    (pass == 0 &&
		     (s.never_used || strncmp(s.hostname, lm->hostname, LM_HOSTNAME_MAX) != 0)) ||
		    (pass == 1 && !s.never_used))
			continue;
		rc = lm_hb_claim(lm, idx, buf, &s);
		if (rc == -BDEV_E_MISCOMPARE) {
			/* somebody else claimed it first: its new image, next one */
			rc = lm_read_unit(lm, lm_slot_off(lm, idx), buf);
			rc = rc < 0 ? rc : -ENOSPC;
		}
	}
	if (rc < 0 && rc != -ENOSPC)
		lm_set_err(lm, "joining the heartbeat: %s", bdev_strerror(rc));
	bdev_free(all);
	return rc;
}

static void *rc_main(void *arg)
{
	struct lm *lm = arg;
	struct timespec ts;
	int64_t next;

	pthread_mutex_lock(&lm->mu);
	while (!lm->rc_stop && !atomic_load(&lm->fenced)) {
		next = lm_now_ns() + (int64_t)lm->reclaim_ms * 1000000;
		ts.tv_sec = next / 1000000000;
		ts.tv_nsec = next % 1000000000;
		while (!lm->rc_stop && pthread_cond_timedwait(&lm->rc_cv, &lm->mu, &ts) == 0)
			;
		if (lm->rc_stop)
			break;
		pthread_mutex_unlock(&lm->mu);
		lm_sweep(lm);
		pthread_mutex_lock(&lm->mu);
	}
	pthread_mutex_unlock(&lm->mu);
	return NULL;
}

void lm_reclaim_stop(struct lm *lm)
{
	if (!lm || !lm->rc_running)
		return;
	pthread_mutex_lock(&lm->mu);
	lm->rc_stop = 1;
	pthread_cond_broadcast(&lm->rc_cv);
	pthread_mutex_unlock(&lm->mu);
	pthread_join(lm->rc_thread, NULL);
	lm->rc_running = 0;
}

/* One machine per emulated ATS: on a device whose compare-and-write is an
 * OFD lock of this kernel, a live slot of another machine means two
 * machines whose ATS do not exclude each other. A LIVE slot recording
 * another machine id is watched: if its image moves within the timeout the
 * join is refused (-EBUSY, both machines named); still for the timeout, it
 * is a dead host's and the join goes on. */
static int check_machines(struct lm *lm)
{
	uint8_t *all, *cur;
	struct lm_slot_info s;
	char mine[33], theirs[33];
	int64_t end = 0;
	uint32_t n = lm->g.nslots;
	int rc = 0, foreign;

	if ((lm->bd->caps & BDEV_CAP_ATS_NATIVE) || lm_is_zero(lm->machine, 16))
		return 0;
	all = bdev_alloc((size_t)n * LM_UNIT);
	cur = bdev_alloc(LM_UNIT);
	if (!all || !cur) {
		rc = -ENOMEM;
		goto out;
	}
	rc = bdev_read(lm->bd, all, lm_slot_off(lm, 0), (size_t)n * LM_UNIT);
	for (;;) {
		foreign = 0;
		for (uint32_t i = 0; rc == 0 && i < n; i++) {
			uint8_t *img = all + (size_t)i * LM_UNIT;

			if (lm_slot_decode(img, i, n, &s, NULL, 0) < 0 || s.state != LM_SLOT_LIVE ||
			    lm_is_zero(s.machine, 16) || !memcmp(s.machine, lm->machine, 16))
				continue;
			rc = lm_read_unit(lm, lm_slot_off(lm, i), cur);
			if (rc < 0)
				break;
			if (memcmp(cur, img, lm->lsec) == 0) {
				foreign++; /* still so far: watch it */
				continue;
			}
			if (lm_slot_decode(cur, i, n, &s, NULL, 0) < 0 || s.state != LM_SLOT_LIVE ||
			    memcmp(s.machine, lm->machine, 16) == 0 || lm_is_zero(s.machine, 16)) {
				memcpy(img, cur, lm->lsec); /* left or taken over: not live */
				continue;
			}
			lm_machine_str(lm->machine, mine);
			lm_machine_str(s.machine, theirs);
			lm_set_err(lm,
				   "slot %u is live on machine %s (host '%s'), this is %s: "
				   "emulated compare-and-write cannot exclude another machine "
				   "(use a LUN with COMPARE AND WRITE)",
				   i, theirs, s.hostname, mine);
			rc = -EBUSY;
		}
		if (rc < 0 || !foreign)
			break;
		if (!end)
			end = lm_now_ns() + (int64_t)lm->g.hb_timeout_ms * 1000000;
		else if (lm_now_ns() >= end)
			break; /* still for the timeout: dead hosts' slots */
		lm_sleep_ms(lm->g.hb_interval_ms / 2 ? lm->g.hb_interval_ms / 2 : 1);
	}
out:
	bdev_free(all);
	bdev_free(cur);
	return rc;
}

int lm_join(struct lm *lm)
{
	int rc;

	if (atomic_load(&lm->fenced))
		return -LM_E_FENCED;
	if (lm->joined)
		return -EALREADY;
	rc = check_machines(lm);
	if (rc < 0)
		return rc;
	rc = hb_find_and_claim(lm);
	if (rc == -ENOSPC && lm->join_wait_ms > 0) {
		rc = lm_join_reclaim(lm); /* joined with the heartbeat running, or error */
	} else if (rc == -ENOSPC) {
		lm_full_msg(lm, "");
	} else if (rc == 0) {
		lm->joined = 1;
		rc = lm_hb_start(lm);
	}
	if (rc == 0)
		rc = lm_pr_reserve(lm);
	if (rc < 0) {
		if (lm->joined)
			lm_leave(lm);
		else
			lm_pr_leave(lm);
		return rc;
	}
	if (lm->reclaim_ms) {
		lm->rc_stop = 0;
		if (bdev_thread_create(&lm->rc_thread, rc_main, lm) == 0)
			lm->rc_running = 1;
		else
			lm_set_err(lm, "cannot start the reclaim thread");
	}
	return 0;
}

int lm_leave(struct lm *lm)
{
	uint8_t *img;
	struct lm_slot_info s;
	char why[128];
	int rc;

	if (!lm->joined)
		return -LM_E_NOTJOINED;
	lm_reclaim_stop(lm);
	lm_hb_stop(lm);
	rc = lm_guard(lm);
	if (rc < 0) {
		lm->joined = 0;
		return rc;
	}
	img = bdev_alloc(LM_UNIT);
	if (!img)
		return -ENOMEM;
	rc = lm_slot_decode(lm->slot_img, lm->slot, lm->g.nslots, &s, why, sizeof(why));
	if (rc == 0) {
		s.state = LM_SLOT_FREE;
		s.replayer_slot = s.replayer_gen = s.dead_gen = 0;
		lm_slot_encode(&s, img);
		rc = lm_ats(lm, lm->bd, lm_slot_off(lm, lm->slot), lm->slot_img, img);
		if (rc < 0 && rc != -BDEV_E_MISCOMPARE) {
			uint8_t *cur = bdev_alloc(LM_UNIT);

			LM_STAT_INC(lm, ats_errors);
			if (cur && lm_reread(lm, lm_slot_off(lm, lm->slot), cur) == 0 &&
			    memcmp(cur, img, lm->lsec) == 0) {
				LM_STAT_INC(lm, ats_lost_landed);
				rc = 0; /* the reply was lost; the slot is free */
			}
			bdev_free(cur);
		}
		if (rc == -BDEV_E_MISCOMPARE) {
			lm_fence(lm, "heartbeat slot %u changed under us (taken over)", lm->slot);
			rc = -LM_E_FENCED;
		}
	}
	lm->joined = 0;
	if (rc == 0)
		lm_pr_leave(lm); /* R5: after the slot is free */
	bdev_free(img);
	return rc;
}

static void lm_free(struct lm *lm);

void lm_close(struct lm *lm)
{
	if (!lm)
		return;
	if (lm->joined)
		lm_leave(lm);
	lm_free(lm);
}

void lm_close_noleave(struct lm *lm)
{
	if (!lm)
		return;
	lm_reclaim_stop(lm);
	lm->joined = 0; /* the slot stays LIVE with a still heartbeat */
	lm_free(lm);
}

static void lm_free(struct lm *lm)
{
	lm_reclaim_stop(lm);
	lm_hb_stop(lm);
	lm_pr_teardown(lm);
	if (lm->efd >= 0)
		close(lm->efd);
	pthread_mutex_destroy(&lm->mu);
	pthread_cond_destroy(&lm->hb_cv);
	pthread_cond_destroy(&lm->rc_cv);
	if (lm->own_hb_bd)
		bdev_close(lm->hb_bd);
	free(lm->obs);
	free(lm->busy);
	bdev_free(lm->slot_img);
	lm_memo_free(lm);
	free(lm);
}

int lm_slot_read(struct bdev *bd, const struct lm_geom *geom, uint32_t index,
		 struct lm_slot_info *out, char *why, size_t whylen)
{
	uint8_t *buf;
	int rc;

	if (!geom->nslots || index >= geom->nslots || bd->lsec > LM_UNIT ||
	    bd->lsec < LM_REC_SIZE || geom->hb_off + (uint64_t)(index + 1) * LM_UNIT > bd->size)
		return -EINVAL;
	buf = bdev_alloc(LM_UNIT);
	if (!buf)
		return -ENOMEM;
	/* the slot record and its recovery record (2 x 512 bytes) */
	rc = bdev_read(bd, buf, geom->hb_off + (uint64_t)index * LM_UNIT,
		       bd->lsec > 2 * LM_REC_SIZE ? bd->lsec : 2 * LM_REC_SIZE);
	if (rc == 0)
		rc = lm_slot_decode(buf, index, geom->nslots, out, why, whylen);
	if (rc == 0 && lm_recov_decode(buf + LM_RECOV_OFF, geom->nslots, &out->rec, out->rec_why,
				       sizeof(out->rec_why)) < 0)
		out->rec_bad = 1;
	bdev_free(buf);
	return rc;
}

const char *lm_strerror(int err)
{
	switch (-err) {
	case LM_E_FENCED: return "host fenced (lease expired or heartbeat slot taken over)";
	case LM_E_LOST: return "lock lost (record no longer names this host)";
	case LM_E_NOTJOINED: return "not joined to the heartbeat";
	case EUCLEAN: return "corrupt lock manager record";
	}
	return bdev_strerror(err);
}
