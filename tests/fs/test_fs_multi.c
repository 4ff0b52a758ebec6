/*
 * test_fs_multi.c - several hosts (forked processes, each with its own
 * mount and heartbeat slot) on one image: VMFS open-lock semantics
 * (exclusive writer -> -EBUSY elsewhere, shared readers, multi-writer),
 * data written and fsync'd by one host read bit-exact by another,
 * concurrent creates in one directory, and a dead host's open-file lock
 * broken by takeover.
 */
#include "fstest.h"

#include "lockmgr.h"

static int pipe_a[2], pipe_b[2]; /* parent -> child, child -> parent */

static void post(int fd)
{
	char c = 1;

	assert_int_equal(write(fd, &c, 1), 1);
}

static void wait_for(int fd)
{
	char c;

	assert_int_equal(read(fd, &c, 1), 1);
}

static void pipes(void)
{
	assert_int_equal(pipe(pipe_a), 0);
	assert_int_equal(pipe(pipe_b), 0);
}

static void close_pipes(void)
{
	close(pipe_a[0]);
	close(pipe_a[1]);
	close(pipe_b[0]);
	close(pipe_b[1]);
}

static int child_exit(pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

/* Child checks: exit code 0 = all as expected, else the step that failed. */
#define CHECK(step, cond)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "host B step %d failed\n", step);                          \
			_exit(step);                                                               \
		}                                                                                  \
	} while (0)

static void host_b_locks(const char *img, const uint8_t *data, size_t len)
{
	struct vmfs *fs;
	struct vmfs_file *f, *g;
	struct vmfs_mount_opts o = {.hostname = "hostB", .lock_timeout_ms = 300};
	uint8_t *got = malloc(len);

	CHECK(1, vmfs_mount(img, &o, &fs) == 0);
	wait_for(pipe_a[0]); /* A holds /vm open for writing */
	CHECK(2, vmfs_open(fs, "/vm", O_RDWR, 0, &f) == -EBUSY);
	CHECK(3, vmfs_open(fs, "/vm", O_RDONLY, 0, &f) == -EBUSY);
	CHECK(4, vmfs_open(fs, "/vm", O_RDWR | VMFS_O_NOWAIT, 0, &f) == -EBUSY);
	CHECK(5, vmfs_unlink(fs, "/vm") == -EBUSY);
	post(pipe_b[1]);
	wait_for(pipe_a[0]); /* A closed it, after writing and fsync */
	CHECK(6, vmfs_open(fs, "/vm", O_RDWR, 0, &f) == 0);
	CHECK(7, vmfs_read(f, got, len, 0) == (ssize_t)len && !memcmp(got, data, len));
	CHECK(8, vmfs_close(f) == 0);
	post(pipe_b[1]);
	wait_for(pipe_a[0]); /* A holds /ro read-only */
	CHECK(9, vmfs_open(fs, "/ro", O_RDONLY, 0, &f) == 0);
	CHECK(10, vmfs_open(fs, "/ro", O_RDWR, 0, &g) == -EBUSY);
	CHECK(11, vmfs_close(f) == 0);
	post(pipe_b[1]);
	wait_for(pipe_a[0]); /* A holds /mw multi-writer */
	CHECK(12, vmfs_open(fs, "/mw", O_RDWR | VMFS_O_MULTIWRITER, 0, &f) == 0);
	CHECK(13, vmfs_open(fs, "/mw", O_RDWR, 0, &g) == -EBUSY);
	CHECK(14, vmfs_write(f, "x", 1, 100 << 20) == -EBUSY); /* needs the lock alone */
	CHECK(17, vmfs_write(f, "BBBB", 4, 8192) == 4);	       /* in place: shared */
	CHECK(15, vmfs_close(f) == 0);
	post(pipe_b[1]);
	CHECK(16, vmfs_umount(fs) == 0);
	free(got);
	_exit(0);
}

