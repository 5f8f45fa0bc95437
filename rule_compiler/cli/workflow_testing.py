"""``rule-compiler test-workflow WF.yaml --event EVENT.json``: the path the event takes, acting on nothing.

A shell around :func:`rule_compiler.workflow_tester.test_workflow`, with ``test-rule``'s options
(``--event``, ``--catalog``, ``--templates``, ``--connection``, ``--format``, ``--now``). Exit codes:
0 the workflow was tested (whether or not the event starts a run: the output says), 1 the workflow is
not valid (every problem at its JSON path; nothing was tested), 2 a usage error (unreadable files, an
invalid event, an unknown connection).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rule_compiler.catalog import Catalog
from rule_compiler.cli.batch import DefinitionSource
from rule_compiler.cli.commands import EXIT_INVALID, EXIT_OK, read_event, tester_inputs
from rule_compiler.cli.common import Catalogs, CliError, issues_of, print_invalid, print_warnings
from rule_compiler.errors import DefinitionError, DefinitionLoadError, Issue, RuleValidationError
from rule_compiler.kinds import WORKFLOW
from rule_compiler.loading import read_definition_file
from rule_compiler.rule_tester import RuleTestError
from rule_compiler.validation import check_document
from rule_compiler.validation.kind_checks import Validated
from rule_compiler.workflow_tester import format_workflow_text, test_workflow

__all__ = ["add_parser", "run_test_workflow"]


def add_parser(sub: Any, tester_options: Any) -> None:
    """``test-workflow``, with the options ``tester_options`` gives ``test-rule`` too."""
    p = sub.add_parser(
        "test-workflow",
        help="the path an event takes through a workflow: branches, what would act (acts on nothing)",
        description="Validate WORKFLOW, make EVENT its one item if it fits the trigger node, and walk the "
        "graph: each condition's trace and branch, what each action would do (templates rendered), "
        "waits, approvals (this test follows `approved`), reports, and the nodes skipped. Nothing is "
        "written or sent. Exit codes: 0 tested, 1 invalid workflow, 2 error (unreadable files, invalid "
        "event).",
    )
    p.add_argument("workflow", metavar="WORKFLOW", type=Path, help="the workflow file (YAML or JSON)")
    tester_options(p)
    p.set_defaults(run=run_test_workflow)


def run_test_workflow(args: argparse.Namespace) -> int:
    """``test-workflow``: 0 tested, 1 invalid workflow, 2 error."""
    try:
        data = read_definition_file(args.workflow)
    except DefinitionLoadError as exc:
        raise CliError(str(exc)) from None
    catalogs = Catalogs(args)
    organization = data.get("organization")
    catalog = catalogs.for_org(organization)
    try:
        validated = _validate(args, data, catalogs)
    except DefinitionError as exc:
        issues = issues_of(exc)
        if args.format == "json":
            print(json.dumps({"valid": False, "errors": [i.as_dict() for i in issues]}, indent=2))
        else:
            print_invalid(args.workflow, exc)
        print(f"error: {args.workflow} is not a valid workflow; nothing was tested", file=sys.stderr)
        return EXIT_INVALID
    print_warnings(args.workflow, validated.warnings)
    workflow = validated.workflow
    assert workflow is not None  # noqa: S101 - set for every valid workflow
    event = read_event(args.event)
    now, related = tester_inputs(args)
    try:
        result = test_workflow(
            workflow,
            event,
            catalog=catalog or Catalog(organization=workflow.organization),
            related=related,
            now=now,
        )
    except RuleTestError as exc:
        raise CliError(str(exc)) from None
    if args.format == "json":
        print(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        print(format_workflow_text(result))
    return EXIT_OK


def _validate(args: argparse.Namespace, data: dict[str, Any], catalogs: Catalogs) -> Validated:
    """The workflow checked as ``apply`` checks it: against its organization's templates (store,
    ``--templates``), the workflow template it is built from and the stored definitions it starts."""
    if data.get("kind") != WORKFLOW:
        kind = str(data.get("kind") or "document without a kind").replace("_", " ")
        raise RuleValidationError([Issue("kind", f"test-workflow tests workflows; this is a {kind}", "kind")])
    return check_document(data, DefinitionSource(args, []).context(data, catalogs), source=str(args.workflow))
