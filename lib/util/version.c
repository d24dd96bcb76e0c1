/*
 * version.c - the library's version at run time (fut_version,
 * fut_version_number), from the fut/version.h generated for this build.
 */
#include "fut.h"

const char *fut_version(void)
{
    return FUT_VERSION_STRING;
}

int fut_version_number(void)
{
    return FUT_VERSION_NUMBER;
}
