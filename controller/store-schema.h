/* The schema files, compiled in (generated controller/schema-sql.c). */
#ifndef YG_STORE_SCHEMA_H
#define YG_STORE_SCHEMA_H 1
#include <stddef.h>

struct store_migration {
    int version;            /* user_version after applying it */
    const char *name;       /* file name, for messages */
    const char *sql;
};
extern const struct store_migration store_migrations[];
extern const size_t store_n_migrations;

#endif
