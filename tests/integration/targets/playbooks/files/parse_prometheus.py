"""Parse a Prometheus text file with prometheus_client's own parser; print its samples as JSON.

Usage: parse_prometheus.py FILE. Output: [{"name": ..., "labels": {...}, "value": ...}, ...].
Fails (non-zero) when the parser refuses the file.
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

with open(sys.argv[1], encoding='utf-8') as handle:
    text = handle.read()
samples = [{'name': sample.name, 'labels': dict(sample.labels), 'value': sample.value}
           for family in text_string_to_metric_families(text) for sample in family.samples]
json.dump(samples, sys.stdout)
