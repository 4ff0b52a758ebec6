/*
 * bdev_file_engine.c - I/O engines of the file backend for bdev_submit()
 * batches: "uring" (io_uring), "aio" (Linux native AIO, libaio) and "sync"
 * (a loop over pread/pwrite). Single bdev_read()/bdev_write() calls always
 * use pread/pwrite (bdev_file.c); only batches come here.
 *
 * Design note
 *  - Choice (file_engine_init(), at open time): engine=auto tries uring,
 *    then aio, then sync; the first whose setup succeeds at run time wins
 *    (io_uring_queue_init() fails under seccomp or with
 *    kernel.io_uring_disabled, io_setup() when aio-max-nr is exhausted).
 *    engine=uring|aio|sync forces one and fails with -EOPNOTSUPP when the
 *    build or the kernel lacks it.
 *  - One ring / AIO context per bdev, created by the opening process (do not
 *    use a bdev across fork()). A mutex (eng->mu) serialises whole batches,
 *    so threads may share one bdev; the sync engine needs no lock.
 *  - A batch runs with at most ENGINE_DEPTH requests in flight. Per request:
 *        queued --prep--> in flight --completion--> done (result set)
 *                  ^                      |
 *                  +---- short (res < remaining), -EINTR, -EAGAIN
 *    A short completion resubmits the remainder (offset + done). A read that
 *    returns 0 bytes (device shrank) ends with -EIO. Each request's error is
 *    stored in its bdev_io.result; the batch returns the first error in
 *    array order, or 0.
 *  - Requests larger than p->maxio (URI option maxio=, default unlimited)
 *    are issued in pieces of maxio bytes through the same remainder path.
 *  - O_DIRECT: a request whose buffer is not 4096-aligned goes through an
 *    aligned bounce buffer (copied in before a write, out after a read).
 *    Offsets and lengths are multiples of the logical sector size already.
 *  - Invariant: when file_engine_submit() returns, no request of the batch
 *    is in flight (the caller may free its buffers).
 */
#include "bdev.h"
#include "bdev_file.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>

#ifdef HAVE_LIBURING
#include <liburing.h>
#endif
#ifdef HAVE_LIBAIO
#include <libaio.h>
#endif

#define ENGINE_DEPTH 64u

struct engine {
	pthread_mutex_t mu; /* one batch at a time per ring / context */
	int kind;	    /* FILE_ENGINE_URING or FILE_ENGINE_AIO */
#ifdef HAVE_LIBURING
	struct io_uring ring;
#endif
#ifdef HAVE_LIBAIO
	io_context_t ctx;
	struct iocb cbs[ENGINE_DEPTH];
	struct io_event evs[ENGINE_DEPTH];
#endif
};

/* Per-request progress of one batch. */
struct req {
	void *buf;   /* what the kernel reads/writes: the caller's or a bounce */
	size_t done; /* bytes completed */
	int slot;    /* AIO iocb slot while in flight, else -1 */
};

/* One batch being run. */
struct batch {
	struct file_priv *p;
	struct engine *e;
	struct bdev_io *ios;
	struct req *reqs;
	unsigned *queue; /* circular FIFO of request indices waiting to be issued */
	unsigned n, qhead, qlen, inflight, remaining;
	int fatal; /* the engine itself failed: finish the rest synchronously */
};

/* ---- engine setup ---- */

#ifdef HAVE_LIBURING
static int uring_init(struct engine *e)
{
	int rc = io_uring_queue_init(ENGINE_DEPTH, &e->ring, 0);

	return rc < 0 ? rc : 0;
}
#endif

#ifdef HAVE_LIBAIO
static int aio_init(struct engine *e)
{
	e->ctx = 0;
	return io_setup(ENGINE_DEPTH, &e->ctx);
}
#endif

static int try_engine(struct file_priv *p, int kind)
{
	struct engine *e = calloc(1, sizeof(*e));
	int rc = -EOPNOTSUPP;

	if (!e)
		return -ENOMEM;
	e->kind = kind;
#ifdef HAVE_LIBURING
	if (kind == FILE_ENGINE_URING)
		rc = uring_init(e);
#endif
#ifdef HAVE_LIBAIO
	if (kind == FILE_ENGINE_AIO)
		rc = aio_init(e);
#endif
	if (rc < 0) {
		free(e);
		return -EOPNOTSUPP;
	}
	pthread_mutex_init(&e->mu, NULL);
	p->engine = e;
	p->engine_kind = kind;
	return 0;
}

