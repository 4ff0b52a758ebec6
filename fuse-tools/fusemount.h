/*
 * fusemount.h - shared by the two halves of vmfsmount: fusemount.c (command
 * line, format detection, the read-only mount of real VMFS5/6 datastores
 * through fsview) and fusemount_native.c (the read-write mount of native
 * libvmfs volumes over vmfs.h).
 */
#ifndef VMFSCTL_FUSEMOUNT_H
#define VMFSCTL_FUSEMOUNT_H

#define FM_OPTS_MAX 4096

/* The parsed command line. */
struct fm_args {
	char *argv0;
	const char *dev, *mnt;
	int foreground, debug;
	int ro;		   /* -o ro */
	const char *host;  /* -o host=NAME (native volumes) */
	long open_wait_ms; /* -o open_wait=MS (native volumes), -1: default */
	int threads;	   /* -o threads=N, -s: 1 (native volumes), 0: default */
	long cache_mb;	   /* -o cache_mb=N (native volumes): 0 default, -1 none */
	int keep_locks;	   /* -o keep_locks (native volumes) */
	/* Every other -o option, comma-separated, passed to FUSE. */
	char fopts[FM_OPTS_MAX];
};

/* Mounts the native volume a->dev on a->mnt and serves it until unmounted
 * (fusermount3 -u) or signalled (SIGTERM, SIGINT, SIGHUP); returns the exit
 * status of vmfsmount. Without -f it forks: the parent returns 0 once the
 * mount is ready, or the child's status when mounting failed. */
int fm_native_main(const struct fm_args *a);

#endif
