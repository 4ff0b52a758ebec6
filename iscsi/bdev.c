/*
 * bdev.c - device URI parsing, checked entry points and shared helpers of the
 * block-device layer. Backends are in bdev_<name>.c; see bdev.h for the
 * invariants every backend keeps.
 *
 * Design note
 *  - Opening: bdev_open() prefixes $BDEV_WRAP (once, at the top level) and
 *    calls open_uri(), which dispatches on the scheme. A wrapper URI
 *    "NAME:SPEC:INNER" is split at the first ':' after NAME (so SPEC and a
 *    trace LOGFILE cannot contain ':'); INNER is opened by open_uri() again,
 *    never re-wrapped, so wrappers nest to any depth.
 *  - bd->uri is the string the caller gave bdev_open() (without BDEV_WRAP);
 *    every bdev is checked for BDEV_OPS_VERSION before it is returned.
 *  - The checked entry points (bdev_read() ...) enforce alignment, range and
 *    read-only before any backend runs, so backends and wrappers may assume
 *    valid requests; wrappers call the checked functions on their inner
 *    device, which costs a few comparisons.
 */
#include "bdev.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bdev *bdev_new(const struct bdev_ops *ops, const char *uri)
{
	struct bdev *bd = calloc(1, sizeof(*bd));

	if (!bd)
		return NULL;
	bd->uri = strdup(uri ? uri : "");
	if (!bd->uri) {
		free(bd);
		return NULL;
	}
	bd->ops = ops;
	return bd;
}

void bdev_wrap_geometry(struct bdev *bd, const struct bdev *inner)
{
	bd->size = inner->size;
	bd->lsec = inner->lsec;
	bd->psec = inner->psec;
	bd->caps = inner->caps;
	memcpy(bd->engine, inner->engine, sizeof(bd->engine));
	bd->ats_method = inner->ats_method;
}

int bdev_opt(const char *opts, const char *key, char *val, size_t vallen)
{
	size_t klen = strlen(key);
	const char *p = opts;

	while (p && *p) {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t n = len - klen - 1;

			if (n >= vallen)
				return -EINVAL;
			memcpy(val, p + klen + 1, n);
			val[n] = '\0';
			return 0;
		}
		p = end ? end + 1 : NULL;
	}
	return -ENOENT;
}

/* Splits "SPEC:REST" at the first ':'; returns a malloc'd SPEC. */
static char *split_spec(const char *s, const char **rest)
{
	const char *colon = strchr(s, ':');
	char *spec;

	if (!colon)
		return NULL;
	spec = strndup(s, (size_t)(colon - s));
	*rest = colon + 1;
	return spec;
}

typedef int (*wrap_fn)(const char *spec, struct bdev *inner, struct bdev **out);

static int open_uri(const char *uri, unsigned flags, struct bdev **out);

/* "PREFIX SPEC:INNER-URI": opens INNER-URI, then the wrapper around it. */
static int open_wrapped(const char *uri, unsigned flags, wrap_fn fn, const char *prefix,
			struct bdev **out)
{
	const char *rest = NULL;
	char *spec = split_spec(uri + strlen(prefix), &rest);
	struct bdev *inner = NULL;
	int rc;

	if (!spec)
		return -BDEV_E_URI;
	rc = open_uri(rest, flags, &inner);
	if (rc == 0) {
		rc = fn(spec, inner, out);
		if (rc < 0)
			bdev_close(inner);
	}
	free(spec);
	return rc;
}

/* "scheme://..." (RFC 3986 scheme: a letter, then letters, digits, + - .) */
static int has_scheme(const char *uri)
{
	const char *p = uri;

	if (!isalpha((unsigned char)*p))
		return 0;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	return strncmp(p, "://", 3) == 0;
}

