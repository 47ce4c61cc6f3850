#!/usr/bin/python3
"""Reads a Prometheus text exposition (format 0.0.4) with the official Python client's parser
(Debian's python3-prometheus-client) and prints what it understood as one JSON object:

  {"families": {"<name>": {"type": "counter", "help": "...",
                           "samples": [{"name": ..., "labels": {...}, "value": ...}]}},
   "problems": ["..."]}

The parser names counter families without their _total suffix, as OpenMetrics does. Problems
are what a scraper would trip over although the parser accepted the page: a family without a
TYPE (parsed as "unknown"), without HELP, defined twice, a gauge or an unknown family named
with a suffix OpenMetrics reserves for counters, histograms and summaries, and a counter whose
samples do not end in _total. A page the parser refuses is reported on stderr with exit 1.

Usage: check_metrics.py URL
"""
import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

RESERVED_SUFFIXES = ("_total", "_created", "_count", "_sum", "_bucket", "_gcount", "_gsum",
                     "_info")


def main():
    with urllib.request.urlopen(sys.argv[1], timeout=10) as answer:
        text = answer.read().decode("utf-8")
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as error:  # the parser raises ValueError and friends on a bad line
        print(f"check_metrics: the page does not parse: {error}", file=sys.stderr)
        sys.exit(1)
    out = {"families": {}, "problems": []}
    for family in families:
        problems = out["problems"]
        if family.name in out["families"]:
            problems.append(f"{family.name}: defined more than once")
        if family.type == "unknown":
            problems.append(f"{family.name}: no TYPE line")
        if not family.documentation:
            problems.append(f"{family.name}: no HELP line")
        if family.type in ("gauge", "unknown") and family.name.endswith(RESERVED_SUFFIXES):
            problems.append(f"{family.name}: a {family.type} with a reserved suffix")
        if family.type == "counter":
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    problems.append(f"{sample.name}: a counter sample without _total")
        out["families"][family.name] = {
            "type": family.type,
            "help": family.documentation,
            "samples": [{"name": s.name, "labels": s.labels, "value": s.value}
                        for s in family.samples],
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
