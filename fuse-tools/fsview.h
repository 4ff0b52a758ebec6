/*
 * fsview.h - a small format-neutral, read-mostly view of a file system, used
 * by the file commands of vmfsctl (ls, stat, cat, cp, tree) and by the FUSE
 * mount vmfsmount.
 *
 * One implementation per on-disk format: real VMFS5/6 datastores
 * (real_fsview.c, over libvmfs/vmfsr.h, read-only) and native libvmfs
 * volumes (native_fsview.c, over libvmfs/vmfs.h).
 *
 * Files are named by a 64-bit inode number; the root is view->root. Every
 * op returns 0 (or a count) or a negative errno; on -EUCLEAN errmsg() says
 * which structure is corrupt. An op may be NULL when the format lacks it
 * (import == NULL means the view is read-only).
 */
#ifndef VMFSCTL_FSVIEW_H
#define VMFSCTL_FSVIEW_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "tool.h"

struct bdev;
struct fsview;

struct fsview_stat {
	uint64_t ino;
	uint32_t mode; /* S_IFMT bits and permissions */
	uint32_t nlink, uid, gid;
	uint64_t size;
	uint64_t blocks; /* 512-byte units */
	uint64_t blksize;
	int64_t atime, mtime, ctime;
	uint32_t rdev_major, rdev_minor; /* character and block devices */
};

struct fsview_statfs {
	uint64_t bsize, blocks, bfree, files, ffree;
	uint32_t namemax;
};

enum { FSVIEW_THIN = 0, FSVIEW_LAZY = 1, FSVIEW_EAGER = 2 };

typedef int (*fsview_dir_cb)(void *arg, const char *name, uint64_t ino);

struct fsview_ops {
	/* Absolute path; follow: also follow a symlink in the last component. */
	int (*lookup)(struct fsview *v, const char *path, int follow, uint64_t *ino);
	int (*getattr)(struct fsview *v, uint64_t ino, struct fsview_stat *st);
	int (*readdir)(struct fsview *v, uint64_t ino, fsview_dir_cb cb, void *arg);
	int (*readlink)(struct fsview *v, uint64_t ino, char *buf, size_t len);
	int (*open)(struct fsview *v, uint64_t ino, void **fh);
	ssize_t (*pread)(struct fsview *v, void *fh, uint64_t off, void *buf, size_t len);
	void (*release)(struct fsview *v, void *fh);
	int (*statfs)(struct fsview *v, struct fsview_statfs *st);
	/* Creates `path` with the content of local fd `src` (cp into a volume). */
	int (*import)(struct fsview *v, const char *path, int src, uint32_t mode);
	/* Name operations of writable formats (NULL: read-only). */
	int (*mkdir)(struct fsview *v, const char *path, uint32_t mode);
	int (*unlink)(struct fsview *v, const char *path);
	int (*rmdir)(struct fsview *v, const char *path);
	/* Creates a file of `size` bytes: FSVIEW_THIN (a hole), FSVIEW_LAZY
	 * (every block allocated, reads as zeroes, nothing written) or
	 * FSVIEW_EAGER (every block allocated and zeroed on disk). */
	int (*mkfile)(struct fsview *v, const char *path, uint32_t mode, uint64_t size, int kind);
	const char *(*errmsg)(struct fsview *v);
	void (*close)(struct fsview *v);
};

struct fsview {
	const struct fsview_ops *ops;
	struct bdev *bd;
	enum tool_fmt fmt;
	const char *kind; /* "VMFS5", "VMFS6", "native" */
	uint64_t root;
	void *priv;
};

/* Implementations: each takes ownership of bd (closed by view->ops->close). */
int real_fsview_open(struct bdev *bd, enum tool_fmt fmt, struct fsview **out, char *err,
		     size_t errlen);
int native_fsview_open(struct bdev *bd, struct fsview **out, char *err, size_t errlen);

/* Opens the device (read-only unless rw), detects its format and builds the
 * view, printing "vmfsctl CMD: DEVICE: what is wrong" on failure. */
int fsview_open(const char *cmd, const char *uri, int rw, struct fsview **out);
/* The same for writing: detects the format read-only first, so a real VMFS
 * datastore is never opened for writing ("real VMFS datastores are
 * read-only", -EROFS); a writable format (import != NULL) is then reopened
 * read-write. */
int fsview_open_rw(const char *cmd, const char *uri, struct fsview **out);
void fsview_close(struct fsview *v);

/* Message for err from an op of v ("corrupt: ..." or strerror). */
const char *fsview_strerror(struct fsview *v, int err);

/* A directory's entries, sorted by name (strcmp). */
struct fsview_dent {
	char *name;
	uint64_t ino;
};
struct fsview_dir {
	struct fsview_dent *e;
	size_t n, cap;
};
int fsview_list(struct fsview *v, uint64_t ino, struct fsview_dir *d);
void fsview_dir_free(struct fsview_dir *d);

/* Joins dir and name into out ("/" + "a" -> "/a"); -ENAMETOOLONG. */
int fsview_join(char *out, size_t len, const char *dir, const char *name);

/* Splits "DEVICE:/path" at its last ":/" (URIs keep their own colons);
 * returns 1 and fills dev/path, 0 when arg names no device. */
int fsview_split(const char *arg, char *dev, size_t devlen, const char **path);

/* Streams file ino to the local fd out; returns 0 or a negative errno
 * (-EPIPE etc. from writing carry their errno). *wrote_err is set when
 * the failure was on the local side. */
int fsview_copy_out(struct fsview *v, uint64_t ino, int out, int *wrote_err);

/* A set of inode numbers (directories already visited by ls -R / tree, so
 * a corrupt volume whose entries point back or fan out cannot loop or
 * explode). fsview_seen_add() returns 1 when ino was new, 0 when already
 * there, -ENOMEM. */
struct fsview_seen {
	uint64_t *slot;
	size_t n, cap;
};
int fsview_seen_add(struct fsview_seen *s, uint64_t ino);
void fsview_seen_free(struct fsview_seen *s);

/* Prints s as a JSON string (quoted, escaped). */
void fsview_json_str(FILE *f, const char *s);
/* "file", "dir", "symlink", "fifo", "chardev", "blockdev", "socket". */
const char *fsview_type_name(uint32_t mode);
/* "drwxr-xr-x" style (type letter - d l p c b s), 10 chars + NUL. */
void fsview_mode_str(uint32_t mode, char out[11]);
/* "2021-08-11 07:37:49" in UTC. */
void fsview_time_str(int64_t t, char out[32]);

#endif
