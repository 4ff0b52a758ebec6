/*
 * native_util.h - helpers shared by the native-format commands of vmfsctl
 * (mkfs, info, fsck): size parsing, JSON strings, layout printing.
 */
#ifndef VMFSCTL_NATIVE_UTIL_H
#define VMFSCTL_NATIVE_UTIL_H

#include <stdint.h>
#include <stdio.h>

struct vmfs_vh;

/* Parses "123", "64K", "4M", "1G", "2T" (powers of 1024); 0 or -EINVAL. */
int native_parse_size(const char *s, uint64_t *out);
/* Parses a decimal u32 in [lo, hi]; 0 or -EINVAL. */
int native_parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out);
/* Writes s as a JSON string literal (quotes, escapes). */
void native_json_str(FILE *f, const char *s);
void native_uuid_str(const uint8_t uuid[16], char *out); /* out >= 37 bytes */

/* One region of the layout, for printing. */
struct native_region {
	const char *name;
	uint64_t off, len;
	uint64_t count; /* units, slots, journals, clusters or blocks */
	const char *unit;
};
/* Fills up to max regions of vh in disk order; returns the count. */
unsigned native_regions(const struct vmfs_vh *vh, struct native_region *r, unsigned max);
/* The volume header fields and regions as text (mke2fs-like). */
void native_print_layout(FILE *f, const struct vmfs_vh *vh);
/* The same as JSON members (no surrounding braces), indented by 2. */
void native_print_layout_json(FILE *f, const struct vmfs_vh *vh);

#endif
