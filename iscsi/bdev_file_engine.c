/*
 * bdev_file_engine.c - I/O engines of the file backend for bdev_submit()
 * batches. "sync" loops over pread/pwrite.
 */
#include "bdev.h"
#include "bdev_file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int file_engine_init(struct file_priv *p, const char *want, char *name, size_t namelen)
{
	if (strcmp(want, "auto") != 0 && strcmp(want, "sync") != 0)
		return -EOPNOTSUPP;
	p->engine_kind = FILE_ENGINE_SYNC;
	p->engine = NULL;
	snprintf(name, namelen, "sync");
	return 0;
}

void file_engine_fini(struct file_priv *p)
{
	(void)p;
}

int file_engine_submit(struct bdev *bd, struct bdev_io *ios, unsigned n)
{
	int first = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		if (ios[i].op == BDEV_OP_READ)
			ios[i].result = bd->ops->read(bd, ios[i].buf, ios[i].off, ios[i].len);
		else
			ios[i].result = bd->ops->write(bd, ios[i].buf, ios[i].off, ios[i].len);
		if (ios[i].result && !first)
			first = ios[i].result;
	}
	return first;
}
