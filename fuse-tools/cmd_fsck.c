/*
 * cmd_fsck.c - vmfsctl fsck [-n|-p|-y] [-f] [--json] DEVICE: checks a native
 * volume (libvmfs/format_check.c) and repairs it (libvmfs/format_repair.c)
 * with e2fsck's conventions: -n changes nothing (the default), -p repairs
 * what loses nothing, -y repairs everything it can. Each problem is one line
 * "fsck: REGION: what is wrong [fixed: how]". The heartbeat region is
 * watched first (up to the heartbeat timeout while a slot is live and
 * still): with a live host nothing is repaired. Exit codes as fsck(8): 0
 * clean, 1 errors corrected, 4 errors left uncorrected, 8 operational error,
 * 16 usage error. docs/FSCK.md lists every check and repair.
 */
#include "tool.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"
#include "format.h"
#include "lockmgr.h"
#include "native_util.h"

enum { FSCK_OK = 0, FSCK_FIXED = 1, FSCK_LEFT = 4, FSCK_OPER = 8, FSCK_USAGE = 16 };

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmfsctl fsck [-n|-p|-y] [-f] [--json] DEVICE\n"
		   "Check a libvmfs volume: headers, regions, journals, clusters, bitmaps,\n"
		   "FDs, pointer blocks, directories, link counts, heartbeat slots of dead\n"
		   "hosts and the locks they hold. Repairs nothing while a host is live.\n"
		   "  -n      open read-only, change nothing (the default)\n"
		   "  -p      repair what loses nothing (preen)\n"
		   "  -y      repair everything that can be repaired\n"
		   "  -f      check even if the volume seems clean (always done)\n"
		   "  --json  print one JSON object\n"
		   "Exit: 0 clean, 1 errors corrected, 4 errors left, 8 operational error,\n"
		   "16 usage error.\n");
}

struct fsck_args {
	int json, repair;
	const char *dev;
};

struct fsck_out {
	int json;
	unsigned n;
};

