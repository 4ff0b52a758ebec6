/*
 * cmd_hosts.c - `vmfsctl hosts [--json] [--watch SECS] DEVICE`: every
 * heartbeat slot of a volume and what it is: live, dead (silent for the
 * timeout, and since when at the latest), being recovered (by whom), free,
 * with owner UUID, hostname, generation, counter, and the slot's last
 * recovery (its recovery record: who recovered which dead host, when, how
 * many journal transactions were replayed).
 *
 * Liveness can only be judged by watching (lockmgr compares no clocks):
 * lm_slots_watch() reads every slot for --watch seconds (default: two
 * heartbeat intervals) and, without --watch, goes on up to the timeout
 * (plus an interval) while a live slot stays silent, to tell dead from
 * slow. A slot live on disk but watched too briefly is "silent". This tool
 * itself takes no slot and never writes.
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

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmfsctl hosts [--json] [--watch SECS] DEVICE\n\n"
		   "Lists the heartbeat slots of a volume: state (live, dead, being\n"
		   "recovered, free), owner, generation, counter, how long ago the\n"
		   "counter last moved, observed for SECS seconds (default: two\n"
		   "heartbeat intervals, extended to the timeout while a live slot\n"
		   "stays silent), and each slot's last recovery (who replayed the\n"
		   "dead host's journal, when, how many transactions). A live slot\n"
		   "silent for the timeout is shown dead (any host may take it over).\n"
		   "Takes no slot and never writes.\n\n"
		   "  --json        machine-readable output\n"
		   "  --watch SECS  how long to observe the counters (0..600, decimals ok)\n");
}

/* What the slot is, as judged by the watch (STATE column, JSON "state"):
 * live, silent (live on disk, watched too briefly to tell), dead,
 * being-recovered, free, corrupt. */
static const char *state_name(const struct lm_slot_watch *o)
{
	return lm_liveness_name(o->lv);
}

/* The old LIVENESS words (alive / silent / dead / recovering / -). */
static const char *liveness(const struct lm_slot_watch *o)
{
	switch (o->lv) {
	case LM_LV_LIVE: return "alive";
	case LM_LV_SILENT: return "silent";
	case LM_LV_DEAD: return "dead";
	case LM_LV_RECOVERING: return "recovering";
	case LM_LV_CORRUPT: return "corrupt";
	default: return "-";
	}
}

/* Wall-clock time `ago` seconds before now, "HH:MM:SS" UTC. */
static void ago_str(double ago, char *out, size_t len)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	lm_time_str((uint64_t)ts.tv_sec * 1000 - (uint64_t)(ago * 1000), out, len);
}

/* The host replaying slot o (being recovered): "HOST (slot N)". */
static void replayer_str(const struct lm_geom *g, const struct lm_slot_watch *all,
			 const struct lm_slot_watch *o, char *out, size_t len)
{
	uint32_t r = o->si.replayer_slot;
	const char *h = r < g->nslots && !all[r].bad ? all[r].si.hostname : "?";

	if (r == o->si.index)
		h = "its new owner";
	snprintf(out, len, "%s (slot %u gen %u)", h, r, o->si.replayer_gen);
}

static void print_recovery_text(const struct lm_slot_info *si)
{
	char when[40], bu[37];

	if (si->rec_bad) {
		printf("      recovery record corrupt: %s\n", si->rec_why);
		return;
	}
	if (!si->rec.valid)
		return;
	lm_uuid_str(si->rec.by_uuid, bu);
	printf("      last recovery: %s (gen %u) recovered by %s (slot %u gen %u) at %s, "
	       "%u journal transaction(s) replayed\n",
	       si->rec.dead_host, si->rec.dead_gen, si->rec.by_host, si->rec.by_slot,
	       si->rec.by_gen, lm_time_str(si->rec.time_ms, when, sizeof(when)), si->rec.replayed);
}

/* The reservation key a slot's host registered (LIVE, or being reclaimed by
 * itself), on devices with reservations: "-" otherwise. */
static void slot_key(const struct tool_pr *pr, const struct lm_slot_watch *o, uint32_t i, char *out,
		     size_t len)
{
	if (pr->has && !o->bad && o->si.state == LM_SLOT_LIVE)
		snprintf(out, len, "%016llx",
			 (unsigned long long)lm_pr_key(i, o->si.gen, o->si.uuid));
	else
		snprintf(out, len, "-");
}

/* What follows the row: since when a dead slot is silent, who recovers a
 * slot being replayed. */
static void print_detail(const struct lm_geom *g, const struct lm_slot_watch *o, uint32_t i)
{
	char buf[160];

	if (o[i].lv == LM_LV_DEAD && o[i].si.state == LM_SLOT_LIVE) {
		ago_str(o[i].silent_s, buf, sizeof(buf));
		printf(" (silent >= %.1fs, since %s or earlier)", o[i].silent_s, buf);
	}
	if (o[i].si.state == LM_SLOT_REPLAYING) {
		replayer_str(g, o, &o[i], buf, sizeof(buf));
		printf(" (dead gen %u, being recovered by %s%s)", o[i].si.dead_gen, buf,
		       o[i].lv == LM_LV_DEAD ? ", who is gone" : "");
	}
}

