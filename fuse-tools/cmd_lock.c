/*
 * cmd_lock.c - `vmfsctl lock` and `vmfsctl unlock`: on-disk locks for
 * scripts, in the manner of flock(1) and `sanlock client`.
 *
 *   vmfsctl lock [-m ex|sh|mw] [-w SECS] [--host NAME] DEVICE NAME|@OFFSET -- COMMAND [ARGS]
 *       joins the heartbeat as a host of its own, acquires the lock, runs
 *       COMMAND while holding it (heartbeating), releases, leaves; exits
 *       with COMMAND's status. If this host gets fenced meanwhile (its
 *       heartbeat could not be written, or another host took its slot over)
 *       COMMAND is killed at once (SIGKILL) and the exit status is 1: the
 *       lock may already be someone else's.
 *   vmfsctl lock [...] DEVICE NAME|@OFFSET
 *       acquires, prints one line "locked ..." on stdout and holds the lock
 *       in the foreground until SIGTERM/SIGINT/SIGHUP (or fencing), then
 *       releases and leaves. A script starts it in the background and waits
 *       for the "locked" line (see docs/LOCKING.md).
 *   vmfsctl unlock [-w SECS] DEVICE NAME|@OFFSET
 *       asks the `vmfsctl lock` processes of this machine holding that lock
 *       to release it (SIGTERM, found by their pid files) and waits for them.
 *       A lock held by another machine cannot be released from here: it is
 *       freed when its holder releases it or dies (takeover).
 *
 * NAME is a named lock in the volume's lock area (hashed, linear probing);
 * @OFFSET is a byte offset (decimal or 0x hex) of a lock unit: the volume
 * lock, a unit of the named area, or a unit already holding a lock record.
 * -w SECS: 0 = try once, default: wait forever. Exit status 3 when the lock
 * is busy (-w 0) or the wait timed out.
 */
#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bdev.h"
#include "crc32c.h"
#include "format.h"
#include "lockmgr.h"

#define EXIT_BUSY 3

struct lock_args {
	enum lm_mode mode;
	int wait_ms; /* -1 forever */
	const char *host;
	const char *dev;
	const char *target;
	char **cmd; /* NULL: hold until signalled */
};

static void lock_usage(FILE *f)
{
	fprintf(
	    f, "Usage: vmfsctl lock [-m ex|sh|mw] [-w SECS] [--host NAME] DEVICE NAME|@OFFSET\n"
	       "                    [-- COMMAND [ARGS...]]\n\n"
	       "Acquires an on-disk lock of a libvmfs volume as a host of its own\n"
	       "(joins the heartbeat). With COMMAND: runs it while holding the lock and\n"
	       "exits with its status (COMMAND is killed if this host gets fenced).\n"
	       "Without: prints 'locked ...' and holds the lock until SIGTERM/SIGINT.\n\n"
	       "  -m MODE     ex (exclusive, default), sh (read-only shared), mw (multi-writer)\n"
	       "  -w SECS     wait at most SECS seconds (0: try once; default: forever)\n"
	       "  --host NAME hostname recorded in the heartbeat slot\n"
	       "Exit status: 0 ok (or COMMAND's), 1 error or fenced, 2 usage, 3 busy/timed out.\n");
}

static void unlock_usage(FILE *f)
{
	fprintf(f, "Usage: vmfsctl unlock [-w SECS] DEVICE NAME|@OFFSET\n\n"
		   "Asks the 'vmfsctl lock' processes of this machine that hold the lock\n"
		   "to release it (SIGTERM) and waits up to SECS seconds (default 10).\n");
}

/* ---- volume, target ------------------------------------------------------ */

struct vol {
	struct bdev *bd;
	struct vmfs_vh vh;
	struct lm_geom g;
	uint64_t addr;
};

static int open_vol(const char *cmd, const char *dev, int ro, struct vol *v)
{
	char why[256] = "";
	int rc;

	if (tool_open(cmd, dev, ro, &v->bd) < 0)
		return -1;
	if (tool_detect(v->bd) != TOOL_FMT_NATIVE) {
		tool_err(cmd, "%s: not a libvmfs volume (locks need 'vmfsctl mkfs')", dev);
		goto fail;
	}
	rc = vmfs_vh_read(v->bd, &v->vh, why, sizeof(why));
	if (rc < 0) {
		tool_err(cmd, "%s: volume header: %s", dev, why[0] ? why : bdev_strerror(rc));
		goto fail;
	}
	v->g = (struct lm_geom){v->vh.hb_off, v->vh.max_hosts, v->vh.hb_interval_ms,
				v->vh.hb_timeout_ms};
	return 0;
fail:
	bdev_close(v->bd);
	v->bd = NULL;
	return -1;
}

