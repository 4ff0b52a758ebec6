/*
 * iscsi_fence.c URL MODE - the target refuses a preempted host's late
 * writes (lm_pr.c, docs/LOCKING.md "Fencing on SAN LUNs").
 *
 * On a fresh LUN: a victim host joins, takes a lock and writes the unit it
 * protects; it is stopped (SIGSTOP) past the timeout; a taker's acquire
 * takes the victim's slot over, which preempts the victim's reservation
 * keys before the (empty) takeover callback, and writes the unit. Then the
 * victim resumes and writes through lm_test_unguarded_write(), which skips
 * the lease check: the thread "paused between the check and the write"
 * that no userspace protocol can stop. The target must refuse it
 * (RESERVATION CONFLICT), the victim must be fenced, and the unit must hold
 * the taker's bytes.
 *
 * MODE caw (istgt, COMPARE AND WRITE): a standing WRITE EXCLUSIVE - ALL
 * REGISTRANTS reservation exists while hosts are joined, an unregistered
 * session cannot write, the late plain write and the late ATS are refused,
 * and after the taker leaves no key is left.
 * MODE pr (tgt, the reservation is the ATS mutex): the late ATS is refused
 * (a preempted session can no longer take the mutex); a plain write is not
 * (no standing reservation: the documented limit of that method).
 * Exit 0 on success, 1 with a message naming the failed check.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bdev.h"
#include "lockmgr.h"

#define HB_OFF	 (1u << 20)
#define LOCK_OFF (2u << 20)
#define DATA_OFF (4u << 20)

struct shm {
	_Atomic int holding, go, victim_done, acquired, taker_go;
	uint64_t victim_key;
	int late_write, late_ats, fenced;
	char why[200];
	struct lm_stats taker_st;
	uint64_t taker_key;
	int taker_rc;
};

static struct shm *m;
static const char *url;
static struct lm_geom geom = {HB_OFF, 8, 250, 2000};

static void die(int code, const char *fmt, const char *arg)
{
	fprintf(stderr, "[child %d] ", (int)getpid());
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	_exit(code);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Waits for *f, at most secs seconds, and not past the end of child `who`
 * (0: none) if it exits first (then reaped: its status is printed). */
static int wait_flag(_Atomic int *f, int secs, pid_t who)
{
	int st;

	for (int i = 0; i < secs * 100; i++) {
		if (atomic_load(f))
			return 1;
		if (who > 0 && waitpid(who, &st, WNOHANG) == who) {
			fprintf(stderr, "child %d ended (status 0x%x) before the wait was over\n",
				(int)who, st);
			return 0;
		}
		sleep_ms(10);
	}
	return 0;
}

static void host_open(const char *name, struct bdev **bd, struct lm **lm)
{
	struct lm_opts o = {.hostname = name};
	int rc = bdev_open(url, 0, bd);

	if (rc < 0)
		die(10, "bdev_open: %s", bdev_strerror(rc));
	rc = lm_open(*bd, &geom, &o, lm);
	if (rc < 0)
		die(11, "lm_open: %s", lm_strerror(rc));
	rc = lm_join(*lm);
	if (rc < 0)
		die(12, "lm_join: %s", lm_errmsg(*lm));
}

static void fill(uint8_t *buf, const char *tag)
{
	memset(buf, 0, 512);
	snprintf((char *)buf, 512, "%s", tag);
}

