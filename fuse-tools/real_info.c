/*
 * real_info.c - `vmfsctl info|hosts|locks [--json] DEVICE` on real VMFS5/6
 * datastores: called by cmd_info/cmd_hosts/cmd_locks after tool_detect()
 * said VMFS5 or VMFS6 (see tool.h). Everything is read-only.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bdev.h"
#include "fsview.h"
#include "tool.h"
#include "vmfsr.h"

struct real_args {
	const char *cmd, *dev;
	int json;
};

static int parse(int argc, char **argv, struct real_args *a)
{
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int c;

	a->cmd = argv[0];
	a->json = 0;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'j')
			a->json = 1;
		else if (c == 'h') {
			printf("Usage: vmfsctl %s [--json] DEVICE\n", a->cmd);
			return TOOL_EXIT_OK;
		} else {
			tool_err(a->cmd, "unknown option '%s' for a VMFS5/6 datastore",
				 argv[optind - 1]);
			return TOOL_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		tool_err(a->cmd, "expected DEVICE (try 'vmfsctl %s --help')", a->cmd);
		return TOOL_EXIT_USAGE;
	}
	a->dev = argv[optind];
	return -1;
}

/* Opens the datastore read-only; prints the error. */
static int real_open(const struct real_args *a, struct bdev **bd, struct vmfsr **fs)
{
	char err[400];
	int rc = tool_open(a->cmd, a->dev, 1, bd);

	if (rc < 0)
		return rc;
	rc = vmfsr_open(*bd, fs, err, sizeof(err));
	if (rc < 0) {
		tool_err(a->cmd, "%s: %s", a->dev, err);
		bdev_close(*bd);
	}
	return rc;
}

static void info_text(const struct vmfsr_info *in)
{
	char ct[32];

	fsview_time_str(in->ctime, ct);
	printf("Format:           VMFS%d (real datastore, read-only)\n", in->version);
	printf("FS version:       %u.%u\n", in->fs_major, in->fs_minor);
	printf("LVM version:      %u.%u\n", in->lvm_major, in->lvm_minor);
	printf("Label:            %s\n", in->label);
	printf("UUID:             %s\n", in->uuid);
	printf("LVM UUID:         %s\n", in->lvm_uuid);
	printf("Created:          %s UTC\n", ct);
	printf("Block size:       %" PRIu64 "\n", in->block_size);
	printf("Sub-block size:   %" PRIu64 "\n", in->sub_block_size);
	if (in->lfb_size)
		printf("Large block size: %" PRIu64 "\n", in->lfb_size);
	printf("MD alignment:     %u\n", in->md_align);
	printf("Disk block size:  %u\n", in->disk_block);
	printf("Volume size:      %" PRIu64 " (%" PRIu64 " MiB)\n", in->vol_size,
	       in->vol_size >> 20);
	printf("Data offset:      0x%" PRIx64 "\n", in->data_off);
	printf("Device size:      %" PRIu64 "\n", in->dev_size);
	printf("Heartbeat slots:  %u of %u bytes at logical 0x300000\n", in->hb_slots,
	       in->hb_slot_size);
}

static void info_json(const struct vmfsr_info *in)
{
	printf("{\"format\": \"VMFS%d\", \"fs_major\": %u, \"fs_minor\": %u, \"lvm_major\": %u, "
	       "\"lvm_minor\": %u, \"label\": ",
	       in->version, in->fs_major, in->fs_minor, in->lvm_major, in->lvm_minor);
	fsview_json_str(stdout, in->label);
	printf(", \"uuid\": \"%s\", \"lvm_uuid\": \"%s\", \"ctime\": %u, \"block_size\": %" PRIu64
	       ", \"sub_block_size\": %" PRIu64 ", \"lfb_size\": %" PRIu64
	       ", \"md_align\": %u, \"disk_block\": %u, \"volume_size\": %" PRIu64
	       ", \"data_offset\": %" PRIu64 ", \"device_size\": %" PRIu64
	       ", \"heartbeat_slots\": %u, \"heartbeat_slot_size\": %u, \"read_only\": true}\n",
	       in->uuid, in->lvm_uuid, in->ctime, in->block_size, in->sub_block_size, in->lfb_size,
	       in->md_align, in->disk_block, in->vol_size, in->data_off, in->dev_size, in->hb_slots,
	       in->hb_slot_size);
}

int real_cmd_info(int argc, char **argv)
{
	struct real_args a;
	struct vmfsr_info in;
	struct bdev *bd;
	struct vmfsr *fs;
	int rc = parse(argc, argv, &a);

	if (rc >= 0)
		return rc;
	if (real_open(&a, &bd, &fs) < 0)
		return TOOL_EXIT_FAIL;
	vmfsr_info(fs, &in);
	if (a.json)
		info_json(&in);
	else
		info_text(&in);
	vmfsr_close(fs);
	bdev_close(bd);
	return TOOL_EXIT_OK;
}

