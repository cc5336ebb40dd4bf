/*
 * import.h: `bottleneck-extract import`, vectors computed elsewhere (a .npy
 * matrix and a TSV index) stored as a feature set of their own.
 */
#ifndef BN_EXTRACT_IMPORT_H
#define BN_EXTRACT_IMPORT_H

/* The whole subcommand. argv is either the program's own (argv[1] is
 * "import") or starts at the word "import". Prints its own messages and
 * returns the process exit status: 0 stored; 1 error, nothing stored;
 * 2 usage error. */
int extract_import_main(int argc, char **argv);

#endif
