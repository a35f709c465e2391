
/*
 * The harnesses' one line a check (check.h).
 */


#include <stdio.h>

#include "check.h"


int  check_failures;


void
check(int ok, const char *name, const char *detail)
{
    if (ok) {
        printf("ok %s\n", name);

    } else {
        check_failures++;
        printf("not ok %s: %s\n", name, detail);
    }
}
