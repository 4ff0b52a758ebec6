/*
 * iscsi_bench.c - the iSCSI backend's data path and ATS, to set beside raw
 * libiscsi (iscsi-perf) in bench/iscsi/run.sh.
 *
 * usage: iscsi_bench URI SECONDS
 * Prints one line per measurement: "name value unit":
 *   read4k_qd1     4 KiB random reads, one at a time (bdev_read)
 *   read4k_qd32    4 KiB random reads in batches of 32 (bdev_submit)
 *   write4k_qd32   4 KiB random writes in batches of 32
 *   seqread_1m     1 MiB sequential reads, batches of 8 (MB/s)
 *   seqwrite_1m    1 MiB sequential writes, batches of 8 (MB/s)
 *   ats_us         mean latency of an uncontended ATS (microseconds)
 * Random offsets are drawn over the first 256 MiB of the device (or all of
 * it if smaller), which the script pre-writes.
 *
 * usage: iscsi_bench URI SECONDS --file   (URI holds a fresh libvmfs volume)
 * The same through the file system: a 128 MiB eager-zeroed file, read and
 * written with vmfs_read/vmfs_write by 1, 32 or 8 threads (file_read4k_qd1,
 * file_read4k_qd32, file_write4k_qd32, file_seqread_1m, file_seqwrite_1m);
 * file_open_close_us, an open + close (the file's lock taken and released);
 * file_takeover_s, how long another host's open for writing waits after the
 * holder is killed (takeover, key preempted, journal replayed).
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bdev.h"
#include "vmfs.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t span;
static unsigned long long rng = 88172645463325252ull;

static uint64_t rand_off(size_t len)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (rng % (span / len)) * len;
}

/* IOPS of batches of `qd` requests of `len` bytes for `secs`. */
static double run_batches(struct bdev *bd, enum bdev_op op, size_t len, unsigned qd, int seq,
			  double secs)
{
	struct bdev_io ios[64];
	unsigned char *buf = bdev_alloc(len * qd);
	uint64_t n = 0, pos = 0;
	double t0 = now_s(), t;

	do {
		for (unsigned i = 0; i < qd; i++) {
			uint64_t off = seq ? pos : rand_off(len);

			pos = (pos + len) % (span - span % len);
			ios[i] = (struct bdev_io){op, buf + i * len, off, len, 0};
		}
		if (bdev_submit(bd, ios, qd)) {
			fprintf(stderr, "submit failed\n");
			exit(1);
		}
		n += qd;
		t = now_s() - t0;
	} while (t < secs);
	bdev_free(buf);
	return (double)n / t;
}

static double read_qd1(struct bdev *bd, double secs)
{
	unsigned char *buf = bdev_alloc(4096);
	uint64_t n = 0;
	double t0 = now_s(), t;

	do {
		if (bdev_read(bd, buf, rand_off(4096), 4096)) {
			fprintf(stderr, "read failed\n");
			exit(1);
		}
		n++;
		t = now_s() - t0;
	} while (t < secs);
	bdev_free(buf);
	return (double)n / t;
}

static double ats_us(struct bdev *bd, double secs)
{
	unsigned char *a = bdev_alloc(bd->lsec), *b = bdev_alloc(bd->lsec);
	uint64_t off = 1024 * 1024 / bd->lsec * bd->lsec, n = 0;
	double t0, t;

	if (bdev_read(bd, a, off, bd->lsec))
		exit(1);
	t0 = now_s();
	do {
		memcpy(b, a, bd->lsec);
		b[0]++;
		if (bdev_ats(bd, off, a, b, NULL)) {
			fprintf(stderr, "ats failed\n");
			exit(1);
		}
		memcpy(a, b, bd->lsec);
		n++;
		t = now_s() - t0;
	} while (t < secs);
	bdev_free(a);
	bdev_free(b);
	return t / (double)n * 1e6;
}

/* ---- through the file system (--file): a preallocated file of a mounted
 * volume, the way a VM disk is used; queue depth = threads ------------- */

#define FILE_SIZE (128ull << 20)

struct fjob {
	struct vmfs_file *f;
	size_t len;
	int write, seq;
	unsigned idx, nthreads;
	double secs;
	uint64_t n;
};

static void *fjob_main(void *arg)
{
	struct fjob *j = arg;
	unsigned char *buf = bdev_alloc(j->len);
	unsigned long long r = 88172645463325252ull ^ (j->idx * 2654435761u);
	uint64_t pos = (uint64_t)j->idx * j->len, slots = FILE_SIZE / j->len;
	double t0 = now_s();

	memset(buf, 0x5a, j->len);
	do {
		uint64_t off;
		ssize_t got;

		if (j->seq) {
			off = pos % FILE_SIZE;
			pos += (uint64_t)j->nthreads * j->len;
		} else {
			r ^= r << 13;
			r ^= r >> 7;
			r ^= r << 17;
			off = (r % slots) * j->len;
		}
		got = j->write ? vmfs_write(j->f, buf, j->len, off)
			       : vmfs_read(j->f, buf, j->len, off);
		if (got != (ssize_t)j->len) {
			fprintf(stderr, "file I/O failed: %zd\n", got);
			exit(1);
		}
		j->n++;
	} while (now_s() - t0 < j->secs);
	bdev_free(buf);
	return NULL;
}

