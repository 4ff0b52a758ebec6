/*
 * cmd_grow.c - vmfsctl grow [--size SIZE] [--host NAME] [--json] DEVICE:
 * grows a libvmfs volume into its device after the image or LUN grew, online
 * (it joins the heartbeat like any host; hosts that have the volume mounted
 * see the new size at their next statfs or allocation). vmfs_grow() in
 * libvmfs/fs_volume.c does the work; docs/FILESYSTEM.md "Growing the volume".
 */
#include "native_util.h"
#include "tool.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bdev.h"
#include "vmfs.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vmfsctl grow [--size SIZE] [--host NAME] [--json] DEVICE\n"
		"Grow the libvmfs volume on DEVICE into the space its device gained (an\n"
		"image extended with truncate, a LUN resized), while other hosts have it\n"
		"mounted. Volumes never shrink.\n"
		"  --size SIZE   new volume size (K, M, G, T suffixes; default: the whole device)\n"
		"  --host NAME   host name in the heartbeat slot while growing\n"
		"  --json        print the sizes before and after as JSON\n");
}

/* Mounts a native volume read-write as host `host` (NULL: the hostname). */
int tool_mount_native(const char *cmd, const char *dev, const char *host, struct vmfs **fs)
{
	struct vmfs_mount_opts mo = {.hostname = host};
	struct bdev *bd;
	enum tool_fmt fmt;
	int rc;

	if (tool_open(cmd, dev, 1, &bd) < 0)
		return -1;
	fmt = tool_detect(bd);
	bdev_close(bd);
	if (fmt != TOOL_FMT_NATIVE) {
		tool_err(cmd, "%s: %s", dev,
			 fmt == TOOL_FMT_UNKNOWN ? "not a libvmfs volume"
						 : "real VMFS datastores are read-only");
		return -1;
	}
	rc = vmfs_mount(dev, &mo, fs);
	if (rc) {
		tool_err(cmd, "%s: %s", dev,
			 vmfs_errmsg(NULL)[0] ? vmfs_errmsg(NULL) : vmfs_strerror(rc));
		return -1;
	}
	return 0;
}

static void report(const struct vmfs_grow_info *gi, uint32_t bs, int json)
{
	char o[32], n[32];

	if (json) {
		printf("{\n  \"old_size\": %" PRIu64 ",\n  \"new_size\": %" PRIu64
		       ",\n  \"old_blocks\": %" PRIu64 ",\n  \"new_blocks\": %" PRIu64
		       ",\n  \"block_size\": %" PRIu32 ",\n  \"new_fb_clusters\": %" PRIu32 "\n}\n",
		       gi->old_size, gi->new_size, gi->old_blocks, gi->new_blocks, bs,
		       gi->new_clusters);
		return;
	}
	tool_human(gi->old_size, o, sizeof(o));
	tool_human(gi->new_size, n, sizeof(n));
	if (gi->new_size == gi->old_size)
		printf("The volume already fills %s (%" PRIu64 " bytes): nothing to do.\n", o,
		       gi->old_size);
	else
		printf("Grew the volume from %s to %s (%" PRIu64 " -> %" PRIu64 " bytes): %" PRIu64
		       " -> %" PRIu64 " file blocks.\n",
		       o, n, gi->old_size, gi->new_size, gi->old_blocks, gi->new_blocks);
}

int cmd_grow(int argc, char **argv)
{
	static const struct option lo[] = {{"help", no_argument, NULL, 'h'},
					   {"size", required_argument, NULL, 's'},
					   {"host", required_argument, NULL, 1},
					   {"json", no_argument, NULL, 'j'},
					   {NULL, 0, NULL, 0}};
	struct vmfs_grow_info gi;
	struct vmfs_statfs st;
	const char *host = NULL;
	uint64_t size = 0;
	struct vmfs *fs;
	int c, json = 0, rc, r;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+hs:", lo, NULL)) != -1) {
		switch (c) {
		case 'h': usage(stdout); return TOOL_EXIT_OK;
		case 's':
			if (native_parse_size(optarg, &size) || !size) {
				tool_err("grow", "bad size '%s'", optarg);
				return TOOL_EXIT_USAGE;
			}
			break;
		case 1: host = optarg; break;
		case 'j': json = 1; break;
		default:
			tool_err("grow", "unknown option '%s' (try 'vmfsctl grow --help')",
				 argv[optind - 1]);
			return TOOL_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		tool_err("grow", "expected DEVICE (try 'vmfsctl grow --help')");
		return TOOL_EXIT_USAGE;
	}
	if (tool_mount_native("grow", argv[optind], host, &fs) < 0)
		return TOOL_EXIT_FAIL;
	rc = vmfs_grow(fs, size, &gi);
	if (rc)
		tool_err("grow", "%s: %s", argv[optind],
			 vmfs_errmsg(fs)[0] ? vmfs_errmsg(fs) : vmfs_strerror(rc));
	else if (vmfs_statfs(fs, &st) == 0)
		report(&gi, st.block_size, json);
	r = vmfs_umount(fs);
	if (!rc && r) {
		tool_err("grow", "%s: unmount: %s", argv[optind], vmfs_strerror(r));
		rc = r;
	}
	return rc ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}