int file_engine_init(struct file_priv *p, const char *want, char *name, size_t namelen)
{
	static const char *const names[] = {"sync", "aio", "uring"};
	int rc = 0;

	p->engine = NULL;
	p->engine_kind = FILE_ENGINE_SYNC;
	if (strcmp(want, "auto") == 0) {
		if (try_engine(p, FILE_ENGINE_URING) < 0)
			(void)try_engine(p, FILE_ENGINE_AIO);
	} else if (strcmp(want, "uring") == 0) {
		rc = try_engine(p, FILE_ENGINE_URING);
	} else if (strcmp(want, "aio") == 0) {
		rc = try_engine(p, FILE_ENGINE_AIO);
	} else if (strcmp(want, "sync") != 0) {
		rc = -BDEV_E_URI;
	}
	if (rc < 0)
		return rc;
	snprintf(name, namelen, "%s", names[p->engine_kind]);
	return 0;
}

void file_engine_fini(struct file_priv *p)
{
	struct engine *e = p->engine;

	if (!e)
		return;
#ifdef HAVE_LIBURING
	if (e->kind == FILE_ENGINE_URING)
		io_uring_queue_exit(&e->ring);
#endif
#ifdef HAVE_LIBAIO
	if (e->kind == FILE_ENGINE_AIO)
		io_destroy(e->ctx);
#endif
	pthread_mutex_destroy(&e->mu);
	free(e);
	p->engine = NULL;
	p->engine_kind = FILE_ENGINE_SYNC;
}

/* ---- batch bookkeeping, shared by both engines ---- */

static void queue_push(struct batch *b, unsigned i)
{
	b->queue[(b->qhead + b->qlen) % b->n] = i;
	b->qlen++;
}

static unsigned queue_pop(struct batch *b)
{
	unsigned i = b->queue[b->qhead];

	b->qhead = (b->qhead + 1) % b->n;
	b->qlen--;
	return i;
}

/* The piece of request i to issue next: its buffer, length and offset. */
static size_t piece(const struct batch *b, unsigned i, char **buf, uint64_t *off)
{
	const struct req *r = &b->reqs[i];
	size_t len = b->ios[i].len - r->done;

	if (b->p->maxio && len > b->p->maxio)
		len = b->p->maxio;
	if (len > (1u << 30))
		len = 1u << 30; /* io_uring lengths are 32-bit */
	*buf = (char *)r->buf + r->done;
	*off = b->ios[i].off + r->done;
	return len;
}

static void finish(struct batch *b, unsigned i, int result)
{
	b->ios[i].result = result;
	b->remaining--;
}

/* Accounts one completion of `res` bytes (or -errno) for request i. */
static void complete(struct batch *b, unsigned i, long long res)
{
	struct req *r = &b->reqs[i];

	b->inflight--;
	if (res == -EINTR || res == -EAGAIN) {
		queue_push(b, i);
	} else if (res < 0) {
		finish(b, i, (int)res);
	} else if (res == 0) {
		finish(b, i, -EIO); /* end of device: it shrank under us */
	} else {
		r->done += (size_t)res;
		if (r->done < b->ios[i].len)
			queue_push(b, i); /* short completion: issue the rest */
		else
			finish(b, i, 0);
	}
}

/* ---- io_uring ---- */

