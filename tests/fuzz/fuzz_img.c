/*
 * fuzz_img.c - decodes a sparse fuzz input (fuzz_img.h) onto a mem: device.
 * Records need not be sector aligned: each is written by read-modify-write
 * of the sectors it covers.
 */
#include "fuzz_img.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The kept read-only device and the sector ranges the last input wrote. */
static struct bdev *kept;
static struct {
	uint64_t start, end;
} ext[65536];
static size_t next;

static void note_ext(uint64_t start, uint64_t end)
{
	if (next && ext[next - 1].end == start)
		ext[next - 1].end = end;
	else if (next < sizeof(ext) / sizeof(ext[0]))
		ext[next++].start = start, ext[next - 1].end = end;
}

static int put(struct bdev *bd, uint8_t *buf, uint64_t off, const uint8_t *src, size_t len)
{
	uint64_t start = off - off % bd->lsec, end = off + len;
	size_t n;
	int rc;

	if (off >= bd->size)
		return 0;
	if (end > bd->size)
		end = bd->size;
	end = (end + bd->lsec - 1) / bd->lsec * bd->lsec;
	n = (size_t)(end - start);
	rc = bdev_read(bd, buf, start, n);
	if (rc)
		return rc;
	note_ext(start, end);
	memcpy(buf + (off - start), src,
	       (size_t)(end - start) - (size_t)(off - start) < len
		   ? (size_t)(end - start) - (size_t)(off - start)
		   : len);
	return bdev_write(bd, buf, start, n);
}

int fuzz_image(const uint8_t *data, size_t size, int writable, uint32_t max_units,
	       struct bdev **out)
{
	static uint8_t *buf;
	struct bdev *bd = NULL;
	char uri[48];
	uint32_t units;
	uint64_t bytes;
	size_t pos = 4;
	int rc;

	*out = NULL;
	if (size < 4)
		return -EINVAL;
	if (!buf && !(buf = bdev_alloc(2 * FUZZ_UNIT)))
		return -ENOMEM;
	units = get32(data);
	if (units > max_units)
		units = max_units;
	units = units < FUZZ_MIN_UNIT	? FUZZ_MIN_UNIT
		: units > FUZZ_MAX_UNIT ? FUZZ_MAX_UNIT
					: units;
	bytes = (uint64_t)units * FUZZ_UNIT;
	if (!writable && kept && kept->size == bytes) {
		bd = kept;
	} else {
		if (!writable && kept) {
			bdev_close(kept);
			kept = NULL;
		}
		snprintf(uri, sizeof(uri), "mem:%" PRIu64, bytes);
		rc = bdev_open(uri, 0, &bd);
		if (rc)
			return rc;
		if (!writable)
			kept = bd;
	}
	next = 0;
	bd->caps &= ~BDEV_CAP_READONLY;
	while (pos + 6 <= size) {
		uint32_t off = get32(data + pos);
		size_t len = (size_t)data[pos + 4] | (size_t)data[pos + 5] << 8;

		pos += 6;
		if (len > size - pos)
			break;
		rc = put(bd, buf, off, data + pos, len);
		if (rc) {
			fuzz_image_put(bd);
			return rc;
		}
		pos += len;
	}
	if (!writable)
		bd->caps |= BDEV_CAP_READONLY;
	*out = bd;
	return 0;
}

void fuzz_image_put(struct bdev *bd)
{
	if (bd != kept) {
		bdev_close(bd);
		return;
	}
	bd->caps &= ~BDEV_CAP_READONLY;
	for (size_t i = 0; i < next; i++)
		if (bdev_write_zeroes(bd, ext[i].start, ext[i].end - ext[i].start))
			abort(); /* cannot happen on a mem: device */
	next = 0;
}