static int parse_offset(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno || end == s || *end ? -EINVAL : 0;
}

/* @OFFSET must name a lock unit we may take: the volume lock, a unit of the
 * named area, or a unit already holding a lock record. */
static int check_offset(const char *cmd, struct vol *v, const char *t)
{
	const struct vmfs_vh *vh = &v->vh;
	struct lm_lock_info li;
	char why[160] = "";
	int rc;

	if (parse_offset(t + 1, &v->addr) < 0 || v->addr % LM_UNIT) {
		tool_err(cmd, "bad lock offset '%s' (a multiple of 4096)", t);
		return -1;
	}
	if (v->addr == vh->vol_lock_off ||
	    (v->addr >= vh->lock_off && v->addr < vh->lock_off + (uint64_t)vh->nlocks * LM_UNIT))
		return 0;
	rc = lm_lock_read(v->bd, v->addr, v->g.nslots, &li, why, sizeof(why));
	if (rc == 0 && !li.never_used)
		return 0;
	tool_err(cmd, "%s: %s is not a lock unit (%s)", v->bd->uri, t,
		 rc == -EUCLEAN ? why
		 : rc < 0	? lm_strerror(rc)
				: "never used, outside lock areas");
	return -1;
}

/* Resolves NAME (lookup only: lock claims a new name while acquiring). */
static int resolve(const char *cmd, struct vol *v, const char *t, int must_exist)
{
	int rc;

	if (t[0] == '@')
		return check_offset(cmd, v, t);
	rc = lm_lock_lookup(v->bd, v->vh.lock_off, v->vh.nlocks, t, &v->addr);
	if (rc == -ENOENT && !must_exist)
		return 1; /* new name */
	if (rc < 0) {
		tool_err(cmd, "%s: lock '%s': %s", v->bd->uri, t,
			 rc == -ENOENT	 ? "no such lock"
			 : rc == -ENOSPC ? "named-lock area full"
					 : lm_strerror(rc));
		return -1;
	}
	return 0;
}

/* ---- pid files (for unlock) ---------------------------------------------- */

static void pid_pattern(const char *dev, uint64_t addr, const char *pid, char *out, size_t len)
{
	const char *dir = getenv("VMFSCTL_RUN_DIR");
	char real[PATH_MAX];
	const char *key = realpath(dev, real) ? real : dev;

	if (!dir || !*dir)
		dir = "/tmp";
	snprintf(out, len, "%s/vmfsctl-lock-%08x-%llx-%s.pid", dir, crc32c(0, key, strlen(key)),
		 (unsigned long long)addr, pid);
}

/* ---- lock ---------------------------------------------------------------- */

static int parse_mode(const char *s, enum lm_mode *m)
{
	if (!strcmp(s, "ex"))
		*m = LM_MODE_EX;
	else if (!strcmp(s, "sh"))
		*m = LM_MODE_SH;
	else if (!strcmp(s, "mw"))
		*m = LM_MODE_MW;
	else
		return -1;
	return 0;
}

static int parse_secs(const char *cmd, const char *s, int *ms)
{
	char *end;
	double d = strtod(s, &end);

	if (end == s || *end || !(d >= 0 && d <= 2000000)) {
		tool_err(cmd, "bad -w '%s' (seconds, >= 0)", s);
		return -1;
	}
	*ms = (int)(d * 1000);
	return 0;
}

static int lock_parse(int argc, char **argv, struct lock_args *a)
{
	static const struct option lo[] = {{"mode", required_argument, NULL, 'm'},
					   {"wait", required_argument, NULL, 'w'},
					   {"host", required_argument, NULL, 'H'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	int c, pos;

	a->mode = LM_MODE_EX;
	a->wait_ms = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:m:w:h", lo, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (parse_mode(optarg, &a->mode) < 0) {
				tool_err("lock", "bad mode '%s' (ex, sh or mw)", optarg);
				return TOOL_EXIT_USAGE;
			}
			break;
		case 'w':
			if (parse_secs("lock", optarg, &a->wait_ms) < 0)
				return TOOL_EXIT_USAGE;
			break;
		case 'H': a->host = optarg; break;
		case 'h': lock_usage(stdout); return -1;
		default:
			tool_err("lock", "bad option '%s' (try 'vmfsctl lock --help')",
				 argv[optind - 1]);
			return TOOL_EXIT_USAGE;
		}
	}
	pos = optind;
	if (argc - pos < 2 || !strcmp(argv[pos], "--") || !strcmp(argv[pos + 1], "--")) {
		tool_err("lock", "need DEVICE and NAME|@OFFSET (try 'vmfsctl lock --help')");
		return TOOL_EXIT_USAGE;
	}
	a->dev = argv[pos];
	a->target = argv[pos + 1];
	pos += 2;
	if (pos < argc) {
		if (strcmp(argv[pos], "--") || pos + 1 >= argc) {
			tool_err("lock",
				 "extra arguments: use '-- COMMAND [ARGS]' to run a command");
			return TOOL_EXIT_USAGE;
		}
		a->cmd = argv + pos + 1;
	}
	return 0;
}

