"""The designer's case of ``benchmarks/ui.py`` measures a real workflow: the 200-node one it stores is
valid against the demo catalog (the format's own limit is 200 nodes) and compiles to a DAG spec."""

from __future__ import annotations

import sys

from rule_compiler.catalog import Catalog
from rule_compiler.registration import Compiled, compile_document
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from ui_tti import NODES, big_workflow


def test_the_designers_200_node_workflow_is_valid(demo_catalog_dict: dict[str, object]) -> None:
    source = big_workflow(NODES)
    compiled = compile_document(
        {"kind": "workflow", "name": "big-flow", "organization": "acme", **source},
        Catalog.model_validate(demo_catalog_dict),
    )
    assert isinstance(compiled, Compiled)
    assert len(source["nodes"]) == NODES == 200
    assert {node["type"] for node in source["nodes"]} == {"trigger", "condition", "action"}
    assert len({(node["position"]["x"], node["position"]["y"]) for node in source["nodes"]}) == NODES
