/*
 * iscsi_lost.c - a target that disappears in the middle of a workload.
 *
 * usage: iscsi_lost URI TARGET_PID DIR   (URI should carry timeout=T)
 *  1. writes and flushes a pattern, then runs a workload (batches of reads
 *     and writes, ATS) in a loop;
 *  2. hung target: SIGSTOP of TARGET_PID. The next operation must fail
 *     within T + 3 s with -BDEV_E_TARGET_LOST or -ETIMEDOUT, and so must
 *     each of the next 3 (nothing hangs); then SIGCONT;
 *  3. the same bdev must work again once the target answers (a new
 *     reconnection round), within 20 s;
 *  4. dead target: SIGKILL of TARGET_PID: the next operation fails within
 *     T + 3 s; creates DIR/lost and waits (20 s at most) for the test script
 *     to restart the target, which it signals by creating DIR/back;
 *  5. the same bdev recovers and reads back the pattern flushed in step 1;
 *     bdev_close() returns within 5 s.
 * Exit 0 when all of it held; prints each measured time.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bdev.h"

#define REGION (1u << 20)

static struct bdev *bd;
static unsigned char *pat, *buf, *sec, *sec2;
static double tmo;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 2654435761u + seed * 40503u) >> 11);
}

/* One round of the workload: a batch of 8 writes + 8 reads, then an ATS. */
static int work(void)
{
	struct bdev_io ios[16];
	int rc;

	for (int i = 0; i < 8; i++) {
		ios[i] =
		    (struct bdev_io){BDEV_OP_WRITE, buf + i * 65536, REGION + i * 65536, 65536, 0};
		ios[8 + i] = (struct bdev_io){BDEV_OP_READ, buf + (8 + i) * 65536,
					      2 * REGION + i * 65536, 65536, 0};
	}
	rc = bdev_submit(bd, ios, 16);
	if (rc)
		return rc;
	rc = bdev_read(bd, sec, 3 * REGION, bd->lsec);
	if (rc)
		return rc;
	memcpy(sec2, sec, bd->lsec);
	sec2[0]++;
	rc = bdev_ats(bd, 3 * REGION, sec, sec2, NULL);
	return rc == -BDEV_E_MISCOMPARE ? 0 : rc;
}

/* Runs the workload until it fails; returns seconds from t0 to the error. */
static double until_error(double t0, int *err)
{
	int rc;

	while ((rc = work()) == 0)
		if (now_s() - t0 > tmo + 30)
			break;
	*err = rc;
	return now_s() - t0;
}

static int check_error(const char *what, int rc, double dt)
{
	printf("%s: %s after %.2f s (bound %.0f s)\n", what, rc ? bdev_strerror(rc) : "no error",
	       dt, tmo + 3);
	if (rc != -BDEV_E_TARGET_LOST && rc != -ETIMEDOUT)
		return 1;
	return dt > tmo + 3;
}

static int wait_recovered(const char *what)
{
	double t0 = now_s();
	int rc;

	while ((rc = work()) != 0 && now_s() - t0 < 20) {
		struct timespec ts = {0, 200000000};

		nanosleep(&ts, NULL);
	}
	printf("%s: %s after %.2f s\n", what, rc ? bdev_strerror(rc) : "recovered", now_s() - t0);
	return rc != 0;
}

static int hung_target(pid_t pid)
{
	double t0, dt;
	int rc, bad = 0;

	kill(pid, SIGSTOP);
	t0 = now_s();
	dt = until_error(t0, &rc);
	bad |= check_error("stopped target, first error", rc, dt);
	for (int i = 0; i < 3; i++) {
		double t1 = now_s();

		rc = work();
		bad |= check_error("stopped target, next operation", rc, now_s() - t1);
	}
	kill(pid, SIGCONT);
	return bad | wait_recovered("target continued");
}

static int dead_target(pid_t pid, const char *dir)
{
	char path[4096];
	double t0, dt;
	struct stat st;
	int rc, bad;

	kill(pid, SIGKILL);
	t0 = now_s();
	dt = until_error(t0, &rc);
	bad = check_error("killed target, first error", rc, dt);
	t0 = now_s();
	rc = work();
	bad |= check_error("killed target, next operation", rc, now_s() - t0);
	snprintf(path, sizeof(path), "%s/lost", dir);
	fclose(fopen(path, "w"));
	snprintf(path, sizeof(path), "%s/back", dir);
	for (t0 = now_s(); stat(path, &st) != 0 && now_s() - t0 < 20;) {
		struct timespec ts = {0, 100000000};

		nanosleep(&ts, NULL);
	}
	return bad | wait_recovered("target restarted");
}

int main(int argc, char **argv)
{
	const char *t;
	double t0;
	int rc, bad = 0;

	if (argc != 4 || !(t = strstr(argv[1], "timeout="))) {
		fprintf(stderr, "usage: %s URI?timeout=T TARGET_PID DIR\n", argv[0]);
		return 2;
	}
	tmo = atof(t + 8);
	alarm(170);
	rc = bdev_open(argv[1], 0, &bd);
	if (rc) {
		fprintf(stderr, "open: %s\n", bdev_strerror(rc));
		return 2;
	}
	pat = bdev_alloc(REGION);
	buf = bdev_alloc(REGION);
	sec = bdev_alloc(bd->lsec);
	sec2 = bdev_alloc(bd->lsec);
	fill(pat, REGION, 3);
	if (bdev_write(bd, pat, 0, REGION) || bdev_flush(bd) || work()) {
		fprintf(stderr, "workload failed before any fault\n");
		return 2;
	}
	bad |= hung_target((pid_t)atol(argv[2]));
	bad |= dead_target((pid_t)atol(argv[2]), argv[3]);
	rc = bdev_read(bd, buf, 0, REGION);
	if (rc || memcmp(buf, pat, REGION) != 0) {
		printf("flushed data lost or unreadable after the restart: %s\n",
		       bdev_strerror(rc));
		bad = 1;
	}
	t0 = now_s();
	bdev_close(bd);
	printf("close took %.2f s\n", now_s() - t0);
	bad |= now_s() - t0 > 5;
	printf("%s\n", bad ? "FAILED" : "ok");
	return bad;
}