static void victim(void)
{
	uint8_t *buf = bdev_alloc(512), *zero = bdev_alloc(512);
	struct lm_lock *lk;
	struct bdev *bd;
	struct lm *lm;
	int rc;

	host_open("victim", &bd, &lm);
	rc = lm_lock_acquire(lm, LOCK_OFF, LM_MODE_EX, 0, &lk);
	if (rc < 0)
		die(20, "victim acquire: %s", lm_strerror(rc));
	fill(buf, "VICTIM");
	rc = lm_guarded_write(lm, buf, DATA_OFF, 512);
	if (rc < 0)
		die(21, "victim write: %s", lm_strerror(rc));
	m->victim_key = lm_pr_own_key(lm);
	atomic_store(&m->holding, 1);
	if (!wait_flag(&m->go, 300, 0))
		die(22, "%s", "never told to go on");
	/* resumed long after the takeover: the late writes */
	fill(buf, "LATE");
	m->late_write = lm_test_unguarded_write(lm, buf, DATA_OFF, 512);
	memset(zero, 0, 512);
	m->late_ats = bdev_ats(bd, DATA_OFF + 4096, zero, buf, NULL);
	m->fenced = lm_fenced(lm);
	snprintf(m->why, sizeof(m->why), "%s", lm_fence_reason(lm));
	atomic_store(&m->victim_done, 1);
	lm_close(lm); /* fenced: writes nothing */
	bdev_close(bd);
	_exit(0);
}

static void taker(void)
{
	uint8_t *buf = bdev_alloc(512);
	struct lm_lock *lk;
	struct bdev *bd;
	struct lm *lm;
	int rc;

	host_open("taker", &bd, &lm);
	m->taker_key = lm_pr_own_key(lm);
	rc = lm_lock_acquire(lm, LOCK_OFF, LM_MODE_EX, 120000, &lk);
	if (rc < 0)
		die(30, "taker acquire: %s", lm_errmsg(lm));
	fill(buf, "TAKER");
	rc = lm_guarded_write(lm, buf, DATA_OFF, 512);
	if (rc < 0)
		die(31, "taker write: %s", lm_strerror(rc));
	lm_stats_get(lm, &m->taker_st);
	atomic_store(&m->acquired, 1);
	if (!wait_flag(&m->taker_go, 300, 0))
		die(32, "%s", "never told to leave");
	lm_lock_release(lk);
	lm_close(lm); /* clean leave: removes its keys */
	bdev_close(bd);
	_exit(0);
}

static pid_t spawn(void (*fn)(void))
{
	pid_t parent = getpid(), p = fork();

	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		fn();
	}
	return p;
}

static int fails;
#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "FAIL: " __VA_ARGS__);                                     \
			fputc('\n', stderr);                                                       \
			fails++;                                                                   \
		}                                                                                  \
	} while (0)

static void pr_state(struct bdev *obs, unsigned *nkeys, int *held, enum bdev_pr_type *type)
{
	uint64_t keys[16], holder;
	uint32_t gen;

	*nkeys = 999;
	*held = -1;
	if (bdev_pr_read_keys(obs, keys, 16, nkeys, &gen) < 0 ||
	    bdev_pr_read_reservation(obs, held, &holder, type) < 0)
		fprintf(stderr, "FAIL: reading the reservation state\n");
}