static void test_open_locks(void **state)
{
	const char *img = t_mkfs("multi", 256ull << 20, 0);
	size_t len = 3u << 20;
	uint8_t *data = malloc(len);
	struct vmfs_file *f;
	struct vmfs *fs;
	pid_t pid;

	(void)state;
	t_fill(data, len, 42);
	pipes();
	fs = t_mount(img, "hostA");
	t_write_file(fs, "/ro", "r", 1, 0);
	t_write_file(fs, "/mw", data, 1u << 20, 0); /* allocated: in-place writes */
	pid = fork();
	if (pid == 0)
		host_b_locks(img, data, len);
	assert_int_equal(vmfs_open(fs, "/vm", O_RDWR | O_CREAT, 0600, &f), 0);
	post(pipe_a[1]);
	wait_for(pipe_b[0]);
	assert_int_equal(vmfs_write(f, data, len, 0), (ssize_t)len);
	assert_int_equal(vmfs_fsync(f), 0);
	assert_int_equal(vmfs_close(f), 0);
	post(pipe_a[1]);
	wait_for(pipe_b[0]);
	assert_int_equal(vmfs_open(fs, "/ro", O_RDONLY, 0, &f), 0);
	post(pipe_a[1]);
	wait_for(pipe_b[0]);
	assert_int_equal(vmfs_close(f), 0);
	assert_int_equal(vmfs_open(fs, "/mw", O_RDWR | VMFS_O_MULTIWRITER, 0, &f), 0);
	post(pipe_a[1]);
	wait_for(pipe_b[0]);
	assert_int_equal(vmfs_write(f, "AAAA", 4, 0), 4);
	assert_int_equal(vmfs_close(f), 0);
	assert_int_equal(child_exit(pid), 0);
	memcpy(data, "AAAA", 4);
	memcpy(data + 8192, "BBBB", 4);
	t_check_file(fs, "/mw", data, 1u << 20, 0);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	close_pipes();
	free(data);
}

static void creator(const char *img, char tag, int n)
{
	struct vmfs_mount_opts o = {.hostname = tag == 'a' ? "hostA" : "hostB"};
	struct vmfs *fs;
	char p[64];

	CHECK(1, vmfs_mount(img, &o, &fs) == 0);
	wait_for(pipe_a[0]);
	for (int i = 0; i < n; i++) {
		struct vmfs_file *f;

		snprintf(p, sizeof(p), "/shared/%c-%03d", tag, i);
		CHECK(2, vmfs_open(fs, p, O_CREAT | O_EXCL | O_RDWR, 0644, &f) == 0);
		CHECK(3, vmfs_write(f, p, strlen(p), 0) == (ssize_t)strlen(p));
		CHECK(4, vmfs_close(f) == 0);
		if (i % 8 == 0) {
			snprintf(p, sizeof(p), "/shared/dir-%c-%03d", tag, i);
			CHECK(5, vmfs_mkdir(fs, p, 0755) == 0);
		}
	}
	CHECK(6, vmfs_umount(fs) == 0);
	_exit(0);
}

static void test_concurrent_create(void **state)
{
	const char *img = t_mkfs("multi", 1ull << 30, 0);
	const int n = 60;
	struct vmfs *fs;
	pid_t a, b;
	char p[64];
	int entries = 0;

	(void)state;
	pipes();
	fs = t_mount(img, "hostC");
	assert_int_equal(vmfs_mkdir(fs, "/shared", 0777), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	a = fork();
	if (a == 0)
		creator(img, 'a', n);
	b = fork();
	if (b == 0)
		creator(img, 'b', n);
	post(pipe_a[1]);
	post(pipe_a[1]);
	assert_int_equal(child_exit(a), 0);
	assert_int_equal(child_exit(b), 0);
	fs = t_mount(img, "hostC");
	assert_int_equal(vmfs_readdir(fs, "/shared", t_count_cb, &entries), 0);
	assert_int_equal(entries, 2 + 2 * n + 2 * ((n + 7) / 8));
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "/shared/b-%03d", i);
		t_check_file(fs, p, p, strlen(p), 0);
		snprintf(p, sizeof(p), "/shared/a-%03d", i);
		t_check_file(fs, p, p, strlen(p), 0);
	}
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	close_pipes();
}

static void test_dead_host(void **state)
{
	const char *img;
	struct vmfs_file *f;
	struct vmfs *fs;
	pid_t pid;

	(void)state;
	t_hb_int = 100; /* waits for the dead/paused host to be judged dead */
	t_hb_tmo = 800;
	img = t_mkfs("multi", 256ull << 20, 0);
	pipes();
	pid = fork();
	if (pid == 0) {
		struct vmfs_mount_opts o = {.hostname = "doomed"};

		CHECK(1, vmfs_mount(img, &o, &fs) == 0);
		CHECK(2, vmfs_open(fs, "/vm", O_RDWR | O_CREAT, 0600, &f) == 0);
		CHECK(3, vmfs_write(f, "alive", 5, 0) == 5);
		post(pipe_b[1]);
		pause(); /* killed here, holding the lock */
		_exit(0);
	}
	wait_for(pipe_b[0]);
	fs = t_mount(img, "hostA");
	assert_int_equal(vmfs_open(fs, "/vm", O_RDWR | VMFS_O_NOWAIT, 0, &f), -EBUSY);
	kill(pid, SIGKILL);
	assert_int_equal(child_exit(pid), 100 + SIGKILL);
	/* the wait sees the heartbeat stop, takes the slot over, gets the lock */
	assert_int_equal(vmfs_open(fs, "/vm", O_RDWR, 0, &f), 0);
	assert_int_equal(vmfs_write(f, "taken", 5, 5), 5);
	assert_int_equal(vmfs_close(f), 0);
	t_check_file(fs, "/vm", "alivetaken", 10, 0);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	close_pipes();
}

