/*
 * tool.h - shared by the commands of vmfsctl. Each command lives in its own
 * file cmd_<name>.c and defines `int cmd_<name>(int argc, char **argv)`
 * (argv[0] is the command name); main.c dispatches to it.
 *
 * Conventions every command keeps:
 *  - `--help` prints usage to stdout and exits 0; a wrong argument prints a
 *    one-line error and the usage hint to stderr and exits TOOL_EXIT_USAGE.
 *  - `--version` is answered by main.c (tool_version()) before the command
 *    runs.
 *  - errors are one line on stderr: "vmfsctl CMD: DEVICE: what is wrong".
 *  - `--json` where a script would parse the output.
 *  - the device is a URI as taken by bdev_open() (a plain path works).
 */
#ifndef VMFSCTL_TOOL_H
#define VMFSCTL_TOOL_H

#include <stdint.h>
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

/* Prints "PROG (libvmfs) VERSION" (the CMake project version) to stdout:
 * every tool's --version, and every vmfsctl command's. */
void tool_version(void);

/* Prints "PROG CMD: message" (or "PROG: message" when cmd is NULL or "") to
 * stderr, printf-style. */
void tool_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Opens `uri` (read-only when ro), printing a clear error naming the device
 * on failure; returns 0 or a negative errno. */
int tool_open(const char *cmd, const char *uri, int ro, struct bdev **out);

/* The persistent-reservation state of a device (docs/LOCKING.md, "Fencing
 * on SAN LUNs"): has = 0 on a device without reservations (image files). */
struct tool_pr {
	int has;
	unsigned nkeys; /* registrations */
	int held;	/* a reservation exists */
	int type;	/* enum bdev_pr_type, when held */
};
int tool_pr_read(struct bdev *bd, struct tool_pr *p);
/* "none", "write exclusive - all registrants", ... */
const char *tool_pr_type_name(const struct tool_pr *p);
/* One line: "compare-and-write (native); 2 keys registered, reservation
 * write exclusive - all registrants" (no newline). */
void tool_access_line(struct bdev *bd, const struct tool_pr *p, char *out, size_t len);

/* "8.0 GiB" style: bytes in B, KiB, MiB... with one decimal (out >= 32
 * bytes). */
void tool_human(uint64_t bytes, char *out, size_t outlen);

/* A progress line on stderr for long operations (mkfs, cp, vdisk):
 * "WHAT: 1.2 GiB of 2.0 GiB (60%), 350.0 MiB/s, 0:02 left", redrawn in
 * place at most 4 times a second (VMFS_PROGRESS_MS=N: every N ms). Shown
 * only on a terminal (logs get nothing) and unless quiet, so an operation
 * shorter than the interval shows nothing; tool_progress_end() prints the
 * last state and a newline when anything was shown. Every function
 * accepts NULL. */
struct tool_progress {
	const char *what;
	uint64_t total, done;
	int64_t t0_ms, last_ms;
	int on, shown, every_ms;
};
void tool_progress_start(struct tool_progress *p, const char *what, uint64_t total, int quiet);
void tool_progress_set(struct tool_progress *p, uint64_t done);
void tool_progress_add(struct tool_progress *p, uint64_t n);
void tool_progress_end(struct tool_progress *p);
/* What a copy counts into, when set: fsview_copy_out() the bytes it reads
 * out of a volume, a native import the bytes it writes in (cp sets one). */
extern struct tool_progress *tool_progress_out, *tool_progress_in;

/* Mounts the native volume on dev read-write as host `host` (NULL: the
 * hostname), printing a clear error on failure (cmd_grow.c); 0 or -1. */
struct vmfs;
int tool_mount_native(const char *cmd, const char *dev, const char *host, struct vmfs **fs);

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

/* cmd_locks.c, for `vmfsctl top`: calls emit for every lock record in use
 * (not free) of a native volume (vh with its extension table loaded): what
 * it protects, the file's path for an FD lock (NULL otherwise; "" when no
 * name links to it), the record. Corrupt records are skipped and counted
 * in *nbad. 0 or a device error. */
struct lm_lock_info;
typedef void (*locks_emit_fn)(void *arg, const char *what, const char *path,
			      const struct lm_lock_info *l);
struct vmfs_vh;
int locks_scan(struct bdev *bd, const struct vmfs_vh *vh, locks_emit_fn emit, void *arg, int *nbad);

#endif