static int child_ok(pid_t p, const char *who)
{
	int st = 0;

	if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "FAIL: %s ended with status 0x%x\n", who, st);
		return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	struct bdev *obs, *intruder;
	enum bdev_pr_type type = 0;
	uint8_t *buf;
	unsigned nkeys;
	int caw, held, rc;
	pid_t v, t;

	if (argc != 3 || (strcmp(argv[2], "caw") && strcmp(argv[2], "pr"))) {
		fprintf(stderr, "usage: iscsi_fence URL caw|pr\n");
		return 2;
	}
	url = argv[1];
	caw = !strcmp(argv[2], "caw");
	m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 1;
	memset(m, 0, sizeof(*m));
	rc = bdev_open(url, BDEV_O_RDONLY, &obs); /* read-only: registers nothing */
	if (rc < 0) {
		fprintf(stderr, "FAIL: open %s: %s\n", url, bdev_strerror(rc));
		return 1;
	}
	buf = bdev_alloc(8192);

	v = spawn(victim);
	if (!wait_flag(&m->holding, 120, v)) {
		fprintf(stderr, "FAIL: the victim never took its lock\n");
		kill(v, SIGKILL);
		return 1;
	}
	pr_state(obs, &nkeys, &held, &type);
	fprintf(stderr, "victim joined: key %016llx, %u keys registered, reservation %d type %d\n",
		(unsigned long long)m->victim_key, nkeys, held, (int)type);
	CHECK(m->victim_key != 0, "the victim registered no key");
	CHECK(nkeys == 1, "%u keys registered, expected 1 (the victim's session)", nkeys);
	if (caw) {
		CHECK(held == 1 && type == BDEV_PR_WE_ALL_REGISTRANTS,
		      "no WRITE EXCLUSIVE - ALL REGISTRANTS reservation (held %d type %d)", held,
		      (int)type);
		/* a session that did not join cannot write */
		rc = bdev_open(url, 0, &intruder);
		CHECK(rc == 0, "open of an unregistered session: %s", bdev_strerror(rc));
		if (rc == 0) {
			memset(buf, 0x77, 512);
			rc = bdev_write(intruder, buf, DATA_OFF + 8192, 512);
			CHECK(rc == -BDEV_E_RESV_CONFLICT,
			      "an unregistered session's write returned %d, not a conflict", rc);
			bdev_close(intruder);
		}
	}

	kill(v, SIGSTOP);
	t = spawn(taker);
	if (!wait_flag(&m->acquired, 240, t)) {
		fprintf(stderr, "FAIL: the taker never got the lock\n");
		kill(v, SIGKILL);
		kill(t, SIGKILL);
		return 1;
	}
	fprintf(stderr, "taken over: %llu takeovers, %llu preempts (%llu absent)\n",
		(unsigned long long)m->taker_st.takeovers,
		(unsigned long long)m->taker_st.pr_preempts,
		(unsigned long long)m->taker_st.pr_preempt_absent);
	CHECK(m->taker_st.takeovers >= 1, "the taker took no slot over");
	CHECK(m->taker_st.pr_preempts >= 1 && m->taker_st.pr_preempt_absent == 0,
	      "the victim's keys were not preempted");

	kill(v, SIGCONT);
	atomic_store(&m->go, 1);
	if (!wait_flag(&m->victim_done, 120, v))
		CHECK(0, "the victim never finished its late writes");
	fprintf(stderr, "late write: %d (%s), late ats: %d (%s); fenced %d: %s\n", m->late_write,
		bdev_strerror(m->late_write), m->late_ats, bdev_strerror(m->late_ats), m->fenced,
		m->why);
	if (caw)
		CHECK(m->late_write == -BDEV_E_RESV_CONFLICT,
		      "the target did not refuse the preempted host's write (%d)", m->late_write);
	CHECK(m->late_ats == -BDEV_E_RESV_CONFLICT,
	      "the target did not refuse the preempted host's ATS (%d)", m->late_ats);
	CHECK(m->fenced == 1, "the victim is not fenced");
	rc = bdev_read(obs, buf, DATA_OFF, 4096 * 2);
	if (caw) /* with the mutex method the late plain write lands (see top) */
		CHECK(rc == 0 && !strcmp((char *)buf, "TAKER"),
		      "the unit holds \"%.8s\", not TAKER", (char *)buf);
	CHECK(rc == 0 && buf[4096] == 0, "the late ATS landed");
	if (!child_ok(v, "victim"))
		fails++;

	atomic_store(&m->taker_go, 1);
	if (!child_ok(t, "taker"))
		fails++;
	pr_state(obs, &nkeys, &held, &type);
	fprintf(stderr, "all left: %u keys registered, reservation %d\n", nkeys, held);
	CHECK(nkeys == 0, "%u keys left registered after every host left", nkeys);
	if (held) /* SPC-4 releases an all-registrants reservation with its last
		   * registrant; istgt 0.4 keeps it (docs/BLOCKDEV.md 6.5) */
		fprintf(stderr, "note: the target kept the reservation with no registrant\n");
	bdev_close(obs);
	bdev_free(buf);
	if (fails)
		fprintf(stderr, "%d check(s) failed\n", fails);
	else
		fprintf(stderr, "ok\n");
	return fails ? 1 : 0;
}