/* A host paused (SIGSTOP) past the heartbeat timeout while holding a file
 * open for writing is taken over; when it resumes it is fenced: its writes
 * fail and the survivor's data stays. */
static void test_paused_host(void **state)
{
	const char *img;
	struct vmfs_file *f;
	struct vmfs *fs;
	pid_t pid;

	(void)state;
	t_hb_int = 100; /* waits for the dead/paused host to be judged dead */
	t_hb_tmo = 800;
	img = t_mkfs("multi", 256ull << 20, 0);
	pipes();
	pid = fork();
	if (pid == 0) {
		struct vmfs_mount_opts o = {.hostname = "paused"};
		ssize_t w;

		CHECK(1, vmfs_mount(img, &o, &fs) == 0);
		CHECK(2, vmfs_open(fs, "/vm", O_RDWR | O_CREAT, 0600, &f) == 0);
		CHECK(3, vmfs_write(f, "old!", 4, 0) == 4);
		post(pipe_b[1]);
		raise(SIGSTOP); /* the parent resumes us after its takeover */
		w = vmfs_write(f, "BAD!", 4, 0);
		CHECK(4, w == -LM_E_FENCED);
		CHECK(5, vmfs_mkdir(fs, "/bad", 0755) == -LM_E_FENCED);
		vmfs_close(f);
		vmfs_umount(fs);
		_exit(0);
	}
	wait_for(pipe_b[0]);
	assert_int_equal(waitpid(pid, &(int){0}, WUNTRACED), pid); /* stopped */
	fs = t_mount(img, "survivor");
	assert_int_equal(vmfs_open(fs, "/vm", O_RDWR, 0, &f), 0); /* takes it over */
	assert_int_equal(vmfs_write(f, "new!", 4, 0), 4);
	assert_int_equal(vmfs_fsync(f), 0);
	kill(pid, SIGCONT);
	assert_int_equal(child_exit(pid), 0);
	t_check_file(fs, "/vm", "new!", 4, 0);
	assert_int_equal(vmfs_getattr(fs, "/bad", &(struct vmfs_stat){0}), -ENOENT);
	assert_int_equal(vmfs_close(f), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	close_pipes();
}

static int allowed(int rc)
{
	return rc >= 0 || rc == -ENOENT || rc == -EEXIST || rc == -ENOTEMPTY || rc == -EISDIR ||
	       rc == -ENOTDIR || rc == -EBUSY || rc == -EINVAL;
}

/* Random namespace operations over /x and /y. */
static void stress(const char *img, unsigned seed, int nops)
{
	struct vmfs_mount_opts o = {.hostname = seed & 1 ? "hostA" : "hostB"};
	struct vmfs *fs;
	char a[64], b[64];
	int ok = 0;

	CHECK(1, vmfs_mount(img, &o, &fs) == 0);
	wait_for(pipe_a[0]);
	for (int i = 0; i < nops; i++) {
		struct vmfs_file *f;
		unsigned r = (unsigned)rand_r(&seed);
		int rc = 0;

		snprintf(a, sizeof(a), "/%c/n%u", r & 1 ? 'x' : 'y', (r >> 1) % 12);
		snprintf(b, sizeof(b), "/%c/n%u", r & 32 ? 'x' : 'y', (r >> 6) % 12);
		switch ((r >> 12) % 6) {
		case 0:
			rc = vmfs_open(fs, a, O_CREAT | O_RDWR, 0644, &f);
			if (rc == 0) {
				rc = (int)vmfs_write(f, a, 5, 0);
				vmfs_close(f);
			}
			break;
		case 1: rc = vmfs_unlink(fs, a); break;
		case 2: rc = vmfs_rename(fs, a, b); break;
		case 3: rc = vmfs_mkdir(fs, a, 0755); break;
		case 4: rc = vmfs_rmdir(fs, a); break;
		case 5: rc = vmfs_link(fs, a, b); break;
		}
		ok += rc >= 0;
		if (rc == -EPERM)
			rc = 0; /* link of a directory */
		if (!allowed(rc))
			fprintf(stderr, "op %d on %s %s: %s: %s\n", (int)((r >> 12) % 6), a, b,
				vmfs_strerror(rc), vmfs_errmsg(fs));
		CHECK(2, allowed(rc));
	}
	CHECK(3, vmfs_umount(fs) == 0);
	fprintf(stderr, "host %u: %d of %d operations succeeded\n", seed, ok, nops);
	CHECK(4, ok >= nops / 5);
	_exit(0);
}

static void test_stress(void **state)
{
	const char *img = t_mkfs("multi", 256ull << 20, 0);
	struct vmfs *fs;
	pid_t a, b;

	(void)state;
	pipes();
	fs = t_mount(img, "hostC");
	assert_int_equal(vmfs_mkdir(fs, "/x", 0777), 0);
	assert_int_equal(vmfs_mkdir(fs, "/y", 0777), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	a = fork();
	if (a == 0)
		stress(img, 1, 150);
	b = fork();
	if (b == 0)
		stress(img, 2, 150);
	post(pipe_a[1]);
	post(pipe_a[1]);
	assert_int_equal(child_exit(a), 0);
	assert_int_equal(child_exit(b), 0);
	assert_int_equal(t_fsck(img), 0);
	close_pipes();
}

/* Multi-writer: host `who` (0 or 1) writes the odd or even 512-byte
 * sectors of the first 4 KiB units of /mwsec, `rounds` times each, a
 * record (who, round, sector) per sector. No write may undo another host's. */
#define MW_UNITS 4
static void mw_sector_writer(const char *img, int who, int rounds)
{
	struct vmfs_mount_opts o = {.hostname = who ? "hostB" : "hostA"};
	struct vmfs_file *f;
	struct vmfs *fs;
	uint32_t rec[128];

	CHECK(1, vmfs_mount(img, &o, &fs) == 0);
	CHECK(2, vmfs_open(fs, "/mwsec", O_RDWR | VMFS_O_MULTIWRITER, 0, &f) == 0);
	post(pipe_b[1]);
	wait_for(pipe_a[0]);
	for (int r = 1; r <= rounds; r++)
		for (unsigned sec = (unsigned)who; sec < MW_UNITS * 8; sec += 2) {
			for (unsigned i = 0; i < 128; i++)
				rec[i] = (uint32_t)who << 24 | (uint32_t)r << 8 | sec;
			CHECK(3, vmfs_write(f, rec, 512, (uint64_t)sec * 512) == 512);
		}
	CHECK(4, vmfs_close(f) == 0);
	CHECK(5, vmfs_umount(fs) == 0);
	_exit(0);
}

/* Issue 9 defect 2: the write path read-modify-wrote whole 4 KiB units, so
 * two hosts writing different sectors of one unit lost each other's writes
 * (hundreds in 3,000). Each sector must hold its writer's last round. */
static void test_mw_disjoint_sectors(void **state)
{
	const int rounds = 150;
	const char *img = t_mkfs("mwsec", 256ull << 20, 0);
	uint8_t *zero = calloc(1, 1u << 20);
	uint32_t got[128];
	struct vmfs_file *f;
	struct vmfs *fs;
	pid_t pid[2];

	(void)state;
	pipes();
	fs = t_mount(img, "prep");
	t_write_file(fs, "/mwsec", zero, 1u << 20, 0); /* allocated: in place */
	assert_int_equal(vmfs_umount(fs), 0);
	for (int w = 0; w < 2; w++) {
		pid[w] = fork();
		assert_true(pid[w] >= 0);
		if (pid[w] == 0)
			mw_sector_writer(img, w, rounds);
	}
	wait_for(pipe_b[0]);
	wait_for(pipe_b[0]);
	post(pipe_a[1]);
	post(pipe_a[1]);
	assert_int_equal(child_exit(pid[0]), 0);
	assert_int_equal(child_exit(pid[1]), 0);
	fs = t_mount(img, "check");
	assert_int_equal(vmfs_open(fs, "/mwsec", O_RDONLY, 0, &f), 0);
	for (unsigned sec = 0; sec < MW_UNITS * 8; sec++) {
		uint32_t want = (sec % 2) << 24 | (uint32_t)rounds << 8 | sec;

		assert_int_equal(vmfs_read(f, got, 512, (uint64_t)sec * 512), 512);
		for (unsigned i = 0; i < 128; i++)
			if (got[i] != want) {
				fprintf(stderr, "sector %u word %u: %08x, want %08x\n", sec, i,
					got[i], want);
				fail();
			}
	}
	assert_int_equal(vmfs_close(f), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	assert_int_equal(t_fsck(img), 0);
	close_pipes();
	free(zero);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_locks),	cmocka_unit_test(test_concurrent_create),
	    cmocka_unit_test(test_dead_host),	cmocka_unit_test(test_stress),
	    cmocka_unit_test(test_paused_host), cmocka_unit_test(test_mw_disjoint_sectors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
