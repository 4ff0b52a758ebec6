/*
 * cmd_top.c - `vmfsctl top [-d SECS] [-b] [-n N] DEVICE`: a live view of a
 * native volume. Every SECS (default 1) a frame shows
 *   - the hosts: each used heartbeat slot, its state (live, silent, dead,
 *     being-recovered, free) and its heartbeat age (how long ago its record
 *     last changed, as seen here);
 *   - the held locks: what they protect (file paths for file locks), mode
 *     and holders with their state;
 *   - the recent recoveries: the slots' recovery records, newest first;
 *   - rates between frames: heartbeat and lock-record writes seen on the
 *     disk per second, lock grants per second, locks with a waiter.
 * The screen is drawn with ncurses ('q' quits); -b (or a stdout that is not
 * a terminal) prints plain frames instead, -n N stops after N frames.
 *
 * Like `hosts`, top takes no slot and never writes: liveness is judged by
 * watching. Between frames the used slots are read every min(interval/4,
 * 100 ms) (one 1 KiB read per used slot); a live slot still for the
 * volume's timeout, counted from when top first saw its current record, is
 * dead. Locks are read once per frame (with the same walk as `locks`).
 * Only what reaches the shared disk can be seen: data I/O of the hosts is
 * not (rates count the lock manager's records).
 */
#include "tool.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_NCURSES
#include <curses.h>
#endif

#include "bdev.h"
#include "format.h"
#include "lockmgr.h"

#define MAX_LINES 400
#define LINE_LEN  200
#define MAX_LOCKS 256

struct tlock {
	uint64_t addr, gen;
	int wanted;
};

