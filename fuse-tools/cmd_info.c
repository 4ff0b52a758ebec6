/*
 * cmd_info.c - vmfsctl info [--json] DEVICE: the volume header, every region
 * and the heartbeat slots of a native volume; for a real VMFS5/6 datastore it
 * hands over to real_cmd_info(). A slot is "free" when its unit is all-zero,
 * else "used", described by lockmgr's lm_slot_describe().
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

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmfsctl info [--json] DEVICE\n"
		   "Show the volume header, the regions and the heartbeat slots of a libvmfs\n"
		   "volume (or the superblock of a VMFS5/VMFS6 datastore).\n"
		   "  --json  print one JSON object\n");
}

struct info_args {
	int json;
	const char *dev;
};

static int parse(int argc, char **argv, struct info_args *a)
{
	static const struct option lo[] = {
	    {"help", no_argument, NULL, 'h'}, {"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	int c;

	memset(a, 0, sizeof(*a));
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return TOOL_EXIT_OK;
		}
		if (c == 'j') {
			a->json = 1;
			continue;
		}
		tool_err("info", "unknown option '%s' (try 'vmfsctl info --help')",
			 argv[optind - 1]);
		return TOOL_EXIT_USAGE;
	}
	if (optind != argc - 1) {
		tool_err("info", "%s (try 'vmfsctl info --help')",
			 optind >= argc ? "no DEVICE given" : "more than one DEVICE given");
		return TOOL_EXIT_USAGE;
	}
	a->dev = argv[optind];
	return -1;
}

static int unit_zero(const uint8_t *u)
{
	for (unsigned i = 0; i < VMFS_UNIT; i++)
		if (u[i])
			return 0;
	return 1;
}

/* Describes slot unit u into desc; returns 1 when used. */
static int slot_desc(const uint8_t *u, char *desc, size_t len)
{
	if (unit_zero(u)) {
		snprintf(desc, len, "free (never used)");
		return 0;
	}
	(void)lm_slot_describe(u, VMFS_UNIT, desc, len); /* on error: the reason */
	return 1;
}

static void print_slots(const struct vmfs_vh *vh, const uint8_t *hb, int json)
{
	char desc[512];
	uint32_t nfree = 0;

	if (json)
		printf(",\n  \"slots\": [");
	else
		printf("Heartbeat slots:\n");
	for (uint32_t i = 0; i < vh->max_hosts; i++) {
		int used = slot_desc(hb + (size_t)i * VMFS_UNIT, desc, sizeof(desc));

		if (json) {
			printf("%s\n    {\"index\": %" PRIu32 ", \"state\": \"%s\", \"desc\": ",
			       i ? "," : "", i, used ? "used" : "free");
			native_json_str(stdout, desc);
			printf("}");
		} else if (used) {
			printf("  slot %4" PRIu32 ": %s\n", i, desc);
		}
		nfree += !used;
	}
	if (json)
		printf("\n  ],\n  \"slots_free\": %" PRIu32 ",\n  \"slots_used\": %" PRIu32 "\n}\n",
		       nfree, vh->max_hosts - nfree);
	else
		printf("  %" PRIu32 " of %" PRIu32 " slots free (never used)\n", nfree,
		       vh->max_hosts);
}

static int info_native(const struct info_args *a, struct bdev *bd)
{
	struct vmfs_vh vh;
	struct tool_pr pr;
	char access[160];
	char why[512];
	uint8_t *hb;
	int rc = vmfs_vh_read(bd, &vh, why, sizeof(why));

	if (rc) {
		tool_err("info", "%s: %s", a->dev, rc == -EUCLEAN ? why : bdev_strerror(rc));
		return TOOL_EXIT_FAIL;
	}
	if (vh.from_backup)
		fprintf(stderr, "vmfsctl info: %s: warning: %s; using the backup header\n", a->dev,
			why);
	if (vmfs_xtab_load(bd, &vh, why, sizeof(why))) {
		fprintf(stderr, "vmfsctl info: %s: warning: %s\n", a->dev, why);
		vmfs_xtab_free(&vh);
	}
	hb = bdev_alloc(vh.hb_len);
	if (!hb) {
		vmfs_xtab_free(&vh);
		return TOOL_EXIT_FAIL;
	}
	rc = bdev_read(bd, hb, vh.hb_off, vh.hb_len);
	if (rc) {
		tool_err("info", "%s: reading the heartbeat region: %s", a->dev, bdev_strerror(rc));
		bdev_free(hb);
		vmfs_xtab_free(&vh);
		return TOOL_EXIT_FAIL;
	}
	if (tool_pr_read(bd, &pr) < 0)
		memset(&pr, 0, sizeof(pr)); /* shown as "no persistent reservations" */
	if (a->json) {
		printf("{\n  \"device\": ");
		native_json_str(stdout, a->dev);
		printf(",\n  \"header_from_backup\": %s,\n", vh.from_backup ? "true" : "false");
		printf("  \"ats_method\": \"%s\",\n", bdev_ats_method_name(bd));
		if (pr.has)
			printf(
			    "  \"reservation\": {\"keys\": %u, \"held\": %s, \"type\": \"%s\"},\n",
			    pr.nkeys, pr.held ? "true" : "false", tool_pr_type_name(&pr));
		else
			printf("  \"reservation\": null,\n");
		native_print_layout_json(stdout, &vh);
	} else {
		tool_access_line(bd, &pr, access, sizeof(access));
		printf("Device:           %s\n", a->dev);
		printf("Access:           %s\n", access);
		native_print_layout(stdout, &vh);
	}
	print_slots(&vh, hb, a->json);
	bdev_free(hb);
	vmfs_xtab_free(&vh);
	return TOOL_EXIT_OK;
}

int cmd_info(int argc, char **argv)
{
	struct info_args a;
	struct bdev *bd;
	enum tool_fmt fmt;
	int rc = parse(argc, argv, &a);

	if (rc >= 0)
		return rc;
	if (tool_open("info", a.dev, 1, &bd) < 0)
		return TOOL_EXIT_FAIL;
	fmt = tool_detect(bd);
	if (fmt == TOOL_FMT_NATIVE) {
		rc = info_native(&a, bd);
	} else if (fmt == TOOL_FMT_VMFS5 || fmt == TOOL_FMT_VMFS6) {
		bdev_close(bd);
		if (real_cmd_info)
			return real_cmd_info(argc, argv);
		tool_err("info", "%s: this build cannot read VMFS5/6", a.dev);
		return TOOL_EXIT_FAIL;
	} else {
		tool_err("info", "%s: no libvmfs volume or VMFS datastore found", a.dev);
		rc = TOOL_EXIT_FAIL;
	}
	bdev_close(bd);
	return rc;
}
