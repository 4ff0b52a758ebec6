/*
 * test_fs_kill.c - kill -9 harness (issue 9): 4 hosts (library processes,
 * each its own mount and heartbeat slot) do random metadata and data work
 * on one image, each in a directory of its own and in a shared one; every
 * few hundred ms one of them is killed with SIGKILL at a random moment and
 * a new host takes its place. Each worker tells the parent, through a pipe,
 * which operation it starts and when it finished, so the parent knows every
 * file whose creation and fsync returned, and which one operation of a
 * killed worker was in flight. At the end a checker host mounts (after the
 * takeovers): every fsync'd file not touched by an operation in flight is
 * there with its checksum, and fsck is clean. The longest time a survivor's
 * operation took is printed (a survivor only waits for a dead host's locks
 * it needs, and no longer than the takeover time plus the replay).
 * KILLS (default 200) kills; the test asks for at least that many.
 * test_kill9_keep runs the same with keep_locks (kept locks, group
 * commit): a rename or unlink counts as done once a vmfs_sync() after it
 * returned (before that it may be lost with the group), as a created file
 * counts once its fsync returned.
 */
#include "fstest.h"

#include <inttypes.h>
#include <poll.h>
#include <time.h>

#include "crc32c.h"

#define NW	 4
#define MAXFILES 20000

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Messages from a worker: 'B' before an operation on a name, 'F' a file
 * created, written and fsync'd (name, length, crc), 'R' renamed (name ->
 * name2), 'U' unlinked, 'E' the operation finished (with its duration). */
struct msg {
	char kind;
	char name[80], name2[80];
	uint32_t len, crc;
	uint32_t ms;
};

static void send_msg(int fd, const struct msg *m)
{
	if (write(fd, m, sizeof(*m)) != (ssize_t)sizeof(*m))
		_exit(90);
}

/* writes take up to 1 MiB from a random offset below 4 KiB */
static uint8_t data[(1u << 20) + 4096];

