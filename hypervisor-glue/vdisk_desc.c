/*
 * vdisk_desc.c - VMDK text descriptors as vmkfstools writes them for disks
 * on VMFS (createType "vmfs", one flat extent), parsed and written.
 *
 * Design note
 * -----------
 * A descriptor is read from a file anybody could have written: it is
 * untrusted input. The parser
 *  1. accepts at most VDISK_DESC_MAX bytes, no NUL bytes, lines of at most
 *     LINE_MAX_LEN bytes, and must start with "# Disk DescriptorFile";
 *  2. validates every field it uses (numbers in range, names of known
 *     values, the extent file name is one plain path component of printable
 *     characters without quotes, '/' or "..");
 *  3. refuses what it does not implement with -ENOTSUP and a reason (sparse
 *     and snapshot disks, raw device mappings, several extents) instead of
 *     guessing;
 *  4. keeps the ddb lines it does not interpret (checked printable) so that
 *     rewriting a descriptor (grow, inflate) loses nothing.
 * Geometry follows vmkfstools: SCSI adapters 255 heads x 63 sectors,
 * cylinders = sectors / (255 * 63) capped at 65535; IDE 16 x 63, capped at
 * 16383.
 */
#include "vdisk.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define LINE_MAX_LEN 1024u
#define DESC_MAGIC   "# Disk DescriptorFile"

static const char *const prov_names[] = {"thin", "zeroedthick", "eagerzeroedthick"};
static const char *const adapter_names[] = {"lsilogic", "pvscsi", "buslogic", "ide"};
static const char *const mode_names[] = {"exclusive", "shared", "multiwriter"};

static int name_parse(const char *s, const char *const *names, int n)
{
	for (int i = 0; s && i < n; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -EINVAL;
}

const char *vdisk_prov_name(enum vdisk_prov p)
{
	return (unsigned)p < 3 ? prov_names[p] : "?";
}
const char *vdisk_adapter_name(enum vdisk_adapter a)
{
	return (unsigned)a < 4 ? adapter_names[a] : "?";
}
const char *vdisk_mode_name(enum vdisk_mode m)
{
	return (unsigned)m < 3 ? mode_names[m] : "?";
}
int vdisk_prov_parse(const char *s)
{
	if (s && !strcmp(s, "lazy"))
		return VDISK_ZEROEDTHICK;
	if (s && !strcmp(s, "eager"))
		return VDISK_EAGERZEROEDTHICK;
	return name_parse(s, prov_names, 3);
}
int vdisk_adapter_parse(const char *s)
{
	return name_parse(s, adapter_names, 4);
}
int vdisk_mode_parse(const char *s)
{
	return name_parse(s, mode_names, 3);
}

void vdisk_geometry(uint64_t sectors, enum vdisk_adapter a, uint32_t *cyl, uint32_t *heads,
		    uint32_t *spt)
{
	uint64_t c;

	*spt = 63;
	*heads = a == VDISK_IDE ? 16 : 255;
	c = sectors / ((uint64_t)*heads * *spt);
	if (a == VDISK_IDE && c > 16383)
		c = 16383;
	if (c > 65535)
		c = 65535;
	if (c == 0)
		c = 1; /* disks smaller than one cylinder */
	*cyl = (uint32_t)c;
}

static uint32_t rand32(void)
{
	uint32_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		v = (uint32_t)rand() ^ (uint32_t)(uintptr_t)&v;
	return v;
}

int vdisk_desc_init(struct vdisk_desc *d, const char *flat, uint64_t size,
		    enum vdisk_adapter adapter, int thin)
{
	uint8_t u[16];
	int n = 0;

	if (!flat || !*flat || strlen(flat) > VDISK_NAME_MAX || strchr(flat, '/') ||
	    strchr(flat, '"') || !size || size % VDISK_SECTOR || size > VDISK_SIZE_MAX ||
	    (unsigned)adapter > VDISK_IDE)
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	snprintf(d->create_type, sizeof(d->create_type), "vmfs");
	memcpy(d->flat, flat, strlen(flat));
	d->sectors = size / VDISK_SECTOR;
	do
		d->cid = rand32();
	while (d->cid == UINT32_MAX || d->cid == UINT32_MAX - 1);
	d->parent_cid = UINT32_MAX;
	d->adapter = adapter;
	d->thin = !!thin;
	vdisk_geometry(d->sectors, adapter, &d->cylinders, &d->heads, &d->spt);
	for (int i = 0; i < 4; i++) {
		uint32_t r = rand32();

		memcpy(u + 4 * i, &r, 4);
	}
	u[0] = 0x60, u[1] = 0x00, u[2] = 0xc2; /* VMware's prefix */
	for (int i = 0; i < 16; i++)
		n += snprintf(d->uuid + n, sizeof(d->uuid) - (size_t)n, "%s%02x", i ? " " : "",
			      u[i]);
	snprintf(d->extra, sizeof(d->extra), "ddb.virtualHWVersion = \"14\"\n");
	return 0;
}

int vdisk_desc_sniff(const void *buf, size_t len)
{
	size_t m = strlen(DESC_MAGIC);

	return len >= m && !memcmp(buf, DESC_MAGIC, m);
}

/* ---- parsing ----------------------------------------------------------------------- */

struct pstate {
	struct vdisk_desc *d;
	char *why;
	size_t whylen;
	unsigned line;
	int nextents, have_type, have_heads, have_cyl, have_spt;
	size_t extra_len;
};

static int perr(struct pstate *p, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr(struct pstate *p, int rc, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (!p->why || !p->whylen)
		return rc;
	if (p->line)
		n = snprintf(p->why, p->whylen, "line %u: ", p->line);
	if (n < 0 || (size_t)n >= p->whylen)
		return rc;
	va_start(ap, fmt);
	vsnprintf(p->why + n, p->whylen - (size_t)n, fmt, ap);
	va_end(ap);
	return rc;
}

static int printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			if (*s != '\t')
				return 0;
	return 1;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Decimal u64 in [lo, hi]. */
static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s || strlen(s) > 20)
		return -EINVAL;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s) || v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_hex32(const char *s, uint32_t *out)
{
	uint32_t v = 0;
	size_t n = strlen(s);

	if (!n || n > 8)
		return -EINVAL;
	for (; *s; s++) {
		if (!isxdigit((unsigned char)*s))
			return -EINVAL;
		v = v << 4 |
		    (uint32_t)(isdigit((unsigned char)*s) ? *s - '0' : (tolower(*s) - 'a' + 10));
	}
	*out = v;
	return 0;
}

