/*
 * cmd_locks.c - `vmfsctl locks [--json] [--all] DEVICE`: dumps the lock
 * records of a volume that are not free: the volume lock, the named-lock
 * area (`vmfsctl lock NAME`), the lock unit of every resource cluster and of
 * every file descriptor. For each: address, what it protects (for a file:
 * its path, found by a read-only walk of the tree made the first time a
 * file lock is shown, like vmkfstools -D), mode, generation, name, holders (slot, generation, and
 * whether that heartbeat slot still belongs to the holder: "live", "stale" or "being recovered").
 * The slots are watched first (lm_slots_watch(): one heartbeat interval,
 * extended up to the timeout while a holder's slot is still; --watch SECS
 * for exactly SECS, 0 for none): a holder whose slot did not move is
 * "silent", and "dead" once watched for the volume's timeout (any host may
 * take it over and break the lock).
 * Never writes. Corrupt records are listed with the reason (exit 1).
 * Real VMFS5/6 datastores are handed to real_cmd_locks().
 */
#include "fsview.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bdev.h"
#include "format.h"
#include "lockmgr.h"

struct ctx {
	struct bdev *bd;
	struct lm_geom g;
	struct lm_slot_watch *w; /* every slot, judged by lm_slots_watch() */
	double watch, watched;	 /* watch < 0: one interval, extended while silent */
	int json, all, first, nbad, nshown;
	/* FD lock offset -> path ("" when no name links to it) */
	const char *dev;
	const struct vmfs_vh *vh;
	struct fdname {
		uint64_t off;
		char *path;
	} * names;
	size_t nnames, capnames;
	int names_built;
	struct fsview_seen seen;
	locks_emit_fn emit; /* locks_scan(): called instead of printing */
	void *emit_arg;
};

#define MAX_DEPTH 64

static void name_add(struct ctx *c, uint64_t ino, const char *path)
{
	if (c->nnames == c->capnames) {
		size_t cap = c->capnames ? 2 * c->capnames : 256;
		struct fdname *n = realloc(c->names, cap * sizeof(*n));

		if (!n)
			return;
		c->names = n;
		c->capnames = cap;
	}
	c->names[c->nnames].off = vmfs_addr_off(c->vh, ino);
	c->names[c->nnames].path = strdup(path);
	if (c->names[c->nnames].path)
		c->nnames++;
}

/* Every name under path (a directory, ino): depth-first, each directory
 * once (a corrupt volume cannot loop), at most MAX_DEPTH deep. */
static void names_walk(struct ctx *c, struct fsview *v, const char *path, uint64_t ino, int depth)
{
	struct fsview_dir d;
	char sub[4096];

	if (depth > MAX_DEPTH || fsview_seen_add(&c->seen, ino) != 1 || fsview_list(v, ino, &d) < 0)
		return;
	for (size_t i = 0; i < d.n; i++) {
		struct fsview_stat st;

		if (!strcmp(d.e[i].name, ".") || !strcmp(d.e[i].name, "..") ||
		    fsview_join(sub, sizeof(sub), path, d.e[i].name) < 0)
			continue;
		name_add(c, d.e[i].ino, sub);
		if (v->ops->getattr(v, d.e[i].ino, &st) == 0 && (st.mode & 0170000) == 0040000)
			names_walk(c, v, sub, d.e[i].ino, depth + 1);
	}
	fsview_dir_free(&d);
}

