# schema/: the store's SQL (baseline + ordered migrations) and JSON Schemas.