/* Strips surrounding quotes from a value (must be balanced, none inside). */
static int unquote(char **v)
{
	size_t n = strlen(*v);

	if (n && (*v)[0] == '"') {
		if (n < 2 || (*v)[n - 1] != '"')
			return -EINVAL;
		(*v)[n - 1] = '\0';
		(*v)++;
	}
	return strchr(*v, '"') ? -EINVAL : 0;
}

static int valid_component(const char *s)
{
	return *s && strlen(s) <= VDISK_NAME_MAX && !strchr(s, '/') && strcmp(s, ".") &&
	       strcmp(s, "..") && printable(s) && !strchr(s, '"');
}

/* `ACCESS SECTORS TYPE "NAME" [OFFSET]` */
static int parse_extent(struct pstate *p, char *s)
{
	char *tok[5], *q, *name, *save = NULL;
	unsigned n = 0;
	uint64_t sectors, off = 0;

	if (++p->nextents > 1)
		return perr(p, -ENOTSUP, "disks of several extents are not supported");
	q = strchr(s, '"');
	name = q ? q + 1 : NULL;
	if (!name || !(q = strchr(name, '"')))
		return perr(p, -EINVAL, "extent line without a quoted file name");
	*q++ = '\0';
	q[-1] = '\0';
	name[-1] = '\0';
	for (char *t = strtok_r(s, " \t", &save); t && n < 3; t = strtok_r(NULL, " \t", &save))
		tok[n++] = t;
	if (n != 3)
		return perr(p, -EINVAL, "extent line: expected ACCESS SECTORS TYPE \"FILE\"");
	q = trim(q);
	if (*q && parse_u64(q, 0, UINT64_MAX, &off))
		return perr(p, -EINVAL, "extent line: bad offset '%s'", q);
	if (!strcmp(tok[0], "NOACCESS"))
		return perr(p, -ENOTSUP, "extent access NOACCESS is not supported");
	p->d->rdonly = !strcmp(tok[0], "RDONLY");
	if (parse_u64(tok[1], 1, VDISK_SIZE_MAX / VDISK_SECTOR, &sectors))
		return perr(p, -EINVAL, "extent size '%s' is not a sector count in [1, %llu]",
			    tok[1], (unsigned long long)(VDISK_SIZE_MAX / VDISK_SECTOR));
	if (!strcmp(tok[2], "VMFSSPARSE") || !strcmp(tok[2], "SESPARSE") ||
	    !strcmp(tok[2], "SPARSE"))
		return perr(p, -ENOTSUP, "sparse (snapshot) extents are not supported");
	if (!strcmp(tok[2], "VMFSRDM") || !strcmp(tok[2], "VMFSRAW"))
		return perr(p, -ENOTSUP, "raw device mappings are not supported");
	if (strcmp(tok[2], "VMFS") && strcmp(tok[2], "FLAT"))
		return perr(p, -EINVAL, "unknown extent type '%s'", tok[2]);
	if (off)
		return perr(p, -ENOTSUP, "extents at a non-zero offset are not supported");
	if (!valid_component(name))
		return perr(p, -EINVAL,
			    "extent file name must be one plain name in the descriptor's "
			    "directory (no '/', at most %u bytes)",
			    VDISK_NAME_MAX);
	memcpy(p->d->flat, name, strlen(name) + 1);
	p->d->sectors = sectors;
	return 0;
}