#ifdef HAVE_LIBURING
static int uring_issue(struct batch *b)
{
	struct io_uring *ring = &b->e->ring;
	unsigned staged = 0, tries;
	int rc = 0;

	while (b->qlen && b->inflight + staged < ENGINE_DEPTH) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
		unsigned i;
		uint64_t off;
		char *buf;
		size_t len;

		if (!sqe)
			break;
		i = queue_pop(b);
		len = piece(b, i, &buf, &off);
		if (b->ios[i].op == BDEV_OP_READ)
			io_uring_prep_read(sqe, b->p->fd, buf, (unsigned)len, off);
		else
			io_uring_prep_write(sqe, b->p->fd, buf, (unsigned)len, off);
		io_uring_sqe_set_data64(sqe, i);
		staged++;
	}
	b->inflight += staged;
	if (!staged)
		return 0;
	/* Staged SQEs cannot be taken back: retry transient failures. */
	for (tries = 0; tries < 10000; tries++) {
		rc = io_uring_submit(ring);
		if (rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			break;
		sched_yield();
	}
	if (rc < 0)
		abort(); /* requests would stay staged forever with our buffers */
	return 0;
}

static int uring_reap(struct batch *b)
{
	struct io_uring *ring = &b->e->ring;
	struct io_uring_cqe *cqe;
	int rc;

	do {
		rc = io_uring_wait_cqe(ring, &cqe);
	} while (rc == -EINTR);
	if (rc < 0)
		return rc;
	do {
		unsigned i = (unsigned)io_uring_cqe_get_data64(cqe);

		complete(b, i, cqe->res);
		io_uring_cqe_seen(ring, cqe);
	} while (io_uring_peek_cqe(ring, &cqe) == 0);
	return 0;
}
#endif

/* ---- libaio ---- */

#ifdef HAVE_LIBAIO
static int aio_free_slot(struct batch *b)
{
	unsigned s;

	for (s = 0; s < ENGINE_DEPTH; s++)
		if (b->e->cbs[s].data == NULL)
			return (int)s;
	return -1;
}

static int aio_issue(struct batch *b)
{
	struct engine *e = b->e;
	struct iocb *staged[ENGINE_DEPTH];
	unsigned ns = 0, k = 0;

	while (b->qlen && b->inflight + ns < ENGINE_DEPTH) {
		int s = aio_free_slot(b);
		unsigned i = queue_pop(b);
		uint64_t off;
		char *buf;
		size_t len = piece(b, i, &buf, &off);

		if (b->ios[i].op == BDEV_OP_READ)
			io_prep_pread(&e->cbs[s], b->p->fd, buf, len, (long long)off);
		else
			io_prep_pwrite(&e->cbs[s], b->p->fd, buf, len, (long long)off);
		e->cbs[s].data = &b->reqs[i];
		b->reqs[i].slot = s;
		staged[ns++] = &e->cbs[s];
	}
	b->inflight += ns;
	while (k < ns) {
		int rc = io_submit(e->ctx, (long)(ns - k), staged + k);

		if (rc == -EINTR)
			continue;
		if (rc <= 0) {
			/* Give the unsubmitted ones back to the queue; the
			 * caller finishes them synchronously. */
			for (; k < ns; k++) {
				struct req *r = staged[k]->data;

				staged[k]->data = NULL;
				r->slot = -1;
				b->inflight--;
				queue_push(b, (unsigned)(r - b->reqs));
			}
			return rc < 0 ? rc : -EIO;
		}
		k += (unsigned)rc;
	}
	return 0;
}

static int aio_reap(struct batch *b)
{
	struct engine *e = b->e;
	int got, j;

	do {
		got = io_getevents(e->ctx, 1, ENGINE_DEPTH, e->evs, NULL);
	} while (got == -EINTR);
	if (got < 0)
		return got;
	for (j = 0; j < got; j++) {
		struct iocb *cb = e->evs[j].obj;
		struct req *r = cb->data;
		long long res = (long long)(long)e->evs[j].res;

		cb->data = NULL;
		r->slot = -1;
		complete(b, (unsigned)(r - b->reqs), res);
	}
	return 0;
}
#endif

/* ---- the batch driver ---- */

static int engine_issue(struct batch *b)
{
#ifdef HAVE_LIBURING
	if (b->e->kind == FILE_ENGINE_URING)
		return uring_issue(b);
#endif
#ifdef HAVE_LIBAIO
	if (b->e->kind == FILE_ENGINE_AIO)
		return aio_issue(b);
#endif
	return -EOPNOTSUPP;
}