static int name_cmp(const void *a, const void *b)
{
	const struct fdname *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

static const char *fd_path(struct ctx *c, uint64_t off)
{
	struct fsview *v;

	if (!c->names_built) {
		c->names_built = 1;
		if (fsview_open("locks", c->dev, 0, &v) == 0) {
			name_add(c, v->root, "/");
			names_walk(c, v, "/", v->root, 0);
			fsview_close(v);
			qsort(c->names, c->nnames, sizeof(*c->names), name_cmp);
		}
	}
	/* sorted once, then a binary search per record (--all on a volume
	 * of many files shows as many records as names) */
	size_t lo = 0, hi = c->nnames;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->names[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->nnames && c->names[lo].off == off ? c->names[lo].path : "";
}

static void names_free(struct ctx *c)
{
	for (size_t i = 0; i < c->nnames; i++)
		free(c->names[i].path);
	free(c->names);
	fsview_seen_free(&c->seen);
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmfsctl locks [--json] [--all] [--watch SECS] DEVICE\n\n"
		   "Dumps the lock records of a volume that are held (--all: also free\n"
		   "ones that were used): volume lock, named locks, cluster and file\n"
		   "descriptor locks, with mode, generation and holders. Never writes.\n"
		   "  --json        print one JSON object (records and their holders)\n"
		   "  --all         also list free records that were used\n"
		   "  --watch SECS  how long to watch the heartbeats (default: one\n"
		   "                interval, extended to the timeout while a holder's\n"
		   "                slot is still): a holder whose slot did not move is\n"
		   "                'silent', or 'dead' once watched for the timeout;\n"
		   "                0: no watch (holders shown as on disk)\n");
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

/* "live", "silent", "dead", "being-recovered", "stale" for holder h: its
 * slot as judged by the watch, if the slot still belongs to it. */
static const char *holder_state(struct ctx *c, const struct lm_holder *h, const char **host)
{
	const struct lm_slot_watch *w;

	*host = "";
	if (h->slot >= c->g.nslots || c->w[h->slot].bad)
		return "unknown";
	w = &c->w[h->slot];
	*host = w->si.hostname;
	if (w->si.state == LM_SLOT_LIVE && w->si.gen == h->gen) {
		if (c->watch == 0)
			return "live"; /* not watched: as on disk */
		return w->lv == LM_LV_DEAD ? "dead" : w->lv == LM_LV_SILENT ? "silent" : "live";
	}
	if (w->si.state == LM_SLOT_REPLAYING && w->si.dead_gen == h->gen)
		return w->lv == LM_LV_DEAD ? "dead" : "being-recovered";
	return "stale";
}

static void show_text(struct ctx *c, const char *what, const char *path,
		      const struct lm_lock_info *l)
{
	printf("0x%012llx %-14s %-12s gen %-8llu", (unsigned long long)l->addr, what,
	       lm_mode_name(l->mode), (unsigned long long)l->gen);
	if (path && path[0])
		printf(" path=%s", path);
	else if (path)
		printf(" path=(no name: unlinked while open, or orphaned)");
	if (l->name[0])
		printf(" name=%s", l->name);
	for (uint32_t i = 0; i < l->nholders; i++) {
		const char *host, *st = holder_state(c, &l->holders[i], &host);

		printf("%s slot %u gen %u (%s%s%s)", i ? "," : " holders:", l->holders[i].slot,
		       l->holders[i].gen, st, host[0] ? " " : "", host);
	}
	printf("\n");
}

static void show_json(struct ctx *c, const char *what, const char *path,
		      const struct lm_lock_info *l)
{
	char uuid[37];

	printf("%s\n    {\"addr\": %llu, \"what\": ", c->first ? "" : ",",
	       (unsigned long long)l->addr);
	json_str(what);
	if (path && path[0]) {
		printf(", \"path\": ");
		json_str(path);
	} else if (path) {
		printf(", \"path\": null");
	}
	printf(", \"mode\": \"%s\", \"gen\": %llu, \"name\": ", lm_mode_name(l->mode),
	       (unsigned long long)l->gen);
	json_str(l->name);
	if (l->mode == LM_MODE_EX) {
		lm_uuid_str(l->owner_uuid, uuid);
		printf(", \"owner_uuid\": \"%s\"", uuid);
	}
	printf(", \"holders\": [");
	for (uint32_t i = 0; i < l->nholders; i++) {
		const char *host, *st = holder_state(c, &l->holders[i], &host);

		printf("%s{\"slot\": %u, \"gen\": %u, \"state\": \"%s\", \"host\": ", i ? ", " : "",
		       l->holders[i].slot, l->holders[i].gen, st);
		json_str(host);
		printf("}");
	}
	printf("]}");
	c->first = 0;
}

/* One lock record; is_fd: a file's lock, shown with its path. */
static int one(struct ctx *c, uint64_t addr, const char *what, int is_fd)
{
	struct lm_lock_info l;
	char why[160] = "";
	int rc = lm_lock_read(c->bd, addr, c->g.nslots, &l, why, sizeof(why));

	if (rc == -EUCLEAN) {
		c->nbad++;
		if (c->emit) {
			return 0;
		} else if (c->json) {
			printf("%s\n    {\"addr\": %llu, \"what\": ", c->first ? "" : ",",
			       (unsigned long long)addr);
			json_str(what);
			printf(", \"error\": ");
			json_str(why);
			printf("}");
			c->first = 0;
		} else {
			printf("0x%012llx %-14s corrupt: %s\n", (unsigned long long)addr, what,
			       why);
		}
		return 0;
	}
	if (rc < 0)
		return rc;
	if (l.never_used || (l.mode == LM_MODE_FREE && !c->all))
		return 0;
	c->nshown++;
	if (c->emit)
		c->emit(c->emit_arg, what, is_fd ? fd_path(c, addr) : NULL, &l);
	else if (c->json)
		show_json(c, what, is_fd ? fd_path(c, addr) : NULL, &l);
	else
		show_text(c, what, is_fd ? fd_path(c, addr) : NULL, &l);
	return 0;
}

static const char *type_name(unsigned t)
{
	switch (t) {
	case VMFS_RT_FB: return "FB cluster";
	case VMFS_RT_SB: return "SB cluster";
	case VMFS_RT_PB: return "PB cluster";
	case VMFS_RT_FD: return "FD cluster";
	}
	return "cluster";
}

static int walk(struct ctx *c, const struct vmfs_vh *vh)
{
	char what[64];
	int rc = one(c, vh->vol_lock_off, "volume", 0);

	for (uint32_t i = 0; rc == 0 && i < vh->nlocks; i++) {
		snprintf(what, sizeof(what), "named #%u", i);
		rc = one(c, vh->lock_off + (uint64_t)i * LM_UNIT, what, 0);
	}
	if (rc == 0 && vh->xtab_off)
		rc = one(c, vh->xtab_off, "extension table", 0);
	for (unsigned t = VMFS_RT_FB; rc == 0 && t <= VMFS_RT_MAX; t++) {
		for (uint32_t cl = 0; rc == 0 && cl < vmfs_ncl(vh, t); cl++) {
			snprintf(what, sizeof(what), "%s %u", type_name(t), cl);
			rc = one(c, vmfs_cl_off(vh, t, cl), what, 0);
			if (t != VMFS_RT_FD)
				continue;
			uint32_t n = vmfs_cl_nres(vh, t, cl);
			for (uint32_t r = 0; rc == 0 && r < n; r++) {
				snprintf(what, sizeof(what), "FD %u.%u", cl, r);
				rc = one(c, vmfs_addr_off(vh, vmfs_addr_make(t, cl, r)), what, 1);
			}
		}
	}
	return rc;
}

static int read_slots(struct ctx *c)
{
	double watch = c->watch < 0 ? c->g.hb_interval_ms / 1000.0 : c->watch;

	c->w = calloc(c->g.nslots, sizeof(*c->w));
	if (!c->w)
		return -ENOMEM;
	return lm_slots_watch(c->bd, &c->g, watch, c->watch < 0, c->w, &c->watched);
}

static int dump(const char *dev, struct ctx *c, const struct vmfs_vh *vh)
{
	int rc = read_slots(c);

	if (c->json)
		printf("{\n  \"locks\": [");
	if (rc == 0)
		rc = walk(c, vh);
	if (c->json)
		printf("\n  ]\n}\n");
	else if (rc == 0)
		printf("%d lock record(s) %s\n", c->nshown, c->all ? "used" : "held");
	if (rc < 0)
		tool_err("locks", "%s: %s", dev, lm_strerror(rc));
	else if (c->nbad)
		tool_err("locks", "%s: %d corrupt lock record(s)", dev, c->nbad);
	free(c->w);
	names_free(c);
	return rc < 0 || c->nbad ? TOOL_EXIT_FAIL : TOOL_EXIT_OK;
}

int locks_scan(struct bdev *bd, const struct vmfs_vh *vh, locks_emit_fn emit, void *arg, int *nbad)
{
	struct ctx c = {.bd = bd, .first = 1, .emit = emit, .emit_arg = arg, .vh = vh};
	int rc;

	c.g = (struct lm_geom){vh->hb_off, vh->max_hosts, vh->hb_interval_ms, vh->hb_timeout_ms};
	c.dev = bd->uri;
	rc = walk(&c, vh);
	names_free(&c);
	if (nbad)
		*nbad = c.nbad;
	return rc;
}

int cmd_locks(int argc, char **argv)
{
	static const struct option lo[] = {{"json", no_argument, NULL, 'j'},
					   {"all", no_argument, NULL, 'a'},
					   {"watch", required_argument, NULL, 'w'},
					   {"help", no_argument, NULL, 'h'},
					   {NULL, 0, NULL, 0}};
	struct ctx c = {.first = 1, .watch = -1};
	char why[256] = "";
	struct vmfs_vh vh;
	int ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, ":jaw:h", lo, NULL)) != -1) {
		char *end;

		switch (ch) {
		case 'w':
			c.watch = strtod(optarg, &end);
			if (*end || end == optarg || !(c.watch >= 0 && c.watch <= 600)) {
				tool_err("locks", "bad --watch '%s' (0..600 seconds)", optarg);
				return TOOL_EXIT_USAGE;
			}
			break;
		case 'j': c.json = 1; break;
		case 'a': c.all = 1; break;
		case 'h': usage(stdout); return TOOL_EXIT_OK;
		default:
			tool_err("locks", "bad option '%s' (try 'vmfsctl locks --help')",
				 argv[optind - 1]);
			return TOOL_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		tool_err("locks", "need exactly one DEVICE (try 'vmfsctl locks --help')");
		return TOOL_EXIT_USAGE;
	}
	if (tool_open("locks", argv[optind], 1, &c.bd) < 0)
		return TOOL_EXIT_FAIL;
	enum tool_fmt fmt = tool_detect(c.bd);
	if ((fmt == TOOL_FMT_VMFS5 || fmt == TOOL_FMT_VMFS6) && real_cmd_locks) {
		bdev_close(c.bd);
		return real_cmd_locks(argc, argv);
	}
	if (fmt != TOOL_FMT_NATIVE) {
		tool_err("locks", "%s: not a libvmfs volume", argv[optind]);
		bdev_close(c.bd);
		return TOOL_EXIT_FAIL;
	}
	rc = vmfs_vh_read(c.bd, &vh, why, sizeof(why));
	if (rc < 0) {
		tool_err("locks", "%s: volume header: %s", argv[optind],
			 why[0] ? why : bdev_strerror(rc));
		bdev_close(c.bd);
		return TOOL_EXIT_FAIL;
	}
	why[0] = '\0';
	rc = vmfs_xtab_load(c.bd, &vh, why, sizeof(why));
	if (rc < 0) { /* the grown clusters listed before a bad block are shown */
		fprintf(stderr, "vmfsctl locks: %s: warning: %s\n", argv[optind],
			why[0] ? why : bdev_strerror(rc));
	}
	c.g = (struct lm_geom){vh.hb_off, vh.max_hosts, vh.hb_interval_ms, vh.hb_timeout_ms};
	c.dev = argv[optind];
	c.vh = &vh;
	rc = dump(argv[optind], &c, &vh);
	vmfs_xtab_free(&vh);
	bdev_close(c.bd);
	return rc;
}