static void worker(const char *img, int idx, int inc, int out)
{
	struct vmfs_mount_opts o = {.keep_locks = t_keep_locks};
	char host[16], dir[16], names[64][80];
	unsigned nn = 0, seq = 0;
	uint64_t rng = (uint64_t)idx * 7919 + (uint64_t)inc * 104729 + 1;
	struct vmfs *fs;
	struct msg m;

	snprintf(host, sizeof(host), "h%d-%d", idx, inc);
	snprintf(dir, sizeof(dir), "/w%d", idx);
	o.hostname = host;
	if (vmfs_mount(img, &o, &fs)) {
		fprintf(stderr, "%s: mount: %s\n", host, vmfs_errmsg(NULL));
		_exit(91);
	}
	vmfs_mkdir(fs, dir, 0755); /* exists after the first incarnation */
	for (;;) {
		uint64_t t0 = now_ms();
		unsigned r;
		int rc = 0;

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		r = (unsigned)(rng % 100);
		memset(&m, 0, sizeof(m));
		if (nn >= 48 && r < 50)
			r = 80;		/* keep the volume's few sub-blocks from running out */
		if (r < 50 || nn < 4) { /* a new file, written and fsync'd */
			struct vmfs_file *f;
			uint32_t len = (uint32_t)(rng >> 20) % (r < 10 ? (1u << 20) : 9000);
			uint32_t off = (uint32_t)(rng >> 8) % 4096;

			snprintf(m.name, sizeof(m.name), "%s/%s-%u-%u", r % 3 ? dir : "/shared",
				 host, inc, seq++);
			m.kind = 'B';
			send_msg(out, &m);
			rc = vmfs_open(fs, m.name, O_CREAT | O_EXCL | O_RDWR, 0644, &f);
			if (!rc) {
				ssize_t n = len ? vmfs_write(f, data + off, len, 0) : 0;

				rc = n < 0 ? (int)n : vmfs_fsync(f);
				rc = rc ? rc : vmfs_close(f);
				if (rc)
					vmfs_close(f);
			}
			if (!rc) {
				m.kind = 'F';
				m.len = len;
				m.crc = crc32c(0, data + off, len);
				send_msg(out, &m);
				if (nn < 64)
					memcpy(names[nn++], m.name, sizeof(m.name));
				else
					memcpy(names[rng % 64], m.name, sizeof(m.name));
			}
		} else if (r < 70) { /* rename one of ours */
			unsigned k = (unsigned)(rng >> 32) % nn;

			memcpy(m.name, names[k], sizeof(m.name));
			snprintf(m.name2, sizeof(m.name2), "%s/r-%s-%u", (r % 2) ? dir : "/shared",
				 host, seq++);
			m.kind = 'B';
			send_msg(out, &m);
			rc = vmfs_rename(fs, m.name, m.name2);
			if (!rc && t_keep_locks)
				rc = vmfs_sync(fs);
			if (!rc) {
				m.kind = 'R';
				send_msg(out, &m);
				memcpy(names[k], m.name2, sizeof(m.name2));
			}
		} else if (r < 85) { /* unlink one of ours */
			unsigned k = (unsigned)(rng >> 32) % nn;

			memcpy(m.name, names[k], sizeof(m.name));
			m.kind = 'B';
			send_msg(out, &m);
			rc = vmfs_unlink(fs, m.name);
			if (!rc && t_keep_locks)
				rc = vmfs_sync(fs);
			if (!rc) {
				m.kind = 'U';
				send_msg(out, &m);
				memcpy(names[k], names[--nn], sizeof(names[k]));
			}
		} else { /* metadata: mkdir/rmdir, chmod, stat, readdir */
			struct vmfs_stat st;
			char d[64];

			snprintf(d, sizeof(d), "/shared/d%u", (unsigned)(rng >> 40) % 8);
			m.kind = 'B';
			send_msg(out, &m);
			if (r < 90)
				rc = vmfs_mkdir(fs, d, 0755);
			else if (r < 95)
				rc = vmfs_rmdir(fs, d);
			else
				rc = vmfs_getattr(fs, dir, &st);
			if (rc == -EEXIST || rc == -ENOENT || rc == -ENOTEMPTY)
				rc = 0; /* races with the other hosts */
		}
		if (rc == -ENOSPC)
			rc = 0; /* sub-blocks are fixed at mkfs (issue 11): a full volume */
		if (rc && rc != -EBUSY) {
			fprintf(stderr, "%s: %s: %s %s\n", host, m.name, vmfs_strerror(rc),
				vmfs_errmsg(fs));
			_exit(92);
		}
		m.kind = 'E';
		m.ms = (uint32_t)(now_ms() - t0);
		send_msg(out, &m);
	}
}

struct file {
	char name[80];
	uint32_t len, crc;
	int doubt; /* touched by an operation in flight when its worker died */
};

static struct file files[MAXFILES];
static int nfiles;

static struct file *find(const char *name)
{
	for (int i = 0; i < nfiles; i++)
		if (!strcmp(files[i].name, name))
			return &files[i];
	return NULL;
}

struct wstate {
	pid_t pid;
	int fd;
	int inc;
	struct msg inflight; /* last 'B' without its 'E' */
	int busy;
	uint64_t ops;
};

static void apply(struct wstate *w, const struct msg *m, uint32_t *stall)
{
	struct file *f;

	switch (m->kind) {
	case 'B':
		w->inflight = *m;
		w->busy = 1;
		break;
	case 'E':
		w->busy = 0;
		w->ops++;
		*stall = m->ms > *stall ? m->ms : *stall;
		break;
	case 'F':
		assert_true(nfiles < MAXFILES);
		f = &files[nfiles++];
		memcpy(f->name, m->name, sizeof(f->name));
		f->len = m->len;
		f->crc = m->crc;
		f->doubt = 0;
		break;
	case 'R':
		f = find(m->name);
		if (f)
			memcpy(f->name, m->name2, sizeof(f->name));
		break;
	case 'U':
		f = find(m->name);
		if (f)
			*f = files[--nfiles];
		break;
	}
}

/* Reads every message a worker has sent so far (or until EOF). */
static int drain(struct wstate *w, uint32_t *stall, int wait_eof)
{
	struct msg m;
	ssize_t n;

	for (;;) {
		struct pollfd p = {w->fd, POLLIN, 0};

		if (!wait_eof && poll(&p, 1, 0) <= 0)
			return 0;
		n = read(w->fd, &m, sizeof(m));
		if (n == 0)
			return 1; /* EOF */
		assert_int_equal(n, (ssize_t)sizeof(m));
		apply(w, &m, stall);
	}
}

