/*
 * native_util.c - helpers shared by vmfsctl mkfs, info and fsck for native
 * volumes (see native_util.h).
 */
#include "native_util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format.h"
#include "tool.h"

int native_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	case 't':
	case 'T':
		shift = 40;
		end++;
		break;
	default: break;
	}
	if (*end == 'i' && shift)
		end++;
	if ((*end == 'B' || *end == 'b') && shift)
		end++;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

int native_parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

void native_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

void native_uuid_str(const uint8_t u[16], char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned j = 0;

	for (unsigned i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[u[i] >> 4];
		out[j++] = hex[u[i] & 15];
	}
	out[j] = '\0';
}

unsigned native_regions(const struct vmfs_vh *vh, struct native_region *r, unsigned max)
{
	static const unsigned order[4] = {VMFS_RT_FD, VMFS_RT_PB, VMFS_RT_SB, VMFS_RT_FB};
	static const char *const names[4] = {"FD clusters", "PB clusters", "SB clusters",
					     "FB clusters"};
	struct native_region all[13] = {
	    {"reserved", 0, VMFS_RESERVED, 1, "area"},
	    {"primary header", VMFS_VH_OFF, VMFS_UNIT, 1, "block"},
	    {"volume lock", vh->vol_lock_off, VMFS_UNIT, 1, "unit"},
	    {"heartbeat", vh->hb_off, vh->hb_len, vh->max_hosts, "slots"},
	    {"lock area", vh->lock_off, vh->lock_len, vh->nlocks, "units"},
	    {"journals", vh->journal_off, vh->journal_len, vh->max_hosts, "journals"},
	};
	unsigned n = 6;

	for (unsigned i = 0; i < 4; i++) {
		const struct vmfs_res_region *rr = &vh->res[order[i]];

		all[n++] = (struct native_region){names[i], rr->off, rr->len, rr->ncl, "clusters"};
	}
	if (vh->xtab_off)
		all[n++] =
		    (struct native_region){"extension table", vh->xtab_off, vmfs_xtab_len(vh),
					   3ull * vh->xtab_nblk, "blocks"};
	all[n++] =
	    (struct native_region){"data", vh->data_off, vh->data_len, vh->nblocks, "blocks"};
	all[n++] = (struct native_region){"backup header", vh->backup_off, VMFS_UNIT, 1, "block"};
	if (n > max)
		n = max;
	memcpy(r, all, n * sizeof(*r));
	return n;
}

static void time_str(uint64_t ns, char *out, size_t outlen)
{
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;

	if (gmtime_r(&t, &tm))
		strftime(out, outlen, "%Y-%m-%d %H:%M:%S UTC", &tm);
	else
		snprintf(out, outlen, "%" PRIu64 " ns", ns);
}

void native_print_layout(FILE *f, const struct vmfs_vh *vh)
{
	struct native_region r[13];
	unsigned n = native_regions(vh, r, 13);
	char h[32], u[40], t[64];

	native_uuid_str(vh->uuid, u);
	time_str(vh->created_ns, t, sizeof(t));
	fprintf(f, "Format version:   %u.%u\n", vh->major, vh->minor);
	fprintf(f, "Label:            %s\n", vh->label);
	fprintf(f, "UUID:             %s\n", u);
	fprintf(f, "Created:          %s\n", t);
	tool_human(vh->vol_size, h, sizeof(h));
	fprintf(f, "Volume size:      %" PRIu64 " bytes (%s)\n", vh->vol_size, h);
	fprintf(f, "Sector size:      %" PRIu32 " (at mkfs)\n", vh->lsec);
	tool_human(vh->block_size, h, sizeof(h));
	fprintf(f, "Block size:       %" PRIu32 " (%s)\n", vh->block_size, h);
	tool_human(vh->data_len, h, sizeof(h));
	fprintf(f, "Data blocks:      %" PRIu64 " (%s)\n", vh->nblocks, h);
	fprintf(f, "Files (FDs):      %" PRIu64 "%s\n",
		(uint64_t)vh->res[VMFS_RT_FD].ncl * vh->res[VMFS_RT_FD].per_cl,
		vh->xtab_off ? " at mkfs; more grow into free file blocks" : "");
	if (vh->xt)
		fprintf(f,
			"Grown clusters:   FD %" PRIu32 " (%" PRIu32 " files each), PB %" PRIu32
			", SB %" PRIu32 "\n",
			vmfs_ncl(vh, VMFS_RT_FD) - vh->res[VMFS_RT_FD].ncl,
			vmfs_xt_nres(vh, VMFS_RT_FD),
			vmfs_ncl(vh, VMFS_RT_PB) - vh->res[VMFS_RT_PB].ncl,
			vmfs_ncl(vh, VMFS_RT_SB) - vh->res[VMFS_RT_SB].ncl);
	fprintf(f, "Max hosts:        %" PRIu32 "\n", vh->max_hosts);
	fprintf(f, "Heartbeat:        every %" PRIu32 " ms, dead after %" PRIu32 " ms\n",
		vh->hb_interval_ms, vh->hb_timeout_ms);
	tool_human(vh->journal_size, h, sizeof(h));
	fprintf(f, "Journal:          %s per host\n", h);
	fprintf(f, "Named locks:      %" PRIu32 "\n", vh->nlocks);
	fprintf(f,
		"Features:         compat 0x%" PRIx32 " incompat 0x%" PRIx32 " ro_compat 0x%" PRIx32
		"\n",
		vh->compat, vh->incompat, vh->ro_compat);
	fprintf(f, "Regions:\n  %-15s %18s %18s %10s\n", "name", "offset", "length", "count");
	for (unsigned i = 0; i < n; i++)
		fprintf(f, "  %-15s 0x%016" PRIx64 " %18" PRIu64 " %10" PRIu64 " %s\n", r[i].name,
			r[i].off, r[i].len, r[i].count, r[i].unit);
}

