/*
 * main.c - vmfsctl, the command-line tool of libvmfs: dispatches
 * `vmfsctl COMMAND [ARGS]` to cmd_COMMAND() in cmd_<name>.c.
 *
 * `--version` anywhere among a command's arguments (before a "--") prints
 * the version, as `vmfsctl --version` does, instead of running it.
 *
 * Commands are declared weak, so a build without one prints a clear error
 * instead of failing to link; every command of a release build is present
 * (tests/tools check that each one answers --help).
 */
#include "tool.h"

#include <stdio.h>
#include <string.h>

#include "bdev.h"

#define CMD(name) int cmd_##name(int argc, char **argv) __attribute__((weak));
#define COMMANDS(X)                                                                                \
	X(mkfs, "format a device")                                                                 \
	X(info, "show the volume header, regions and heartbeat slots")                             \
	X(fsck, "check a volume")                                                                  \
	X(grow, "grow a volume into a device that grew (online)")                                  \
	X(tune, "change the label or heartbeat timing of a volume")                                \
	X(hosts, "list heartbeat slots and host liveness")                                         \
	X(locks, "dump lock records")                                                              \
	X(top, "live view of hosts, locks, recoveries and rates")                                  \
	X(lock, "acquire a lock (for scripts)")                                                    \
	X(unlock, "release a lock")                                                                \
	X(ls, "list a directory")                                                                  \
	X(stat, "show a file's attributes")                                                        \
	X(cat, "print a file")                                                                     \
	X(cp, "copy a file into or out of a volume")                                               \
	X(tree, "print a directory tree")                                                          \
	X(mkdir, "make a directory")                                                               \
	X(rm, "remove a file or an empty directory")                                               \
	X(mkfile, "create a thin or thick (VM disk) file")                                         \
	X(df, "show space used and free")                                                          \
	X(vdisk, "virtual disks: create, clone, extend, inflate, rm, info")

#define DECL(name, help) CMD(name)
COMMANDS(DECL)

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

#define ENTRY(name, help) {#name, cmd_##name, help},
static const struct command commands[] = {COMMANDS(ENTRY)};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "Usage: vmfsctl COMMAND [OPTIONS] DEVICE ...\n\n"
		   "Tools for libvmfs volumes and real VMFS5/VMFS6 datastores.\n"
		   "DEVICE is a path to an image file or block device, or a URI\n"
		   "(file:/path?sector=4096, fault:SPEC:URI, ...).\n\nCommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (commands[i].fn)
			fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nRun 'vmfsctl COMMAND --help' for the options of a command.\n"
		   "'vmfsctl --version' (or 'vmfsctl COMMAND --version') prints the version.\n");
}

/* --version among a command's arguments, before any "--" (after which
 * they belong to a program the command runs). */
static int wants_version(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--version"))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return TOOL_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return TOOL_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		tool_version();
		return TOOL_EXIT_OK;
	}
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(argv[1], commands[i].name))
			continue;
		if (!commands[i].fn) {
			fprintf(stderr, "vmfsctl: command '%s' is not in this build\n", argv[1]);
			return TOOL_EXIT_USAGE;
		}
		if (wants_version(argc - 1, argv + 1)) {
			tool_version();
			return TOOL_EXIT_OK;
		}
		return commands[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "vmfsctl: unknown command '%s' (try 'vmfsctl --help')\n", argv[1]);
	return TOOL_EXIT_USAGE;
}