/* Operations per second with `qd` threads on f. */
static double file_rate(struct vmfs_file *f, size_t len, int write, int seq, unsigned qd,
			double secs)
{
	struct fjob j[64];
	pthread_t th[64];
	double t0 = now_s(), n = 0;

	for (unsigned i = 0; i < qd; i++) {
		j[i] = (struct fjob){f, len, write, seq, i, qd, secs, 0};
		pthread_create(&th[i], NULL, fjob_main, &j[i]);
	}
	for (unsigned i = 0; i < qd; i++) {
		pthread_join(th[i], NULL);
		n += (double)j[i].n;
	}
	return n / (now_s() - t0);
}

static int file_bench(const char *uri, double secs)
{
	struct vmfs_mount_opts o = {.hostname = "bench1", .lock_timeout_ms = 120000};
	struct vmfs_file *f;
	struct vmfs *fs;
	double t0, t;
	uint64_t n = 0;
	int rc, p[2];
	pid_t child;
	char c;

	rc = vmfs_mount(uri, &o, &fs);
	if (rc < 0) {
		fprintf(stderr, "mount: %s (%s)\n", vmfs_strerror(rc), vmfs_errmsg(NULL));
		return 1;
	}
	rc = vmfs_create_thick(fs, "/disk.flat", 0644, FILE_SIZE, 1);
	if (rc == 0)
		rc = vmfs_open(fs, "/disk.flat", O_RDWR, 0, &f);
	if (rc < 0) {
		fprintf(stderr, "preallocated file: %s (%s)\n", vmfs_strerror(rc), vmfs_errmsg(fs));
		return 1;
	}
	printf("file_read4k_qd1 %.0f IOPS\n", file_rate(f, 4096, 0, 0, 1, secs));
	printf("file_read4k_qd32 %.0f IOPS\n", file_rate(f, 4096, 0, 0, 32, secs));
	printf("file_write4k_qd32 %.0f IOPS\n", file_rate(f, 4096, 1, 0, 32, secs));
	printf("file_seqread_1m %.1f MB/s\n", file_rate(f, 1 << 20, 0, 1, 8, secs) * 1.048576);
	printf("file_seqwrite_1m %.1f MB/s\n", file_rate(f, 1 << 20, 1, 1, 8, secs) * 1.048576);
	vmfs_close(f);
	/* open + close of a file: its lock acquired and released over iSCSI */
	t0 = now_s();
	do {
		rc = vmfs_open(fs, "/disk.flat", O_RDWR, 0, &f);
		if (rc == 0)
			rc = vmfs_close(f);
		if (rc < 0) {
			fprintf(stderr, "open/close: %s\n", vmfs_strerror(rc));
			return 1;
		}
		n++;
		t = now_s() - t0;
	} while (t < secs);
	printf("file_open_close_us %.0f us\n", t / (double)n * 1e6);
	vmfs_umount(fs);
	/* takeover: a host holding the file for writing is killed; another
	 * host's open for writing waits for the takeover and the replay */
	if (pipe(p) < 0)
		return 1;
	child = fork();
	if (child == 0) {
		struct vmfs_mount_opts co = {.hostname = "victim"};

		if (vmfs_mount(uri, &co, &fs) < 0 || vmfs_open(fs, "/disk.flat", O_RDWR, 0, &f) < 0)
			_exit(1);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1) {
		fprintf(stderr, "the victim host never opened the file\n");
		return 1;
	}
	o.hostname = "taker";
	rc = vmfs_mount(uri, &o, &fs);
	if (rc < 0)
		return 1;
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	t0 = now_s();
	rc = vmfs_open(fs, "/disk.flat", O_RDWR, 0, &f);
	t = now_s() - t0;
	if (rc < 0) {
		fprintf(stderr, "takeover open: %s (%s)\n", vmfs_strerror(rc), vmfs_errmsg(fs));
		return 1;
	}
	printf("file_takeover_s %.1f s\n", t);
	vmfs_close(f);
	vmfs_umount(fs);
	return 0;
}

int main(int argc, char **argv)
{
	struct bdev *bd;
	double secs;
	int rc;

	if (argc == 4 && !strcmp(argv[3], "--file") && (secs = atof(argv[2])) > 0)
		return file_bench(argv[1], secs);
	if (argc != 3 || (secs = atof(argv[2])) <= 0) {
		fprintf(stderr, "usage: %s URI SECONDS [--file]\n", argv[0]);
		return 2;
	}
	rc = bdev_open(argv[1], 0, &bd);
	if (rc) {
		fprintf(stderr, "open: %s\n", bdev_strerror(rc));
		return 1;
	}
	span = bd->size < (256ull << 20) ? bd->size : 256ull << 20;
	printf("method %s -\n", bdev_ats_method_name(bd));
	printf("read4k_qd1 %.0f IOPS\n", read_qd1(bd, secs));
	printf("read4k_qd32 %.0f IOPS\n", run_batches(bd, BDEV_OP_READ, 4096, 32, 0, secs));
	printf("write4k_qd32 %.0f IOPS\n", run_batches(bd, BDEV_OP_WRITE, 4096, 32, 0, secs));
	printf("seqread_1m %.1f MB/s\n",
	       run_batches(bd, BDEV_OP_READ, 1 << 20, 8, 1, secs) * 1.048576);
	printf("seqwrite_1m %.1f MB/s\n",
	       run_batches(bd, BDEV_OP_WRITE, 1 << 20, 8, 1, secs) * 1.048576);
	printf("ats_us %.0f us\n", ats_us(bd, secs));
	bdev_close(bd);
	return 0;
}