void native_print_layout_json(FILE *f, const struct vmfs_vh *vh)
{
	struct native_region r[13];
	unsigned n = native_regions(vh, r, 13);
	char u[40];

	native_uuid_str(vh->uuid, u);
	fprintf(f, "  \"format\": \"native\",\n  \"version\": \"%u.%u\",\n  \"label\": ", vh->major,
		vh->minor);
	native_json_str(f, vh->label);
	fprintf(f, ",\n  \"uuid\": \"%s\",\n  \"created_ns\": %" PRIu64 ",\n", u, vh->created_ns);
	fprintf(f,
		"  \"volume_size\": %" PRIu64 ",\n  \"sector_size\": %" PRIu32
		",\n  \"block_size\": %" PRIu32 ",\n  \"nblocks\": %" PRIu64
		",\n  \"nfds\": %" PRIu64 ",\n",
		vh->vol_size, vh->lsec, vh->block_size, vh->nblocks,
		(uint64_t)vh->res[VMFS_RT_FD].ncl * vh->res[VMFS_RT_FD].per_cl);
	fprintf(f,
		"  \"max_hosts\": %" PRIu32 ",\n  \"hb_interval_ms\": %" PRIu32
		",\n  \"hb_timeout_ms\": %" PRIu32 ",\n  \"nlocks\": %" PRIu32
		",\n  \"journal_size\": %" PRIu64 ",\n",
		vh->max_hosts, vh->hb_interval_ms, vh->hb_timeout_ms, vh->nlocks, vh->journal_size);
	if (vh->xt)
		fprintf(f,
			"  \"grown_clusters\": {\"fd\": %" PRIu32 ", \"pb\": %" PRIu32
			", \"sb\": %" PRIu32 "},\n",
			vmfs_ncl(vh, VMFS_RT_FD) - vh->res[VMFS_RT_FD].ncl,
			vmfs_ncl(vh, VMFS_RT_PB) - vh->res[VMFS_RT_PB].ncl,
			vmfs_ncl(vh, VMFS_RT_SB) - vh->res[VMFS_RT_SB].ncl);
	fprintf(f,
		"  \"compat\": %" PRIu32 ",\n  \"incompat\": %" PRIu32
		",\n  \"ro_compat\": %" PRIu32 ",\n  \"root_fd\": %" PRIu64 ",\n",
		vh->compat, vh->incompat, vh->ro_compat, vh->root_fd);
	fprintf(f, "  \"regions\": [");
	for (unsigned i = 0; i < n; i++) {
		fprintf(f,
			"%s\n    {\"name\": \"%s\", \"offset\": %" PRIu64 ", \"length\": %" PRIu64
			", \"count\": %" PRIu64 ", \"unit\": \"%s\"}",
			i ? "," : "", r[i].name, r[i].off, r[i].len, r[i].count, r[i].unit);
	}
	fprintf(f, "\n  ]");
}
