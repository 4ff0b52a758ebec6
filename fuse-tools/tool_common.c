/*
 * tool_common.c - helpers shared by vmfsctl and vmfsmount: error messages,
 * opening a device with a clear error, and format detection.
 */
#include "tool.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "bdev.h"

const char *tool_prog = "vmfsctl";

void tool_version(void)
{
	printf("%s (libvmfs) %s\n", tool_prog, LIBVMFS_VERSION);
}

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

/* ---- progress ---------------------------------------------------------------- */

struct tool_progress *tool_progress_out, *tool_progress_in;

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tool_human(uint64_t b, char *out, size_t outlen)
{
	static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)b;
	unsigned i = 0;

	while (v >= 1024 && i < 6) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(out, outlen, "%" PRIu64 " B", b);
	else
		snprintf(out, outlen, "%.1f %s", v, u[i]);
}

static void progress_draw(struct tool_progress *p, int64_t now)
{
	double secs = (double)(now - p->t0_ms) / 1000, rate = secs > 0 ? p->done / secs : 0;
	char done[32], total[32], r[32], left[32] = "";

	tool_human(p->done, done, sizeof(done));
	tool_human(p->total, total, sizeof(total));
	tool_human((uint64_t)rate, r, sizeof(r));
	if (rate > 0 && p->done < p->total) {
		uint64_t s = (uint64_t)((double)(p->total - p->done) / rate);

		snprintf(left, sizeof(left), ", %" PRIu64 ":%02" PRIu64 " left", s / 60, s % 60);
	}
	fprintf(stderr, "\r%s: %s of %s (%u%%), %s/s%s\033[K", p->what, done, total,
		p->total ? (unsigned)(p->done * 100 / p->total) : 100u, r, left);
	fflush(stderr);
	p->shown = 1;
	p->last_ms = now;
}

void tool_progress_start(struct tool_progress *p, const char *what, uint64_t total, int quiet)
{
	const char *env;

	if (!p)
		return;
	p->what = what;
	p->total = total;
	p->done = 0;
	p->t0_ms = mono_ms();
	p->last_ms = p->t0_ms;
	p->on = !quiet && isatty(2);
	p->shown = 0;
	/* VMFS_PROGRESS_MS: redraw interval (tests set 0: every update) */
	env = getenv("VMFS_PROGRESS_MS");
	p->every_ms = env && *env ? atoi(env) : 250;
}

void tool_progress_set(struct tool_progress *p, uint64_t done)
{
	int64_t now;

	if (!p || !p->on)
		return;
	p->done = done < p->total ? done : p->total;
	now = mono_ms();
	if (now - p->last_ms >= p->every_ms)
		progress_draw(p, now);
}

void tool_progress_add(struct tool_progress *p, uint64_t n)
{
	if (p && p->on)
		tool_progress_set(p, p->done + n);
}

void tool_progress_end(struct tool_progress *p)
{
	if (!p || !p->on)
		return;
	if (p->shown) { /* the last state, where it ended */
		progress_draw(p, mono_ms());
		fputc('\n', stderr);
	}
	p->on = 0;
}

int tool_pr_read(struct bdev *bd, struct tool_pr *p)
{
	uint64_t keys[1], holder;
	uint32_t gen;
	enum bdev_pr_type type = 0;
	int rc;

	memset(p, 0, sizeof(*p));
	if (!(bd->caps & BDEV_CAP_PR))
		return 0;
	rc = bdev_pr_read_keys(bd, keys, 1, &p->nkeys, &gen);
	if (rc == 0)
		rc = bdev_pr_read_reservation(bd, &p->held, &holder, &type);
	if (rc < 0)
		return rc;
	p->has = 1;
	p->type = (int)type;
	return 0;
}

const char *tool_pr_type_name(const struct tool_pr *p)
{
	if (!p->held)
		return "none";
	switch (p->type) {
	case BDEV_PR_WRITE_EXCLUSIVE: return "write exclusive";
	case BDEV_PR_EXCLUSIVE_ACCESS: return "exclusive access";
	case BDEV_PR_WE_REGISTRANTS_ONLY: return "write exclusive - registrants only";
	case BDEV_PR_EA_REGISTRANTS_ONLY: return "exclusive access - registrants only";
	case BDEV_PR_WE_ALL_REGISTRANTS: return "write exclusive - all registrants";
	case BDEV_PR_EA_ALL_REGISTRANTS: return "exclusive access - all registrants";
	}
	return "unknown type";
}

void tool_access_line(struct bdev *bd, const struct tool_pr *p, char *out, size_t len)
{
	if (!p->has)
		snprintf(out, len, "ATS %s; no persistent reservations", bdev_ats_method_name(bd));
	else
		snprintf(out, len, "ATS %s; %u key(s) registered, reservation %s",
			 bdev_ats_method_name(bd), p->nkeys, tool_pr_type_name(p));
}
