/*
 * cmd_mkfile.c - vmfsctl mkfile [-t thin|lazy|eager] DEVICE PATH SIZE:
 * creates a file of SIZE bytes in a libvmfs volume, the way VM disks are
 * provisioned (compare vmkfstools -d thin|zeroedthick|eagerzeroedthick):
 *   thin   no block allocated; blocks come with the first write
 *   lazy   every block allocated now and marked to-be-zeroed: instant, and
 *          the space is reserved; blocks read as zeroes until written
 *   eager  every block allocated and zeroed on the device now
 */
#include "fsview.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmfsctl mkfile [-t thin|lazy|eager] [-m MODE] [-q] DEVICE PATH SIZE\n"
		   "Create the file PATH of SIZE bytes (K/M/G/T suffixes) in a libvmfs volume.\n"
		   "  -t thin   nothing allocated until written (default)\n"
		   "  -t lazy   all blocks allocated now, zeroed lazily (thick, instant)\n"
		   "  -t eager  all blocks allocated and zeroed on disk now (thick)\n"
		   "  -m MODE   permission bits, octal (default 644)\n"
		   "  -q        quiet: no progress line\n"
		   "On a terminal, -t eager shows a progress line (bytes, rate, time left).\n");
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'K':
	case 'k':
		shift = 10;
		end++;
		break;
	case 'M':
	case 'm':
		shift = 20;
		end++;
		break;
	case 'G':
	case 'g':
		shift = 30;
		end++;
		break;
	case 'T':
	case 't':
		shift = 40;
		end++;
		break;
	default: break;
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_kind(const char *s)
{
	if (!strcmp(s, "thin"))
		return FSVIEW_THIN;
	if (!strcmp(s, "lazy") || !strcmp(s, "zeroedthick"))
		return FSVIEW_LAZY;
	if (!strcmp(s, "eager") || !strcmp(s, "eagerzeroedthick"))
		return FSVIEW_EAGER;
	return -1;
}

int cmd_mkfile(int argc, char **argv)
{
	static const struct option lo[] = {{"help", no_argument, NULL, 'h'},
					   {"type", required_argument, NULL, 't'},
					   {"mode", required_argument, NULL, 'm'},
					   {"quiet", no_argument, NULL, 'q'},
					   {NULL, 0, NULL, 0}};
	unsigned long mode = 0644;
	int c, kind = FSVIEW_THIN, rc, quiet = 0;
	struct tool_progress progress;
	struct fsview *v;
	uint64_t size;
	char *end;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+ht:m:q", lo, NULL)) != -1) {
		switch (c) {
		case 'h': usage(stdout); return TOOL_EXIT_OK;
		case 'q': quiet = 1; break;
		case 't':
			kind = parse_kind(optarg);
			if (kind < 0) {
				tool_err("mkfile", "bad type '%s' (thin, lazy or eager)", optarg);
				return TOOL_EXIT_USAGE;
			}
			break;
		case 'm':
			mode = strtoul(optarg, &end, 8);
			if (*end || !*optarg || mode > 07777) {
				tool_err("mkfile", "bad mode '%s' (octal, at most 7777)", optarg);
				return TOOL_EXIT_USAGE;
			}
			break;
		default:
			tool_err("mkfile", "unknown option '%s' (try 'vmfsctl mkfile --help')",
				 argv[optind - 1]);
			return TOOL_EXIT_USAGE;
		}
	}
	if (argc - optind != 3) {
		tool_err("mkfile", "expected DEVICE PATH SIZE (try 'vmfsctl mkfile --help')");
		return TOOL_EXIT_USAGE;
	}
	if (parse_size(argv[optind + 2], &size) < 0) {
		tool_err("mkfile", "bad size '%s' (bytes, or with a K/M/G/T suffix)",
			 argv[optind + 2]);
		return TOOL_EXIT_USAGE;
	}
	if (fsview_open_rw("mkfile", argv[optind], &v) < 0)
		return TOOL_EXIT_FAIL;
	if (kind == FSVIEW_EAGER) { /* the only kind that takes time */
		tool_progress_start(&progress, "mkfile", size, quiet);
		tool_progress_in = &progress;
	}
	rc = v->ops->mkfile(v, argv[optind + 1], (uint32_t)mode, size, kind);
	if (kind == FSVIEW_EAGER) {
		tool_progress_end(&progress);
		tool_progress_in = NULL;
	}
	if (rc < 0)
		tool_err("mkfile", "%s: %s: %s", argv[optind], argv[optind + 1],
			 fsview_strerror(v, rc));
	fsview_close(v);
	return rc < 0 ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}
