/*
 * crc32c.h - CRC32C (Castagnoli), the checksum of every on-disk record.
 * crc32c(0, buf, len) is the standard CRC32C (initial ~0, final xor ~0);
 * crc32c("123456789") == 0xE3069283.
 */
#ifndef LIBVMFS_CRC32C_H
#define LIBVMFS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: crc32c(crc32c(0, a, n), b, m) == crc32c(0, a||b, n+m). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
