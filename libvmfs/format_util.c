/*
 * format_util.c - the common record header (magic, version, CRC32C over
 * rec_len bytes with the crc field read as zero), reason strings and block
 * addresses of the native format. See format.h for the design note.
 */
#include "format_ondisk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "crc32c.h"
#include "le.h"

static uint32_t rec_crc(const uint8_t *b, uint32_t rec_len)
{
	static const uint8_t zero[4];
	uint32_t crc = crc32c(0, b, REC_CRC);

	crc = crc32c(crc, zero, 4);
	return crc32c(crc, b + REC_CRC + 4, rec_len - REC_CRC - 4);
}

void vmfs__rec_seal(uint8_t *b, uint32_t magic, uint32_t rec_len)
{
	le32_put(b + REC_MAGIC, magic);
	le16_put(b + REC_MAJOR, VMFS_MAJOR);
	le16_put(b + REC_MINOR, VMFS_MINOR);
	le32_put(b + REC_LEN, rec_len);
	le32_put(b + REC_CRC, rec_crc(b, rec_len));
}

int vmfs__bad(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -EUCLEAN;
}

int vmfs__rec_check(const uint8_t *b, uint32_t magic, uint32_t rec_len, const char *what, char *why,
		    size_t whylen)
{
	uint32_t m = le32_get(b + REC_MAGIC);

	if (m != magic)
		return vmfs__bad(why, whylen,
				 "%s: bad magic 0x%08" PRIx32 " (expected 0x%08" PRIx32 ")", what,
				 m, magic);
	if (le16_get(b + REC_MAJOR) != VMFS_MAJOR)
		return vmfs__bad(why, whylen, "%s: unsupported format version %u.%u", what,
				 le16_get(b + REC_MAJOR), le16_get(b + REC_MINOR));
	if (le32_get(b + REC_LEN) != rec_len)
		return vmfs__bad(why, whylen,
				 "%s: bad record length %" PRIu32 " (expected %" PRIu32 ")", what,
				 le32_get(b + REC_LEN), rec_len);
	if (le32_get(b + REC_CRC) != rec_crc(b, rec_len))
		return vmfs__bad(why, whylen, "%s: bad CRC", what);
	return 0;
}

/* 1 if b[from, to) is all zero. */
int vmfs__zero(const uint8_t *b, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (b[i])
			return 0;
	return 1;
}

const char *vmfs_rtype_name(unsigned type)
{
	static const char *const names[] = {"none", "FB", "SB", "PB", "FD"};

	return type <= VMFS_RT_MAX ? names[type] : "bad";
}

void vmfs_addr_str(uint64_t addr, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s %" PRIu32 ":%" PRIu32 "%s", vmfs_rtype_name(vmfs_addr_type(addr)),
		 vmfs_addr_cl(addr), vmfs_addr_res(addr), (addr & VMFS_ADDR_TBZ) ? "+TBZ" : "");
}

uint64_t vmfs_cl_off(const struct vmfs_vh *vh, unsigned type, uint32_t cl)
{
	const struct vmfs_res_region *r = &vh->res[type];

	if (type == VMFS_RT_FB && cl >= r->ncl) /* FBX: its first block */
		return vh->data_off + (uint64_t)cl * r->per_cl * vh->block_size;
	if (cl >= r->ncl && vh->xt)
		return vmfs__xt_cl_off(vh, type, cl - r->ncl);
	return r->off + (uint64_t)cl * r->cl_size;
}

uint32_t vmfs_cl_nres(const struct vmfs_vh *vh, unsigned type, uint32_t cl)
{
	const struct vmfs_res_region *r = &vh->res[type];
	uint64_t first = (uint64_t)cl * r->per_cl;
	uint64_t nb = __atomic_load_n(&vh->nblocks, __ATOMIC_ACQUIRE);

	if (type == VMFS_RT_FB) {
		if (first >= nb)
			return 0;
		return nb - first < r->per_cl ? (uint32_t)(nb - first) : r->per_cl;
	}
	if (cl >= r->ncl)
		return cl < vmfs_ncl(vh, type) ? vmfs_xt_nres(vh, type) : 0;
	return r->per_cl;
}