static int acquire(struct lock_args *a, struct vol *v, struct lm *lm, struct lm_lock **lk)
{
	int rc, isnew = resolve("lock", v, a->target, 0);

	if (isnew < 0)
		return TOOL_EXIT_FAIL;
	if (a->target[0] == '@')
		rc = lm_lock_acquire(lm, v->addr, a->mode, a->wait_ms, lk);
	else
		rc = lm_lock_acquire_named(lm, v->vh.lock_off, v->vh.nlocks, a->target, a->mode,
					   a->wait_ms, lk);
	if (rc == -EBUSY || rc == -ETIMEDOUT) {
		tool_err("lock", "%s: lock '%s' %s", a->dev, a->target,
			 rc == -EBUSY ? "is busy" : "wait timed out");
		return EXIT_BUSY;
	}
	if (rc < 0) {
		tool_err("lock", "%s: lock '%s': %s%s%s", a->dev, a->target, lm_strerror(rc),
			 lm_errmsg(lm)[0] ? ": " : "", lm_errmsg(lm));
		return TOOL_EXIT_FAIL;
	}
	v->addr = lm_lock_addr(*lk);
	return 0;
}

/* Waits for a signal in `set` or fencing; returns the signal or 0 (fenced). */
static int wait_signal_or_fence(int sfd, struct lm *lm, pid_t child, int *status)
{
	struct pollfd p[2] = {{.fd = sfd, .events = POLLIN},
			      {.fd = lm_fence_fd(lm), .events = POLLIN}};

	for (;;) {
		if (child > 0 && waitpid(child, status, WNOHANG) == child)
			return -1;
		if (poll(p, 2, child > 0 ? 50 : -1) < 0 && errno != EINTR)
			return 0;
		if (p[1].revents & POLLIN)
			return 0;
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				if (si.ssi_signo != SIGCHLD)
					return (int)si.ssi_signo;
			}
		}
	}
}

