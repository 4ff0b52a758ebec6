/*
 * cmd_tune.c - vmfsctl tune [-L LABEL] [--hb-interval MS] [--hb-timeout MS]
 * [--host NAME] DEVICE: changes the label of a libvmfs volume (at any time,
 * also while other hosts have it mounted) and its heartbeat timing (only
 * while no other host is mounted: refused naming them). vmfs_tune() in
 * libvmfs/fs_volume.c does the work.
 */
#include "native_util.h"
#include "tool.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "vmfs.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmfsctl tune [-L LABEL] [--hb-interval MS] [--hb-timeout MS]\n"
		   "                    [--host NAME] DEVICE\n"
		   "Change the label or the heartbeat timing of the libvmfs volume on DEVICE.\n"
		   "The label may change while other hosts have the volume mounted; the timing\n"
		   "only when no other host has it mounted.\n"
		   "  -L LABEL          new volume label (up to 63 bytes; '' clears it)\n"
		   "  --hb-interval MS  heartbeat interval, 100..60000 ms\n"
		   "  --hb-timeout MS   a host is dead after MS ms, >= 4 intervals, <= 3600000\n"
		   "  --host NAME       host name in the heartbeat slot while tuning\n");
}

int cmd_tune(int argc, char **argv)
{
	static const struct option lo[] = {{"help", no_argument, NULL, 'h'},
					   {"label", required_argument, NULL, 'L'},
					   {"hb-interval", required_argument, NULL, 1},
					   {"hb-timeout", required_argument, NULL, 2},
					   {"host", required_argument, NULL, 3},
					   {NULL, 0, NULL, 0}};
	struct vmfs_tune_opts o = {0};
	const char *host = NULL;
	struct vmfs *fs;
	int c, rc, r;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+hL:", lo, NULL)) != -1) {
		switch (c) {
		case 'h': usage(stdout); return TOOL_EXIT_OK;
		case 'L':
			if (strlen(optarg) >= VMFS_LABEL_LEN) {
				tool_err("tune", "label '%s' is longer than %u bytes", optarg,
					 VMFS_LABEL_LEN - 1);
				return TOOL_EXIT_USAGE;
			}
			o.label = optarg;
			break;
		case 1:
		case 2:
			if (native_parse_u32(optarg, 1, UINT32_MAX,
					     c == 1 ? &o.hb_interval_ms : &o.hb_timeout_ms)) {
				tool_err("tune", "bad %s '%s' (milliseconds)",
					 c == 1 ? "--hb-interval" : "--hb-timeout", optarg);
				return TOOL_EXIT_USAGE;
			}
			break;
		case 3: host = optarg; break;
		default:
			tool_err("tune", "unknown option '%s' (try 'vmfsctl tune --help')",
				 argv[optind - 1]);
			return TOOL_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		tool_err("tune", "expected DEVICE (try 'vmfsctl tune --help')");
		return TOOL_EXIT_USAGE;
	}
	if (tool_mount_native("tune", argv[optind], host, &fs) < 0)
		return TOOL_EXIT_FAIL;
	if (!o.label && !o.hb_interval_ms && !o.hb_timeout_ms) { /* (the device named first) */
		tool_err("tune", "nothing to change: give -L, --hb-interval or --hb-timeout");
		vmfs_umount(fs);
		return TOOL_EXIT_USAGE;
	}
	rc = vmfs_tune(fs, &o);
	if (rc)
		tool_err("tune", "%s: %s", argv[optind],
			 vmfs_errmsg(fs)[0] ? vmfs_errmsg(fs) : vmfs_strerror(rc));
	r = vmfs_umount(fs);
	if (!rc && r) {
		tool_err("tune", "%s: unmount: %s", argv[optind], vmfs_strerror(r));
		rc = r;
	}
	if (!rc && o.label)
		printf("Label: %s\n", o.label);
	if (!rc && (o.hb_interval_ms || o.hb_timeout_ms))
		printf("Heartbeat timing changed; hosts mounting from now on use it.\n");
	return rc ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}