static int engine_reap(struct batch *b)
{
#ifdef HAVE_LIBURING
	if (b->e->kind == FILE_ENGINE_URING)
		return uring_reap(b);
#endif
#ifdef HAVE_LIBAIO
	if (b->e->kind == FILE_ENGINE_AIO)
		return aio_reap(b);
#endif
	return -EOPNOTSUPP;
}

/* Bounce buffers for O_DIRECT requests whose buffer is not aligned. */
static int setup_buffers(struct batch *b)
{
	unsigned i;

	for (i = 0; i < b->n; i++) {
		struct bdev_io *io = &b->ios[i];
		struct req *r = &b->reqs[i];

		r->slot = -1;
		r->buf = io->buf;
		io->result = -EINPROGRESS;
		if (!b->p->direct || ((uintptr_t)io->buf & 4095u) == 0)
			continue;
		r->buf = bdev_alloc(io->len);
		if (!r->buf)
			return -ENOMEM;
		if (io->op == BDEV_OP_WRITE)
			memcpy(r->buf, io->buf, io->len);
	}
	return 0;
}

static void release_buffers(struct batch *b)
{
	unsigned i;

	for (i = 0; i < b->n; i++) {
		struct bdev_io *io = &b->ios[i];
		struct req *r = &b->reqs[i];

		if (!r->buf || r->buf == io->buf)
			continue;
		if (io->op == BDEV_OP_READ && io->result == 0)
			memcpy(io->buf, r->buf, io->len);
		bdev_free(r->buf);
	}
}

/* Finishes every request still queued with pread/pwrite (engine failure). */
static void finish_sync(struct batch *b)
{
	while (b->qlen) {
		unsigned i = queue_pop(b);
		uint64_t off;
		char *buf;
		size_t len = b->ios[i].len - b->reqs[i].done;
		int rc;

		(void)piece(b, i, &buf, &off);
		if (b->ios[i].op == BDEV_OP_READ)
			rc = file_pread_all(b->p->fd, buf, len, off);
		else
			rc = file_pwrite_all(b->p->fd, buf, len, off);
		finish(b, i, rc);
	}
}

static void run_batch(struct batch *b)
{
	unsigned i;

	for (i = 0; i < b->n; i++) {
		if (b->ios[i].len)
			queue_push(b, i);
		else
			b->ios[i].result = 0;
	}
	b->remaining = b->qlen;
	while (b->remaining) {
		if (!b->fatal && engine_issue(b) < 0)
			b->fatal = 1;
		if (b->inflight) {
			if (engine_reap(b) < 0) {
				/* Cannot reap: nothing more can be known. Only
				 * possible on a broken ring; never return with
				 * requests in flight. */
				abort();
			}
			continue;
		}
		finish_sync(b); /* no progress possible through the engine */
	}
}

static int sync_submit(struct bdev *bd, struct bdev_io *ios, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		if (ios[i].op == BDEV_OP_READ)
			ios[i].result = bd->ops->read(bd, ios[i].buf, ios[i].off, ios[i].len);
		else
			ios[i].result = bd->ops->write(bd, ios[i].buf, ios[i].off, ios[i].len);
	}
	return 0;
}

static int first_error(const struct bdev_io *ios, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (ios[i].result)
			return ios[i].result;
	return 0;
}

int file_engine_submit(struct bdev *bd, struct bdev_io *ios, unsigned n)
{
	struct file_priv *p = bd->priv;
	struct batch b = {.p = p, .e = p->engine, .ios = ios, .n = n};
	int rc;

	if (!b.e || n == 0) {
		sync_submit(bd, ios, n);
		return first_error(ios, n);
	}
	b.reqs = calloc(n, sizeof(*b.reqs));
	b.queue = calloc(n, sizeof(*b.queue));
	rc = (b.reqs && b.queue) ? setup_buffers(&b) : -ENOMEM;
	if (rc == 0) {
		pthread_mutex_lock(&b.e->mu);
		run_batch(&b);
		pthread_mutex_unlock(&b.e->mu);
	}
	if (b.reqs)
		release_buffers(&b);
	free(b.reqs);
	free(b.queue);
	if (rc < 0) {
		unsigned i;

		for (i = 0; i < n; i++)
			ios[i].result = rc;
		return rc;
	}
	return first_error(ios, n);
}
