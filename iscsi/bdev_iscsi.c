/*
 * bdev_iscsi.c - an iSCSI LUN as a block device, through libiscsi (userspace
 * initiator). URI: iscsi://[user%password@]host[:port]/target-iqn/lun[?opts]
 *
 * Design note
 *
 * Threads. libiscsi contexts are not thread-safe, so one event-loop thread
 * per bdev owns the context and makes every libiscsi call. Callers (any
 * number of threads) build requests (struct ireq), put them on the submit
 * queue under `mu`, wake the loop through an eventfd and wait on `cv` until
 * their requests are done. The loop keeps up to `qd` tasks in flight, drives
 * the socket with poll() + iscsi_service(), and completes requests from the
 * task callbacks. A batch of bdev_submit() is one enqueue: its requests run
 * concurrently, which is the queue depth.
 *
 * Connection state machine (loop thread only):
 *
 *        open                                 bdev_close
 *         |                                        |
 *         v       connect ok                       v
 *       DOWN ----------------> CONNECTING ----> UP ----> (thread exits)
 *        ^ ^  (next_try time)      |            |
 *        | |   connect failed or   |            | socket error, or a task
 *        | +---- timed out --------+            | in flight past its deadline
 *        |      (attempts < retries)            |
 *        +--------------------------------------+  attempts = 1
 *        |
 *        | attempts == retries (or CHAP refused)
 *        v
 *      FAILED: every queued request fails with -BDEV_E_TARGET_LOST;
 *              a request submitted later starts a new round (DOWN).
 *
 * Timeouts and retry bounds (URI options, defaults in brackets):
 *  - timeout=S [30]: every request completes within S seconds of being
 *    submitted, whatever happens to the target. A task still unanswered at
 *    its deadline means the target stopped answering: the connection is torn
 *    down (all tasks cancelled locally) and re-established.
 *  - retries=N [5]: reconnection attempts per round, with backoff 100 ms,
 *    200 ms, ... capped at 2 s; each connect+login attempt is bounded by
 *    min(30 s, S) (istgt answers a login after about 1 s and serialises
 *    logins, so 16 sessions opening at once need well over 5 s). Worst
 *    case for a request: S seconds.
 *  - After a reconnect, requests that are safe to repeat (READ, WRITE,
 *    SYNCHRONIZE CACHE, UNMAP, WRITE SAME, INQUIRY, READ CAPACITY, PR IN)
 *    are issued again. COMPARE AND WRITE and PR OUT are not: their outcome is
 *    unknown, so they fail with -BDEV_E_TARGET_LOST and the caller decides
 *    (the lock manager re-reads the lock record, as for a lost ATS reply).
 *  - UNIT ATTENTION (nothing was executed) is retried up to 8 times, BUSY
 *    and TASK SET FULL after 10 ms, all within the request's deadline.
 *  - The same initiator name and ISID are used on every reconnect, so the
 *    target sees the same I_T nexus and keeps this session's reservation
 *    key. Each bdev has its own initiator name: two bdevs are two sessions.
 *
 * Status mapping: GOOD 0; RESERVATION CONFLICT -BDEV_E_RESV_CONFLICT;
 * CHECK CONDITION: MISCOMPARE 1D/00 -BDEV_E_MISCOMPARE (COMPARE AND WRITE
 * only), ILLEGAL REQUEST with INVALID OPERATION CODE or INVALID FIELD IN CDB
 * -EOPNOTSUPP, other ILLEGAL REQUEST -EINVAL, DATA PROTECT -EROFS, the rest
 * -EIO. Every field the target returns (READ CAPACITY(16), VPD pages, PR IN
 * data, data-in lengths) is checked before use.
 *
 * ATS. At open (ats=auto) a probe COMPARE AND WRITE of LBA 0 with
 * expect = newdata = ~(current content) tells whether the target has it:
 * MISCOMPARE (or GOOD, which rewrote what was there) -> BDEV_ATS_CAW;
 * INVALID OPERATION CODE -> BDEV_ATS_PR if the target answers PERSISTENT
 * RESERVE IN, else the open fails. (The Block Limits VPD MAXIMUM COMPARE AND
 * WRITE LENGTH is read but not trusted: tgt advertises one and has no
 * COMPARE AND WRITE.) BDEV_ATS_PR (VMFS's pre-ATS way):
 *   1. this session registers a random key at open (unregistered at close;
 *      bdev_pr_register() replaces it). Keys are changed with REGISTER from
 *      the key this bdev holds (istgt mishandles REGISTER AND IGNORE
 *      EXISTING KEY), or from 0 if the target says it holds none;
 *   2. ats = RESERVE (type WRITE EXCLUSIVE - REGISTRANTS ONLY: other
 *      registrants keep writing, a second RESERVE conflicts), READ, compare,
 *      WRITE (FUA), RELEASE, under a per-bdev mutex (threads of one process
 *      share the session, so the reservation does not separate them);
 *   3. on conflict: retry with random backoff (1..8 ms, growing to 50 ms)
 *      until the deadline; every few conflicts check that our key is still
 *      registered (if not we were preempted: -BDEV_E_RESV_CONFLICT);
 *   4. a holder seen holding for stale=S [8] seconds (a host that died
 *      inside the critical section) is preempted: its key is removed, which
 *      also fences it. A holder that took longer than S/2 between RESERVE
 *      and its WRITE gives up (releases, -ETIMEDOUT) rather than write late.
 *      Residual risk, documented in docs/BLOCKDEV.md: a holder paused
 *      between that check and the WRITE reaching the target for more than
 *      S/2 could write once after being preempted.
 */
#include "bdev.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef HAVE_LIBISCSI
int bdev_iscsi_open(const char *uri, unsigned flags, struct bdev **out)
{
	(void)uri;
	(void)flags;
	*out = NULL;
	return -EPROTONOSUPPORT;
}
#else

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
#include <sys/eventfd.h>

#define ISC_MAX_CHUNK	   (1u << 20)	  /* largest READ/WRITE we send */
#define ISC_UA_RETRIES	   8		  /* UNIT ATTENTION retries per request */
#define ISC_CONNECT_MAX_NS 30000000000ull /* one connect + login attempt */
#define ISC_PR_KEYS_XFER   8200		  /* PR IN READ KEYS: 1024 keys */
#define NS		   1000000000ull

enum ikind { K_READ, K_WRITE, K_CAW, K_SYNC, K_UNMAP, K_WSAME, K_INQ, K_RC16, K_PRIN, K_PROUT };
enum cstate { C_DOWN, C_CONNECTING, C_UP, C_FAILED };

/* One SCSI command from a caller to the loop thread. */
struct ireq {
	enum ikind kind;
	uint64_t lba;
	uint32_t nblocks;
	unsigned char *out; /* data out (WRITE, CAW, WRITE SAME) */
	uint32_t outlen;
	unsigned char *in; /* data in, inlen bytes of room */
	uint32_t inlen;
	uint32_t in_got;		      /* bytes the target sent (full size) */
	int sa, type, evpd, page, fua, unmap; /* PR service action and type, VPD */
	struct scsi_persistent_reserve_out_basic prout;
	/* results */
	int status, sense_key, ascq, rc;
	bool done;
	/* loop-thread bookkeeping */
	struct scsi_task *task;
	uint64_t deadline, not_before;
	unsigned ua_left;
	struct ireq *next;
	struct isc *owner;
};