static int keep_extra(struct pstate *p, const char *key, const char *val)
{
	int n = snprintf(p->d->extra + p->extra_len, sizeof(p->d->extra) - p->extra_len,
			 "%s = \"%s\"\n", key, val);

	if (n < 0 || (size_t)n >= sizeof(p->d->extra) - p->extra_len) {
		p->d->extra[p->extra_len] = '\0';
		return perr(p, -EINVAL, "too many ddb entries (more than %u bytes)",
			    VDISK_EXTRA_MAX);
	}
	p->extra_len += (size_t)n;
	return 0;
}

static int parse_geom(struct pstate *p, const char *what, const char *v, uint64_t lo, uint64_t hi,
		      uint32_t *out, int *have)
{
	uint64_t x;

	if (parse_u64(v, lo, hi, &x))
		return perr(p, -EINVAL, "ddb.geometry.%s '%s' is not in [%llu, %llu]", what, v,
			    (unsigned long long)lo, (unsigned long long)hi);
	*out = (uint32_t)x;
	*have = 1;
	return 0;
}

static int parse_ddb(struct pstate *p, const char *key, const char *v)
{
	struct vdisk_desc *d = p->d;
	int a;

	if (!strcmp(key, "ddb.adapterType")) {
		a = vdisk_adapter_parse(v);
		if (a < 0 && !strcmp(v, "lsisas1068"))
			a = VDISK_LSILOGIC;
		if (a < 0)
			return perr(p, -EINVAL, "unknown ddb.adapterType '%s'", v);
		d->adapter = (enum vdisk_adapter)a;
		return 0;
	}
	if (!strcmp(key, "ddb.geometry.cylinders"))
		return parse_geom(p, "cylinders", v, 0, 1u << 24, &d->cylinders, &p->have_cyl);
	if (!strcmp(key, "ddb.geometry.heads"))
		return parse_geom(p, "heads", v, 1, 255, &d->heads, &p->have_heads);
	if (!strcmp(key, "ddb.geometry.sectors"))
		return parse_geom(p, "sectors", v, 1, 63, &d->spt, &p->have_spt);
	if (!strcmp(key, "ddb.thinProvisioned")) {
		if (strcmp(v, "0") && strcmp(v, "1"))
			return perr(p, -EINVAL, "ddb.thinProvisioned must be \"0\" or \"1\"");
		d->thin = v[0] == '1';
		return 0;
	}
	if (!strcmp(key, "ddb.uuid")) {
		if (strlen(v) >= sizeof(d->uuid))
			return perr(p, -EINVAL, "ddb.uuid is too long");
		memcpy(d->uuid, v, strlen(v) + 1);
		return 0;
	}
	return keep_extra(p, key, v);
}

static int parse_kv(struct pstate *p, char *s)
{
	char *eq = strchr(s, '='), *key, *v;
	struct vdisk_desc *d = p->d;

	if (!eq)
		return perr(p, -EINVAL, "expected KEY=VALUE or an extent line");
	*eq = '\0';
	key = trim(s);
	v = trim(eq + 1);
	if (!*key ||
	    strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._") !=
		strlen(key))
		return perr(p, -EINVAL, "bad key '%.40s'", key);
	if (unquote(&v))
		return perr(p, -EINVAL, "%s: unbalanced quotes", key);
	if (!strncmp(key, "ddb.", 4))
		return parse_ddb(p, key, v);
	if (!strcmp(key, "version")) {
		if (strcmp(v, "1") && strcmp(v, "2") && strcmp(v, "3"))
			return perr(p, -ENOTSUP, "descriptor version %s is not supported", v);
	} else if (!strcmp(key, "CID")) {
		if (parse_hex32(v, &d->cid))
			return perr(p, -EINVAL, "CID '%s' is not 8 hex digits", v);
	} else if (!strcmp(key, "parentCID")) {
		if (parse_hex32(v, &d->parent_cid))
			return perr(p, -EINVAL, "parentCID '%s' is not 8 hex digits", v);
		if (d->parent_cid != UINT32_MAX)
			return perr(p, -ENOTSUP, "snapshot (delta) disks are not supported");
	} else if (!strcmp(key, "parentFileNameHint")) {
		return perr(p, -ENOTSUP, "snapshot (delta) disks are not supported");
	} else if (!strcmp(key, "createType")) {
		if (!strcmp(v, "vmfsSparse") || !strcmp(v, "seSparse") ||
		    !strcmp(v, "monolithicSparse") || !strcmp(v, "twoGbMaxExtentSparse") ||
		    !strcmp(v, "streamOptimized"))
			return perr(p, -ENOTSUP, "createType \"%s\" (sparse) is not supported", v);
		if (!strcmp(v, "vmfsRaw") || !strcmp(v, "vmfsRawDeviceMap") ||
		    !strcmp(v, "vmfsPassthroughRawDeviceMap"))
			return perr(p, -ENOTSUP, "raw device mappings are not supported");
		if (strcmp(v, "vmfs") && strcmp(v, "vmfsThin") && strcmp(v, "vmfsPreallocated") &&
		    strcmp(v, "vmfsEagerZeroedThick") && strcmp(v, "monolithicFlat"))
			return perr(p, -EINVAL, "unknown createType \"%.40s\"", v);
		snprintf(d->create_type, sizeof(d->create_type), "%s", v);
		p->have_type = 1;
		if (!strcmp(v, "vmfsThin"))
			d->thin = 1;
	} else if (!printable(v)) {
		return perr(p, -EINVAL, "%s: value is not printable text", key);
	}
	return 0;
}

