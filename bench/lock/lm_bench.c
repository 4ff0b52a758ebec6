/*
 * lm_bench.c - lockmgr side of bench/lock (run by bench/lock/run.sh):
 *   lm_bench latency  IMG N                 uncontended acquire+release, 1 host
 *   lm_bench contend  IMG HOSTS SECS        HOSTS processes loop acquire/release
 *   lm_bench takeover IMG [INTERVAL TIMEOUT] SIGKILL the holder, time until
 *                                           another host holds the lock
 * Each prints one JSON object. IMG is created (16 MiB, zeroed); heartbeat
 * region at 1 MiB (64 slots), the lock at 2 MiB. Default timing 1 s / 8 s.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bdev.h"
#include "lockmgr.h"

#define LOCK_ADDR (2u << 20)

static struct lm_geom geom = {1u << 20, 64, 0, 0};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "lm_bench: %s: %s\n", what, lm_strerror(rc));
	exit(1);
}

static void make_image(const char *img)
{
	int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || ftruncate(fd, 16 << 20) < 0) {
		perror(img);
		exit(1);
	}
	close(fd);
}

struct host {
	struct bdev *bd;
	struct lm *lm;
};

static void host_up(struct host *h, const char *img)
{
	int rc = bdev_open(img, 0, &h->bd);

	if (rc < 0)
		die("bdev_open", rc);
	rc = lm_open(h->bd, &geom, NULL, &h->lm);
	if (rc == 0)
		rc = lm_join(h->lm);
	if (rc < 0)
		die("join", rc);
}

static void host_down(struct host *h)
{
	lm_close(h->lm);
	bdev_close(h->bd);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int latency(const char *img, int n)
{
	double *t = calloc((size_t)n, sizeof(double)), sum = 0;
	struct host h;

	make_image(img);
	double j0 = now_s();
	host_up(&h, img);
	double join_us = (now_s() - j0) * 1e6;
	for (int i = 0; i < n; i++) {
		struct lm_lock *lk;
		double t0 = now_s();
		int rc = lm_lock_acquire(h.lm, LOCK_ADDR, LM_MODE_EX, 0, &lk);

		if (rc < 0)
			die("acquire", rc);
		rc = lm_lock_release(lk);
		if (rc < 0)
			die("release", rc);
		t[i] = (now_s() - t0) * 1e6;
		sum += t[i];
	}
	qsort(t, (size_t)n, sizeof(double), cmp_d);
	printf("{\"mean\": %.1f, \"p50\": %.1f, \"p99\": %.1f, \"join_us\": %.1f}\n", sum / n,
	       t[n / 2], t[(int)(n * 0.99)], join_us);
	host_down(&h);
	free(t);
	return 0;
}

struct shm {
	_Atomic int ready, go, last;
	_Atomic long acq, hand;
};

static void contend_host(const char *img, struct shm *m, int id, double secs)
{
	struct host h;
	double end;

	host_up(&h, img);
	atomic_fetch_add(&m->ready, 1);
	while (!atomic_load(&m->go))
		usleep(1000);
	end = now_s() + secs;
	while (now_s() < end) {
		struct lm_lock *lk;
		int rc = lm_lock_acquire(h.lm, LOCK_ADDR, LM_MODE_EX, 60000, &lk);

		if (rc < 0)
			die("acquire", rc);
		atomic_fetch_add(&m->acq, 1);
		if (atomic_exchange(&m->last, id) != id)
			atomic_fetch_add(&m->hand, 1);
		rc = lm_lock_release(lk);
		if (rc < 0)
			die("release", rc);
	}
	host_down(&h);
	_exit(0);
}

static int contend(const char *img, int k, double secs)
{
	struct shm *m =
	    mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pids[64];

	make_image(img);
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < k; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			contend_host(img, m, i + 1, secs);
	}
	while (atomic_load(&m->ready) < k)
		usleep(1000);
	atomic_store(&m->go, 1);
	for (int i = 0; i < k; i++)
		waitpid(pids[i], NULL, 0);
	printf("{\"acq_per_s\": %.1f, \"handoffs_per_s\": %.1f}\n", m->acq / secs, m->hand / secs);
	return 0;
}

static int takeover(const char *img)
{
	int p[2];
	pid_t v;
	char c;
	struct host h;
	struct lm_lock *lk;

	make_image(img);
	if (pipe(p) < 0)
		return 1;
	v = fork();
	if (v == 0) {
		host_up(&h, img);
		if (lm_lock_acquire(h.lm, LOCK_ADDR, LM_MODE_EX, 0, &lk) < 0)
			_exit(1);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	if (read(p[0], &c, 1) != 1)
		return 1;
	host_up(&h, img);
	sleep(1);
	kill(v, SIGKILL);
	double t0 = now_s();
	waitpid(v, NULL, 0);
	int rc = lm_lock_acquire(h.lm, LOCK_ADDR, LM_MODE_EX, -1, &lk);
	if (rc < 0)
		die("takeover acquire", rc);
	printf("{\"takeover_s\": %.2f, \"interval_ms\": %u, \"timeout_ms\": %u}\n", now_s() - t0,
	       geom.hb_interval_ms ? geom.hb_interval_ms : LM_DEFAULT_INTERVAL_MS,
	       geom.hb_timeout_ms ? geom.hb_timeout_ms : LM_DEFAULT_TIMEOUT_MS);
	lm_lock_release(lk);
	host_down(&h);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "latency"))
		return latency(argv[2], atoi(argv[3]));
	if (argc >= 5 && !strcmp(argv[1], "contend"))
		return contend(argv[2], atoi(argv[3]), atof(argv[4]));
	if (argc >= 3 && !strcmp(argv[1], "takeover")) {
		if (argc >= 5) {
			geom.hb_interval_ms = (uint32_t)atoi(argv[3]);
			geom.hb_timeout_ms = (uint32_t)atoi(argv[4]);
		}
		return takeover(argv[2]);
	}
	fprintf(stderr, "usage: lm_bench latency IMG N | contend IMG HOSTS SECS | "
			"takeover IMG [INTERVAL_MS TIMEOUT_MS]\n");
	return 2;
}
