/*
 * iscsi_fs_hosts.c - three hosts (forked processes, each its own mount and
 * so its own iSCSI session and heartbeat slot) share one volume on a LUN:
 *   1. each host writes and fsyncs a file of its own (1 MiB + an odd tail);
 *   2. each host reads the other two files: bit-exact;
 *   3. host 0 holds /f0 open for writing; hosts 1 and 2 get -EBUSY when
 *      they open it for writing (VMFS open-lock semantics);
 *   4. host 0 closes it; host 1 can now open it for writing, changes it and
 *      fsyncs; host 2 reads the change.
 * usage: iscsi_fs_hosts URI. Exit 0 when every step held, else 1 (the
 * failing host and step are printed). Bounded by alarm(): 170 s.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmfs.h"

#define NHOSTS 3
#define FSIZE  ((1u << 20) + 12345)

static int up[NHOSTS][2], down[NHOSTS][2]; /* child -> parent, parent -> child */

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 2654435761u + seed * 40503u) >> 11);
}

/* Child side of a barrier: reports status (0 ok), waits for "go". */
static void sync_point(int h, int status)
{
	char c = (char)status;

	if (write(up[h][1], &c, 1) != 1 || status || read(down[h][0], &c, 1) != 1)
		_exit(1);
}

#define STEP(h, n, cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "host %d: step %d failed: %s (%s)\n", h, n, #cond,         \
				strerror(errno));                                                  \
			sync_point(h, n);                                                          \
		}                                                                                  \
	} while (0)

static int write_file(struct vmfs *fs, const char *path, const unsigned char *d, size_t n)
{
	struct vmfs_file *f;
	int rc = vmfs_open(fs, path, O_CREAT | O_RDWR, 0644, &f);

	if (rc)
		return rc;
	if (vmfs_write(f, d, n, 0) != (ssize_t)n)
		rc = -EIO;
	if (!rc)
		rc = vmfs_fsync(f);
	vmfs_close(f);
	return rc;
}

static int file_equals(struct vmfs *fs, const char *path, const unsigned char *want, size_t n)
{
	unsigned char *got = malloc(n + 1);
	struct vmfs_file *f;
	ssize_t r;
	int rc = vmfs_open(fs, path, O_RDONLY, 0, &f);

	if (rc || !got) {
		free(got);
		return 0;
	}
	r = vmfs_read(f, got, n + 1, 0);
	vmfs_close(f);
	rc = r == (ssize_t)n && memcmp(got, want, n) == 0;
	free(got);
	return rc;
}

static void host(int h, const char *uri)
{
	struct vmfs_mount_opts o = {.hostname = NULL, .lock_timeout_ms = 3000};
	unsigned char *mine = malloc(FSIZE), *other = malloc(FSIZE);
	struct vmfs_file *f = NULL;
	struct vmfs *fs = NULL;
	char name[16], path[16];
	int rc;

	snprintf(name, sizeof(name), "esx%d", h);
	o.hostname = name;
	rc = vmfs_mount(uri, &o, &fs);
	if (rc)
		fprintf(stderr, "host %d: mount: %s\n", h, vmfs_errmsg(NULL));
	STEP(h, 10, rc == 0);
	fill(mine, FSIZE, (unsigned)h + 1);
	snprintf(path, sizeof(path), "/f%d", h);
	STEP(h, 11, write_file(fs, path, mine, FSIZE) == 0);
	sync_point(h, 0);
	for (int j = 0; j < NHOSTS; j++) {
		if (j == h)
			continue;
		fill(other, FSIZE, (unsigned)j + 1);
		snprintf(path, sizeof(path), "/f%d", j);
		STEP(h, 20 + j, file_equals(fs, path, other, FSIZE));
	}
	sync_point(h, 0);
	if (h == 0)
		STEP(h, 30, vmfs_open(fs, "/f0", O_RDWR, 0, &f) == 0);
	sync_point(h, 0);
	if (h != 0) {
		rc = vmfs_open(fs, "/f0", (h == 1 ? O_RDWR : O_WRONLY) | VMFS_O_NOWAIT, 0, &f);
		if (rc != -EBUSY)
			fprintf(stderr, "host %d: write-open of a file held by host 0 = %d\n", h,
				rc);
		STEP(h, 31, rc == -EBUSY);
	}
	sync_point(h, 0);
	if (h == 0)
		STEP(h, 40, vmfs_close(f) == 0);
	sync_point(h, 0);
	fill(other, FSIZE, 1);
	memset(other + 4096, 0xab, 8192);
	if (h == 1)
		STEP(h, 41, write_file(fs, "/f0", other, FSIZE) == 0);
	sync_point(h, 0);
	if (h == 2)
		STEP(h, 42, file_equals(fs, "/f0", other, FSIZE));
	sync_point(h, 0);
	STEP(h, 50, vmfs_umount(fs) == 0);
	free(mine);
	free(other);
	sync_point(h, 0);
	_exit(0);
}

int main(int argc, char **argv)
{
	pid_t pids[NHOSTS];
	int phase, failed = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s URI\n", argv[0]);
		return 2;
	}
	alarm(170);
	for (int h = 0; h < NHOSTS; h++) {
		if (pipe(up[h]) || pipe(down[h]))
			return 2;
		pids[h] = fork();
		if (pids[h] == 0) {
			alarm(170);
			host(h, argv[1]);
		}
	}
	for (phase = 0; !failed && phase < 8; phase++) {
		for (int h = 0; h < NHOSTS; h++) {
			char c = 1;

			if (read(up[h][0], &c, 1) != 1 || c != 0) {
				fprintf(stderr, "phase %d: host %d failed (step %d)\n", phase, h,
					(int)c);
				failed = 1;
			}
		}
		for (int h = 0; h < NHOSTS && !failed; h++)
			if (write(down[h][1], "g", 1) != 1)
				failed = 1;
	}
	for (int h = 0; h < NHOSTS; h++) {
		int st;

		if (failed)
			kill(pids[h], SIGKILL);
		waitpid(pids[h], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			failed = 1;
	}
	printf("%s: %d hosts, %d phases\n", failed ? "FAILED" : "ok", NHOSTS, phase);
	return failed;
}
