# tests/: unit (cmocka), golden (request loader), e2e (real daemons), fuzz.
EXTRA_DIST += tests/store-files.h
include tests/unit/automake.mk
include tests/golden/automake.mk
include tests/e2e/automake.mk
include tests/fuzz/automake.mk
