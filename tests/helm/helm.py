"""`helm lint` and `helm template` for tests/helm.rs, through the Helm v4 Go SDK
that the PyPI package helm-python-sdk (0.2.2) ships as a shared library
(helm_python/lib/libhelm_c.so, called with ctypes; the package has no `helm`
executable). Offline: no cluster is contacted, `lookup` returns nothing.

    python helm.py lint CHART [-f VALUES]...
    python helm.py template CHART [-f VALUES]... [--name N] [--namespace NS]

`-f` files are merged like Helm's: maps deeply, later files win, lists are
replaced. `template` prints every rendered manifest as a YAML document headed
`# Source: <template path>` (NOTES.txt and empty templates left out), like
`helm template`. Exit status 1 with the reason on stderr on any error or lint
finding of warning or error severity.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

try:
    import helm_python as helm
except ImportError as e:  # pragma: no cover - reported to the Rust test
    sys.exit(f"helm-python-sdk is not installed ({e}): run scripts/setup")


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of user values files: maps merge, anything else is replaced."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def load_values(files: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in files:
        with open(f, encoding="utf-8") as fh:
            values = merge(values, helm.values_from_yaml(fh.read()) or {})
    return values


SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}


def lint(args: argparse.Namespace) -> int:
    report = helm.lint(args.chart, load_values(args.values), strict=True)
    bad = False
    for m in report.get("messages") or []:
        sev = int(m.get("severity", 0))
        print(f"[{SEVERITY.get(sev, sev)}] {m.get('path')}: {m.get('error')}")
        bad = bad or sev >= 2
    for e in report.get("errors") or []:
        print(f"[ERROR] {e}")
        bad = True
    charts = report.get("total_charts_linted", 0)
    print(f"{charts} chart(s) linted, {'failed' if bad else 'no failures'}")
    return 1 if bad or charts < 1 else 0


def template(args: argparse.Namespace) -> int:
    values = load_values(args.values)
    with helm.Chart.load(args.chart) as chart:
        # `helm template` validates the values against values.schema.json.
        chart.validate_schema(chart.merge_values(values))
        manifests = chart.render(
            values, name=args.name, namespace=args.namespace, is_install=True
        )
    out = []
    for path in sorted(manifests):
        text = manifests[path]
        if path.endswith("NOTES.txt") or not text.strip():
            continue
        for doc in text.split("\n---\n"):
            if doc.strip():
                out.append(f"---\n# Source: {path}\n{doc.strip()}\n")
    sys.stdout.write("".join(out))
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("lint", "template"):
        s = sub.add_parser(name)
        s.add_argument("chart")
        s.add_argument("-f", "--values", action="append", default=[])
        if name == "template":
            s.add_argument("--name", default="release-name")
            s.add_argument("--namespace", default="default")
    args = p.parse_args()
    try:
        return lint(args) if args.command == "lint" else template(args)
    except helm.HelmError as e:
        print(f"helm {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
