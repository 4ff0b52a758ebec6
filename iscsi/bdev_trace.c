/*
 * bdev_trace.c - a write log around another device ("trace:LOGFILE:INNER-URI").
 *
 * Design note
 *  - Every operation that can change the device appends one line to LOGFILE:
 *        <CLOCK_MONOTONIC ns> <pid> <op> <offset> <len> <result>
 *    op is write, ats, flush, discard or zeroes (write_zeroes); flush logs
 *    offset 0 and len 0; result is 0 or the negative errno / private code
 *    (an ats() miscompare logs -2001 and wrote nothing). Reads are not
 *    logged. Batch writes are logged one line per request.
 *  - The time is taken after the inner operation completed, so a write
 *    logged at time T reached the device no later than T: a log showing no
 *    write by a host after time T proves the host wrote nothing after T
 *    (the lock-manager fencing tests rely on this direction only).
 *  - LOGFILE is opened O_APPEND and each line is one write() of less than
 *    PIPE_BUF bytes, so several processes may share one log and lines never
 *    interleave. CLOCK_MONOTONIC is common to all processes of a machine.
 *  - The LOGFILE path cannot contain ':' (the URI separator). A failure to
 *    write the log is ignored: tracing never changes the I/O result.
 */
#include "bdev.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct trace_priv {
	struct bdev *inner;
	int fd;
};

static void trace_log(struct trace_priv *p, const char *op, uint64_t off, uint64_t len, int rc)
{
	struct timespec ts;
	char line[160];
	int n;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	n = snprintf(line, sizeof(line), "%" PRIu64 " %ld %s %" PRIu64 " %" PRIu64 " %d\n",
		     (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, (long)getpid(), op,
		     off, len, rc);
	if (n > 0 && n < (int)sizeof(line) && write(p->fd, line, (size_t)n) < 0)
		return; /* best effort: never change the I/O result */
}

static int trace_read(struct bdev *bd, void *buf, uint64_t off, size_t len)
{
	struct trace_priv *p = bd->priv;

	return bdev_read(p->inner, buf, off, len);
}

static int trace_write(struct bdev *bd, const void *buf, uint64_t off, size_t len)
{
	struct trace_priv *p = bd->priv;
	int rc = bdev_write(p->inner, buf, off, len);

	trace_log(p, "write", off, len, rc);
	return rc;
}

static int trace_submit(struct bdev *bd, struct bdev_io *ios, unsigned n)
{
	struct trace_priv *p = bd->priv;
	int rc = bdev_submit(p->inner, ios, n);
	unsigned i;

	for (i = 0; i < n; i++)
		if (ios[i].op == BDEV_OP_WRITE)
			trace_log(p, "write", ios[i].off, ios[i].len, ios[i].result);
	return rc;
}

static int trace_flush(struct bdev *bd)
{
	struct trace_priv *p = bd->priv;
	int rc = bdev_flush(p->inner);

	trace_log(p, "flush", 0, 0, rc);
	return rc;
}

static int trace_ats(struct bdev *bd, uint64_t off, const void *expect, const void *newdata,
		     void *actual)
{
	struct trace_priv *p = bd->priv;
	int rc = bdev_ats(p->inner, off, expect, newdata, actual);

	trace_log(p, "ats", off, bd->lsec, rc);
	return rc;
}

static int trace_discard(struct bdev *bd, uint64_t off, uint64_t len)
{
	struct trace_priv *p = bd->priv;
	int rc = bdev_discard(p->inner, off, len);

	trace_log(p, "discard", off, len, rc);
	return rc;
}

static int trace_write_zeroes(struct bdev *bd, uint64_t off, uint64_t len)
{
	struct trace_priv *p = bd->priv;
	int rc = bdev_write_zeroes(p->inner, off, len);

	trace_log(p, "zeroes", off, len, rc);
	return rc;
}

static void trace_close(struct bdev *bd)
{
	struct trace_priv *p = bd->priv;

	if (!p)
		return;
	bdev_close(p->inner);
	close(p->fd);
	free(p);
}

static int trace_pr(struct bdev *bd, struct bdev_pr_cmd *cmd)
{
	struct trace_priv *p = bd->priv;

	return bdev_pr(p->inner, cmd);
}

/* Passes the inner device's new size through. */
static int trace_refresh_size(struct bdev *bd, uint64_t *size)
{
	struct trace_priv *p = bd->priv;
	int rc = bdev_refresh_size(p->inner);

	*size = p->inner->size;
	return rc;
}

static const struct bdev_ops trace_ops = {
    .version = BDEV_OPS_VERSION,
    .name = "trace",
    .read = trace_read,
    .write = trace_write,
    .submit = trace_submit,
    .flush = trace_flush,
    .ats = trace_ats,
    .discard = trace_discard,
    .write_zeroes = trace_write_zeroes,
    .close = trace_close,
    .pr = trace_pr,
    .refresh_size = trace_refresh_size,
};

int bdev_trace_open(const char *logpath, struct bdev *inner, struct bdev **out)
{
	struct trace_priv *p;
	struct bdev *bd;
	int fd;

	if (!logpath || !*logpath)
		return -BDEV_E_URI;
	fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	p = calloc(1, sizeof(*p));
	bd = p ? bdev_new(&trace_ops, logpath) : NULL;
	if (!bd) {
		free(p);
		close(fd);
		return -ENOMEM;
	}
	p->inner = inner;
	p->fd = fd;
	bd->priv = p;
	bdev_wrap_geometry(bd, inner);
	*out = bd;
	return 0;
}