static int open_plain(const char *uri, unsigned flags, struct bdev **out)
{
	char *path, *q;
	int rc;

	if (strncmp(uri, "mem:", 4) == 0)
		return bdev_mem_open(uri + 4, flags, out);
	if (strncmp(uri, "fault:", 6) == 0)
		return open_wrapped(uri, flags, bdev_fault_open, "fault:", out);
	if (strncmp(uri, "crash:", 6) == 0)
		return open_wrapped(uri, flags, bdev_crash_open, "crash:", out);
	if (strncmp(uri, "trace:", 6) == 0)
		return open_wrapped(uri, flags, bdev_trace_open, "trace:", out);
	if (strncmp(uri, "iscsi://", 8) == 0)
		return bdev_iscsi_open(uri, flags, out);
	if (strncmp(uri, "file:", 5) == 0)
		uri += 5;
	else if (has_scheme(uri))
		return -BDEV_E_SCHEME;
	if (!*uri)
		return -BDEV_E_URI;
	path = strdup(uri);
	if (!path)
		return -ENOMEM;
	q = strchr(path, '?');
	if (q)
		*q++ = '\0';
	rc = bdev_file_open(path, q, flags, out);
	free(path);
	return rc;
}

/* Opens without looking at BDEV_WRAP; sets the uri and checks the version. */
static int open_uri(const char *uri, unsigned flags, struct bdev **out)
{
	char *copy;
	int rc;

	*out = NULL;
	if (!uri || !*uri)
		return -BDEV_E_URI;
	rc = open_plain(uri, flags, out);
	if (rc < 0)
		return rc;
	copy = strdup(uri);
	if (!copy || (*out)->ops->version != BDEV_OPS_VERSION) {
		free(copy);
		bdev_close(*out);
		*out = NULL;
		return copy ? -EPROTO : -ENOMEM;
	}
	free((*out)->uri);
	(*out)->uri = copy;
	return 0;
}

int bdev_open(const char *uri, unsigned flags, struct bdev **out)
{
	const char *wrap = getenv("BDEV_WRAP");
	char *full;
	int rc;

	*out = NULL;
	if (!uri || !*uri)
		return -BDEV_E_URI;
	if (!wrap || !*wrap)
		return open_uri(uri, flags, out);
	if (asprintf(&full, "%s:%s", wrap, uri) < 0)
		return -ENOMEM;
	rc = open_uri(full, flags, out);
	free(full);
	if (rc == 0) {
		char *copy = strdup(uri);

		if (!copy) {
			bdev_close(*out);
			*out = NULL;
			return -ENOMEM;
		}
		free((*out)->uri);
		(*out)->uri = copy;
	}
	return rc;
}

void bdev_close(struct bdev *bd)
{
	if (!bd)
		return;
	if (bd->ops && bd->ops->close)
		bd->ops->close(bd);
	free(bd->uri);
	free(bd);
}

