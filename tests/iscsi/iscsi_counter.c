/*
 * iscsi_counter.c - the lock-counter test over a shared LUN: NPROC processes,
 * each with its own bdev (its own iSCSI session), add 1 to a 64-bit counter
 * in one sector N times each through read + bdev_ats() retry loops. The
 * final count must be exactly NPROC * N: any lost update (two sessions both
 * succeeding from the same old value) makes it smaller.
 *
 * usage: iscsi_counter URI NPROC N [SECTOR_INDEX [noats]]
 * "noats" replaces the ATS by a plain write (the negative control: the
 * count then comes out short, which shows the check can fail).
 * Prints "method=M count=C expected=E seconds=S ats_per_s=R" and exits 0
 * when C == E, 1 otherwise (2 on a usage or I/O error).
 */
#include "bdev.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One contender: N successful increments; exit 0, or 2 on an error. */
static int contender(const char *uri, long n, uint64_t off, int noats)
{
	struct bdev *bd;
	unsigned char *cur, *next;
	int rc = bdev_open(uri, 0, &bd);

	if (rc) {
		fprintf(stderr, "pid %d: open %s: %s\n", getpid(), uri, bdev_strerror(rc));
		return 2;
	}
	cur = bdev_alloc(bd->lsec);
	next = bdev_alloc(bd->lsec);
	rc = bdev_read(bd, cur, off, bd->lsec);
	for (long i = 0; i < n && rc == 0;) {
		uint64_t v;

		memcpy(next, cur, bd->lsec);
		memcpy(&v, next, sizeof(v));
		v++;
		memcpy(next, &v, sizeof(v));
		rc =
		    noats ? bdev_write(bd, next, off, bd->lsec) : bdev_ats(bd, off, cur, next, cur);
		if (noats && rc == 0)
			rc = bdev_read(bd, next, off, bd->lsec);
		if (rc == 0) {
			memcpy(cur, next, bd->lsec);
			i++;
		} else if (rc == -BDEV_E_MISCOMPARE) {
			rc = 0; /* cur holds the new value: retry */
		}
	}
	if (rc)
		fprintf(stderr, "pid %d: ats: %s\n", getpid(), bdev_strerror(rc));
	bdev_free(cur);
	bdev_free(next);
	bdev_close(bd);
	return rc ? 2 : 0;
}

int main(int argc, char **argv)
{
	struct bdev *bd;
	unsigned char *buf;
	long nproc, n, sector = argc > 4 ? atol(argv[4]) : 7;
	int noats = argc > 5 && !strcmp(argv[5], "noats");
	uint64_t off, v;
	double t0;
	int rc, bad = 0;

	if (argc < 4 || (nproc = atol(argv[2])) < 1 || (n = atol(argv[3])) < 1 || sector < 0) {
		fprintf(stderr, "usage: %s URI NPROC N [SECTOR]\n", argv[0]);
		return 2;
	}
	rc = bdev_open(argv[1], 0, &bd);
	if (rc) {
		fprintf(stderr, "open %s: %s\n", argv[1], bdev_strerror(rc));
		return 2;
	}
	off = (uint64_t)sector * bd->lsec;
	buf = bdev_alloc(bd->lsec);
	rc = bdev_write(bd, buf, off, bd->lsec); /* counter = 0 */
	if (rc) {
		fprintf(stderr, "write: %s\n", bdev_strerror(rc));
		return 2;
	}
	t0 = now_s();
	for (long i = 0; i < nproc; i++) {
		pid_t pid = fork();

		if (pid == 0)
			_exit(contender(argv[1], n, off, noats));
		if (pid < 0)
			return 2;
	}
	for (long i = 0; i < nproc; i++) {
		int st;

		if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			bad++;
	}
	t0 = now_s() - t0;
	rc = bdev_read(bd, buf, off, bd->lsec);
	memcpy(&v, buf, sizeof(v));
	printf("method=%s count=%" PRIu64 " expected=%ld seconds=%.2f ats_per_s=%.0f\n",
	       bdev_ats_method_name(bd), v, nproc * n, t0, (double)(nproc * n) / t0);
	bdev_free(buf);
	bdev_close(bd);
	if (rc || bad) {
		fprintf(stderr, "%d contender(s) failed, read %d\n", bad, rc);
		return 2;
	}
	return v == (uint64_t)(nproc * n) ? 0 : 1;
}
