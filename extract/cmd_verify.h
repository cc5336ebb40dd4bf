/*
 * cmd_verify.h: `bottleneck-extract verify`, recompute stored vectors from the
 * images on disk, compare, and repair with --repair (common/verify.h).
 */
#ifndef BN_EXTRACT_CMD_VERIFY_H
#define BN_EXTRACT_CMD_VERIFY_H

/* The whole subcommand (argv[1] is "verify"). Prints its own messages and
 * returns the exit status: 0 nothing differs (or all repaired); 1 error;
 * 2 usage error; 3 some vectors differ and were not repaired. */
int extract_verify_main(int argc, char **argv);

/* One line on stderr when db holds vectors of unknown provenance (bottleneck
 * 0.1.0 or earlier), saying what to run. */
struct bn_store;
void extract_warn_unverified(struct bn_store *s, const char *db_path, const char *prog);

#endif
