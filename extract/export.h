/*
 * export.h: `bottleneck-extract export`, the reverse of import: one feature
 * set's vectors as a .npy matrix and a TSV index, for NumPy, FAISS, Spark or
 * DuckDB.
 */
#ifndef BN_EXTRACT_EXPORT_H
#define BN_EXTRACT_EXPORT_H

/* The whole subcommand (argv[1] is "export"). Prints its own messages and
 * returns the exit status: 0 written; 1 error, nothing written; 2 usage. */
int extract_export_main(int argc, char **argv);

#endif
