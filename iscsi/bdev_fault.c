/*
 * bdev_fault.c - fault injection around another device
 * ("fault:SPEC:INNER-URI"; SPEC is described in bdev.h), after SQLite's
 * fault-injection VFS: operations are counted per kind and the Nth one of a
 * kind fails, once (transient) or from then on (persist).
 *
 * Design note
 *  - Counts start at 0 at open and at every bdev_fault_arm(); the Nth
 *    operation is the one whose count becomes N. A batch (bdev_submit())
 *    counts its requests in array order, so a test can aim at one request.
 *  - Kinds: read, write (including batch writes), flush, ats, discard
 *    (discard and write_zeroes). A failed operation does nothing on the inner
 *    device, except: torn=N writes the first half of the Nth write's sectors
 *    (rounded down) and then fails; ats_lost=N performs the Nth ats() and
 *    then fails (the reply was lost). Every injection "trips" its kind; with
 *    persist, every later operation of a tripped kind fails.
 *  - The default error is -EIO, so callers exercise their real I/O-error
 *    paths; errno=INJECTED returns -BDEV_E_INJECTED when a test wants to
 *    tell injected failures apart.
 *  - One mutex guards the counts, so threads may share a fault bdev; the
 *    inner I/O runs outside it.
 */
#include "bdev.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct fault_spec {
	uint64_t nth[BDEV_FAULT_NKINDS]; /* 0 = never */
	uint64_t torn;			 /* the torn write, 0 = none */
	uint64_t ats_lost;		 /* the ats whose reply is lost, 0 = none */
	int persist;
	int err; /* negative */
};

struct fault_priv {
	struct bdev *inner;
	pthread_mutex_t mu;
	struct fault_spec spec;
	struct bdev_fault_counts counts;
	int tripped[BDEV_FAULT_NKINDS];
};

enum verdict { PASS, FAIL, TORN, LOST };

static const struct bdev_ops fault_ops;

static int parse_count(const char *val, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(val, &end, 10);
	return (errno || end == val || *end || *out == 0) ? -BDEV_E_URI : 0;
}

static int parse_errno(const char *val, int *err)
{
	static const struct {
		const char *name;
		int err;
	} names[] = {{"EIO", EIO},
		     {"ENOSPC", ENOSPC},
		     {"EROFS", EROFS},
		     {"ENXIO", ENXIO},
		     {"ETIMEDOUT", ETIMEDOUT},
		     {"INJECTED", BDEV_E_INJECTED},
		     {"EINJECTED", BDEV_E_INJECTED},
		     {"RESV_CONFLICT", BDEV_E_RESV_CONFLICT}};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(val, names[i].name) == 0) {
			*err = -names[i].err;
			return 0;
		}
	}
	return -BDEV_E_URI;
}

static int parse_item(struct fault_spec *s, const char *key, const char *val)
{
	static const char *const kinds[BDEV_FAULT_NKINDS] = {"read", "write", "flush", "ats",
							     "discard"};
	int k;

	if (!val)
		return strcmp(key, "persist") == 0 ? (s->persist = 1, 0) : -BDEV_E_URI;
	if (strcmp(key, "errno") == 0)
		return parse_errno(val, &s->err);
	if (strcmp(key, "torn") == 0)
		return parse_count(val, &s->torn);
	if (strcmp(key, "ats_lost") == 0)
		return parse_count(val, &s->ats_lost);
	for (k = 0; k < BDEV_FAULT_NKINDS; k++)
		if (strcmp(key, kinds[k]) == 0)
			return parse_count(val, &s->nth[k]);
	return -BDEV_E_URI;
}

static int parse_spec(const char *spec, struct fault_spec *s)
{
	char *copy = strdup(spec), *save = NULL, *tok;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	memset(s, 0, sizeof(*s));
	s->err = -EIO;
	for (tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (eq)
			*eq++ = '\0';
		rc = parse_item(s, tok, eq);
	}
	free(copy);
	return rc;
}

/* Counts one operation of `kind` and decides its fate. */
static enum verdict decide(struct fault_priv *p, int kind)
{
	enum verdict v = PASS;
	uint64_t n;

	pthread_mutex_lock(&p->mu);
	n = ++p->counts.ops[kind];
	if ((p->spec.persist && p->tripped[kind]) || p->spec.nth[kind] == n)
		v = FAIL;
	else if (kind == BDEV_FAULT_WRITE && p->spec.torn == n)
		v = TORN;
	else if (kind == BDEV_FAULT_ATS && p->spec.ats_lost == n)
		v = LOST;
	if (v != PASS) {
		p->tripped[kind] = 1;
		p->counts.injected[kind]++;
	}
	pthread_mutex_unlock(&p->mu);
	return v;
}

static int fault_err(struct fault_priv *p)
{
	int err;

	pthread_mutex_lock(&p->mu);
	err = p->spec.err;
	pthread_mutex_unlock(&p->mu);
	return err;
}

/* Bytes of a torn write that reach the device: the first half of its sectors. */
static size_t torn_len(const struct bdev *bd, size_t len)
{
	return (len / bd->lsec / 2) * bd->lsec;
}

static int fault_read(struct bdev *bd, void *buf, uint64_t off, size_t len)
{
	struct fault_priv *p = bd->priv;

	if (decide(p, BDEV_FAULT_READ) != PASS)
		return fault_err(p);
	return bdev_read(p->inner, buf, off, len);
}