int bdev_thread_create(pthread_t *thr, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(thr, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

void bdev_set_conflict_hook(struct bdev *bd, void (*fn)(void *arg), void *arg)
{
	atomic_store(&bd->on_conflict, NULL);
	atomic_store(&bd->conflict_arg, arg);
	atomic_store(&bd->on_conflict, fn);
}

/* Passes rc through; a reservation conflict is reported to the hook. */
static int seen(struct bdev *bd, int rc)
{
	void (*fn)(void *) = rc == -BDEV_E_RESV_CONFLICT ? atomic_load(&bd->on_conflict) : NULL;

	if (fn)
		fn(atomic_load(&bd->conflict_arg));
	return rc;
}

static int check_range(const struct bdev *bd, uint64_t off, uint64_t len)
{
	if (off % bd->lsec || len % bd->lsec)
		return -EINVAL;
	if (off > bd->size || len > bd->size - off)
		return -ERANGE;
	return 0;
}

int bdev_read(struct bdev *bd, void *buf, uint64_t off, size_t len)
{
	int rc = check_range(bd, off, len);

	if (rc < 0 || len == 0)
		return rc;
	return bd->ops->read(bd, buf, off, len);
}

int bdev_write(struct bdev *bd, const void *buf, uint64_t off, size_t len)
{
	int rc = check_range(bd, off, len);

	if (rc < 0 || len == 0)
		return rc;
	if (bd->caps & BDEV_CAP_READONLY)
		return -EROFS;
	return seen(bd, bd->ops->write(bd, buf, off, len));
}

/* A batch with an invalid request runs none of its requests: the invalid ones
 * get their error, the others -ECANCELED. */
static int check_batch(struct bdev *bd, struct bdev_io *ios, unsigned n)
{
	int first = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		ios[i].result = check_range(bd, ios[i].off, ios[i].len);
		if (!ios[i].result && ios[i].op != BDEV_OP_READ && ios[i].op != BDEV_OP_WRITE)
			ios[i].result = -EINVAL;
		if (!ios[i].result && ios[i].op == BDEV_OP_WRITE && (bd->caps & BDEV_CAP_READONLY))
			ios[i].result = -EROFS;
		if (ios[i].result && !first)
			first = ios[i].result;
	}
	if (!first)
		return 0;
	for (i = 0; i < n; i++)
		if (!ios[i].result)
			ios[i].result = -ECANCELED;
	return first;
}

int bdev_submit(struct bdev *bd, struct bdev_io *ios, unsigned n)
{
	int first = check_batch(bd, ios, n);
	unsigned i;

	if (first)
		return first;
	if (bd->ops->submit) {
		first = bd->ops->submit(bd, ios, n);
	} else {
		for (i = 0; i < n; i++) {
			if (ios[i].op == BDEV_OP_READ)
				ios[i].result =
				    bd->ops->read(bd, ios[i].buf, ios[i].off, ios[i].len);
			else
				ios[i].result =
				    bd->ops->write(bd, ios[i].buf, ios[i].off, ios[i].len);
			if (ios[i].result && !first)
				first = ios[i].result;
		}
	}
	for (i = 0; i < n && first != -BDEV_E_RESV_CONFLICT; i++)
		if (ios[i].result == -BDEV_E_RESV_CONFLICT)
			first = ios[i].result;
	if (first == -BDEV_E_RESV_CONFLICT)
		seen(bd, first);
	return first;
}

int bdev_flush(struct bdev *bd)
{
	return seen(bd, bd->ops->flush(bd));
}

int bdev_ats(struct bdev *bd, uint64_t off, const void *expect, const void *newdata, void *actual)
{
	int rc = check_range(bd, off, bd->lsec);

	if (rc < 0)
		return rc;
	if (bd->caps & BDEV_CAP_READONLY)
		return -EROFS;
	return seen(bd, bd->ops->ats(bd, off, expect, newdata, actual));
}

static int zero_by_writing(struct bdev *bd, uint64_t off, uint64_t len)
{
	size_t chunk = 1u << 20;
	void *zero = bdev_alloc(chunk);
	int rc = 0;

	if (!zero)
		return -ENOMEM;
	while (len && rc == 0) {
		size_t n = len < chunk ? (size_t)len : chunk;

		rc = bd->ops->write(bd, zero, off, n);
		off += n;
		len -= n;
	}
	bdev_free(zero);
	return rc;
}

int bdev_write_zeroes(struct bdev *bd, uint64_t off, uint64_t len)
{
	int rc = check_range(bd, off, len);

	if (rc < 0 || len == 0)
		return rc;
	if (bd->caps & BDEV_CAP_READONLY)
		return -EROFS;
	if (bd->ops->write_zeroes) {
		rc = bd->ops->write_zeroes(bd, off, len);
		if (rc != -EOPNOTSUPP)
			return seen(bd, rc);
	}
	return seen(bd, zero_by_writing(bd, off, len));
}

int bdev_discard(struct bdev *bd, uint64_t off, uint64_t len)
{
	int rc = check_range(bd, off, len);

	if (rc < 0 || len == 0)
		return rc;
	if (bd->caps & BDEV_CAP_READONLY)
		return -EROFS;
	if (bd->ops->discard) {
		rc = bd->ops->discard(bd, off, len);
		if (rc != -EOPNOTSUPP)
			return seen(bd, rc);
	}
	return bdev_write_zeroes(bd, off, len);
}

int bdev_refresh_size(struct bdev *bd)
{
	uint64_t size = 0;
	int rc;

	if (!bd->ops->refresh_size)
		return 0;
	rc = bd->ops->refresh_size(bd, &size);
	if (rc)
		return rc;
	size -= size % bd->lsec;
	if (size > bd->size)
		bd->size = size;
	return 0;
}

int bdev_pr(struct bdev *bd, struct bdev_pr_cmd *cmd)
{
	if (!bd->ops->pr)
		return -EOPNOTSUPP;
	if (cmd->action > BDEV_PR_READ_RESV)
		return -EINVAL;
	return bd->ops->pr(bd, cmd);
}

static int pr_out(struct bdev *bd, enum bdev_pr_action a, uint64_t key, uint64_t sa_key,
		  enum bdev_pr_type type)
{
	struct bdev_pr_cmd c = {.action = a, .key = key, .sa_key = sa_key, .type = type};

	return bdev_pr(bd, &c);
}

int bdev_pr_register(struct bdev *bd, uint64_t key)
{
	return pr_out(bd, BDEV_PR_REGISTER, 0, key, 0);
}

int bdev_pr_reserve(struct bdev *bd, uint64_t key, enum bdev_pr_type type)
{
	return pr_out(bd, BDEV_PR_RESERVE, key, 0, type);
}

int bdev_pr_release(struct bdev *bd, uint64_t key, enum bdev_pr_type type)
{
	return pr_out(bd, BDEV_PR_RELEASE, key, 0, type);
}

int bdev_pr_preempt(struct bdev *bd, uint64_t key, uint64_t victim, enum bdev_pr_type type)
{
	return pr_out(bd, BDEV_PR_PREEMPT, key, victim, type);
}

int bdev_pr_clear(struct bdev *bd, uint64_t key)
{
	return pr_out(bd, BDEV_PR_CLEAR, key, 0, 0);
}

int bdev_pr_read_keys(struct bdev *bd, uint64_t *keys, unsigned max, unsigned *n, uint32_t *gen)
{
	struct bdev_pr_cmd c = {.action = BDEV_PR_READ_KEYS, .keys = keys, .max_keys = max};
	int rc = bdev_pr(bd, &c);

	if (rc == 0 && n)
		*n = c.nkeys;
	if (rc == 0 && gen)
		*gen = c.generation;
	return rc;
}

int bdev_pr_read_reservation(struct bdev *bd, int *held, uint64_t *key, enum bdev_pr_type *type)
{
	struct bdev_pr_cmd c = {.action = BDEV_PR_READ_RESV};
	int rc = bdev_pr(bd, &c);

	if (rc == 0) {
		if (held)
			*held = c.held;
		if (key)
			*key = c.resv_key;
		if (type)
			*type = c.resv_type;
	}
	return rc;
}

const char *bdev_ats_method_name(const struct bdev *bd)
{
	switch (bd->ats_method) {
	case BDEV_ATS_CAW: return "compare-and-write";
	case BDEV_ATS_PR: return "reservation";
	default: return "emulated";
	}
}

void *bdev_alloc(size_t len)
{
	void *p = NULL;
	size_t rounded = (len + 4095) & ~(size_t)4095;

	if (rounded == 0)
		rounded = 4096;
	if (posix_memalign(&p, 4096, rounded))
		return NULL;
	memset(p, 0, rounded);
	return p;
}

void bdev_free(void *p)
{
	free(p);
}

const char *bdev_strerror(int err)
{
	switch (-err) {
	case BDEV_E_MISCOMPARE: return "atomic compare-and-write miscompare";
	case BDEV_E_CRASHED: return "device lost (simulated crash)";
	case BDEV_E_INJECTED: return "injected I/O error";
	case BDEV_E_URI: return "malformed device URI";
	case BDEV_E_SCHEME:
		return "unknown device URI scheme (known: iscsi://, file:, mem:, fault:, crash:, "
		       "trace:; anything else is a file or block device path)";
	case BDEV_E_RESV_CONFLICT:
		return "reservation conflict (this host's registration was preempted: fenced)";
	case BDEV_E_TARGET_LOST:
		return "iSCSI target lost (no answer within the timeout, reconnect failed)";
	case EPROTONOSUPPORT: return "device URI scheme not supported by this build";
	default: return strerror(-err);
	}
}
