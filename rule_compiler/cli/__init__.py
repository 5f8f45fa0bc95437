"""``rule-compiler``: validate, compile and register definitions; manage the store and catalogs.

Exit codes: 0 success, 1 invalid definitions (every problem listed), 2 usage or environment errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rule_compiler.cli import commands

EXIT_OK, EXIT_INVALID, EXIT_ERROR = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rule-compiler", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--store",
        help="rule store SQLAlchemy URL (default: $AUTOMATION_STORE_URL or SQLite under $AIRFLOW_HOME)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_catalog(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--catalog",
            type=commands.Path,
            help="catalog YAML/JSON file to validate against "
            "(default: the organization's catalog in the store)",
        )

    p = sub.add_parser("validate", help="check definitions; list every problem with its JSON path")
    p.add_argument("paths", nargs="+", type=commands.Path, help="files or folders")
    p.add_argument("--format", choices=["text", "json"], default="text")
    with_catalog(p)
    p.set_defaults(run=commands.validate)

    p = sub.add_parser("compile", help="print the compiled spec (DagSpec JSON) of one definition")
    p.add_argument("path", type=commands.Path)
    with_catalog(p)
    p.set_defaults(run=commands.compile_one)

    p = sub.add_parser(
        "apply", help="validate, compile and store definitions (unchanged ones are left alone)"
    )
    p.add_argument("paths", nargs="+", type=commands.Path, help="files or folders")
    p.add_argument("--actor", default=None, help="who is applying (default: $USER)")
    p.add_argument("--dry-run", action="store_true", help="validate and compile only")
    with_catalog(p)
    p.set_defaults(run=commands.apply)

    p = sub.add_parser("list", help="list stored definitions")
    p.add_argument("--org", dest="organization")
    p.add_argument("--all", action="store_true", help="include deleted ones")
    p.set_defaults(run=commands.list_definitions)

    p = sub.add_parser("export", help="write stored definitions back out as YAML files")
    p.add_argument("--org", dest="organization")
    p.add_argument("--out", type=commands.Path, default=None, help="folder (default: print to stdout)")
    p.set_defaults(run=commands.export)

    p = sub.add_parser("db", help="rule store database")
    db = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db.add_parser("upgrade", help="create or migrate the rule store's tables").set_defaults(
        run=commands.db_upgrade
    )

    p = sub.add_parser("catalog", help="what each organization's rules may use")
    cat = p.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    c = cat.add_parser("apply", help="store a catalog file (a new version when it changed)")
    c.add_argument("path", type=commands.Path)
    c.add_argument("--actor", default=None)
    c.set_defaults(run=commands.catalog_apply)
    c = cat.add_parser("show", help="print an organization's current catalog")
    c.add_argument("--org", dest="organization", required=True)
    c.set_defaults(run=commands.catalog_show)

    p = sub.add_parser("schema", help="JSON Schemas of the definition format")
    sch = p.add_subparsers(dest="schema_command", required=True, metavar="ACTION")
    c = sch.add_parser("export", help="write the schemas (default folder: include/schemas)")
    c.add_argument("--out", type=commands.Path, default=commands.Path("include/schemas"))
    c.set_defaults(run=commands.schema_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except commands.CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
