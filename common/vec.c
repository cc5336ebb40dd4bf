/* vec.c: placeholder so the tree links while the vector SQL functions are
 * written (issue 4): registers nothing yet. */
#include "vec.h"

int bn_vec_register(sqlite3 *db) {
    (void)db;
    return SQLITE_OK;
}
