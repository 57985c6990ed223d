#!/usr/bin/env python3
"""Cuts the small dataset excerpts under tests/data from the full files.

Usage: python3 tests/data/make-excerpts.py FULL_DATA_DIR
FULL_DATA_DIR holds e2e/devset.csv, webnlg/{train,dev,test}/ and dart/dart-v1.1.1-full-dev.json as published
(see each excerpt's README.md for the source). The cut is textual, so every kept record is byte-for-byte as published.
"""
import os
import re
import sys

full = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))


def write(rel, text):
    path = os.path.join(here, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)


# E2E: the header and every row of the first 25 meaning representations of devset.csv.
E2E_MRS = 25
with open(os.path.join(full, "e2e", "devset.csv"), encoding="utf-8", newline="") as f:
    lines = f.read().split("\n")
kept, mrs = [lines[0]], []
for line in lines[1:]:
    if not line:
        continue
    mr = line[1:line.index('",', 1)] if line.startswith('"') else line.split(",", 1)[0]
    if mr not in mrs:
        if len(mrs) == E2E_MRS:
            break
        mrs.append(mr)
    kept.append(line)
write("e2e/devset-excerpt.csv", "\n".join(kept) + "\n")

# WebNLG 2017: the first N <entry> elements of a few files, copied as text.
ENTRY = re.compile(r"<entry .*?</entry>", re.S)


def webnlg(rel, pick):
    with open(os.path.join(full, "webnlg", rel), encoding="utf-8") as f:
        text = f.read()
    entries = pick(ENTRY.findall(text))
    body = "\n    ".join(entries)
    write(os.path.join("webnlg", rel),
          "<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n<benchmark>\n  <entries>\n    " + body + "\n  </entries>\n</benchmark>\n")


def first(n):
    return lambda entries: entries[:n]


def per_category(n):
    def pick(entries):
        counts, out = {}, []
        for e in entries:
            c = re.search(r'category="([^"]*)"', e).group(1)
            if counts.get(c, 0) < n:
                counts[c] = counts.get(c, 0) + 1
                out.append(e)
        return out
    return pick


webnlg("train/1triples/1triple_allSolutions_Airport_train_challenge.xml", first(20))
webnlg("train/2triples/2triples_University_train_challenge.xml", first(30))  # entry 26 has only comment="toFix"
webnlg("train/3triples/3triples_Food_train_challenge.xml", first(15))
webnlg("dev/1triples/1triple_allSolutions_Airport_dev_challenge.xml", first(10))
webnlg("test/testdata_with_lex.xml", per_category(3))

# DART v1.1.1: the first 40 entries of the dev file (top-level objects end with a line "  },").
DART_ENTRIES = 40
with open(os.path.join(full, "dart", "dart-v1.1.1-full-dev.json"), encoding="utf-8", newline="") as f:
    lines = f.read().split("\n")
out, ends = [], 0
for line in lines:  # the published file has CRLF line ends; they are kept
    if line == "  },\r":
        ends += 1
        if ends == DART_ENTRIES:
            out.append("  }\r")
            break
    out.append(line)
write("dart/dart-v1.1.1-dev-excerpt.json", "\n".join(out) + "\n]\r\n")