static const char *hb_state(uint32_t s)
{
	return s == VMFSR_HB_LIVE ? "live" : s == VMFSR_HB_FREE ? "free" : "bad";
}

struct out {
	int json, n;
};

static int hb_print(void *arg, const struct vmfsr_hb *hb)
{
	struct out *o = arg;

	if (o->json) {
		printf("%s\n  {\"slot\": %u, \"offset\": %" PRIu64 ", \"state\": \"%s\", "
		       "\"magic\": %u, \"generation\": %" PRIu64 ", \"stamp_us\": %" PRIu64
		       ", \"owner\": \"%s\", \"journal\": %u, \"ip\": ",
		       o->n ? "," : "", hb->slot, hb->offset, hb_state(hb->state), hb->magic,
		       hb->generation, hb->stamp_us, hb->owner, hb->journal);
		fsview_json_str(stdout, hb->ip);
		printf("}");
	} else {
		if (!o->n)
			printf("%-5s %-10s %-5s %-35s %10s %14s %s\n", "SLOT", "OFFSET", "STATE",
			       "OWNER", "GEN", "STAMP_US", "IP");
		printf("%-5u 0x%08" PRIx64 " %-5s %-35s %10" PRIu64 " %14" PRIu64 " %s\n", hb->slot,
		       hb->offset, hb_state(hb->state), hb->owner, hb->generation, hb->stamp_us,
		       hb->ip[0] ? hb->ip : "-");
	}
	o->n++;
	return 0;
}

int real_cmd_hosts(int argc, char **argv)
{
	struct real_args a;
	struct out o = {0, 0};
	struct bdev *bd;
	struct vmfsr *fs;
	int rc = parse(argc, argv, &a);

	if (rc >= 0)
		return rc;
	if (real_open(&a, &bd, &fs) < 0)
		return TOOL_EXIT_FAIL;
	o.json = a.json;
	if (a.json)
		printf("[");
	rc = vmfsr_heartbeats(fs, hb_print, &o);
	if (a.json)
		printf("\n]\n");
	else if (!o.n)
		printf("no heartbeat slot was ever used\n");
	if (rc < 0)
		tool_err(a.cmd, "%s: %s", a.dev,
			 rc == -EUCLEAN ? vmfsr_errmsg(fs) : bdev_strerror(rc));
	vmfsr_close(fs);
	bdev_close(bd);
	return rc < 0 ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}

static const char *ftype_name(uint32_t t)
{
	switch (t) {
	case VMFSR_T_DIR: return "dir";
	case VMFSR_T_REG: return "file";
	case VMFSR_T_LNK: return "symlink";
	case VMFSR_T_SYS: return "system";
	case VMFSR_T_RDM: return "rdm";
	default: return "?";
	}
}

static int lock_print(void *arg, const struct vmfsr_lock *lk)
{
	struct out *o = arg;

	if (o->json) {
		printf("%s\n  {\"fd\": %u, \"file_type\": \"%s\", \"offset\": %" PRIu64
		       ", \"mode\": \"%s\", \"mode_raw\": %u, \"owner\": \"%s\", \"hb_offset\": "
		       "%" PRIu64 ", \"hb_generation\": %" PRIu64 ", \"generation\": %" PRIu64
		       ", \"holders\": %u}",
		       o->n ? "," : "", lk->fd, ftype_name(lk->ftype), lk->offset,
		       vmfsr_lock_mode_name(lk->mode), lk->mode, lk->owner, lk->hb_addr, lk->hb_gen,
		       lk->generation, lk->holders);
	} else {
		if (!o->n)
			printf("%-10s %-7s %-12s %-35s %-10s %6s %s\n", "FD", "TYPE", "MODE",
			       "OWNER", "HB", "GEN", "HOLDERS");
		printf("0x%08x %-7s %-12s %-35s 0x%08" PRIx64 " %6" PRIu64 " %u\n", lk->fd,
		       ftype_name(lk->ftype), vmfsr_lock_mode_name(lk->mode), lk->owner,
		       lk->hb_addr, lk->generation, lk->holders);
	}
	o->n++;
	return 0;
}

int real_cmd_locks(int argc, char **argv)
{
	struct real_args a;
	struct out o = {0, 0};
	struct bdev *bd;
	struct vmfsr *fs;
	int rc = parse(argc, argv, &a);

	if (rc >= 0)
		return rc;
	if (real_open(&a, &bd, &fs) < 0)
		return TOOL_EXIT_FAIL;
	o.json = a.json;
	if (a.json)
		printf("[");
	rc = vmfsr_locks(fs, lock_print, &o);
	if (a.json)
		printf("\n]\n");
	if (rc < 0)
		tool_err(a.cmd, "%s: %s", a.dev,
			 rc == -EUCLEAN ? vmfsr_errmsg(fs) : bdev_strerror(rc));
	vmfsr_close(fs);
	bdev_close(bd);
	return rc < 0 ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}