static int fault_write(struct bdev *bd, const void *buf, uint64_t off, size_t len)
{
	struct fault_priv *p = bd->priv;
	enum verdict v = decide(p, BDEV_FAULT_WRITE);

	if (v == TORN && torn_len(bd, len))
		(void)bdev_write(p->inner, buf, off, torn_len(bd, len));
	if (v != PASS)
		return fault_err(p);
	return bdev_write(p->inner, buf, off, len);
}

/* Injected requests are left out of (or, if torn, shortened in) the batch
 * passed to the inner device; their result is the injected error. */
static int fault_submit(struct bdev *bd, struct bdev_io *ios, unsigned n)
{
	struct fault_priv *p = bd->priv;
	struct bdev_io *sub = calloc(n ? n : 1, sizeof(*sub));
	unsigned *map = calloc(n ? n : 1, sizeof(*map));
	int err = fault_err(p), first = 0;
	unsigned i, m = 0;

	if (!sub || !map) {
		free(sub);
		free(map);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		int kind = ios[i].op == BDEV_OP_READ ? BDEV_FAULT_READ : BDEV_FAULT_WRITE;
		enum verdict v = decide(p, kind);

		ios[i].result = v == PASS ? 0 : err;
		if (v == FAIL || (v == TORN && !torn_len(bd, ios[i].len)))
			continue;
		sub[m] = ios[i];
		if (v == TORN)
			sub[m].len = torn_len(bd, ios[i].len);
		map[m++] = i;
	}
	(void)bdev_submit(p->inner, sub, m);
	for (i = 0; i < m; i++)
		if (ios[map[i]].result == 0)
			ios[map[i]].result = sub[i].result;
	for (i = 0; i < n && !first; i++)
		first = ios[i].result;
	free(sub);
	free(map);
	return first;
}

static int fault_flush(struct bdev *bd)
{
	struct fault_priv *p = bd->priv;

	if (decide(p, BDEV_FAULT_FLUSH) != PASS)
		return fault_err(p);
	return bdev_flush(p->inner);
}

static int fault_ats(struct bdev *bd, uint64_t off, const void *expect, const void *newdata,
		     void *actual)
{
	struct fault_priv *p = bd->priv;
	enum verdict v = decide(p, BDEV_FAULT_ATS);

	if (v == LOST)
		(void)bdev_ats(p->inner, off, expect, newdata, actual);
	if (v != PASS)
		return fault_err(p);
	return bdev_ats(p->inner, off, expect, newdata, actual);
}

static int fault_discard(struct bdev *bd, uint64_t off, uint64_t len)
{
	struct fault_priv *p = bd->priv;

	if (decide(p, BDEV_FAULT_DISCARD) != PASS)
		return fault_err(p);
	return bdev_discard(p->inner, off, len);
}

static int fault_write_zeroes(struct bdev *bd, uint64_t off, uint64_t len)
{
	struct fault_priv *p = bd->priv;

	if (decide(p, BDEV_FAULT_DISCARD) != PASS)
		return fault_err(p);
	return bdev_write_zeroes(p->inner, off, len);
}

static void fault_close(struct bdev *bd)
{
	struct fault_priv *p = bd->priv;

	if (!p)
		return;
	bdev_close(p->inner);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static int fault_pr(struct bdev *bd, struct bdev_pr_cmd *cmd)
{
	struct fault_priv *p = bd->priv;

	return bdev_pr(p->inner, cmd);
}

/* Passes the inner device's new size through. */
static int fault_refresh_size(struct bdev *bd, uint64_t *size)
{
	struct fault_priv *p = bd->priv;
	int rc = bdev_refresh_size(p->inner);

	*size = p->inner->size;
	return rc;
}

static const struct bdev_ops fault_ops = {
    .version = BDEV_OPS_VERSION,
    .name = "fault",
    .read = fault_read,
    .write = fault_write,
    .submit = fault_submit,
    .flush = fault_flush,
    .ats = fault_ats,
    .discard = fault_discard,
    .write_zeroes = fault_write_zeroes,
    .close = fault_close,
    .pr = fault_pr,
    .refresh_size = fault_refresh_size,
};

int bdev_fault_open(const char *spec, struct bdev *inner, struct bdev **out)
{
	struct fault_priv *p = calloc(1, sizeof(*p));
	struct bdev *bd;
	int rc;

	if (!p)
		return -ENOMEM;
	rc = parse_spec(spec, &p->spec);
	if (rc < 0 || !(bd = bdev_new(&fault_ops, spec))) {
		free(p);
		return rc < 0 ? rc : -ENOMEM;
	}
	pthread_mutex_init(&p->mu, NULL);
	p->inner = inner;
	bd->priv = p;
	bdev_wrap_geometry(bd, inner);
	*out = bd;
	return 0;
}

int bdev_fault_arm(struct bdev *bd, const char *spec)
{
	struct fault_priv *p;
	struct fault_spec s;
	int rc;

	if (!bd || bd->ops != &fault_ops)
		return -EINVAL;
	rc = parse_spec(spec ? spec : "", &s);
	if (rc < 0)
		return rc;
	p = bd->priv;
	pthread_mutex_lock(&p->mu);
	p->spec = s;
	memset(&p->counts, 0, sizeof(p->counts));
	memset(p->tripped, 0, sizeof(p->tripped));
	pthread_mutex_unlock(&p->mu);
	return 0;
}

int bdev_fault_counts(struct bdev *bd, struct bdev_fault_counts *out)
{
	struct fault_priv *p;

	if (!bd || bd->ops != &fault_ops)
		return -EINVAL;
	p = bd->priv;
	pthread_mutex_lock(&p->mu);
	*out = p->counts;
	pthread_mutex_unlock(&p->mu);
	return 0;
}
