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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bdev.h"

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

int main(int argc, char **argv)
{
	struct bdev *bd;
	double secs;
	int rc;

	if (argc != 3 || (secs = atof(argv[2])) <= 0) {
		fprintf(stderr, "usage: %s URI SECONDS\n", argv[0]);
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
