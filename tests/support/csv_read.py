#!/usr/bin/env python3
"""Reads a CSV file with Python's csv module (a real, independent RFC 4180 reader) and writes
its rows as a JSON array of arrays of strings to OUT. Usage: csv_read.py FILE OUT"""
import csv
import json
import sys

with open(sys.argv[1], newline="", encoding="utf-8") as f:
    rows = list(csv.reader(f, strict=True))
with open(sys.argv[2], "w", encoding="utf-8") as out:
    json.dump(rows, out)