static int parse_line(struct pstate *p, char *s)
{
	s = trim(s);
	if (!*s || *s == '#')
		return 0;
	if (!printable(s))
		return perr(p, -EINVAL, "not printable text");
	if (!strncmp(s, "RW ", 3) || !strncmp(s, "RDONLY ", 7) || !strncmp(s, "NOACCESS ", 9) ||
	    !strncmp(s, "RW\t", 3) || !strncmp(s, "RDONLY\t", 7))
		return parse_extent(p, s);
	return parse_kv(p, s);
}

int vdisk_desc_parse(const char *text, size_t len, struct vdisk_desc *d, char *why, size_t whylen)
{
	struct pstate p = {.d = d, .why = why, .whylen = whylen};
	char line[LINE_MAX_LEN + 1];
	size_t pos = 0;
	int rc = 0;

	memset(d, 0, sizeof(*d));
	d->parent_cid = UINT32_MAX;
	if (why && whylen)
		why[0] = '\0';
	if (len > VDISK_DESC_MAX)
		return perr(&p, -EINVAL, "larger than %u bytes: not a descriptor", VDISK_DESC_MAX);
	if (memchr(text, '\0', len))
		return perr(&p, -EINVAL, "contains NUL bytes: not a text descriptor");
	if (!vdisk_desc_sniff(text, len))
		return perr(&p, -EINVAL, "does not start with \"%s\"", DESC_MAGIC);
	while (pos < len && !rc) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;

		p.line++;
		if (n > LINE_MAX_LEN)
			return perr(&p, -EINVAL, "longer than %u bytes", LINE_MAX_LEN);
		memcpy(line, text + pos, n);
		line[n] = '\0';
		rc = parse_line(&p, line);
		pos += n + 1;
	}
	if (rc)
		return rc;
	p.line = 0;
	if (!p.have_type)
		return perr(&p, -EINVAL, "no createType");
	if (!p.nextents)
		return perr(&p, -EINVAL, "no extent line");
	if (!(p.have_cyl && p.have_heads && p.have_spt))
		vdisk_geometry(d->sectors, d->adapter, &d->cylinders, &d->heads, &d->spt);
	return 0;
}

int vdisk_desc_format(const struct vdisk_desc *d, char *buf, size_t len)
{
	int n = snprintf(buf, len,
			 DESC_MAGIC "\nversion=1\nencoding=\"UTF-8\"\nCID=%08" PRIx32
				    "\nparentCID=ffffffff\ncreateType=\"%s\"\n\n"
				    "# Extent description\n%s %" PRIu64 " VMFS \"%s\"\n\n"
				    "# The Disk Data Base\n#DDB\n\n"
				    "ddb.adapterType = \"%s\"\n"
				    "ddb.geometry.cylinders = \"%" PRIu32 "\"\n"
				    "ddb.geometry.heads = \"%" PRIu32 "\"\n"
				    "ddb.geometry.sectors = \"%" PRIu32 "\"\n"
				    "%s%s%s%s%s",
			 d->cid, d->create_type, d->rdonly ? "RDONLY" : "RW", d->sectors, d->flat,
			 vdisk_adapter_name(d->adapter), d->cylinders, d->heads, d->spt,
			 d->thin ? "ddb.thinProvisioned = \"1\"\n" : "",
			 d->uuid[0] ? "ddb.uuid = \"" : "", d->uuid, d->uuid[0] ? "\"\n" : "",
			 d->extra);

	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}