struct isc {
	/* configuration, immutable after open */
	char portal[300], target[256], user[256], pass[256], initiator[256];
	int lun;
	unsigned timeout_s, retries, qd, stale_s;
	uint32_t isid;
	/* shared with callers, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ireq *subq, *subq_tail;
	bool stop;
	int efd;
	pthread_t thr;
	bool thr_started;
	/* loop thread only */
	struct iscsi_context *ctx;
	enum cstate state;
	bool broken, connect_done;
	int connect_status;
	unsigned attempts;
	uint64_t next_try, connect_deadline;
	struct ireq *pend, *pend_tail;
	struct ireq **inflight; /* qd slots */
	unsigned ninflight;
	char lasterr[256];
	int last_errno; /* errno of the last failed connect (under mu) */
	bool ever_up;	/* under mu */
	bool lost;	/* under mu: state is FAILED */
	/* geometry and features (set at open) */
	uint32_t lbsize;
	uint64_t nlba;
	uint32_t max_xfer;  /* bytes per READ/WRITE */
	uint32_t max_ws;    /* blocks per WRITE SAME */
	uint32_t max_unmap; /* blocks per UNMAP descriptor */
	bool lbprz, can_unmap, can_ws, ws_unmap, has_b0;
	/* ATS and reservations: ats_mu serialises the PR-mode critical section
	 * and the key */
	pthread_mutex_t ats_mu;
	uint64_t key;
	bool auto_key;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static uint64_t rand64(void)
{
	uint64_t v = 0;
	FILE *f = fopen("/dev/urandom", "rb");

	if (!f || fread(&v, sizeof(v), 1, f) != 1)
		v = now_ns() ^ ((uint64_t)getpid() << 32);
	if (f)
		fclose(f);
	return v;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

/* ---- the loop thread ---------------------------------------------------- */

static bool req_repeatable(const struct ireq *r)
{
	return r->kind != K_CAW && r->kind != K_PROUT;
}

static void q_push(struct ireq **head, struct ireq **tail, struct ireq *r)
{
	r->next = NULL;
	if (*tail)
		(*tail)->next = r;
	else
		*head = r;
	*tail = r;
}

/* Completes r (loop thread); the waiter is woken. */
static void req_finish(struct isc *p, struct ireq *r, int rc)
{
	pthread_mutex_lock(&p->mu);
	r->rc = rc;
	r->done = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void inflight_del(struct isc *p, struct ireq *r)
{
	for (unsigned i = 0; i < p->ninflight; i++)
		if (p->inflight[i] == r) {
			p->inflight[i] = p->inflight[--p->ninflight];
			return;
		}
}

/* The connection failed under r: repeat it after reconnecting if that is
 * safe and time remains, else fail it. */
static void req_transport_failed(struct isc *p, struct ireq *r)
{
	if (req_repeatable(r) && now_ns() < r->deadline)
		q_push(&p->pend, &p->pend_tail, r);
	else
		req_finish(p, r, -BDEV_E_TARGET_LOST);
}

static void task_cb(struct iscsi_context *ctx, int status, void *data, void *priv)
{
	struct ireq *r = priv;
	struct isc *p = r->owner;
	struct scsi_task *t = data;

	(void)ctx;
	inflight_del(p, r);
	r->task = NULL;
	if (status == SCSI_STATUS_CANCELLED || status == SCSI_STATUS_ERROR ||
	    status == SCSI_STATUS_TIMEOUT || !t) {
		if (t)
			scsi_free_scsi_task(t);
		if (status != SCSI_STATUS_CANCELLED)
			p->broken = true;
		req_transport_failed(p, r);
		return;
	}
	r->status = t->status;
	r->sense_key = t->sense.key;
	r->ascq = t->sense.ascq;
	if (status == SCSI_STATUS_CHECK_CONDITION && t->sense.key == SCSI_SENSE_UNIT_ATTENTION &&
	    r->ua_left) {
		r->ua_left--;
		scsi_free_scsi_task(t);
		q_push(&p->pend, &p->pend_tail, r);
		return;
	}
	if (status == SCSI_STATUS_BUSY || status == SCSI_STATUS_TASK_SET_FULL) {
		scsi_free_scsi_task(t);
		r->not_before = now_ns() + 10000000ull;
		q_push(&p->pend, &p->pend_tail, r);
		return;
	}
	if (status == SCSI_STATUS_GOOD && r->in) {
		uint32_t n = t->datain.size > 0 ? (uint32_t)t->datain.size : 0;

		r->in_got = n;
		memcpy(r->in, t->datain.data, n < r->inlen ? n : r->inlen);
	}
	scsi_free_scsi_task(t);
	req_finish(p, r, 0);
}

static struct scsi_task *issue_task(struct isc *p, struct ireq *r)
{
	struct iscsi_context *c = p->ctx;
	struct unmap_list ul;

	switch (r->kind) {
	case K_READ:
		return iscsi_read16_task(c, p->lun, r->lba, r->nblocks * p->lbsize, (int)p->lbsize,
					 0, 0, 0, 0, 0, task_cb, r);
	case K_WRITE:
		return iscsi_write16_task(c, p->lun, r->lba, r->out, r->outlen, (int)p->lbsize, 0,
					  0, r->fua, 0, 0, task_cb, r);
	case K_CAW:
		return iscsi_compareandwrite_task(c, p->lun, r->lba, r->out, r->outlen,
						  (int)p->lbsize, 0, 0, r->fua, 0, 0, task_cb, r);
	case K_SYNC: return iscsi_synchronizecache10_task(c, p->lun, 0, 0, 0, 0, task_cb, r);
	case K_UNMAP:
		ul.lba = r->lba;
		ul.num = r->nblocks;
		return iscsi_unmap_task(c, p->lun, 0, 0, &ul, 1, task_cb, r);
	case K_WSAME:
		return iscsi_writesame16_task(c, p->lun, r->lba, r->out, r->outlen, r->nblocks, 0,
					      r->unmap, 0, 0, task_cb, r);
	case K_INQ:
		return iscsi_inquiry_task(c, p->lun, r->evpd, r->page, (int)r->inlen, task_cb, r);
	case K_RC16: return iscsi_readcapacity16_task(c, p->lun, task_cb, r);
	case K_PRIN:
		return iscsi_persistent_reserve_in_task(c, p->lun, r->sa, (uint16_t)r->inlen,
							task_cb, r);
	case K_PROUT:
		return iscsi_persistent_reserve_out_task(c, p->lun, r->sa, 0, r->type, &r->prout,
							 task_cb, r);
	}
	return NULL;
}

static void set_err(struct isc *p, const char *what)
{
	const char *e = p->ctx ? iscsi_get_error(p->ctx) : NULL;

	snprintf(p->lasterr, sizeof(p->lasterr), "%s%s%s", what, e && *e ? ": " : "", e ? e : "");
}

/* Tears the connection down; in-flight requests are repeated or failed. */
static void conn_fail(struct isc *p, const char *why)
{
	struct iscsi_context *c = p->ctx;
	bool auth = false;
	int err;

	set_err(p, why);
	if (getenv("BDEV_ISCSI_DEBUG"))
		fprintf(stderr, "iscsi %s: %s (attempt %u)\n", p->initiator, p->lasterr,
			p->attempts + 1);
	auth = strstr(p->lasterr, "uthenticat") || strstr(p->lasterr, "uthoriz");
	err = auth ? EACCES : strstr(p->lasterr, "refused") ? ECONNREFUSED : ETIMEDOUT;
	if (c) {
		iscsi_scsi_cancel_all_tasks(c); /* task_cb: repeat or fail each */
		p->ctx = NULL;
		iscsi_destroy_context(c);
	}
	p->ninflight = 0;
	p->broken = false;
	pthread_mutex_lock(&p->mu);
	p->last_errno = err;
	pthread_mutex_unlock(&p->mu);
	p->attempts++;
	if (auth || p->attempts > p->retries) {
		p->state = C_FAILED;
		pthread_mutex_lock(&p->mu);
		p->lost = true;
		pthread_mutex_unlock(&p->mu);
		return;
	}
	p->state = C_DOWN;
	p->next_try = now_ns() + (p->attempts >= 5 ? 2 * NS : (100000000ull << (p->attempts - 1)));
}

static void connect_cb(struct iscsi_context *ctx, int status, void *data, void *priv)
{
	struct isc *p = priv;

	(void)ctx;
	(void)data;
	p->connect_done = true;
	p->connect_status = status;
}

static void conn_start(struct isc *p)
{
	struct iscsi_context *c = iscsi_create_context(p->initiator);

	p->state = C_CONNECTING;
	p->connect_done = false;
	p->connect_deadline =
	    now_ns() +
	    (p->timeout_s * NS < ISC_CONNECT_MAX_NS ? p->timeout_s * NS : ISC_CONNECT_MAX_NS);
	p->ctx = c;
	if (!c) {
		conn_fail(p, "cannot create an iSCSI context");
		return;
	}
	iscsi_set_isid_random(c, p->isid, 0);
	iscsi_set_noautoreconnect(c, 1);
	iscsi_set_targetname(c, p->target);
	iscsi_set_session_type(c, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(c, ISCSI_HEADER_DIGEST_NONE);
	if (p->user[0])
		iscsi_set_initiator_username_pwd(c, p->user, p->pass);
	if (iscsi_full_connect_async(c, p->portal, p->lun, connect_cb, p) != 0)
		conn_fail(p, "connect");
}

static void conn_progress(struct isc *p)
{
	if (p->state != C_CONNECTING || !p->connect_done)
		return;
	if (p->connect_status != SCSI_STATUS_GOOD) {
		conn_fail(p, "login failed");
		return;
	}
	p->state = C_UP;
	p->attempts = 0;
	p->lasterr[0] = '\0';
	pthread_mutex_lock(&p->mu);
	p->ever_up = true;
	p->lost = false;
	pthread_mutex_unlock(&p->mu);
}

/* Moves submitted requests to the pending queue; a request arriving while
 * FAILED starts a new reconnection round. */
static bool take_submissions(struct isc *p)
{
	struct ireq *r;
	bool stop;
	uint64_t v;

	if (read(p->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return false; /* cannot happen with an eventfd; look again next turn */
	pthread_mutex_lock(&p->mu);
	r = p->subq;
	p->subq = p->subq_tail = NULL;
	stop = p->stop;
	pthread_mutex_unlock(&p->mu);
	if (r && p->state == C_FAILED) {
		p->state = C_DOWN;
		p->attempts = 0;
		p->next_try = 0;
	}
	while (r) {
		struct ireq *n = r->next;

		q_push(&p->pend, &p->pend_tail, r);
		r = n;
	}
	return stop;
}

/* Issues pending requests while UP and below the queue depth; fails those
 * past their deadline when the target is unreachable. */
static void run_pending(struct isc *p)
{
	struct ireq *r = p->pend, *keep = NULL, *keep_tail = NULL;
	uint64_t now = now_ns();

	p->pend = p->pend_tail = NULL;
	while (r) {
		struct ireq *n = r->next;

		if (now >= r->deadline || p->state == C_FAILED) {
			req_finish(p, r, -BDEV_E_TARGET_LOST);
		} else if (p->state != C_UP || p->broken || p->ninflight >= p->qd ||
			   now < r->not_before) {
			q_push(&keep, &keep_tail, r);
		} else {
			r->task = issue_task(p, r);
			if (!r->task) {
				p->broken = true;
				q_push(&keep, &keep_tail, r);
			} else if (!r->done && r->task) {
				p->inflight[p->ninflight++] = r;
			}
		}
		r = n;
	}
	/* keep the order: what was deferred goes before anything queued by
	 * callbacks meanwhile (there are none outside iscsi_service) */
	if (keep) {
		keep_tail->next = p->pend;
		if (!p->pend)
			p->pend_tail = keep_tail;
		p->pend = keep;
	}
}

static bool inflight_expired(struct isc *p, uint64_t now)
{
	for (unsigned i = 0; i < p->ninflight; i++)
		if (now >= p->inflight[i]->deadline)
			return true;
	return false;
}

static int poll_timeout_ms(struct isc *p, uint64_t now)
{
	uint64_t t = now + 100000000ull; /* wake at least every 100 ms */

	if (p->state == C_DOWN && p->next_try < t)
		t = p->next_try;
	if (p->state == C_CONNECTING && p->connect_deadline < t)
		t = p->connect_deadline;
	return t <= now ? 0 : (int)((t - now + 999999) / 1000000);
}

/* Sends what run_pending() queued without waiting for poll() first (one
 * system call less per command). */
static void flush_out(struct isc *p)
{
	if (p->state == C_UP && p->ctx && !p->broken && (iscsi_which_events(p->ctx) & POLLOUT) &&
	    iscsi_service(p->ctx, POLLOUT) < 0)
		p->broken = true;
}

/* One turn of the loop; returns true when the bdev is being closed. */
static bool loop_once(struct isc *p)
{
	struct pollfd pfd[2] = {{.fd = p->efd, .events = POLLIN}, {.fd = -1}};
	uint64_t now = now_ns();
	bool stop = false;
	int n;

	if (p->state == C_DOWN && now >= p->next_try)
		conn_start(p);
	if (p->state == C_CONNECTING && now >= p->connect_deadline)
		conn_fail(p, "connect timed out");
	if (p->state == C_UP && inflight_expired(p, now))
		conn_fail(p, "command timed out");
	run_pending(p);
	flush_out(p);
	if (p->ctx && !p->broken) {
		pfd[1].fd = iscsi_get_fd(p->ctx);
		pfd[1].events = (short)iscsi_which_events(p->ctx);
	}
	n = p->broken ? 0 : poll(pfd, 2, poll_timeout_ms(p, now));
	if (n > 0 && pfd[0].revents)
		stop = take_submissions(p);
	if (n > 0 && p->ctx && pfd[1].revents && iscsi_service(p->ctx, pfd[1].revents) < 0)
		p->broken = true;
	if (p->broken && p->ctx)
		conn_fail(p, p->state == C_CONNECTING ? "connect failed" : "connection lost");
	conn_progress(p);
	return stop;
}

static void *loop_main(void *arg)
{
	struct isc *p = arg;
	sigset_t set;

	/* A write to a socket the target closed must not kill the process. */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	while (!loop_once(p))
		;
	if (p->ctx) {
		iscsi_scsi_cancel_all_tasks(p->ctx);
		iscsi_destroy_context(p->ctx);
		p->ctx = NULL;
	}
	for (struct ireq *r = p->pend; r; r = r->next)
		req_finish(p, r, -ECANCELED);
	return NULL;
}

/* ---- callers' side -------------------------------------------------------- */

static void req_init(struct isc *p, struct ireq *r, enum ikind k)
{
	memset(r, 0, sizeof(*r));
	r->kind = k;
	r->owner = p;
	r->ua_left = ISC_UA_RETRIES;
}

/* Maps a finished request's SCSI status to 0 / negative code. */
static int req_result(const struct ireq *r)
{
	if (r->rc)
		return r->rc;
	switch (r->status) {
	case SCSI_STATUS_GOOD: return 0;
	case SCSI_STATUS_RESERVATION_CONFLICT: return -BDEV_E_RESV_CONFLICT;
	case SCSI_STATUS_CHECK_CONDITION: break;
	default: return -EIO;
	}
	switch (r->sense_key) {
	case SCSI_SENSE_MISCOMPARE:
		return r->kind == K_CAW && r->ascq == SCSI_SENSE_ASCQ_MISCOMPARE_DURING_VERIFY
			   ? -BDEV_E_MISCOMPARE
			   : -EIO;
	case SCSI_SENSE_ILLEGAL_REQUEST:
		return r->ascq == SCSI_SENSE_ASCQ_INVALID_OPERATION_CODE ||
			       r->ascq == 0x2400 /* INVALID FIELD IN CDB */
			   ? -EOPNOTSUPP
			   : -EINVAL;
	case SCSI_SENSE_DATA_PROTECTION: return -EROFS;
	default: return -EIO;
	}
}

/* Runs n requests concurrently and waits for all of them. */
static void exec_reqs(struct isc *p, struct ireq **rs, unsigned n)
{
	uint64_t deadline = now_ns() + p->timeout_s * NS;
	uint64_t one = 1;
	bool all;

	pthread_mutex_lock(&p->mu);
	for (unsigned i = 0; i < n; i++) {
		rs[i]->deadline = deadline;
		rs[i]->next = NULL;
		if (p->subq_tail)
			p->subq_tail->next = rs[i];
		else
			p->subq = rs[i];
		p->subq_tail = rs[i];
	}
	pthread_mutex_unlock(&p->mu);
	if (write(p->efd, &one, sizeof(one)) < 0)
		abort(); /* an eventfd write cannot fail short of a bug */
	pthread_mutex_lock(&p->mu);
	do {
		all = true;
		for (unsigned i = 0; i < n && all; i++)
			all = rs[i]->done;
		if (!all)
			pthread_cond_wait(&p->cv, &p->mu);
	} while (!all);
	pthread_mutex_unlock(&p->mu);
}

static int exec1(struct isc *p, struct ireq *r)
{
	exec_reqs(p, &r, 1);
	return req_result(r);
}

/* Splits [off, off+len) into READ/WRITE requests of at most max_xfer bytes
 * and runs them together; returns the first error. */
static int rw_range(struct isc *p, enum ikind k, unsigned char *buf, uint64_t off, size_t len,
		    int fua)
{
	unsigned n = (unsigned)((len + p->max_xfer - 1) / p->max_xfer);
	struct ireq *rs = calloc(n, sizeof(*rs));
	struct ireq **pp = calloc(n, sizeof(*pp));
	int rc = 0;

	if (!rs || !pp) {
		free(rs);
		free(pp);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		size_t o = (size_t)i * p->max_xfer,
		       l = len - o < p->max_xfer ? len - o : p->max_xfer;

		req_init(p, &rs[i], k);
		rs[i].lba = (off + o) / p->lbsize;
		rs[i].nblocks = (uint32_t)(l / p->lbsize);
		rs[i].fua = fua;
		if (k == K_READ) {
			rs[i].in = buf + o;
			rs[i].inlen = (uint32_t)l;
		} else {
			rs[i].out = buf + o;
			rs[i].outlen = (uint32_t)l;
		}
		pp[i] = &rs[i];
	}
	exec_reqs(p, pp, n);
	for (unsigned i = 0; i < n; i++) {
		int r = req_result(&rs[i]);

		if (!r && k == K_READ && rs[i].in_got != rs[i].inlen)
			r = -EIO; /* short data-in: never hand back stale bytes */
		if (r && !rc)
			rc = r;
	}
	free(rs);
	free(pp);
	return rc;
}

static int isc_read(struct bdev *bd, void *buf, uint64_t off, size_t len)
{
	return rw_range(bd->priv, K_READ, buf, off, len, 0);
}

static int isc_write(struct bdev *bd, const void *buf, uint64_t off, size_t len)
{
	return rw_range(bd->priv, K_WRITE, (unsigned char *)(uintptr_t)buf, off, len, 0);
}

/* A batch: each request becomes one or more commands, all in flight
 * together (up to qd), each bdev_io gets the first error of its commands. */
static int isc_submit(struct bdev *bd, struct bdev_io *ios, unsigned n)
{
	struct isc *p = bd->priv;
	unsigned total = 0, k = 0;
	struct ireq *rs, **pp;
	unsigned *owner;
	int first = 0;

	for (unsigned i = 0; i < n; i++)
		total += (unsigned)((ios[i].len + p->max_xfer - 1) / p->max_xfer);
	rs = calloc(total ? total : 1, sizeof(*rs));
	pp = calloc(total ? total : 1, sizeof(*pp));
	owner = calloc(total ? total : 1, sizeof(*owner));
	if (!rs || !pp || !owner) {
		free(rs);
		free(pp);
		free(owner);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		ios[i].result = 0;
		for (size_t o = 0; o < ios[i].len; o += p->max_xfer, k++) {
			size_t l = ios[i].len - o < p->max_xfer ? ios[i].len - o : p->max_xfer;
			struct ireq *r = &rs[k];

			req_init(p, r, ios[i].op == BDEV_OP_READ ? K_READ : K_WRITE);
			r->lba = (ios[i].off + o) / p->lbsize;
			r->nblocks = (uint32_t)(l / p->lbsize);
			if (r->kind == K_READ) {
				r->in = (unsigned char *)ios[i].buf + o;
				r->inlen = (uint32_t)l;
			} else {
				r->out = (unsigned char *)ios[i].buf + o;
				r->outlen = (uint32_t)l;
			}
			pp[k] = r;
			owner[k] = i;
		}
	}
	exec_reqs(p, pp, total);
	for (k = 0; k < total; k++) {
		int r = req_result(&rs[k]);

		if (!r && rs[k].kind == K_READ && rs[k].in_got != rs[k].inlen)
			r = -EIO;
		if (r && !ios[owner[k]].result)
			ios[owner[k]].result = r;
	}
	for (unsigned i = 0; i < n; i++)
		if (ios[i].result && !first)
			first = ios[i].result;
	free(rs);
	free(pp);
	free(owner);
	return first;
}

static int isc_flush(struct bdev *bd)
{
	struct isc *p = bd->priv;
	struct ireq r;

	req_init(p, &r, K_SYNC);
	return exec1(p, &r);
}

/* COMPARE AND WRITE of one sector: expect || newdata in one data-out. */
static int caw(struct isc *p, uint64_t off, const void *expect, const void *newdata)
{
	unsigned char *buf = malloc(2 * (size_t)p->lbsize);
	struct ireq r;
	int rc;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, expect, p->lbsize);
	memcpy(buf + p->lbsize, newdata, p->lbsize);
	req_init(p, &r, K_CAW);
	r.lba = off / p->lbsize;
	r.nblocks = 1;
	r.out = buf;
	r.outlen = 2 * p->lbsize;
	r.fua = 1;
	rc = exec1(p, &r);
	free(buf);
	return rc;
}

static int isc_ats_caw(struct bdev *bd, uint64_t off, const void *expect, const void *newdata,
		       void *actual)
{
	struct isc *p = bd->priv;
	int rc = caw(p, off, expect, newdata);

	if (rc == -BDEV_E_MISCOMPARE && actual) {
		int r = rw_range(p, K_READ, actual, off, p->lbsize, 0);

		if (r)
			return r;
	}
	return rc;
}

/* ---- persistent reservations ---------------------------------------------- */

static int prout(struct isc *p, int sa, int type, uint64_t key, uint64_t sa_key)
{
	struct ireq r;

	req_init(p, &r, K_PROUT);
	r.sa = sa;
	r.type = type;
	r.prout.reservation_key = key;
	r.prout.service_action_reservation_key = sa_key;
	return exec1(p, &r);
}

static int prin(struct isc *p, int sa, unsigned char *buf, uint32_t len, uint32_t *got)
{
	struct ireq r;
	int rc;

	req_init(p, &r, K_PRIN);
	r.sa = sa;
	r.in = buf;
	r.inlen = len;
	rc = exec1(p, &r);
	*got = r.in_got;
	return rc;
}

/* READ KEYS: PRgeneration(4) ADDITIONAL LENGTH(4) then 8-byte keys. */
static int pr_read_keys(struct isc *p, struct bdev_pr_cmd *c)
{
	unsigned char *buf = calloc(1, ISC_PR_KEYS_XFER);
	uint32_t got = 0, addl, avail;
	int rc;

	if (!buf)
		return -ENOMEM;
	rc = prin(p, SCSI_PERSISTENT_RESERVE_READ_KEYS, buf, ISC_PR_KEYS_XFER, &got);
	if (rc == 0 && got < 8)
		rc = -EPROTO; /* no header */
	if (rc == 0) {
		addl = be32(buf + 4);
		if (addl % 8)
			rc = -EPROTO;
		c->generation = be32(buf);
		c->nkeys = addl / 8;
		avail = (got < ISC_PR_KEYS_XFER ? got : ISC_PR_KEYS_XFER) - 8;
		avail = (addl < avail ? addl : avail) / 8;
		for (unsigned i = 0; rc == 0 && i < avail && i < c->max_keys && c->keys; i++)
			c->keys[i] = be64(buf + 8 + 8 * i);
	}
	free(buf);
	return rc;
}

/* READ RESERVATION: header, then (if ADDITIONAL LENGTH is 16) the key,
 * obsolete(4), reserved(1), scope/type(1), obsolete(2). */
static int pr_read_resv(struct isc *p, struct bdev_pr_cmd *c)
{
	unsigned char buf[64] = {0};
	uint32_t got = 0, addl;
	int rc = prin(p, SCSI_PERSISTENT_RESERVE_READ_RESERVATION, buf, sizeof(buf), &got);

	if (rc)
		return rc;
	if (got < 8)
		return -EPROTO;
	c->generation = be32(buf);
	addl = be32(buf + 4);
	c->held = 0;
	c->resv_key = 0;
	c->resv_type = 0;
	if (addl == 0)
		return 0;
	if (addl != 16 || got < 24)
		return -EPROTO;
	c->held = 1;
	c->resv_key = be64(buf + 8);
	c->resv_type = (enum bdev_pr_type)(buf[21] & 0x0f);
	return 0;
}

/* This session's key becomes `key` (0 unregisters), by REGISTER from the
 * key we know we hold; if the target says we hold none (we were preempted),
 * REGISTER from 0. (REGISTER AND IGNORE EXISTING KEY is not used: istgt
 * files such a registration under the wrong key.) */
static int pr_register(struct isc *p, uint64_t key)
{
	int rc = prout(p, SCSI_PERSISTENT_RESERVE_REGISTER, 0, p->key, key);

	if (rc == -BDEV_E_RESV_CONFLICT && p->key)
		rc = prout(p, SCSI_PERSISTENT_RESERVE_REGISTER, 0, 0, key);
	if (rc == 0) {
		p->key = key;
		p->auto_key = false;
	}
	return rc;
}

static bool valid_type(int t)
{
	return t == 1 || t == 3 || (t >= 5 && t <= 8);
}

static int isc_pr(struct bdev *bd, struct bdev_pr_cmd *c)
{
	struct isc *p = bd->priv;
	int rc;

	if (!(bd->caps & BDEV_CAP_PR))
		return -EOPNOTSUPP;
	if ((c->action == BDEV_PR_RESERVE || c->action == BDEV_PR_RELEASE ||
	     c->action == BDEV_PR_PREEMPT) &&
	    !valid_type((int)c->type))
		return -EINVAL;
	pthread_mutex_lock(&p->ats_mu);
	switch (c->action) {
	case BDEV_PR_REGISTER: rc = pr_register(p, c->sa_key); break;
	case BDEV_PR_RESERVE:
		/* With BDEV_ATS_PR the reservation is the ATS mutex: a caller
		 * that keeps it blocks every other host's ats() until it is
		 * preempted as stale (the tests use this to simulate a holder
		 * that died). */
		rc = prout(p, SCSI_PERSISTENT_RESERVE_RESERVE, (int)c->type, c->key, 0);
		break;
	case BDEV_PR_RELEASE:
		rc = prout(p, SCSI_PERSISTENT_RESERVE_RELEASE, (int)c->type, c->key, 0);
		break;
	case BDEV_PR_PREEMPT:
		rc = prout(p, SCSI_PERSISTENT_RESERVE_PREEMPT, (int)c->type, c->key, c->sa_key);
		/* In PR mode the preempt may have handed us the ATS mutex. */
		if (rc == 0 && bd->ats_method == BDEV_ATS_PR)
			(void)prout(p, SCSI_PERSISTENT_RESERVE_RELEASE, BDEV_PR_WE_REGISTRANTS_ONLY,
				    c->key, 0);
		break;
	case BDEV_PR_CLEAR: rc = prout(p, SCSI_PERSISTENT_RESERVE_CLEAR, 0, c->key, 0); break;
	case BDEV_PR_READ_KEYS: rc = pr_read_keys(p, c); break;
	case BDEV_PR_READ_RESV: rc = pr_read_resv(p, c); break;
	default: rc = -EINVAL;
	}
	pthread_mutex_unlock(&p->ats_mu);
	return rc;
}

/* ---- ATS through a reservation (targets without COMPARE AND WRITE) -------- */

static bool key_registered(struct isc *p, uint64_t key, int *err)
{
	uint64_t keys[64];
	struct bdev_pr_cmd c = {.keys = keys, .max_keys = 64};

	*err = pr_read_keys(p, &c);
	if (*err)
		return false;
	for (unsigned i = 0; i < c.nkeys && i < 64; i++)
		if (keys[i] == key)
			return true;
	return c.nkeys > 64; /* cannot tell: assume still registered */
}

static void backoff(unsigned tries)
{
	unsigned cap_us = tries < 4 ? 8000u : 50000u;
	struct timespec ts = {0, (long)(1000u + (unsigned)(rand64() % cap_us)) * 1000L};

	nanosleep(&ts, NULL);
}

/* Takes the ATS mutex: RESERVE until it is ours, our key is gone (fenced),
 * the deadline passes, or a holder that stayed for stale_s is preempted. */
static int pr_lock(struct isc *p)
{
	uint64_t start = now_ns(), deadline = start + p->timeout_s * NS, seen_since = 0;
	uint64_t holder = 0;
	unsigned tries = 0;
	int rc, err;

	for (;;) {
		rc = prout(p, SCSI_PERSISTENT_RESERVE_RESERVE, BDEV_PR_WE_REGISTRANTS_ONLY, p->key,
			   0);
		if (rc != -BDEV_E_RESV_CONFLICT)
			return rc;
		if ((tries & (tries - 1)) == 0 || tries % 16 == 0) {
			struct bdev_pr_cmd c = {0};

			if (!key_registered(p, p->key, &err))
				return err ? err : -BDEV_E_RESV_CONFLICT;
			if ((err = pr_read_resv(p, &c)) != 0)
				return err;
			if (!c.held || c.resv_key != holder) {
				holder = c.held ? c.resv_key : 0;
				seen_since = now_ns();
			} else if (now_ns() - seen_since >= p->stale_s * NS) {
				rc = prout(p, SCSI_PERSISTENT_RESERVE_PREEMPT,
					   BDEV_PR_WE_REGISTRANTS_ONLY, p->key, holder);
				if (rc == 0)
					return 0;
			}
		}
		if (now_ns() >= deadline)
			return -ETIMEDOUT;
		backoff(tries++);
	}
}

static int isc_ats_pr(struct bdev *bd, uint64_t off, const void *expect, const void *newdata,
		      void *actual)
{
	struct isc *p = bd->priv;
	unsigned char *cur = malloc(p->lbsize);
	uint64_t t0;
	bool locked;
	int rc, r;

	if (!cur)
		return -ENOMEM;
	pthread_mutex_lock(&p->ats_mu);
	rc = pr_lock(p);
	locked = rc == 0;
	t0 = now_ns();
	if (rc == 0)
		rc = rw_range(p, K_READ, cur, off, p->lbsize, 0);
	if (rc == 0 && memcmp(cur, expect, p->lbsize) != 0) {
		if (actual)
			memcpy(actual, cur, p->lbsize);
		rc = -BDEV_E_MISCOMPARE;
	} else if (rc == 0 && now_ns() - t0 > p->stale_s * NS / 2) {
		rc = -ETIMEDOUT; /* we may have been preempted as stale: do not write */
	} else if (rc == 0) {
		rc = rw_range(p, K_WRITE, (unsigned char *)(uintptr_t)newdata, off, p->lbsize, 1);
	}
	if (locked) {
		r = prout(p, SCSI_PERSISTENT_RESERVE_RELEASE, BDEV_PR_WE_REGISTRANTS_ONLY, p->key,
			  0);
		if (r && rc == -BDEV_E_MISCOMPARE)
			rc = r;
	}
	pthread_mutex_unlock(&p->ats_mu);
	free(cur);
	return rc;
}

static int isc_ats(struct bdev *bd, uint64_t off, const void *expect, const void *newdata,
		   void *actual)
{
	if (bd->ats_method == BDEV_ATS_CAW)
		return isc_ats_caw(bd, off, expect, newdata, actual);
	if (bd->ats_method == BDEV_ATS_PR)
		return isc_ats_pr(bd, off, expect, newdata, actual);
	return -EOPNOTSUPP;
}

/* ---- discard and write-zeroes --------------------------------------------- */

/* UNMAP frees blocks; used only when unmapped blocks read back as zeroes
 * (LBPRZ), else bdev_discard() falls back to write_zeroes. */
static int isc_discard(struct bdev *bd, uint64_t off, uint64_t len)
{
	struct isc *p = bd->priv;
	uint64_t lba = off / p->lbsize, n = len / p->lbsize;
	int rc = 0;

	if (!p->can_unmap || !p->lbprz)
		return -EOPNOTSUPP;
	while (n && rc == 0) {
		struct ireq r;
		uint32_t k = n < p->max_unmap ? (uint32_t)n : p->max_unmap;

		req_init(p, &r, K_UNMAP);
		r.lba = lba;
		r.nblocks = k;
		rc = exec1(p, &r);
		lba += k;
		n -= k;
	}
	return rc;
}

/* WRITE SAME(16) of a zero block (with UNMAP where the target allows it). */
static int isc_write_zeroes(struct bdev *bd, uint64_t off, uint64_t len)
{
	struct isc *p = bd->priv;
	uint64_t lba = off / p->lbsize, n = len / p->lbsize;
	unsigned char *zero;
	int rc = 0;

	if (!p->can_ws)
		return -EOPNOTSUPP;
	zero = calloc(1, p->lbsize);
	if (!zero)
		return -ENOMEM;
	while (n && rc == 0) {
		struct ireq r;
		uint32_t k = n < p->max_ws ? (uint32_t)n : p->max_ws;

		req_init(p, &r, K_WSAME);
		r.lba = lba;
		r.nblocks = k;
		r.out = zero;
		r.outlen = p->lbsize;
		r.unmap = p->ws_unmap && p->lbprz;
		rc = exec1(p, &r);
		lba += k;
		n -= k;
	}
	free(zero);
	if (rc == -EOPNOTSUPP || rc == -EINVAL) {
		p->can_ws = false; /* the target refused: write zeroes from now on */
		bd->caps &= ~(uint32_t)BDEV_CAP_ZEROES;
		rc = -EOPNOTSUPP;
	}
	return rc;
}

/* ---- open and close --------------------------------------------------------- */

static void isc_stop(struct isc *p)
{
	uint64_t one = 1;

	if (p->thr_started) {
		pthread_mutex_lock(&p->mu);
		p->stop = true;
		pthread_mutex_unlock(&p->mu);
		if (write(p->efd, &one, sizeof(one)) < 0)
			abort();
		pthread_join(p->thr, NULL);
	}
	if (p->efd >= 0)
		close(p->efd);
	free(p->inflight);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->ats_mu);
	free(p);
}

/* True while the loop has given up on the target (state FAILED). */
static bool isc_lost(struct isc *p)
{
	bool lost;

	pthread_mutex_lock(&p->mu);
	lost = p->lost;
	pthread_mutex_unlock(&p->mu);
	return lost;
}

static void isc_close(struct bdev *bd)
{
	struct isc *p = bd->priv;

	if (!p)
		return;
	/* The key registered for the PR-mode mutex is ours to remove; a key
	 * set by bdev_pr_register() belongs to the caller (fencing). It is
	 * removed by REGISTER to key 0 (tgt refuses a PREEMPT of one's own key
	 * and kept every closed session's registration), else by preempting
	 * our own (random, unique) key. */
	if (p->auto_key && p->key && !isc_lost(p) &&
	    prout(p, SCSI_PERSISTENT_RESERVE_REGISTER, 0, p->key, 0) != 0)
		(void)prout(p, SCSI_PERSISTENT_RESERVE_PREEMPT, BDEV_PR_WE_REGISTRANTS_ONLY, p->key,
			    p->key);
	isc_stop(p);
	bd->priv = NULL;
}

static int isc_refresh_size(struct bdev *bd, uint64_t *size);

static const struct bdev_ops iscsi_ops = {
    .version = BDEV_OPS_VERSION,
    .name = "iscsi",
    .read = isc_read,
    .write = isc_write,
    .submit = isc_submit,
    .flush = isc_flush,
    .ats = isc_ats,
    .discard = isc_discard,
    .write_zeroes = isc_write_zeroes,
    .close = isc_close,
    .pr = isc_pr,
    .refresh_size = isc_refresh_size,
};

static int copy_str(char *dst, size_t cap, const char *s, size_t n)
{
	if (n == 0 || n >= cap)
		return -BDEV_E_URI;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!*s || *s < '0' || *s > '9')
		return -BDEV_E_URI;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -BDEV_E_URI;
	*out = (unsigned)v;
	return 0;
}

/* user%password@ host[:port] / target / lun */
static int parse_location(struct isc *p, const char *s)
{
	const char *at, *slash = strchr(s, '/'), *hostend, *last;
	unsigned port = 3260, lun;
	int rc;

	if (!slash)
		return -BDEV_E_URI;
	at = memchr(s, '@', (size_t)(slash - s));
	if (at) {
		const char *pct = memchr(s, '%', (size_t)(at - s));

		if (!pct || copy_str(p->user, sizeof(p->user), s, (size_t)(pct - s)) ||
		    copy_str(p->pass, sizeof(p->pass), pct + 1, (size_t)(at - pct - 1)))
			return -BDEV_E_URI;
		s = at + 1;
	}
	hostend = s[0] == '[' ? memchr(s, ']', (size_t)(slash - s)) : NULL;
	hostend = hostend ? hostend + 1 : s;
	{
		const char *colon = memchr(hostend, ':', (size_t)(slash - hostend));
		char portbuf[8];

		if (colon) {
			if (copy_str(portbuf, sizeof(portbuf), colon + 1,
				     (size_t)(slash - colon - 1)) ||
			    parse_uint(portbuf, 1, 65535, &port))
				return -BDEV_E_URI;
			hostend = colon;
		} else {
			hostend = slash;
		}
	}
	if (hostend == s)
		return -BDEV_E_URI;
	snprintf(p->portal, sizeof(p->portal), "%.*s:%u", (int)(hostend - s), s, port);
	last = strrchr(slash + 1, '/');
	if (!last || (rc = copy_str(p->target, sizeof(p->target), slash + 1,
				    (size_t)(last - slash - 1))) != 0)
		return -BDEV_E_URI;
	if (parse_uint(last + 1, 0, 16383, &lun))
		return -BDEV_E_URI;
	p->lun = (int)lun;
	return 0;
}

static int parse_opts(struct isc *p, const char *opts, unsigned *flags, int *want_ats)
{
	static const char *const known[] = {"timeout", "retries", "qd",	  "initiator",
					    "ats",     "ro",	  "stale"};
	char val[256];
	unsigned v;

	for (const char *o = opts; o && *o;) {
		const char *end = strchr(o, '&'), *eq = strchr(o, '=');
		size_t klen = eq ? (size_t)(eq - o) : 0;
		bool ok = false;

		for (size_t i = 0; eq && (!end || eq < end) && i < sizeof(known) / sizeof(*known);
		     i++)
			ok = ok || (strlen(known[i]) == klen && !strncmp(o, known[i], klen));
		if (!ok)
			return -BDEV_E_URI;
		o = end ? end + 1 : NULL;
	}
	if (bdev_opt(opts, "timeout", val, sizeof(val)) == 0 &&
	    parse_uint(val, 1, 3600, &p->timeout_s))
		return -BDEV_E_URI;
	if (bdev_opt(opts, "retries", val, sizeof(val)) == 0 &&
	    parse_uint(val, 0, 100, &p->retries))
		return -BDEV_E_URI;
	if (bdev_opt(opts, "qd", val, sizeof(val)) == 0 && parse_uint(val, 1, 256, &p->qd))
		return -BDEV_E_URI;
	if (bdev_opt(opts, "stale", val, sizeof(val)) == 0 && parse_uint(val, 1, 3600, &p->stale_s))
		return -BDEV_E_URI;
	if (bdev_opt(opts, "initiator", val, sizeof(val)) == 0 &&
	    copy_str(p->initiator, sizeof(p->initiator), val, strlen(val)))
		return -BDEV_E_URI;
	if (bdev_opt(opts, "ro", val, sizeof(val)) == 0) {
		if (parse_uint(val, 0, 1, &v))
			return -BDEV_E_URI;
		if (v)
			*flags |= BDEV_O_RDONLY;
	}
	if (bdev_opt(opts, "ats", val, sizeof(val)) == 0) {
		if (!strcmp(val, "auto"))
			*want_ats = -1;
		else if (!strcmp(val, "caw"))
			*want_ats = BDEV_ATS_CAW;
		else if (!strcmp(val, "pr"))
			*want_ats = BDEV_ATS_PR;
		else
			return -BDEV_E_URI;
	}
	return 0;
}

static int parse_uri(struct isc *p, const char *uri, unsigned *flags, int *want_ats)
{
	char *copy = strdup(uri + strlen("iscsi://"));
	char *q;
	int rc;

	if (!copy)
		return -ENOMEM;
	q = strchr(copy, '?');
	if (q)
		*q++ = '\0';
	rc = parse_location(p, copy);
	if (rc == 0)
		rc = parse_opts(p, q, flags, want_ats);
	free(copy);
	return rc;
}

static int inquiry(struct isc *p, int evpd, int page, unsigned char *buf, uint32_t len,
		   uint32_t *got)
{
	struct ireq r;
	int rc;

	req_init(p, &r, K_INQ);
	r.evpd = evpd;
	r.page = page;
	r.in = buf;
	r.inlen = len;
	rc = exec1(p, &r);
	*got = r.in_got < len ? r.in_got : len;
	return rc;
}

/* Standard INQUIRY: a direct-access block device, connected (qualifier 0). */
static int check_inquiry(struct isc *p)
{
	unsigned char b[96] = {0};
	uint32_t got;
	int rc = inquiry(p, 0, 0, b, sizeof(b), &got);

	if (rc)
		return rc;
	if (got < 5 || (b[0] >> 5) != 0 || (b[0] & 0x1f) != 0)
		return -ENODEV;
	return 0;
}

/* READ CAPACITY(16) into b[32]: last LBA(8) block length(4)
 * p_type/prot(1) LBPPBE(low nibble)(1) LBPME|LBPRZ|lowest aligned LBA(2).
 * -EPROTO when the reply is shorter than the first 16 bytes. */
static int rc16(struct isc *p, unsigned char b[32])
{
	struct ireq r;
	int rc;

	memset(b, 0, 32);
	req_init(p, &r, K_RC16);
	r.in = b;
	r.inlen = 32;
	rc = exec1(p, &r);
	return rc ? rc : r.in_got < 16 ? -EPROTO : 0;
}

static int read_capacity(struct isc *p, struct bdev *bd)
{
	unsigned char b[32];
	uint64_t last;
	uint32_t bs, exp;
	int rc = rc16(p, b);

	if (rc)
		return rc;
	last = be64(b);
	bs = be32(b + 8);
	exp = b[13] & 0x0f;
	if (bs != 512 && bs != 4096)
		return -EOPNOTSUPP; /* only 512 and 4096-byte logical blocks */
	if (last == UINT64_MAX || last + 1 > UINT64_MAX / bs || exp > 6)
		return -EPROTO;
	p->lbsize = bs;
	p->nlba = last + 1;
	p->lbprz = (b[14] & 0x40) != 0;
	bd->lsec = bs;
	bd->psec = bs << exp;
	bd->size = p->nlba * bs;
	return 0;
}

/* A LUN that grew: READ CAPACITY(16) again (the block size must not
 * change under an open device). */
static int isc_refresh_size(struct bdev *bd, uint64_t *size)
{
	struct isc *p = bd->priv;
	unsigned char b[32];
	uint64_t last;
	int rc = rc16(p, b);

	if (rc)
		return rc;
	last = be64(b);
	if (be32(b + 8) != p->lbsize || last == UINT64_MAX || last + 1 > UINT64_MAX / p->lbsize)
		return -EPROTO;
	*size = (last + 1) * p->lbsize;
	return 0;
}

/* VPD pages: 0x00 (which pages exist), 0xB0 Block Limits, 0xB2 Logical
 * Block Provisioning. Absent pages leave conservative defaults. */
static int read_vpd(struct isc *p, uint8_t *max_cmp)
{
	unsigned char b[256] = {0};
	bool has_b0 = false, has_b2 = false;
	uint32_t got, n, v;
	int rc = inquiry(p, 1, 0x00, b, sizeof(b), &got);

	*max_cmp = 0;
	p->max_xfer = ISC_MAX_CHUNK;
	p->max_ws = (uint32_t)(8u * 1024 * 1024 / p->lbsize);
	p->max_unmap = (uint32_t)(8u * 1024 * 1024 / p->lbsize);
	if (rc == -EOPNOTSUPP || rc == -EINVAL)
		return 0; /* no VPD at all */
	if (rc)
		return rc;
	if (got < 4 || b[1] != 0x00)
		return -EPROTO;
	n = (uint32_t)b[2] << 8 | b[3];
	for (uint32_t i = 0; i < n && 4 + i < got; i++) {
		has_b0 |= b[4 + i] == 0xb0;
		has_b2 |= b[4 + i] == 0xb2;
	}
	p->has_b0 = has_b0;
	if (has_b0) {
		memset(b, 0, sizeof(b));
		rc = inquiry(p, 1, 0xb0, b, sizeof(b), &got);
		if (rc)
			return rc;
		if (got < 16 || b[1] != 0xb0)
			return -EPROTO;
		n = (uint32_t)b[2] << 8 | b[3];
		*max_cmp = b[5];
		v = be32(b + 8); /* maximum transfer length, blocks */
		if (v && (uint64_t)v * p->lbsize < p->max_xfer)
			p->max_xfer = v * p->lbsize;
		if (n >= 0x3c && got >= 44) {
			v = be32(b + 20); /* maximum unmap LBA count */
			p->can_unmap = v != 0 && be32(b + 24) != 0;
			if (v && v != 0xffffffffu && v < p->max_unmap)
				p->max_unmap = v;
			if (be64(b + 36) && be64(b + 36) < p->max_ws)
				p->max_ws = (uint32_t)be64(b + 36);
		}
	}
	if (has_b2) {
		memset(b, 0, sizeof(b));
		rc = inquiry(p, 1, 0xb2, b, sizeof(b), &got);
		if (rc)
			return rc;
		if (got < 8 || b[1] != 0xb2)
			return -EPROTO;
		p->can_unmap = p->can_unmap && (b[5] & 0x80);
		p->ws_unmap = (b[5] & 0x40) != 0;
		p->lbprz = p->lbprz || (b[5] & 0x04);
	}
	if (p->max_xfer < p->lbsize)
		p->max_xfer = p->lbsize;
	return 0;
}

/* COMPARE AND WRITE probe: expect = newdata = ~(LBA 0). MISCOMPARE or GOOD
 * (which rewrote the same bytes) mean the command works. */
static int probe_caw(struct isc *p)
{
	unsigned char *cur = malloc(p->lbsize);
	int rc;

	if (!cur)
		return -ENOMEM;
	rc = rw_range(p, K_READ, cur, 0, p->lbsize, 0);
	if (rc == 0) {
		for (uint32_t i = 0; i < p->lbsize; i++)
			cur[i] = (unsigned char)~cur[i];
		rc = caw(p, 0, cur, cur);
		/* A reservation that excludes this (not yet registered)
		 * session hides the answer; targets check reservations after
		 * the opcode is known, so take it as supported. */
		if (rc == -BDEV_E_MISCOMPARE || rc == -BDEV_E_RESV_CONFLICT)
			rc = 0;
	}
	free(cur);
	return rc;
}

/* Chooses the ATS method; registers the PR-mode key. */
static int choose_ats(struct isc *p, struct bdev *bd, int want, uint8_t max_cmp, bool pr_ok)
{
	int rc = -EOPNOTSUPP;

	/* The Block Limits MAXIMUM COMPARE AND WRITE LENGTH is not trusted:
	 * tgt advertises one and answers INVALID OPERATION CODE. The probe
	 * decides; max_cmp only has to allow one block if it is given. */
	if (want != BDEV_ATS_PR)
		rc = probe_caw(p);
	if (rc == 0 && p->has_b0 && max_cmp == 0 && getenv("BDEV_ISCSI_DEBUG"))
		fprintf(stderr,
			"iscsi: Block Limits says no COMPARE AND WRITE, the probe says yes\n");
	if (rc == 0) {
		bd->ats_method = BDEV_ATS_CAW;
		bd->caps |= BDEV_CAP_ATS_NATIVE;
		return 0;
	}
	if (want == BDEV_ATS_CAW || (rc != -EOPNOTSUPP && rc != -EINVAL))
		return rc;
	if (!pr_ok)
		return (bd->caps & BDEV_CAP_READONLY) ? 0 : -EOPNOTSUPP;
	bd->ats_method = BDEV_ATS_PR;
	if (bd->caps & BDEV_CAP_READONLY)
		return 0;
	do
		p->key = rand64();
	while (!p->key);
	rc = prout(p, SCSI_PERSISTENT_RESERVE_REGISTER, 0, 0, p->key);
	p->auto_key = rc == 0;
	return rc;
}

static int isc_probe(struct isc *p, struct bdev *bd, int want_ats)
{
	struct bdev_pr_cmd c = {0};
	uint8_t max_cmp;
	bool pr_ok;
	int rc = check_inquiry(p);

	if (rc == 0)
		rc = read_capacity(p, bd);
	if (rc == 0)
		rc = read_vpd(p, &max_cmp);
	if (rc)
		return rc;
	p->can_ws = true; /* until the target says otherwise */
	rc = pr_read_keys(p, &c);
	pr_ok = rc == 0;
	if (rc && rc != -EOPNOTSUPP && rc != -EINVAL)
		return rc;
	if (pr_ok)
		bd->caps |= BDEV_CAP_PR;
	if (p->can_unmap && p->lbprz)
		bd->caps |= BDEV_CAP_DISCARD;
	bd->caps |= BDEV_CAP_ZEROES | BDEV_CAP_DIRECT;
	return choose_ats(p, bd, want_ats, max_cmp, pr_ok);
}

static struct isc *isc_new(void)
{
	static unsigned seq;
	struct isc *p = calloc(1, sizeof(*p));
	char host[64] = "host";

	if (!p)
		return NULL;
	p->efd = -1;
	p->timeout_s = 30;
	p->retries = 5;
	p->qd = 32;
	p->stale_s = 8;
	p->isid = (uint32_t)rand64() & 0x3fffff;
	gethostname(host, sizeof(host) - 1);
	for (char *c = host; *c; c++) /* IQN characters: a-z 0-9 . - */
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
		else if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '.'))
			*c = '-';
	snprintf(p->initiator, sizeof(p->initiator), "iqn.2026-12.org.libvmfs:%s.%ld.%u", host,
		 (long)getpid(), __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_mutex_init(&p->ats_mu, NULL);
	return p;
}

static int isc_start(struct isc *p)
{
	p->inflight = calloc(p->qd, sizeof(*p->inflight));
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!p->inflight || p->efd < 0)
		return -ENOMEM;
	if (bdev_thread_create(&p->thr, loop_main, p) != 0)
		return -EAGAIN;
	p->thr_started = true;
	return 0;
}

/* A first request that never reached a target reports why (refused,
 * CHAP, unreachable) rather than the generic -BDEV_E_TARGET_LOST. */
static int open_error(struct isc *p, int rc)
{
	int e;

	if (rc != -BDEV_E_TARGET_LOST)
		return rc;
	pthread_mutex_lock(&p->mu);
	e = p->ever_up ? 0 : p->last_errno;
	pthread_mutex_unlock(&p->mu);
	return e ? -e : rc;
}

int bdev_iscsi_open(const char *uri, unsigned flags, struct bdev **out)
{
	struct isc *p = isc_new();
	struct bdev *bd = NULL;
	int want_ats = -1, rc;

	*out = NULL;
	if (!p)
		return -ENOMEM;
	rc = parse_uri(p, uri, &flags, &want_ats);
	if (rc == 0)
		rc = isc_start(p);
	if (rc == 0 && !(bd = bdev_new(&iscsi_ops, uri)))
		rc = -ENOMEM;
	if (rc) {
		isc_stop(p);
		return rc;
	}
	bd->priv = p;
	strcpy(bd->engine, "iscsi");
	if (flags & BDEV_O_RDONLY)
		bd->caps |= BDEV_CAP_READONLY;
	rc = open_error(p, isc_probe(p, bd, want_ats));
	if (rc) {
		bdev_close(bd);
		return rc;
	}
	*out = bd;
	return 0;
}

#endif /* HAVE_LIBISCSI */
