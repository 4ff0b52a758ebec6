/*
 * cmd_df.c - vmfsctl df [--json] DEVICE...: space and files used and free,
 * for libvmfs volumes and real VMFS5/6 datastores alike.
 */
#include "fsview.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmfsctl df [--json] DEVICE...\n"
		   "Show size, used and free space and files of each volume (native,\n"
		   "VMFS5 or VMFS6), in 1K blocks like df(1). Never writes.\n\n"
		   "  --json  print a JSON array, one object per volume\n");
}

static int df_one(const char *dev, int json, int first)
{
	struct fsview_statfs st;
	struct fsview *v;
	int rc;

	if (fsview_open("df", dev, 0, &v) < 0)
		return -1;
	rc = v->ops->statfs ? v->ops->statfs(v, &st) : -1;
	if (rc < 0) {
		tool_err("df", "%s: %s", dev, fsview_strerror(v, rc));
		fsview_close(v);
		return -1;
	}
	if (json) {
		printf("%s\n  {\"device\": ", first ? "" : ",");
		fsview_json_str(stdout, dev);
		printf(", \"format\": \"%s\", \"block_size\": %llu, \"blocks\": %llu, "
		       "\"blocks_free\": %llu, \"files\": %llu, \"files_free\": %llu}",
		       v->kind, (unsigned long long)st.bsize, (unsigned long long)st.blocks,
		       (unsigned long long)st.bfree, (unsigned long long)st.files,
		       (unsigned long long)st.ffree);
	} else {
		unsigned long long size = st.bsize * st.blocks, avail = st.bsize * st.bfree;
		unsigned long long used = size - avail;

		printf("%-30s %-7s %14llu %14llu %14llu %4llu%% %9llu %9llu\n", dev, v->kind,
		       size >> 10, used >> 10, avail >> 10,
		       size ? (used * 100 + size - 1) / size : 0,
		       (unsigned long long)(st.files - st.ffree), (unsigned long long)st.ffree);
	}
	fsview_close(v);
	return 0;
}

int cmd_df(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"help", no_argument, NULL, 'h'}, {"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	int c, json = 0, failed = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return TOOL_EXIT_OK;
		}
		if (c == 'j') {
			json = 1;
			continue;
		}
		tool_err("df", "unknown option '%s' (try 'vmfsctl df --help')", argv[optind - 1]);
		return TOOL_EXIT_USAGE;
	}
	if (optind >= argc) {
		tool_err("df", "expected DEVICE... (try 'vmfsctl df --help')");
		return TOOL_EXIT_USAGE;
	}
	if (json)
		printf("[");
	else
		printf("%-30s %-7s %14s %14s %14s %5s %9s %9s\n", "Device", "Format", "1K-blocks",
		       "Used", "Available", "Use%", "Files", "FreeFiles");
	for (int i = optind; i < argc; i++)
		if (df_one(argv[i], json, i == optind) < 0)
			failed = 1;
	if (json)
		printf("\n]\n");
	return failed ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}
