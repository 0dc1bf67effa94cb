#!/bin/sh
# schema/playbook.schema.json (for editors) agrees with lib/playbook.c on
# the shipped playbooks and the golden cases: every shipped playbook and
# every valid case that quotes its text values validates; a sample of the
# refused cases does not.  Needs python3 with jsonschema and yaml (Debian:
# python3-jsonschema python3-yaml); skipped without.
set -eu
srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
if ! python3 -c 'import jsonschema, yaml' 2>/dev/null; then
    echo "SKIP: python3 with jsonschema and yaml is not installed"
    exit 77
fi
exec python3 - "$srcdir" <<'PY'
import glob, json, sys
import jsonschema, yaml
src = sys.argv[1]
schema = json.load(open(f"{src}/schema/playbook.schema.json"))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
passed = failed = 0
def case(name, doc, want_valid):
    global passed, failed
    errs = list(v.iter_errors(doc))
    if (not errs) == want_valid:
        passed += 1
        print(f"ok {name}")
    else:
        failed += 1
        print(f"FAIL {name}: expected {'valid' if want_valid else 'refused'}")
        for e in errs[:3]:
            print(f"  {list(e.absolute_path)}: {e.message[:200]}")
for f in sorted(glob.glob(f"{src}/playbooks/*.yaml")):
    case(f.split("/")[-1], yaml.safe_load(open(f)), True)
for f in ["valid-doc-example", "valid-param-when", "valid-required-param"]:
    case(f, yaml.safe_load(open(f"{src}/tests/golden/playbooks/{f}.yaml")), True)
for f in ["unknown-action", "unknown-arg", "bad-arg-type", "sysctl-key-kernel",
          "sysctl-key-net-core", "verify-bad", "when-both", "empty-steps",
          "bad-metadata-name", "too-many-steps", "param-unknown-type",
          "wrong-api-version-and-kind", "missing-required-arg"]:
    case(f, yaml.safe_load(open(f"{src}/tests/golden/playbooks/{f}.yaml")), False)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
