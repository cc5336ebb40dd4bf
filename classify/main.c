/* bottleneck-classify: placeholder main while the program is written. */
#include <stdio.h>
int main(void) {
    fprintf(stderr, "bottleneck-classify: not built yet\n");
    return 2;
}