static void start(struct wstate *w, const char *img, int idx)
{
	int p[2];

	assert_int_equal(pipe(p), 0);
	w->pid = fork();
	assert_true(w->pid >= 0);
	if (w->pid == 0) {
		close(p[0]);
		worker(img, idx, w->inc, p[1]);
	}
	close(p[1]);
	w->fd = p[0];
	w->busy = 0;
}

static void kill_worker(struct wstate *w, uint32_t *stall)
{
	int st;

	kill(w->pid, SIGKILL);
	assert_int_equal(waitpid(w->pid, &st, 0), w->pid);
	if (!WIFSIGNALED(st)) {
		fprintf(stderr, "worker exited with %d before the kill\n", WEXITSTATUS(st));
		fail();
	}
	drain(w, stall, 1);
	close(w->fd);
	if (w->busy) { /* its operation in flight may or may not have happened */
		struct file *f = find(w->inflight.name);

		if (f)
			f->doubt = 1; /* renamed or unlinked, or not */
	}
	w->inc++;
}

static void test_kill9(void **state)
{
	const char *env = getenv("KILLS");
	int kills = env && *env ? atoi(env) : 200, done = 0;
	uint64_t rng = 12345, t_end;
	struct wstate w[NW] = {0};
	uint32_t stall = 0, max_stall = 0;
	const char *img;
	struct vmfs *fs;
	uint64_t ops = 0;
	int checked = 0;

	(void)state;
	t_hb_int = 250;
	t_hb_tmo = 2000;
	t_fill(data, sizeof(data), 77);
	img = t_mkfs("kill9", 2ull << 30, 0);
	fs = t_mount(img, "prep");
	assert_int_equal(vmfs_mkdir(fs, "/shared", 0777), 0);
	assert_int_equal(vmfs_umount(fs), 0);
	for (int i = 0; i < NW; i++)
		start(&w[i], img, i);
	while (done < kills) {
		uint64_t wait = 300 + rng % 1200;
		int k;

		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		t_end = now_ms() + wait;
		while (now_ms() < t_end) {
			usleep(20000);
			for (int i = 0; i < NW; i++) {
				stall = 0;
				if (drain(&w[i], &stall, 0)) {
					fprintf(stderr, "worker %d died by itself\n", i);
					fail();
				}
				max_stall = stall > max_stall ? stall : max_stall;
			}
		}
		k = (int)((rng >> 33) % NW);
		stall = 0;
		kill_worker(&w[k], &stall);
		start(&w[k], img, k);
		done++;
		if (done % 25 == 0)
			fprintf(stderr,
				"kill9: %d kills, %d fsync'd files known, longest op %u ms\n", done,
				nfiles, max_stall);
	}
	for (int i = 0; i < NW; i++) {
		stall = 0;
		kill_worker(&w[i], &stall);
		ops += w[i].ops;
	}
	fs = t_mount(img, "checker"); /* recovers every dead host */
	for (int i = 0; i < nfiles; i++) {
		struct vmfs_file *f;
		uint8_t *buf;

		if (files[i].doubt)
			continue;
		buf = malloc(files[i].len ? files[i].len : 1);
		assert_int_equal(vmfs_open(fs, files[i].name, O_RDONLY, 0, &f), 0);
		assert_int_equal(vmfs_read(f, buf, files[i].len, 0), (ssize_t)files[i].len);
		if (crc32c(0, buf, files[i].len) != files[i].crc) {
			fprintf(stderr, "%s: content differs from what was fsync'd\n",
				files[i].name);
			fail();
		}
		assert_int_equal(vmfs_close(f), 0);
		free(buf);
		checked++;
	}
	assert_int_equal(vmfs_umount(fs), 0);
	fprintf(stderr,
		"kill9%s: %d kills, %" PRIu64 " operations by survivors and victims, %d fsync'd "
		"files checked, longest operation %u ms (heartbeat timeout %u ms)\n",
		t_keep_locks ? " (keep_locks)" : "", done, ops, checked, max_stall, t_hb_tmo);
	assert_int_equal(t_fsck(img), 0);
}

static void test_kill9_keep(void **state)
{
	t_keep_locks = 1;
	nfiles = 0;
	test_kill9(state);
	t_keep_locks = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kill9),
	    cmocka_unit_test(test_kill9_keep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
