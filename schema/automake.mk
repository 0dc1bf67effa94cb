# schema/: the store's SQL (baseline + ordered migrations) and JSON Schemas.
SCHEMA_SQL = schema/yunguan.sql schema/migrations/002-idempotency.sql \
	schema/migrations/003-segments.sql schema/migrations/004-vms.sql \
	schema/migrations/005-quota-indexes.sql schema/migrations/006-audit-object.sql \
	schema/migrations/007-playbooks.sql schema/migrations/008-results-sha256.sql \
	schema/migrations/009-vms-step-by-host.sql schema/migrations/010-vms-mac-released.sql \
	schema/migrations/011-vms-request-state.sql schema/migrations/012-vms-released.sql
EXTRA_DIST += $(SCHEMA_SQL) schema/sql2c.sh
dist_pkgdata_DATA = $(SCHEMA_SQL)

# schema/automake.mk too: a migration taken out of SCHEMA_SQL must not stay
# in a schema-sql.c generated before (its files alone would not say so).
controller/schema-sql.c: $(SCHEMA_SQL) schema/sql2c.sh schema/automake.mk
	$(AM_V_GEN)$(MKDIR_P) controller && \
	$(SHELL) $(srcdir)/schema/sql2c.sh $@ `for f in $(SCHEMA_SQL); do echo $(srcdir)/$$f; done`
BUILT_SOURCES += controller/schema-sql.c
CLEANFILES += controller/schema-sql.c

# JSON Schema of request files, for editors (yaml-language-server, VS Code);
# lib/request.c is the authority.
dist_pkgdata_DATA += schema/request.schema.json

# JSON Schema of playbooks (doc/PLAYBOOKS.md), for editors; lib/playbook.c is
# the authority.  tests/golden/playbook-schema.sh checks the shipped
# playbooks against it.
dist_pkgdata_DATA += schema/playbook.schema.json