struct top {
	struct bdev *bd;
	struct vmfs_vh vh;
	struct lm_geom g;
	double t0;
	struct lm_slot_info *si;
	int *bad;
	double *t_moved; /* when its record last changed (monotonic s); t0 when not seen */
	uint64_t hb_writes;
	/* rates: previous frame */
	double t_prev;
	uint64_t hb_prev;
	struct tlock prev[MAX_LOCKS], cur[MAX_LOCKS];
	int nprev, ncur, nbad;
	char lines[MAX_LINES][LINE_LEN];
	int nlines;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmfsctl top [-d SECS] [-b] [-n N] DEVICE\n\n"
		   "Live view of a volume: hosts with liveness and heartbeat age, held\n"
		   "locks with file names and holders, recent recoveries (who replayed\n"
		   "which dead host, when, how many journal transactions), and the rates\n"
		   "of heartbeat and lock writes and lock waits. 'q' quits. Takes no slot\n"
		   "and never writes.\n\n"
		   "  -d SECS  refresh interval (0.1..3600, default 1)\n"
		   "  -b       batch mode: print plain frames (default when stdout is not a\n"
		   "           terminal)\n"
		   "  -n N     stop after N frames\n");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void line(struct top *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line(struct top *t, const char *fmt, ...)
{
	va_list ap;

	if (t->nlines >= MAX_LINES)
		return;
	va_start(ap, fmt);
	vsnprintf(t->lines[t->nlines++], LINE_LEN, fmt, ap);
	va_end(ap);
}

/* Reads the used slots (all: every slot, once a frame, to see hosts that
 * join; first: the first read, nothing moved yet). */
static int poll_slots(struct top *t, int all, int first)
{
	for (uint32_t i = 0; i < t->g.nslots; i++) {
		struct lm_slot_info si;
		int rc;

		if (!all && !t->bad[i] && t->si[i].never_used)
			continue;
		rc = lm_slot_read(t->bd, &t->g, i, &si, NULL, 0);
		if (rc < 0 && rc != -EUCLEAN)
			return rc;
		t->bad[i] = rc == -EUCLEAN;
		if (rc < 0)
			continue;
		if (!first && (si.counter != t->si[i].counter || si.gen != t->si[i].gen ||
			       si.state != t->si[i].state)) {
			t->t_moved[i] = now_s();
			if (si.counter > t->si[i].counter)
				t->hb_writes += si.counter - t->si[i].counter;
			else
				t->hb_writes++;
		}
		t->si[i] = si;
	}
	return 0;
}

static enum lm_liveness judge(const struct top *t, uint32_t i, double now)
{
	const struct lm_slot_info *si = &t->si[i];
	double still = now - t->t_moved[i], T = t->g.hb_timeout_ms / 1000.0;

	if (t->bad[i])
		return LM_LV_CORRUPT;
	if (si->state == LM_SLOT_FREE)
		return LM_LV_FREE;
	if (si->state == LM_SLOT_REPLAYING) {
		uint32_t r = si->replayer_slot;

		if (r == i)
			return still >= T ? LM_LV_DEAD : LM_LV_RECOVERING;
		if (r >= t->g.nslots || t->bad[r] || t->si[r].gen != si->replayer_gen)
			return LM_LV_DEAD;
		return LM_LV_RECOVERING;
	}
	if (still >= T)
		return LM_LV_DEAD;
	/* never seen moving: silent until watched for the timeout */
	return t->t_moved[i] == t->t0 ? LM_LV_SILENT : LM_LV_LIVE;
}

static const char *holder(const struct top *t, const struct lm_holder *h, double now, char *buf,
			  size_t len)
{
	const struct lm_slot_info *si;
	const char *st = "stale";

	if (h->slot >= t->g.nslots || t->bad[h->slot]) {
		snprintf(buf, len, "slot %u (unknown)", h->slot);
		return buf;
	}
	si = &t->si[h->slot];
	if (si->state == LM_SLOT_LIVE && si->gen == h->gen)
		st = lm_liveness_name(judge(t, h->slot, now));
	else if (si->state == LM_SLOT_REPLAYING && si->dead_gen == h->gen)
		st = "being-recovered";
	snprintf(buf, len, "%s (%s)", si->hostname[0] ? si->hostname : "?", st);
	return buf;
}

struct emit_ctx {
	struct top *t;
	double now;
	int shown;
};

static void emit_lock(void *arg, const char *what, const char *path, const struct lm_lock_info *l)
{
	struct emit_ctx *e = arg;
	struct top *t = e->t;
	char hs[LINE_LEN] = "", one[96];
	size_t n = 0;

	if (t->ncur < MAX_LOCKS)
		t->cur[t->ncur++] = (struct tlock){l->addr, l->gen, l->wanted != 0};
	for (uint32_t i = 0; i < l->nholders && n + 1 < sizeof(hs); i++) {
		holder(t, &l->holders[i], e->now, one, sizeof(one));
		n += (size_t)snprintf(hs + n, sizeof(hs) - n, "%s%s", i ? ", " : "", one);
	}
	if (e->shown++ >= 20)
		return;
	line(t, "  %-22.22s %-12s %-28s %s%s",
	     path && path[0] ? path
	     : l->name[0]    ? l->name
			     : what,
	     lm_mode_name(l->mode), hs, l->wanted ? "wanted by slot " : "",
	     l->wanted ? (snprintf(one, sizeof(one), "%u", l->wanted - 1), one) : "");
}

static int cmp_rec(const void *a, const void *b)
{
	const struct lm_slot_info *x = *(const struct lm_slot_info *const *)a;
	const struct lm_slot_info *y = *(const struct lm_slot_info *const *)b;

	return x->rec.time_ms < y->rec.time_ms ? 1 : x->rec.time_ms > y->rec.time_ms ? -1 : 0;
}

static void frame_hosts(struct top *t, double now)
{
	line(t, "HOSTS  (interval %u ms, timeout %u ms)", t->g.hb_interval_ms, t->g.hb_timeout_ms);
	line(t, "  %-5s %-16s %-15s %-6s %-12s %s", "SLOT", "HOST", "STATE", "GEN", "HB-AGE",
	     "DETAIL");
	for (uint32_t i = 0; i < t->g.nslots; i++) {
		const struct lm_slot_info *si = &t->si[i];
		enum lm_liveness lv = judge(t, i, now);
		char age[32] = "-", detail[120] = "";

		if (t->bad[i]) {
			line(t, "  %-5u corrupt slot", i);
			continue;
		}
		if (si->never_used)
			continue;
		if (si->state != LM_SLOT_FREE)
			snprintf(age, sizeof(age), "%s%.1fs", t->t_moved[i] == t->t0 ? ">" : "",
				 now - t->t_moved[i]);
		if (si->state == LM_SLOT_REPLAYING) {
			uint32_t r = si->replayer_slot;

			snprintf(detail, sizeof(detail), "by %s (slot %u)",
				 r == i				 ? "its new owner"
				 : r < t->g.nslots && !t->bad[r] ? t->si[r].hostname
								 : "?",
				 r);
		} else if (lv == LM_LV_DEAD) {
			snprintf(detail, sizeof(detail), "silent past the timeout");
		}
		line(t, "  %-5u %-16.16s %-15s %-6u %-12s %s", i, si->hostname,
		     lm_liveness_name(lv), si->gen, age, detail);
	}
}

static void frame_recoveries(struct top *t)
{
	const struct lm_slot_info *r[64];
	unsigned n = 0;
	char when[40];

	for (uint32_t i = 0; i < t->g.nslots && n < 64; i++)
		if (!t->bad[i] && t->si[i].rec.valid)
			r[n++] = &t->si[i];
	qsort(r, n, sizeof(r[0]), cmp_rec);
	line(t, "RECENT RECOVERIES (%u)", n);
	for (unsigned i = 0; i < n && i < 5; i++)
		line(t, "  %s  slot %u: %s (gen %u) recovered by %s (slot %u), %u txn replayed",
		     lm_time_str(r[i]->rec.time_ms, when, sizeof(when)), r[i]->index,
		     r[i]->rec.dead_host, r[i]->rec.dead_gen, r[i]->rec.by_host, r[i]->rec.by_slot,
		     r[i]->rec.replayed);
}

static void frame_rates(struct top *t, double now)
{
	double dt = now - t->t_prev;
	uint64_t grants = 0;
	int waiting = 0, new_waits = 0;

	for (int i = 0; i < t->ncur; i++) {
		waiting += t->cur[i].wanted;
		for (int j = 0; j < t->nprev; j++) {
			if (t->prev[j].addr != t->cur[i].addr)
				continue;
			if (t->cur[i].gen > t->prev[j].gen)
				grants += t->cur[i].gen - t->prev[j].gen;
			new_waits += t->cur[i].wanted && !t->prev[j].wanted;
		}
	}
	if (dt <= 0)
		dt = 1;
	line(t,
	     "RATES  heartbeat writes %.1f/s, lock grants %.1f/s, disk writes seen %.1f/s; "
	     "lock waits: %d lock(s) wanted, %.1f new/s",
	     (double)(t->hb_writes - t->hb_prev) / dt, (double)grants / dt,
	     (double)(t->hb_writes - t->hb_prev + grants) / dt, waiting, (double)new_waits / dt);
	memcpy(t->prev, t->cur, sizeof(t->cur[0]) * (size_t)t->ncur);
	t->nprev = t->ncur;
	t->hb_prev = t->hb_writes;
	t->t_prev = now;
}

static int build_frame(struct top *t, const char *dev, unsigned nframe)
{
	double now = now_s();
	struct emit_ctx e = {t, now, 0};
	struct timespec ts;
	char when[40];
	int rc;

	t->nlines = 0;
	t->ncur = 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	line(t, "vmfsctl top - %s - %s - frame %u, watched %.1f s   (q quits)", dev,
	     lm_time_str((uint64_t)ts.tv_sec * 1000, when, sizeof(when)), nframe, now - t->t0);
	line(t, "%s", "");
	frame_hosts(t, now);
	line(t, "%s", "");
	line(t, "LOCKS HELD");
	rc = locks_scan(t->bd, &t->vh, emit_lock, &e, &t->nbad);
	if (rc < 0)
		return rc;
	if (!e.shown)
		line(t, "  (none)");
	else if (e.shown > 20)
		line(t, "  ... %d more", e.shown - 20);
	line(t, "%s", "");
	frame_recoveries(t);
	line(t, "%s", "");
	frame_rates(t, now);
	return 0;
}

static void show(struct top *t, int curses)
{
#ifdef HAVE_NCURSES
	if (curses) {
		erase();
		for (int i = 0; i < t->nlines && i < LINES; i++)
			mvaddnstr(i, 0, t->lines[i], COLS);
		refresh();
		return;
	}
#endif
	(void)curses;
	for (int i = 0; i < t->nlines; i++)
		printf("%s\n", t->lines[i]);
	printf("\n");
	fflush(stdout);
}

/* Waits until `until` polling the slots; 1 when the user asked to quit. */
static int wait_poll(struct top *t, double until, int curses, int *err)
{
	double step = t->g.hb_interval_ms / 4000.0;

	if (step > 0.1)
		step = 0.1;
	while (now_s() < until) {
		double left = until - now_s();
		int ms = (int)((left < step ? left : step) * 1000) + 1;

#ifdef HAVE_NCURSES
		if (curses) {
			timeout(ms);
			int ch = getch();

			if (ch == 'q' || ch == 'Q')
				return 1;
		} else
#endif
		{
			struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

			(void)curses;
			nanosleep(&ts, NULL);
		}
		*err = poll_slots(t, 0, 0);
		if (*err < 0)
			return 1;
	}
	return 0;
}

static int run_top(struct top *t, const char *dev, double d, int curses, long nframes)
{
	int rc = 0, quit = 0;
	double next;

	t->si = calloc(t->g.nslots, sizeof(*t->si));
	t->bad = calloc(t->g.nslots, sizeof(int));
	t->t_moved = calloc(t->g.nslots, sizeof(double));
	if (!t->si || !t->bad || !t->t_moved)
		return -ENOMEM;
	t->t0 = t->t_prev = now_s();
	for (uint32_t i = 0; i < t->g.nslots; i++)
		t->t_moved[i] = t->t0;
	rc = poll_slots(t, 1, 1);
	/* the first frame after one heartbeat interval: enough to see who beats */
	if (rc == 0)
		quit = wait_poll(t, t->t0 + t->g.hb_interval_ms / 1000.0 * 1.2, curses, &rc);
	next = now_s();
	for (long n = 1; rc == 0 && !quit; n++) {
		rc = poll_slots(t, 1, 0);
		if (rc == 0)
			rc = build_frame(t, dev, (unsigned)n);
		if (rc < 0)
			break;
		show(t, curses);
		if (nframes > 0 && n >= nframes)
			break;
		next += d;
		quit = wait_poll(t, next, curses, &rc);
	}
	free(t->si);
	free(t->bad);
	free(t->t_moved);
	return rc;
}

int cmd_top(int argc, char **argv)
{
	static const struct option lo[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct top *t = calloc(1, sizeof(*t));
	double d = 1;
	long nframes = 0;
	int batch = 0, c, rc, curses;
	char why[256] = "", *end;

	if (!t)
		return TOOL_EXIT_FAIL;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":d:bn:h", lo, NULL)) != -1) {
		switch (c) {
		case 'd':
			d = strtod(optarg, &end);
			if (*end || end == optarg || !(d >= 0.1 && d <= 3600)) {
				tool_err("top", "bad -d '%s' (0.1..3600 seconds)", optarg);
				free(t);
				return TOOL_EXIT_USAGE;
			}
			break;
		case 'b': batch = 1; break;
		case 'n':
			nframes = strtol(optarg, &end, 10);
			if (*end || end == optarg || nframes < 1 || nframes > 1000000) {
				tool_err("top", "bad -n '%s' (1..1000000 frames)", optarg);
				free(t);
				return TOOL_EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			free(t);
			return TOOL_EXIT_OK;
		default:
			tool_err("top", "bad option '%s' (try 'vmfsctl top --help')",
				 argv[optind - 1]);
			free(t);
			return TOOL_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		tool_err("top", "need exactly one DEVICE (try 'vmfsctl top --help')");
		free(t);
		return TOOL_EXIT_USAGE;
	}
	if (tool_open("top", argv[optind], 1, &t->bd) < 0) {
		free(t);
		return TOOL_EXIT_FAIL;
	}
	if (tool_detect(t->bd) != TOOL_FMT_NATIVE) {
		tool_err("top", "%s: not a libvmfs volume", argv[optind]);
		rc = TOOL_EXIT_FAIL;
		goto out;
	}
	rc = vmfs_vh_read(t->bd, &t->vh, why, sizeof(why));
	if (rc < 0) {
		tool_err("top", "%s: volume header: %s", argv[optind],
			 why[0] ? why : bdev_strerror(rc));
		rc = TOOL_EXIT_FAIL;
		goto out;
	}
	if (vmfs_xtab_load(t->bd, &t->vh, why, sizeof(why)) < 0)
		fprintf(stderr, "vmfsctl top: %s: warning: %s\n", argv[optind], why);
	t->g = (struct lm_geom){t->vh.hb_off, t->vh.max_hosts, t->vh.hb_interval_ms,
				t->vh.hb_timeout_ms};
	curses = !batch && isatty(STDOUT_FILENO);
#ifdef HAVE_NCURSES
	if (curses) {
		initscr();
		cbreak();
		noecho();
		curs_set(0);
	}
#else
	if (curses) {
		tool_err("top", "built without ncurses: use -b");
		rc = TOOL_EXIT_USAGE;
		vmfs_xtab_free(&t->vh);
		goto out;
	}
#endif
	rc = run_top(t, argv[optind], d, curses, nframes);
#ifdef HAVE_NCURSES
	if (curses)
		endwin();
#endif
	vmfs_xtab_free(&t->vh);
	if (rc < 0) {
		tool_err("top", "%s: %s", argv[optind], lm_strerror(rc));
		rc = TOOL_EXIT_FAIL;
	} else {
		rc = TOOL_EXIT_OK;
	}
out:
	bdev_close(t->bd);
	free(t);
	return rc;
}