static int parse(int argc, char **argv, struct fsck_args *a)
{
	static const struct option lo[] = {
	    {"help", no_argument, NULL, 'h'}, {"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	int c;

	memset(a, 0, sizeof(*a));
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hnfyp", lo, NULL)) != -1) {
		switch (c) {
		case 'h': usage(stdout); return FSCK_OK;
		case 'j': a->json = 1; break;
		case 'n': a->repair = 0; break;
		case 'y': a->repair = VMFS_CHECK_REPAIR; break;
		case 'p': a->repair = VMFS_CHECK_PREEN; break;
		case 'f': break;
		default:
			tool_err("fsck", "unknown option '%s' (try 'vmfsctl fsck --help')",
				 argv[optind - 1]);
			return FSCK_USAGE;
		}
	}
	if (optind != argc - 1) {
		tool_err("fsck", "%s (try 'vmfsctl fsck --help')",
			 optind >= argc ? "no DEVICE given" : "more than one DEVICE given");
		return FSCK_USAGE;
	}
	a->dev = argv[optind];
	return -1;
}

static void report(void *arg, const char *region, const char *msg)
{
	struct fsck_out *o = arg;

	if (o->json) {
		printf("%s\n    {\"region\": ", o->n ? "," : "");
		native_json_str(stdout, region);
		printf(", \"message\": ");
		native_json_str(stdout, msg);
		printf("}");
	} else {
		printf("fsck: %s: %s\n", region, msg);
	}
	o->n++;
}

/* The last recovery of each heartbeat slot (its recovery record): notes in
 * text, a "recoveries" array in JSON. Informational, never a problem (a
 * corrupt record is one of the heartbeat region's problems already). */
static void recoveries(const struct fsck_args *a, struct bdev *bd)
{
	struct vmfs_vh vh;
	struct lm_slot_info si;
	char when[40];
	int n = 0;

	if (a->json)
		printf("  \"recoveries\": [");
	if (vmfs_vh_read(bd, &vh, NULL, 0) == 0) {
		struct lm_geom g = {vh.hb_off, vh.max_hosts, vh.hb_interval_ms, vh.hb_timeout_ms};

		for (uint32_t i = 0; i < g.nslots; i++) {
			if (lm_slot_read(bd, &g, i, &si, NULL, 0) < 0 || !si.rec.valid)
				continue;
			lm_time_str(si.rec.time_ms, when, sizeof(when));
			if (a->json) {
				printf("%s{\"slot\": %u, \"dead_host\": ", n ? ", " : "", i);
				native_json_str(stdout, si.rec.dead_host);
				printf(", \"dead_gen\": %u, \"by_host\": ", si.rec.dead_gen);
				native_json_str(stdout, si.rec.by_host);
				printf(", \"by_slot\": %u, \"time\": \"%s\", \"replayed\": %u}",
				       si.rec.by_slot, when, si.rec.replayed);
			} else {
				printf(
				    "%s: note: slot %u: %s (gen %u) was recovered by %s (slot %u) "
				    "at %s, %u journal transaction%s replayed\n",
				    a->dev, i, si.rec.dead_host, si.rec.dead_gen, si.rec.by_host,
				    si.rec.by_slot, when, si.rec.replayed,
				    si.rec.replayed == 1 ? "" : "s");
			}
			n++;
		}
	}
	if (a->json)
		printf("],\n");
}

static void summary(const struct fsck_args *a, struct bdev *bd, const struct vmfs_check_stats *st,
		    unsigned fixed, int code, unsigned nprinted)
{
	if (a->json) {
		printf("%s],\n  \"problems_left\": %" PRIu64 ",\n  \"fixed\": %u,\n",
		       nprinted ? "\n  " : "", st->problems, fixed);
		printf("  \"fds_used\": %" PRIu64 ", \"pbs_used\": %" PRIu64
		       ", \"sbs_used\": %" PRIu64 ", \"fbs_used\": %" PRIu64 ",\n",
		       st->fds_used, st->pbs_used, st->sbs_used, st->fbs_used);
		printf("  \"heartbeat_slots_used\": %" PRIu64 ", \"lock_units_used\": %" PRIu64
		       ",\n  \"fds_unlinked\": %" PRIu64 ", \"journals_pending\": %" PRIu64
		       ",\n  \"hosts_live\": %" PRIu64 ", \"hosts_dead\": %" PRIu64 ",\n",
		       st->hb_used, st->locks_used, st->fds_unlinked, st->journals_pending,
		       st->hosts_live, st->hosts_dead);
		recoveries(a, bd);
		printf("  \"clean\": %s,\n  \"exit\": %d\n}\n", code == FSCK_OK ? "true" : "false",
		       code);
		return;
	}
	recoveries(a, bd);
	if (st->hosts_live)
		printf("%s: note: %" PRIu64 " live host%s (heartbeat moving)%s\n", a->dev,
		       st->hosts_live, st->hosts_live == 1 ? "" : "s",
		       a->repair && (st->problems || fixed)
			   ? ": nothing repaired, unmount every host first"
			   : "");
	if (st->not_fixed_risky)
		printf("%s: %" PRIu64 " problem%s need%s 'fsck -y'\n", a->dev, st->not_fixed_risky,
		       st->not_fixed_risky == 1 ? "" : "s", st->not_fixed_risky == 1 ? "s" : "");
	if (st->fds_unlinked)
		printf("%s: note: %" PRIu64 " file%s unlinked while open, freed at last close or "
		       "by recovery\n",
		       a->dev, st->fds_unlinked, st->fds_unlinked == 1 ? "" : "s");
	if (st->journals_pending)
		printf("%s: note: %" PRIu64 " journal%s hold%s committed transactions not replayed "
		       "yet (a host crashed; the next mount or takeover replays them)\n",
		       a->dev, st->journals_pending, st->journals_pending == 1 ? "" : "s",
		       st->journals_pending == 1 ? "s" : "");
	if (fixed)
		printf("%s: %u problem%s corrected\n", a->dev, fixed, fixed == 1 ? "" : "s");
	if (st->problems)
		printf("%s: %" PRIu64 " problem%s left uncorrected\n", a->dev, st->problems,
		       st->problems == 1 ? "" : "s");
	else
		printf("%s: clean, %" PRIu64 " files, %" PRIu64 " blocks, %" PRIu64
		       " sub-blocks, %" PRIu64 " pointer blocks in use, %" PRIu64
		       " heartbeat slots used\n",
		       a->dev, st->fds_used, st->fbs_used, st->sbs_used, st->pbs_used, st->hb_used);
}

static int run(const struct fsck_args *a, struct bdev *bd)
{
	struct fsck_out o = {a->json, 0};
	struct vmfs_check_stats st;
	unsigned fixed = 0;
	int rc, code;

	if (a->json) {
		printf("{\n  \"device\": ");
		native_json_str(stdout, a->dev);
		printf(",\n  \"problems\": [");
	}
	rc = vmfs_check(bd, (unsigned)a->repair | VMFS_CHECK_HOSTS, report, &o, &st, &fixed);
	if (rc < 0) {
		if (a->json)
			printf("],\n  \"error\": \"%s\",\n  \"exit\": %d\n}\n", bdev_strerror(rc),
			       FSCK_OPER);
		fflush(stdout);
		tool_err("fsck", "%s: I/O at offset 0x%" PRIx64 ": %s", a->dev, st.err_off,
			 bdev_strerror(rc));
		return FSCK_OPER;
	}
	code = st.problems ? FSCK_LEFT : fixed ? FSCK_FIXED : FSCK_OK;
	summary(a, bd, &st, fixed, code, o.n);
	if (st.no_header) {
		fflush(stdout);
		tool_err("fsck",
			 "%s: no usable volume header (both copies are bad), nothing checked",
			 a->dev);
	}
	return code;
}

int cmd_fsck(int argc, char **argv)
{
	struct fsck_args a;
	struct bdev *bd;
	enum tool_fmt fmt;
	int rc = parse(argc, argv, &a);

	if (rc >= 0)
		return rc;
	if (tool_open("fsck", a.dev, !a.repair, &bd) < 0)
		return FSCK_OPER;
	fmt = tool_detect(bd);
	if (fmt == TOOL_FMT_NATIVE) {
		rc = run(&a, bd);
	} else {
		tool_err("fsck", "%s: %s", a.dev,
			 fmt == TOOL_FMT_UNKNOWN ? "no libvmfs volume found (no volume header)"
						 : "checking VMFS5/6 datastores is not supported");
		rc = FSCK_OPER;
	}
	bdev_close(bd);
	return rc;
}
