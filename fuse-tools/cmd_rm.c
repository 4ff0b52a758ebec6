/*
 * cmd_rm.c - vmfsctl rm [-d] DEVICE PATH...: removes files (and, with -d,
 * empty directories) from a libvmfs volume. A file another host holds open
 * is refused (EBUSY), as VMFS does. Real VMFS datastores are read-only.
 */
#include "fsview.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmfsctl rm [-d] DEVICE PATH...\n"
		   "Remove the files PATH... (absolute paths) from a libvmfs volume.\n"
		   "  -d, --dir  also remove empty directories\n");
}

int cmd_rm(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"help", no_argument, NULL, 'h'}, {"dir", no_argument, NULL, 'd'}, {NULL, 0, NULL, 0}};
	struct fsview *v;
	int c, dirs = 0, failed = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+hd", lo, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return TOOL_EXIT_OK;
		}
		if (c == 'd') {
			dirs = 1;
			continue;
		}
		tool_err("rm", "unknown option '%s' (try 'vmfsctl rm --help')", argv[optind - 1]);
		return TOOL_EXIT_USAGE;
	}
	if (argc - optind < 2) {
		tool_err("rm", "expected DEVICE PATH... (try 'vmfsctl rm --help')");
		return TOOL_EXIT_USAGE;
	}
	if (fsview_open_rw("rm", argv[optind], &v) < 0)
		return TOOL_EXIT_FAIL;
	for (int i = optind + 1; i < argc; i++) {
		int rc = v->ops->unlink(v, argv[i]);

		if (rc == -EISDIR && dirs)
			rc = v->ops->rmdir(v, argv[i]);
		if (rc < 0) {
			tool_err("rm", "%s: %s: %s%s", argv[optind], argv[i],
				 fsview_strerror(v, rc),
				 rc == -EISDIR ? " (use -d for an empty directory)" : "");
			failed = 1;
		}
	}
	fsview_close(v);
	return failed ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}