uint64_t vmfs_addr_off(const struct vmfs_vh *vh, uint64_t addr)
{
	unsigned type = vmfs_addr_type(addr);
	uint32_t cl = vmfs_addr_cl(addr), res = vmfs_addr_res(addr);
	const struct vmfs_res_region *r = &vh->res[type];

	if (type == VMFS_RT_FB)
		return vh->data_off + ((uint64_t)cl * r->per_cl + res) * vh->block_size;
	return vmfs_cl_off(vh, type, cl) + VMFS_CL_HDR + (uint64_t)res * r->res_size;
}

int vmfs_addr_check(const struct vmfs_vh *vh, uint64_t addr, unsigned want, char *why,
		    size_t whylen)
{
	unsigned type = vmfs_addr_type(addr);
	uint32_t cl = vmfs_addr_cl(addr), res = vmfs_addr_res(addr);

	if (type == VMFS_RT_NONE || type > VMFS_RT_MAX)
		return vmfs__bad(why, whylen, "bad address 0x%016" PRIx64 ": type %u", addr, type);
	if (want != VMFS_RT_NONE && type != want)
		return vmfs__bad(why, whylen, "address 0x%016" PRIx64 " is %s, expected %s", addr,
				 vmfs_rtype_name(type), vmfs_rtype_name(want));
	if ((addr & VMFS_ADDR_FLAGS) & ~VMFS_ADDR_TBZ)
		return vmfs__bad(why, whylen, "address 0x%016" PRIx64 ": unknown flags", addr);
	if ((addr & VMFS_ADDR_TBZ) && type != VMFS_RT_FB)
		return vmfs__bad(why, whylen, "address 0x%016" PRIx64 ": TBZ on a %s", addr,
				 vmfs_rtype_name(type));
	if (!vh)
		return 0;
	/* a cluster another host added since we last looked: re-read the
	 * extension table (bounded by its capacity, so a hostile address
	 * costs one table read) */
	if (cl >= vmfs_ncl(vh, type) && cl < vmfs_ncl_max(vh, type))
		vmfs_xtab_refresh(vh, type);
	/* a file block past the end we know: another host may have grown
	 * the volume; re-read the header once (vmfs_vh_refresh) */
	if (type == VMFS_RT_FB && vh->refresh && vmfs__xt_bdev(vh) &&
	    ((uint64_t)cl * VMFS_FB_PER_CL + res) >=
		__atomic_load_n(&vh->nblocks, __ATOMIC_ACQUIRE))
		vmfs_vh_refresh(vmfs__xt_bdev(vh), (struct vmfs_vh *)vh, NULL, 0);
	if (cl >= vmfs_ncl(vh, type))
		return vmfs__bad(why, whylen,
				 "address 0x%016" PRIx64 ": %s cluster %" PRIu32 " beyond %" PRIu32,
				 addr, vmfs_rtype_name(type), cl, vmfs_ncl(vh, type));
	if (res >= vmfs_cl_nres(vh, type, cl))
		return vmfs__bad(why, whylen,
				 "address 0x%016" PRIx64 ": %s resource %" PRIu32
				 " beyond cluster %" PRIu32,
				 addr, vmfs_rtype_name(type), res, cl);
	return 0;
}

uint32_t vmfs_name_hash(const char *name, size_t len)
{
	return crc32c(0, name, len);
}

uint32_t vmfs_dir_bucket(uint32_t hash, uint32_t level, uint32_t split)
{
	uint32_t mask = level >= 32 ? UINT32_MAX : (1u << level) - 1;
	uint32_t b = hash & mask;

	if (b < split && level < 31)
		b = hash & ((2u << level) - 1);
	return b;
}