static void print_text(const struct lm_geom *g, const struct lm_slot_watch *o, double watch,
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
		if (o[i].si.state == LM_SLOT_FREE)
			snprintf(moved, sizeof(moved), "-");
		else if (o[i].last_move_s >= 0)
			snprintf(moved, sizeof(moved), "%.1fs ago", o[i].last_move_s);
		else
			snprintf(moved, sizeof(moved), ">%.1fs", o[i].silent_s);
		/* a silent slot is live on disk: the watch could not tell */
		printf("%-5u %-15s %-10s %-6u %-10llu %-12s %-20s %s", i,
		       o[i].lv == LM_LV_SILENT ? "live" : state_name(&o[i]), liveness(&o[i]),
		       o[i].si.gen, (unsigned long long)o[i].si.counter, moved, o[i].si.hostname,
		       uuid);
		if (pr->has) {
			char key[24];

			slot_key(pr, &o[i], i, key, sizeof(key));
			printf(" %s", key);
		}
		print_detail(g, o, i);
		printf("\n");
		print_recovery_text(&o[i].si);
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

static void print_recovery_json(const struct lm_slot_info *si)
{
	char uuid[37], when[40];

	printf(", \"recovery\": ");
	if (si->rec_bad) {
		printf("{\"error\": ");
		json_str(si->rec_why);
		printf("}");
		return;
	}
	if (!si->rec.valid) {
		printf("null");
		return;
	}
	printf("{\"dead_host\": ");
	json_str(si->rec.dead_host);
	lm_uuid_str(si->rec.dead_uuid, uuid);
	printf(", \"dead_uuid\": \"%s\", \"dead_gen\": %u, \"by_host\": ", uuid, si->rec.dead_gen);
	json_str(si->rec.by_host);
	lm_uuid_str(si->rec.by_uuid, uuid);
	printf(", \"by_uuid\": \"%s\", \"by_slot\": %u, \"by_gen\": %u, \"time_ms\": %llu, "
	       "\"time\": \"%s\", \"replayed\": %u}",
	       uuid, si->rec.by_slot, si->rec.by_gen, (unsigned long long)si->rec.time_ms,
	       lm_time_str(si->rec.time_ms, when, sizeof(when)), si->rec.replayed);
}

static void print_json(const struct lm_geom *g, const struct lm_slot_watch *o, double watch,
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
		char uuid[37], buf[160];

		printf("%s\n    {\"slot\": %u, ", i ? "," : "", i);
		if (o[i].bad) {
			printf("\"state\": \"corrupt\", \"error\": ");
			json_str(o[i].why);
			printf("}");
			continue;
		}
		lm_uuid_str(o[i].si.uuid, uuid);
		printf("\"state\": \"%s\", \"disk_state\": \"%s\", \"never_used\": %s, "
		       "\"liveness\": \"%s\", \"dead\": %s, \"gen\": %u, \"counter\": %llu, "
		       "\"moved_during_watch\": %s, ",
		       state_name(&o[i]), lm_slot_state_name(o[i].si.state),
		       o[i].si.never_used ? "true" : "false", liveness(&o[i]),
		       o[i].lv == LM_LV_DEAD ? "true" : "false", o[i].si.gen,
		       (unsigned long long)o[i].si.counter,
		       o[i].last_move_s >= 0 ? "true" : "false");
		if (o[i].last_move_s >= 0)
			printf("\"last_moved_s_ago\": %.3f, ", o[i].last_move_s);
		else
			printf("\"last_moved_s_ago\": null, ");
		if (o[i].si.state != LM_SLOT_FREE && o[i].last_move_s < 0) {
			ago_str(o[i].silent_s, buf, sizeof(buf));
			printf("\"silent_s\": %.3f, \"silent_since\": \"%s\", ", o[i].silent_s,
			       buf);
		}
		printf("\"host\": ");
		json_str(o[i].si.hostname);
		printf(", \"uuid\": \"%s\"", uuid);
		if (pr->has && o[i].si.state == LM_SLOT_LIVE) {
			char key[24];

			slot_key(pr, &o[i], i, key, sizeof(key));
			printf(", \"pr_key\": \"%s\"", key);
		}
		if (o[i].si.state == LM_SLOT_REPLAYING) {
			uint32_t r = o[i].si.replayer_slot;

			printf(", \"dead_gen\": %u, \"replayer_slot\": %u, \"replayer_gen\": %u, "
			       "\"replayer_host\": ",
			       o[i].si.dead_gen, r, o[i].si.replayer_gen);
			json_str(r < g->nslots && !o[r].bad ? o[r].si.hostname : "");
		}
		print_recovery_json(&o[i].si);
		printf("}");
	}
	printf("\n  ]\n}\n");
}

static int watch_slots(const char *dev, struct bdev *bd, const struct lm_geom *g, double watch,
		       int extend, int json)
{
	struct lm_slot_watch *o = calloc(g->nslots, sizeof(*o));
	double watched = 0;
	int rc = -ENOMEM, nbad = 0;
	struct tool_pr pr;
	char access[160];

	if (!o)
		goto out;
	if (extend && !json)
		fprintf(stderr,
			"hosts: watching the heartbeats for %.1f s (up to %.1f s while a "
			"live slot is silent: watching for the timeout)\n",
			watch, (g->hb_timeout_ms + g->hb_interval_ms) / 1000.0);
	rc = lm_slots_watch(bd, g, watch, extend, o, &watched);
	if (rc < 0) {
		tool_err("hosts", "%s: reading heartbeat slots: %s", dev, lm_strerror(rc));
		goto out;
	}
	for (uint32_t i = 0; i < g->nslots; i++)
		nbad += o[i].bad;
	if (tool_pr_read(bd, &pr) < 0)
		memset(&pr, 0, sizeof(pr));
	tool_access_line(bd, &pr, access, sizeof(access));
	if (json)
		print_json(g, o, watched, &pr, bdev_ats_method_name(bd));
	else
		print_text(g, o, watched, &pr, access);
	if (nbad)
		tool_err("hosts", "%s: %d corrupt heartbeat slot(s)", dev, nbad);
	rc = nbad ? -EUCLEAN : 0;
out:
	free(o);
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