static int run_command(struct lock_args *a, struct lm *lm, int sfd, const sigset_t *set)
{
	int status = 0, sig;
	pid_t pid = fork();

	if (pid < 0) {
		tool_err("lock", "fork: %s", strerror(errno));
		return TOOL_EXIT_FAIL;
	}
	if (pid == 0) {
		sigprocmask(SIG_UNBLOCK, set, NULL);
		execvp(a->cmd[0], a->cmd);
		fprintf(stderr, "vmfsctl lock: %s: %s\n", a->cmd[0], strerror(errno));
		_exit(127);
	}
	while ((sig = wait_signal_or_fence(sfd, lm, pid, &status)) > 0)
		kill(pid, sig); /* pass SIGTERM/SIGINT/SIGHUP on */
	if (sig == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		tool_err("lock", "%s: fenced (%s): killed %s", a->dev, lm_fence_reason(lm),
			 a->cmd[0]);
		return TOOL_EXIT_FAIL;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static int hold(struct lock_args *a, struct vol *v, struct lm *lm, struct lm_lock *lk, int sfd)
{
	char path[PATH_MAX + 64], pid[32];
	uint32_t slot, gen;
	FILE *f;
	int sig;

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	pid_pattern(a->dev, v->addr, pid, path, sizeof(path));
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
	}
	lm_slot(lm, &slot, &gen);
	printf("locked %s at 0x%llx mode %s gen %llu slot %u\n", a->target,
	       (unsigned long long)v->addr, lm_mode_name(a->mode),
	       (unsigned long long)lm_lock_gen(lk), slot);
	fflush(stdout);
	sig = wait_signal_or_fence(sfd, lm, 0, NULL);
	unlink(path);
	if (sig == 0) {
		tool_err("lock", "%s: fenced (%s): the lock is lost", a->dev, lm_fence_reason(lm));
		return TOOL_EXIT_FAIL;
	}
	return TOOL_EXIT_OK;
}

static int lock_main(struct lock_args *a)
{
	struct lm_opts o = {.hostname = a->host};
	struct lm_lock *lk = NULL;
	struct lm *lm = NULL;
	struct vol v = {0};
	sigset_t set;
	int rc, sfd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	/* before any thread exists (an iSCSI device starts one at open) */
	sigprocmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (open_vol("lock", a->dev, 0, &v) < 0) {
		close(sfd);
		return TOOL_EXIT_FAIL;
	}
	rc = lm_open(v.bd, &v.g, &o, &lm);
	if (rc == 0)
		rc = lm_join(lm);
	if (rc < 0) {
		tool_err("lock", "%s: joining the heartbeat: %s%s%s", a->dev, lm_strerror(rc),
			 lm && lm_errmsg(lm)[0] ? ": " : "", lm ? lm_errmsg(lm) : "");
		rc = TOOL_EXIT_FAIL;
		goto out;
	}
	rc = acquire(a, &v, lm, &lk);
	if (rc)
		goto out;
	rc = a->cmd ? run_command(a, lm, sfd, &set) : hold(a, &v, lm, lk, sfd);
	if (lm_lock_release(lk) < 0 && !lm_fenced(lm))
		tool_err("lock", "%s: release: %s", a->dev, lm_errmsg(lm));
	if (!a->cmd && rc == TOOL_EXIT_OK)
		printf("unlocked %s\n", a->target);
out:
	lm_close(lm);
	if (sfd >= 0)
		close(sfd);
	bdev_close(v.bd);
	return rc;
}

int cmd_lock(int argc, char **argv)
{
	struct lock_args a = {0};
	int rc = lock_parse(argc, argv, &a);

	if (rc)
		return rc < 0 ? TOOL_EXIT_OK : rc;
	return lock_main(&a);
}

/* ---- unlock -------------------------------------------------------------- */

static int signal_holders(const char *dev, uint64_t addr, pid_t *pids, int max)
{
	char pattern[PATH_MAX + 64];
	glob_t g;
	int n = 0;

	pid_pattern(dev, addr, "*", pattern, sizeof(pattern));
	if (glob(pattern, 0, NULL, &g) != 0)
		return 0;
	for (size_t i = 0; i < g.gl_pathc && n < max; i++) {
		FILE *f = fopen(g.gl_pathv[i], "r");
		int pid = 0;

		if (f && fscanf(f, "%d", &pid) == 1 && pid > 0 && kill(pid, SIGTERM) == 0)
			pids[n++] = pid;
		else
			unlink(g.gl_pathv[i]); /* its process is gone */
		if (f)
			fclose(f);
	}
	globfree(&g);
	return n;
}

static int wait_gone(pid_t *pids, int n, int wait_ms)
{
	struct timespec ts = {0, 20000000};

	for (int waited = 0; waited <= wait_ms; waited += 20) {
		int alive = 0;

		for (int i = 0; i < n; i++)
			alive += kill(pids[i], 0) == 0;
		if (!alive)
			return 0;
		nanosleep(&ts, NULL);
	}
	return -1;
}

int cmd_unlock(int argc, char **argv)
{
	static const struct option lo[] = {{"wait", required_argument, NULL, 'w'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	int c, wait_ms = 10000, n;
	struct vol v = {0};
	pid_t pids[64];

	optind = 1;
	while ((c = getopt_long(argc, argv, ":w:h", lo, NULL)) != -1) {
		switch (c) {
		case 'w':
			if (parse_secs("unlock", optarg, &wait_ms) < 0)
				return TOOL_EXIT_USAGE;
			break;
		case 'h': unlock_usage(stdout); return TOOL_EXIT_OK;
		default:
			tool_err("unlock", "bad option '%s' (try 'vmfsctl unlock --help')",
				 argv[optind - 1]);
			return TOOL_EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		tool_err("unlock", "need DEVICE and NAME|@OFFSET (try 'vmfsctl unlock --help')");
		return TOOL_EXIT_USAGE;
	}
	if (open_vol("unlock", argv[optind], 1, &v) < 0)
		return TOOL_EXIT_FAIL;
	if (resolve("unlock", &v, argv[optind + 1], 1) < 0) {
		bdev_close(v.bd);
		return TOOL_EXIT_FAIL;
	}
	bdev_close(v.bd);
	n = signal_holders(argv[optind], v.addr, pids, 64);
	if (n == 0) {
		tool_err("unlock", "%s: lock '%s' is not held by a 'vmfsctl lock' process here",
			 argv[optind], argv[optind + 1]);
		return TOOL_EXIT_FAIL;
	}
	if (wait_gone(pids, n, wait_ms) < 0) {
		tool_err("unlock", "%s: holder did not release within %d ms", argv[optind],
			 wait_ms);
		return TOOL_EXIT_FAIL;
	}
	return TOOL_EXIT_OK;
}
