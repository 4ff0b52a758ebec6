/*
 * fsview.c - format detection and shared helpers of the file view used by
 * ls/stat/cat/cp/tree and vmfsmount (see fsview.h).
 */
#include "fsview.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bdev.h"

int fsview_open(const char *cmd, const char *uri, int rw, struct fsview **out)
{
	char err[400] = "";
	struct bdev *bd;
	enum tool_fmt fmt;
	int rc;

	*out = NULL;
	rc = tool_open(cmd, uri, !rw, &bd);
	if (rc < 0)
		return rc;
	fmt = tool_detect(bd);
	switch (fmt) {
	case TOOL_FMT_VMFS5:
	case TOOL_FMT_VMFS6: rc = real_fsview_open(bd, fmt, out, err, sizeof(err)); break;
	case TOOL_FMT_NATIVE: rc = native_fsview_open(bd, out, err, sizeof(err)); break;
	default:
		tool_err(cmd, "%s: no known file system (neither a libvmfs volume nor VMFS5/6)",
			 uri);
		bdev_close(bd);
		return -EINVAL;
	}
	if (rc < 0)
		tool_err(cmd, "%s: %s", uri, err[0] ? err : strerror(-rc));
	return rc;
}

int fsview_open_rw(const char *cmd, const char *uri, struct fsview **out)
{
	struct fsview *v;
	int rc = fsview_open(cmd, uri, 0, &v);

	*out = NULL;
	if (rc < 0)
		return rc;
	if (!v->ops->import) {
		tool_err(cmd, "%s: real VMFS datastores are read-only (%s)", uri, v->kind);
		fsview_close(v);
		return -EROFS;
	}
	fsview_close(v);
	return fsview_open(cmd, uri, 1, out);
}

void fsview_close(struct fsview *v)
{
	if (v)
		v->ops->close(v);
}

const char *fsview_strerror(struct fsview *v, int err)
{
	if (err == -EUCLEAN && v->ops->errmsg)
		return v->ops->errmsg(v);
	return strerror(-err);
}

void fsview_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

const char *fsview_type_name(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR: return "dir";
	case S_IFLNK: return "symlink";
	case S_IFIFO: return "fifo";
	case S_IFCHR: return "chardev";
	case S_IFBLK: return "blockdev";
	case S_IFSOCK: return "socket";
	default: return "file";
	}
}

void fsview_mode_str(uint32_t mode, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";

	switch (mode & S_IFMT) {
	case S_IFDIR: out[0] = 'd'; break;
	case S_IFLNK: out[0] = 'l'; break;
	case S_IFIFO: out[0] = 'p'; break;
	case S_IFCHR: out[0] = 'c'; break;
	case S_IFBLK: out[0] = 'b'; break;
	case S_IFSOCK: out[0] = 's'; break;
	default: out[0] = '-'; break;
	}
	for (int i = 0; i < 9; i++)
		out[i + 1] = mode & (1u << (8 - i)) ? rwx[i] : '-';
	if (mode & S_ISUID)
		out[3] = mode & S_IXUSR ? 's' : 'S';
	if (mode & S_ISGID)
		out[6] = mode & S_IXGRP ? 's' : 'S';
	if (mode & S_ISVTX)
		out[9] = mode & S_IXOTH ? 't' : 'T';
	out[10] = 0;
}

void fsview_time_str(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(out, 32, "%lld", (long long)t);
}

static int list_cb(void *arg, const char *name, uint64_t ino)
{
	struct fsview_dir *d = arg;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 32;
		struct fsview_dent *e = realloc(d->e, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		d->e = e;
		d->cap = cap;
	}
	d->e[d->n].name = strdup(name);
	if (!d->e[d->n].name)
		return -ENOMEM;
	d->e[d->n++].ino = ino;
	return 0;
}

static int dent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fsview_dent *)a)->name, ((const struct fsview_dent *)b)->name);
}

int fsview_list(struct fsview *v, uint64_t ino, struct fsview_dir *d)
{
	int rc;

	memset(d, 0, sizeof(*d));
	rc = v->ops->readdir(v, ino, list_cb, d);
	if (rc < 0) {
		fsview_dir_free(d);
		return rc;
	}
	if (d->n)
		qsort(d->e, d->n, sizeof(*d->e), dent_cmp);
	return 0;
}

void fsview_dir_free(struct fsview_dir *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->e[i].name);
	free(d->e);
	memset(d, 0, sizeof(*d));
}

int fsview_join(char *out, size_t len, const char *dir, const char *name)
{
	size_t dl = strlen(dir);
	int n = snprintf(out, len, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int fsview_split(const char *arg, char *dev, size_t devlen, const char **path)
{
	const char *p = NULL;

	for (const char *s = strstr(arg, ":/"); s; s = strstr(s + 1, ":/"))
		p = s;
	if (!p || p == arg || (size_t)(p - arg) >= devlen)
		return 0;
	memcpy(dev, arg, (size_t)(p - arg));
	dev[p - arg] = 0;
	*path = p + 1;
	return 1;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

#define COPY_CHUNK (1u << 20)

int fsview_copy_out(struct fsview *v, uint64_t ino, int out, int *wrote_err)
{
	uint8_t *buf = malloc(COPY_CHUNK);
	uint64_t off = 0;
	void *fh;
	int rc;

	*wrote_err = 0;
	if (!buf)
		return -ENOMEM;
	rc = v->ops->open(v, ino, &fh);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	for (;;) {
		ssize_t n = v->ops->pread(v, fh, off, buf, COPY_CHUNK);

		if (n <= 0) {
			rc = (int)n;
			break;
		}
		rc = write_all(out, buf, (size_t)n);
		if (rc < 0) {
			*wrote_err = 1;
			break;
		}
		off += (uint64_t)n;
		tool_progress_add(tool_progress_out, (uint64_t)n);
	}
	v->ops->release(v, fh);
	free(buf);
	return rc;
}

/* Open addressing, ino + 1 stored so 0 marks a free slot. */
static int seen_insert(uint64_t *slot, size_t cap, uint64_t key)
{
	size_t i = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 17) & (cap - 1);

	while (slot[i]) {
		if (slot[i] == key)
			return 0;
		i = (i + 1) & (cap - 1);
	}
	slot[i] = key;
	return 1;
}

int fsview_seen_add(struct fsview_seen *s, uint64_t ino)
{
	int rc;

	if ((s->n + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint64_t *slot = calloc(cap, sizeof(*slot));

		if (!slot)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++)
			if (s->slot[i])
				seen_insert(slot, cap, s->slot[i]);
		free(s->slot);
		s->slot = slot;
		s->cap = cap;
	}
	rc = seen_insert(s->slot, s->cap, ino + 1);
	s->n += (size_t)rc;
	return rc;
}

void fsview_seen_free(struct fsview_seen *s)
{
	free(s->slot);
	memset(s, 0, sizeof(*s));
}
