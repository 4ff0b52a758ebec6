/*
 * bdev_file.h - private to the file backend: its state and its I/O engines
 * (bdev_file.c does open/ats/flush; bdev_file_engine.c runs batches).
 */
#ifndef LIBVMFS_BDEV_FILE_H
#define LIBVMFS_BDEV_FILE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct bdev;
struct bdev_io;

#define FILE_ATS_STRIPES 64

struct file_priv {
	int fd;
	int direct; /* opened with O_DIRECT */
	int is_blk; /* a block device, not a regular file */
	int nosync; /* URI option nosync=1: flush does nothing (tests only) */
	/* Serialise ats() of threads sharing fd on the same sector: OFD locks of
	 * one description do not exclude each other. Striped by sector number,
	 * so ATS on unrelated sectors (a heartbeat and a contended lock) never
	 * queue behind each other. */
	pthread_mutex_t ats_mu[FILE_ATS_STRIPES];
	void *engine;	 /* engine state (bdev_file_engine.c) */
	int engine_kind; /* FILE_ENGINE_* */
	size_t maxio;	 /* largest engine request in bytes, 0 = no limit */
};

enum { FILE_ENGINE_SYNC = 0, FILE_ENGINE_AIO = 1, FILE_ENGINE_URING = 2 };

int file_pread_all(int fd, void *buf, size_t len, uint64_t off);
int file_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);

/* Chooses the engine named by `want` ("auto", "uring", "aio", "sync");
 * writes the chosen name into `name`. Asking for an engine the kernel or the
 * build lacks fails with -EOPNOTSUPP; "auto" falls back silently. */
int file_engine_init(struct file_priv *p, const char *want, char *name, size_t namelen);
void file_engine_fini(struct file_priv *p);
int file_engine_submit(struct bdev *bd, struct bdev_io *ios, unsigned n);

#endif
