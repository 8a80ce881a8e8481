/*
 * advrecd - the daemon's entry point: a thin shell over lib/.
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("advrecd %s\n", "0.1.0");
        return 0;
    }
    fprintf(stderr, "advrecd: not yet runnable\n");
    return 70;
}
