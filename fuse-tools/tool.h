/*
 * tool.h - shared by the commands of vmfsctl. Each command lives in its own
 * file cmd_<name>.c and defines `int cmd_<name>(int argc, char **argv)`
 * (argv[0] is the command name); main.c dispatches to it.
 *
 * Conventions every command keeps:
 *  - `--help` prints usage to stdout and exits 0; a wrong argument prints a
 *    one-line error and the usage hint to stderr and exits TOOL_EXIT_USAGE.
 *  - errors are one line on stderr: "vmfsctl CMD: DEVICE: what is wrong".
 *  - `--json` where a script would parse the output.
 *  - the device is a URI as taken by bdev_open() (a plain path works).
 */
#ifndef VMFSCTL_TOOL_H
#define VMFSCTL_TOOL_H

#include <stdio.h>

struct bdev;

enum {
	TOOL_EXIT_OK = 0,
	TOOL_EXIT_FAIL = 1,  /* the operation failed (I/O error, corrupt volume) */
	TOOL_EXIT_USAGE = 2, /* wrong arguments */
};

/* What a device holds, by its magic numbers. */
enum tool_fmt {
	TOOL_FMT_UNKNOWN = 0, /* none of ours, nor VMFS5/6 */
	TOOL_FMT_NATIVE = 1,  /* a volume made by vmfsctl mkfs */
	TOOL_FMT_VMFS5 = 5,   /* a real VMFS5 (or VMFS3) datastore made by ESXi */
	TOOL_FMT_VMFS6 = 6,   /* a real VMFS6 datastore made by ESXi */
};

/* The program's name in messages: "vmfsctl" (vmfsmount sets its own). */
extern const char *tool_prog;

/* Prints "PROG CMD: message" (or "PROG: message" when cmd is NULL or "") to
 * stderr, printf-style. */
void tool_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Opens `uri` (read-only when ro), printing a clear error naming the device
 * on failure; returns 0 or a negative errno. */
int tool_open(const char *cmd, const char *uri, int ro, struct bdev **out);

/* Detects the format on an open device. */
enum tool_fmt tool_detect(struct bdev *bd);

/* Provided by the format and reader code when linked in (weak in main.c):
 * 1 when the device holds that format, 0 when not, negative errno on I/O
 * error. */
int vmfs_probe_native(struct bdev *bd) __attribute__((weak));
int vmfsr_probe(struct bdev *bd, int *version) __attribute__((weak));

/* Handlers for real VMFS5/6 datastores (fuse-tools/real_*.c), called by the
 * format-neutral commands after tool_detect() said VMFS5 or VMFS6; same
 * argc/argv as the command itself. Weak: NULL when not linked in. */
int real_cmd_info(int argc, char **argv) __attribute__((weak));
int real_cmd_hosts(int argc, char **argv) __attribute__((weak));
int real_cmd_locks(int argc, char **argv) __attribute__((weak));

#endif
