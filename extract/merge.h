/*
 * merge.h: `bottleneck-extract merge`, the databases of several shards (or of
 * any runs) copied into one.
 */
#ifndef BN_EXTRACT_MERGE_H
#define BN_EXTRACT_MERGE_H

/* The whole subcommand (argv[1] is "merge"). Prints its own messages and
 * returns the exit status: 0 merged; 1 error (inputs merged before it are
 * kept, the failing one is not); 2 usage error; 3 merged, but --expect found
 * missing or duplicated shards. */
int extract_merge_main(int argc, char **argv);

#endif
