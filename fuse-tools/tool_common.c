/*
 * tool_common.c - helpers shared by vmfsctl and vmfsmount: error messages,
 * opening a device with a clear error, and format detection.
 */
#include "tool.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "bdev.h"

const char *tool_prog = "vmfsctl";

void tool_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	if (!cmd || !*cmd)
		fprintf(stderr, "%s: ", tool_prog);
	else
		fprintf(stderr, "%s %s: ", tool_prog, cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int tool_open(const char *cmd, const char *uri, int ro, struct bdev **out)
{
	int rc = bdev_open(uri, ro ? BDEV_O_RDONLY : 0, out);

	if (rc < 0)
		tool_err(cmd, "%s: cannot open device: %s", uri, bdev_strerror(rc));
	else if ((*out)->size == 0) {
		tool_err(cmd, "%s: device is empty (0 bytes)", uri);
		bdev_close(*out);
		*out = NULL;
		rc = -EINVAL;
	}
	return rc;
}

enum tool_fmt tool_detect(struct bdev *bd)
{
	int version = 0;

	if (vmfs_probe_native && vmfs_probe_native(bd) == 1)
		return TOOL_FMT_NATIVE;
	if (vmfsr_probe && vmfsr_probe(bd, &version) == 1)
		return version >= 6 ? TOOL_FMT_VMFS6 : TOOL_FMT_VMFS5;
	return TOOL_FMT_UNKNOWN;
}
