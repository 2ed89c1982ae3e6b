"""Describe what the collector stored in a MongoDB database, as pymongo reads it.

Usage: check_docs.py MONGO_URL DATABASE
Prints JSON: per collection the document count, the Python types seen per field, and the indexes
(name, keys, unique, partialFilterExpression); and the log_panel rows of django_migrations.
"""
import json
import sys

from pymongo import MongoClient

url, name = sys.argv[1], sys.argv[2]
db = MongoClient(url, serverSelectionTimeoutMS=5000)[name]
out = {"collections": {}, "migrations": []}
for coll in sorted(db.list_collection_names()):
    types = {}
    count = 0
    for doc in db[coll].find():
        count += 1
        for k, v in doc.items():
            types.setdefault(k, set()).add(type(v).__name__)
    indexes = []
    for ix in db[coll].list_indexes():
        indexes.append({
            "name": ix["name"],
            "key": [[k, v] for k, v in ix["key"].items()],
            "unique": bool(ix.get("unique", False)),
            "partial": ix.get("partialFilterExpression"),
        })
    out["collections"][coll] = {
        "count": count,
        "types": {k: sorted(v) for k, v in types.items()},
        "indexes": indexes,
    }
out["migrations"] = sorted(d["name"] for d in db.django_migrations.find({"app": "log_panel"}))
json.dump(out, sys.stdout, default=str, indent=1)
