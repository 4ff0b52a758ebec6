/*
 * cmd_cat.c - vmfsctl cat DEVICE PATH...: writes files of a volume
 * (libvmfs, VMFS5 or VMFS6) to stdout (symlinks are followed, like cat(1)).
 */
#include "fsview.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: vmfsctl cat DEVICE PATH...\n"
	    "Write the files PATH... of a volume (libvmfs, VMFS5 or VMFS6) to standard output.\n");
}

static int cat_one(struct fsview *v, const char *dev, const char *path)
{
	uint64_t ino;
	int werr, rc = v->ops->lookup(v, path, 1, &ino);

	if (!rc)
		rc = fsview_copy_out(v, ino, STDOUT_FILENO, &werr);
	else
		werr = 0;
	if (rc < 0) {
		if (werr)
			tool_err("cat", "writing standard output: %s", strerror(-rc));
		else
			tool_err("cat", "%s: %s: %s", dev, path, fsview_strerror(v, rc));
		return -1;
	}
	return 0;
}

int cmd_cat(int argc, char **argv)
{
	struct fsview *v;
	int failed = 0;

	if (argc > 1 && !strcmp(argv[1], "--help")) {
		usage(stdout);
		return TOOL_EXIT_OK;
	}
	if (argc < 3 || argv[1][0] == '-') {
		tool_err("cat",
			 argc > 1 && argv[1][0] == '-' ? "unknown option '%s' (try "
							 "'vmfsctl cat --help')"
						       : "expected DEVICE PATH... (try "
							 "'vmfsctl cat --help')%s",
			 argc > 1 && argv[1][0] == '-' ? argv[1] : "");
		return TOOL_EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	if (fsview_open("cat", argv[1], 0, &v) < 0)
		return TOOL_EXIT_FAIL;
	for (int i = 2; i < argc; i++)
		if (cat_one(v, argv[1], argv[i]) < 0)
			failed = 1;
	fsview_close(v);
	return failed ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}
