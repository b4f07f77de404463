#!/usr/bin/env python3
"""Extracts the documentation part of Redis's command table.

Reads Redis 7.0.15's src/commands/*.json (the files its commands.c is
generated from) and writes src/commands/redis-commands.json: for every
command and subcommand, by its lower-case full name ("set",
"config|get"), what COMMAND DOCS, and the flags, ACL categories, tips
and key specifications of COMMAND INFO report. jcache's own table stays the source of arity, flags
and handlers; this file only describes.

Usage: scripts/gen-command-docs.py [REDIS_SRC]   (default:
~/.cache/jcache/redis-src, which scripts/redis-compat.sh fetches).
"""
import json
import os
import sys

KEEP_CMD = ("acl_categories", "command_flags", "summary", "since", "group", "complexity", "doc_flags",
            "deprecated_since", "replaced_by", "history", "arguments",
            "command_tips", "key_specs")
KEEP_ARG = ("name", "type", "key_spec_index", "token", "summary", "since",
            "deprecated_since", "optional", "multiple", "multiple_token",
            "arguments")


def arg(a):
    """One argument, as Redis's generate-command-code.py stores it: the
    name in lower case, the token in upper case."""
    e = {k: (list(map(arg, a[k])) if k == "arguments" else a[k])
         for k in KEEP_ARG if k in a}
    # Redis's generator keeps an empty text as no text (NULL).
    e = {k: v for k, v in e.items() if v != ""}
    e["name"] = e["name"].lower()
    if "token" in e:
        e["token"] = e["token"].upper()
        # MIGRATE's `""` token: Redis's generator writes it into C as
        # `""""`, which the compiler joins into an empty string.
        e["token"] = e["token"].replace('"', "")
    return e


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser(
        "~/.cache/jcache/redis-src")
    d = os.path.join(src, "src", "commands")
    out = {}
    for f in sorted(os.listdir(d)):
        if not f.endswith(".json"):
            continue
        with open(os.path.join(d, f)) as fh:
            for name, c in json.load(fh).items():
                full = name.lower()
                if "container" in c:
                    full = c["container"].lower() + "|" + full
                e = {k: c[k] for k in KEEP_CMD if k in c}
                if "arguments" in e:
                    e["arguments"] = [arg(a) for a in e["arguments"]]
                if "command_tips" in e:
                    e["command_tips"] = [t.lower() for t in e["command_tips"]]
                e["group"] = e["group"].replace("_", "-")
                if "command_flags" in e:
                    e["command_flags"] = [
                        f.lower() for f in e["command_flags"]]
                if "acl_categories" in e:
                    e["acl_categories"] = [
                        c.lower() for c in e["acl_categories"]]
                for spec in e.get("key_specs", []):
                    # `"unknown": null` becomes an empty object, so every
                    # search is an object of its one kind.
                    for part in ("begin_search", "find_keys"):
                        if "unknown" in spec[part]:
                            spec[part] = {"unknown": {}}
                out[full] = e
    here = os.path.dirname(os.path.abspath(__file__))
    dst = os.path.join(here, "..", "src", "commands", "redis-commands.json")
    with open(dst, "w") as fh:
        json.dump(out, fh, separators=(",", ":"), sort_keys=True)
        fh.write("\n")
    print(f"{len(out)} commands -> {os.path.normpath(dst)}")


if __name__ == "__main__":
    main()
