/*
 * bdev_mem.c - an anonymous in-memory block device ("mem:SIZE[?sector=N]"),
 * for unit tests and fuzzers over in-memory images. SIZE takes an optional
 * K/M/G suffix (powers of 1024). ats() is atomic within the process (one
 * mutex per device); the device is not shared across processes.
 */
#include "bdev.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct mem_priv {
	unsigned char *data;
	pthread_mutex_t mu;
};

static int mem_read(struct bdev *bd, void *buf, uint64_t off, size_t len)
{
	struct mem_priv *p = bd->priv;

	pthread_mutex_lock(&p->mu);
	memcpy(buf, p->data + off, len);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

static int mem_write(struct bdev *bd, const void *buf, uint64_t off, size_t len)
{
	struct mem_priv *p = bd->priv;

	pthread_mutex_lock(&p->mu);
	memcpy(p->data + off, buf, len);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

static int mem_flush(struct bdev *bd)
{
	(void)bd;
	return 0;
}

static int mem_ats(struct bdev *bd, uint64_t off, const void *expect, const void *newdata,
		   void *actual)
{
	struct mem_priv *p = bd->priv;
	int rc = 0;

	pthread_mutex_lock(&p->mu);
	if (memcmp(p->data + off, expect, bd->lsec) == 0) {
		memcpy(p->data + off, newdata, bd->lsec);
	} else {
		if (actual)
			memcpy(actual, p->data + off, bd->lsec);
		rc = -BDEV_E_MISCOMPARE;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static int mem_zero(struct bdev *bd, uint64_t off, uint64_t len)
{
	struct mem_priv *p = bd->priv;

	pthread_mutex_lock(&p->mu);
	memset(p->data + off, 0, len);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

static void mem_close(struct bdev *bd)
{
	struct mem_priv *p = bd->priv;

	if (!p)
		return;
	pthread_mutex_destroy(&p->mu);
	free(p->data);
	free(p);
}

static const struct bdev_ops mem_ops = {
    .version = BDEV_OPS_VERSION,
    .name = "mem",
    .read = mem_read,
    .write = mem_write,
    .flush = mem_flush,
    .ats = mem_ats,
    .discard = mem_zero,
    .write_zeroes = mem_zero,
    .close = mem_close,
};

/* Parses "123", "64K", "8M", "1G" into bytes. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'K':
	case 'k':
		v <<= 10;
		end++;
		break;
	case 'M':
	case 'm':
		v <<= 20;
		end++;
		break;
	case 'G':
	case 'g':
		v <<= 30;
		end++;
		break;
	default: break;
	}
	if (*end && *end != '?')
		return -EINVAL;
	*out = v;
	return 0;
}

int bdev_mem_open(const char *spec, unsigned flags, struct bdev **out)
{
	char val[16];
	const char *q = strchr(spec, '?');
	uint64_t size;
	uint32_t lsec = 512;
	struct mem_priv *p;
	struct bdev *bd;

	if (parse_size(spec, &size) < 0)
		return -BDEV_E_URI;
	if (q && bdev_opt(q + 1, "sector", val, sizeof(val)) == 0)
		lsec = (uint32_t)strtoul(val, NULL, 10);
	if (lsec != 512 && lsec != 4096)
		return -BDEV_E_URI;
	size -= size % lsec;
	if (size == 0 || size > (1ull << 34))
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->data = calloc(1, size);
	if (!p->data) {
		free(p);
		return -ENOMEM;
	}
	pthread_mutex_init(&p->mu, NULL);
	bd = bdev_new(&mem_ops, spec);
	if (!bd) {
		mem_close(&(struct bdev){.priv = p});
		return -ENOMEM;
	}
	bd->priv = p;
	bd->size = size;
	bd->lsec = bd->psec = lsec;
	bd->caps =
	    BDEV_CAP_DISCARD | BDEV_CAP_ZEROES | (flags & BDEV_O_RDONLY ? BDEV_CAP_READONLY : 0);
	strcpy(bd->engine, "mem");
	*out = bd;
	return 0;
}
