/*
 * cmd_mkdir.c - vmfsctl mkdir [-m MODE] DEVICE PATH...: makes directories in
 * a libvmfs volume (joining its heartbeat like any host, so it is safe while
 * other hosts have it mounted). Real VMFS datastores are read-only.
 */
#include "fsview.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmfsctl mkdir [-m MODE] DEVICE PATH...\n"
		   "Make the directories PATH... (absolute paths) in a libvmfs volume.\n"
		   "  -m MODE  permission bits, octal (default 755)\n");
}

int cmd_mkdir(int argc, char **argv)
{
	static const struct option lo[] = {{"help", no_argument, NULL, 'h'},
					   {"mode", required_argument, NULL, 'm'},
					   {NULL, 0, NULL, 0}};
	unsigned long mode = 0755;
	struct fsview *v;
	char *end;
	int c, failed = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+hm:", lo, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return TOOL_EXIT_OK;
		}
		if (c == 'm') {
			mode = strtoul(optarg, &end, 8);
			if (*end || !*optarg || mode > 07777) {
				tool_err("mkdir", "bad mode '%s' (octal, at most 7777)", optarg);
				return TOOL_EXIT_USAGE;
			}
			continue;
		}
		tool_err("mkdir", "unknown option '%s' (try 'vmfsctl mkdir --help')",
			 argv[optind - 1]);
		return TOOL_EXIT_USAGE;
	}
	if (argc - optind < 2) {
		tool_err("mkdir", "expected DEVICE PATH... (try 'vmfsctl mkdir --help')");
		return TOOL_EXIT_USAGE;
	}
	if (fsview_open_rw("mkdir", argv[optind], &v) < 0)
		return TOOL_EXIT_FAIL;
	for (int i = optind + 1; i < argc; i++) {
		int rc = v->ops->mkdir(v, argv[i], (uint32_t)mode);

		if (rc < 0) {
			tool_err("mkdir", "%s: %s: %s", argv[optind], argv[i],
				 fsview_strerror(v, rc));
			failed = 1;
		}
	}
	fsview_close(v);
	return failed ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}
