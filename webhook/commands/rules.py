"""`multus-webhook rules`: the rule registry, for humans."""

from __future__ import annotations

import argparse

from webhook.rules import registered


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser("rules", help="list the rules with id, default severity and title")
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rules = sorted(registered().values(), key=lambda r: r.id)
    width = max(len(r.id) for r in rules)
    print(f"{'ID':<{width}}  SEVERITY  KINDS{' ' * 30}TITLE")
    for r in rules:
        kinds = ",".join(sorted(r.kinds))
        print(f"{r.id:<{width}}  {r.severity:<8}  {kinds:<35}{r.title}")
    return 0
