"""`multus-webhook rules`: the rule registry, for humans."""

from __future__ import annotations

import argparse

from webhook.rules import registered

#: Wide enough for the kinds of most rules (NetworkAttachmentDefinition).
KINDS_WIDTH = 33


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser("rules", help="list the rules with id, default severity and title")
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rules = sorted(registered().values(), key=lambda r: r.id)
    width = max(len(r.id) for r in rules)
    print(f"{'ID':<{width}}  SEVERITY  {'KINDS':<{KINDS_WIDTH}}  TITLE")
    for r in rules:
        # A longer list (unknown-api-group's) pushes its title right rather than into it.
        print(f"{r.id:<{width}}  {r.severity:<8}  {','.join(sorted(r.kinds)):<{KINDS_WIDTH}}  {r.title}")
    return 0
