/*
 * cmd_hosts.c - `vmfsctl hosts [--json] [--watch SECS] DEVICE`: every
 * heartbeat slot of a volume (state, owner UUID, hostname, generation,
 * counter) and whether its counter moved while we watched.
 *
 * Liveness can only be judged by watching (lockmgr compares no clocks): the
 * command reads every slot, keeps reading them every 100 ms (or interval/4)
 * for --watch seconds (default: two heartbeat intervals) and reports, per
 * slot, how long ago its counter last moved or that it did not move during
 * the whole watch. A live slot that did not move for the volume's timeout
 * is what other hosts take over: it is shown "dead". Without --watch, when
 * a live slot stayed silent for the two intervals, the watch goes on up to
 * the timeout (plus an interval) to tell dead from slow. This tool itself
 * never writes.
 * Real VMFS5/6 datastores are handed to real_cmd_hosts().
 */
#include "tool.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bdev.h"
#include "format.h"
#include "lockmgr.h"

struct slot_obs {
	struct lm_slot_info si;
	int bad;
	char why[128];
	double last_move; /* seconds since it last moved; < 0: not during the watch */
	int dead;	  /* live on disk, silent for at least the timeout */
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmfsctl hosts [--json] [--watch SECS] DEVICE\n\n"
		   "Lists the heartbeat slots of a volume: state, owner, generation,\n"
		   "counter, and how long ago the counter last moved, observed for\n"
		   "SECS seconds (default: two heartbeat intervals, extended to the\n"
		   "timeout while a live slot stays silent). A live slot silent for\n"
		   "the timeout is shown dead (any host may take it over). Never writes.\n\n"
		   "  --json        machine-readable output\n"
		   "  --watch SECS  how long to observe the counters (0..600, decimals ok)\n");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};

	nanosleep(&ts, NULL);
}

/* Reads every slot; marks t_moved[i] when its image differs from last time. */
static int scan(struct bdev *bd, const struct lm_geom *g, struct slot_obs *o, double *t_moved,
		int first)
{
	for (uint32_t i = 0; i < g->nslots; i++) {
		struct lm_slot_info si;
		char why[128] = "";
		int rc = lm_slot_read(bd, g, i, &si, why, sizeof(why));

		if (rc < 0 && rc != -EUCLEAN)
			return rc;
		if (rc == -EUCLEAN) {
			o[i].bad = 1;
			snprintf(o[i].why, sizeof(o[i].why), "%s", why);
			continue;
		}
		if (!first && (si.counter != o[i].si.counter || si.gen != o[i].si.gen ||
			       si.state != o[i].si.state))
			t_moved[i] = now_s();
		o[i].si = si;
		o[i].bad = 0;
	}
	return 0;
}

static const char *liveness(const struct slot_obs *o)
{
	if (o->bad)
		return "corrupt";
	if (o->si.state == LM_SLOT_FREE)
		return "-";
	if (o->si.state == LM_SLOT_REPLAYING)
		return o->dead ? "dead" : "recovering";
	return o->dead ? "dead" : o->last_move >= 0 ? "alive" : "silent";
}

/* The reservation key a slot's host registered (LIVE, or being reclaimed by
 * itself), on devices with reservations: "-" otherwise. */
static void slot_key(const struct tool_pr *pr, const struct slot_obs *o, uint32_t i, char *out,
		     size_t len)
{
	if (pr->has && !o->bad && o->si.state == LM_SLOT_LIVE)
		snprintf(out, len, "%016llx",
			 (unsigned long long)lm_pr_key(i, o->si.gen, o->si.uuid));
	else
		snprintf(out, len, "-");
}

static void print_text(const struct lm_geom *g, const struct slot_obs *o, double watch,
		       const struct tool_pr *pr, const char *access)
{
	unsigned unused = 0, shown = 0;

	printf("heartbeat: %u slots at 0x%llx, interval %u ms, timeout %u ms; watched %.1f s\n",
	       g->nslots, (unsigned long long)g->hb_off, g->hb_interval_ms, g->hb_timeout_ms,
	       watch);
	if (pr->has)
		printf("access: %s\n", access);
	printf("%-5s %-15s %-10s %-6s %-10s %-12s %-20s %s%s\n", "SLOT", "STATE", "LIVENESS", "GEN",
	       "COUNTER", "LAST-MOVED", "HOST", "UUID",
	       pr->has ? "                             KEY" : "");
	for (uint32_t i = 0; i < g->nslots; i++) {
		char uuid[37], moved[32];

		if (!o[i].bad && o[i].si.never_used) {
			unused++;
			continue;
		}
		shown++;
		if (o[i].bad) {
			printf("%-5u corrupt: %s\n", i, o[i].why);
			continue;
		}
		lm_uuid_str(o[i].si.uuid, uuid);
		if (o[i].si.state != LM_SLOT_LIVE)
			snprintf(moved, sizeof(moved), "-");
		else if (o[i].last_move >= 0)
			snprintf(moved, sizeof(moved), "%.1fs ago", o[i].last_move);
		else
			snprintf(moved, sizeof(moved), ">%.1fs", watch);
		printf("%-5u %-15s %-10s %-6u %-10llu %-12s %-20s %s", i,
		       o[i].dead ? "dead" : lm_slot_state_name(o[i].si.state), liveness(&o[i]),
		       o[i].si.gen, (unsigned long long)o[i].si.counter, moved, o[i].si.hostname,
		       uuid);
		if (pr->has) {
			char key[24];

			slot_key(pr, &o[i], i, key, sizeof(key));
			printf(" %s", key);
		}
		if (o[i].si.state == LM_SLOT_REPLAYING)
			printf(" (dead gen %u, replayed by slot %u gen %u)", o[i].si.dead_gen,
			       o[i].si.replayer_slot, o[i].si.replayer_gen);
		printf("\n");
	}
	printf("%u slot(s) listed, %u never used\n", shown, unused);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void print_json(const struct lm_geom *g, const struct slot_obs *o, double watch,
		       const struct tool_pr *pr, const char *ats)
{
	printf("{\n  \"hb_off\": %llu,\n  \"nslots\": %u,\n  \"interval_ms\": %u,\n"
	       "  \"timeout_ms\": %u,\n  \"watched_s\": %.3f,\n",
	       (unsigned long long)g->hb_off, g->nslots, g->hb_interval_ms, g->hb_timeout_ms,
	       watch);
	printf("  \"ats_method\": \"%s\",\n", ats);
	if (pr->has)
		printf("  \"reservation\": {\"keys\": %u, \"held\": %s, \"type\": \"%s\"},\n",
		       pr->nkeys, pr->held ? "true" : "false", tool_pr_type_name(pr));
	else
		printf("  \"reservation\": null,\n");
	printf("  \"slots\": [");
	for (uint32_t i = 0; i < g->nslots; i++) {
		char uuid[37];

		printf("%s\n    {\"slot\": %u, ", i ? "," : "", i);
		if (o[i].bad) {
			printf("\"state\": \"corrupt\", \"error\": ");
			json_str(o[i].why);
			printf("}");
			continue;
		}
		lm_uuid_str(o[i].si.uuid, uuid);
		printf("\"state\": \"%s\", \"never_used\": %s, \"liveness\": \"%s\", "
		       "\"dead\": %s, \"gen\": %u, \"counter\": %llu, \"moved_during_watch\": %s, ",
		       lm_slot_state_name(o[i].si.state), o[i].si.never_used ? "true" : "false",
		       liveness(&o[i]), o[i].dead ? "true" : "false", o[i].si.gen,
		       (unsigned long long)o[i].si.counter, o[i].last_move >= 0 ? "true" : "false");
		if (o[i].last_move >= 0)
			printf("\"last_moved_s_ago\": %.3f, ", o[i].last_move);
		else
			printf("\"last_moved_s_ago\": null, ");
		printf("\"host\": ");
		json_str(o[i].si.hostname);
		printf(", \"uuid\": \"%s\"", uuid);
		if (pr->has && o[i].si.state == LM_SLOT_LIVE) {
			char key[24];

			slot_key(pr, &o[i], i, key, sizeof(key));
			printf(", \"pr_key\": \"%s\"", key);
		}
		if (o[i].si.state == LM_SLOT_REPLAYING)
			printf(", \"dead_gen\": %u, \"replayer_slot\": %u, \"replayer_gen\": %u",
			       o[i].si.dead_gen, o[i].si.replayer_slot, o[i].si.replayer_gen);
		printf("}");
	}
	printf("\n  ]\n}\n");
}

/* Live (or being replayed) slots that did not move since the watch began. */
static int n_silent(const struct lm_geom *g, const struct slot_obs *o, const double *t_moved)
{
	int n = 0;

	for (uint32_t i = 0; i < g->nslots; i++)
		n += !o[i].bad && o[i].si.state != LM_SLOT_FREE && t_moved[i] < 0;
	return n;
}

static int watch_slots(const char *dev, struct bdev *bd, const struct lm_geom *g, double watch,
		       int extend, int json)
{
	struct slot_obs *o = calloc(g->nslots, sizeof(*o));
	double *t_moved = calloc(g->nslots, sizeof(double));
	double step = g->hb_interval_ms / 4000.0, t0, end;
	int rc = -ENOMEM, nbad = 0;
	struct tool_pr pr;
	char access[160];

	if (!o || !t_moved)
		goto out;
	if (step > 0.1)
		step = 0.1;
	for (uint32_t i = 0; i < g->nslots; i++)
		t_moved[i] = -1;
	t0 = now_s();
	end = t0 + watch;
	rc = scan(bd, g, o, t_moved, 1);
	while (rc == 0 && now_s() < end) {
		sleep_s(step);
		rc = scan(bd, g, o, t_moved, 0);
	}
	/* silent slots: watch them for the timeout to tell dead from slow */
	if (rc == 0 && extend && n_silent(g, o, t_moved)) {
		end = t0 + (g->hb_timeout_ms + g->hb_interval_ms) / 1000.0;
		if (!json)
			fprintf(stderr,
				"hosts: %d silent slot(s): watching for the timeout (%.1f s)\n",
				n_silent(g, o, t_moved), end - t0);
		while (rc == 0 && now_s() < end && n_silent(g, o, t_moved)) {
			sleep_s(step);
			rc = scan(bd, g, o, t_moved, 0);
		}
	}
	if (rc < 0) {
		tool_err("hosts", "%s: reading heartbeat slots: %s", dev, lm_strerror(rc));
		goto out;
	}
	for (uint32_t i = 0; i < g->nslots; i++) {
		o[i].last_move = t_moved[i] < 0 ? -1 : now_s() - t_moved[i];
		nbad += o[i].bad;
		/* REPLAYING by a dead replayer is judged by the replayer's slot;
		 * here only the slot's own silence is shown */
		o[i].dead = !o[i].bad && o[i].si.state == LM_SLOT_LIVE && o[i].last_move < 0 &&
			    now_s() - t0 >= g->hb_timeout_ms / 1000.0;
		if (!o[i].bad && o[i].si.state == LM_SLOT_REPLAYING && o[i].si.replayer_slot == i &&
		    o[i].last_move < 0 && now_s() - t0 >= g->hb_timeout_ms / 1000.0)
			o[i].dead = 1; /* reclaimed by a joiner that died during the replay */
	}
	if (tool_pr_read(bd, &pr) < 0)
		memset(&pr, 0, sizeof(pr));
	tool_access_line(bd, &pr, access, sizeof(access));
	if (json)
		print_json(g, o, now_s() - t0, &pr, bdev_ats_method_name(bd));
	else
		print_text(g, o, now_s() - t0, &pr, access);
	if (nbad)
		tool_err("hosts", "%s: %d corrupt heartbeat slot(s)", dev, nbad);
	rc = nbad ? -EUCLEAN : 0;
out:
	free(o);
	free(t_moved);
	return rc;
}

int cmd_hosts(int argc, char **argv)
{
	static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
					   {"watch", required_argument, NULL, 'w'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	double watch = -1;
	int json = 0, c, rc, extend = 0;
	struct vmfs_vh vh;
	struct bdev *bd;
	char why[256] = "";

	optind = 1;
	while ((c = getopt_long(argc, argv, ":jw:h", lo, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'j': json = 1; break;
		case 'h': usage(stdout); return TOOL_EXIT_OK;
		case 'w':
			watch = strtod(optarg, &end);
			if (*end || end == optarg || !(watch >= 0 && watch <= 600)) {
				tool_err("hosts", "bad --watch '%s' (0..600 seconds)", optarg);
				return TOOL_EXIT_USAGE;
			}
			break;
		default:
			tool_err("hosts", "bad option '%s' (try 'vmfsctl hosts --help')",
				 argv[optind - 1]);
			return TOOL_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		tool_err("hosts", "need exactly one DEVICE (try 'vmfsctl hosts --help')");
		return TOOL_EXIT_USAGE;
	}
	if (tool_open("hosts", argv[optind], 1, &bd) < 0)
		return TOOL_EXIT_FAIL;
	enum tool_fmt fmt = tool_detect(bd);
	if ((fmt == TOOL_FMT_VMFS5 || fmt == TOOL_FMT_VMFS6) && real_cmd_hosts) {
		bdev_close(bd);
		return real_cmd_hosts(argc, argv);
	}
	if (fmt != TOOL_FMT_NATIVE) {
		tool_err("hosts", "%s: not a libvmfs volume%s", argv[optind],
			 fmt == TOOL_FMT_UNKNOWN ? "" : " (VMFS reader not in this build)");
		bdev_close(bd);
		return TOOL_EXIT_FAIL;
	}
	rc = vmfs_vh_read(bd, &vh, why, sizeof(why));
	if (rc < 0) {
		tool_err("hosts", "%s: volume header: %s", argv[optind],
			 why[0] ? why : bdev_strerror(rc));
		bdev_close(bd);
		return TOOL_EXIT_FAIL;
	}
	struct lm_geom g = {vh.hb_off, vh.max_hosts, vh.hb_interval_ms, vh.hb_timeout_ms};
	if (watch < 0) {
		watch = 2.0 * g.hb_interval_ms / 1000.0;
		extend = 1;
	}
	rc = watch_slots(argv[optind], bd, &g, watch, extend, json);
	bdev_close(bd);
	return rc < 0 ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}
