import { describe, expect, it } from "vitest";

import { addNode, branchesOf, connect, disconnect, layout, moveNode, nodeDiff, removeNode, replaceNode, targetOf, templateBody, type WorkflowDocument } from "./model";

const DOC: WorkflowDocument = {
  kind: "workflow",
  name: "route",
  description: "kept as is",
  nodes: [
    { id: "start", type: "trigger", trigger: { type: "manual" }, position: { x: 0, y: 0 } },
    { id: "is-big", type: "condition", conditions: { all: [] } },
    { id: "make-high", type: "action", action: { type: "update_record" } },
  ],
  connections: [{ from: "start", to: "is-big" }],
};

describe("the workflow document", () => {
  it("moves a node to whole, bounded coordinates and keeps everything else", () => {
    const moved = moveNode(DOC, "is-big", { x: 240.4, y: -1e9 });
    expect(moved.nodes[1].position).toEqual({ x: 240, y: -100000 });
    expect(moved.nodes[1].conditions).toEqual({ all: [] });
    expect(moved.description).toBe("kept as is");
    expect(DOC.nodes[1].position).toBeUndefined(); // the original is untouched
  });

  it("connects once, with the branch out of a condition, and disconnects", () => {
    const joined = connect(DOC, "is-big", "make-high", "true");
    expect(joined.connections).toEqual([{ from: "start", to: "is-big" }, { from: "is-big", to: "make-high", when: "true" }]);
    expect(connect(joined, "is-big", "make-high", "true")).toBe(joined);
    expect(connect(joined, "start", "start")).toBe(joined);
    expect(disconnect(joined, { from: "is-big", to: "make-high", when: "true" }).connections).toEqual(DOC.connections);
    expect(branchesOf("condition")).toEqual(["true", "false"]);
    expect(branchesOf("approval")).toEqual(["approved", "rejected"]);
    expect(branchesOf("action")).toEqual([]);
  });

  it("adds nodes with fresh ids and removes a node with its connections", () => {
    const first = addNode(DOC, "condition", { x: 10, y: 20 });
    expect(first.id).toBe("condition-1");
    const second = addNode(first.doc, "condition", { x: 0, y: 0 });
    expect(second.id).toBe("condition-2");
    expect(second.doc.nodes.at(-1)).toEqual({ id: "condition-2", type: "condition", conditions: { all: [] }, position: { x: 0, y: 0 } });
    const removed = removeNode(connect(DOC, "is-big", "make-high", "true"), "is-big");
    expect(removed.nodes.map((n) => n.id)).toEqual(["start", "make-high"]);
    expect(removed.connections).toEqual([]);
  });

  it("replaces a node's fields, never its id, type or position", () => {
    const changed = replaceNode(DOC, "start", { id: "renamed", type: "join", trigger: { type: "schedule", cron: "0 * * * *" } });
    expect(changed.nodes[0]).toEqual({ id: "start", type: "trigger", trigger: { type: "schedule", cron: "0 * * * *" }, position: { x: 0, y: 0 } });
  });

  it("places nodes without a position by their depth from the trigger", () => {
    const placed = layout(connect(DOC, "is-big", "make-high", "true"));
    expect(placed.get("start")).toEqual({ x: 0, y: 0 });
    expect(placed.get("is-big")).toEqual({ x: 240, y: 0 });
    expect(placed.get("make-high")).toEqual({ x: 480, y: 0 });
  });

  it("finds the node or connection an error's JSON path names", () => {
    expect(targetOf({ path: "nodes[1].conditions.all[0].field", message: "" }, DOC)).toEqual({ node: "is-big" });
    expect(targetOf({ path: "connections[0].to", message: "" }, DOC)).toEqual({ connection: 0 });
    expect(targetOf({ path: "nodes[9]", message: "" }, DOC)).toEqual({});
    expect(targetOf({ path: "name", message: "" }, DOC)).toEqual({});
  });
});

describe("a visual diff between two versions", () => {
  it("says which nodes were added, removed, changed or only moved, and which connections", () => {
    const before = connect(DOC, "is-big", "make-high", "true");
    let after = moveNode(DOC, "start", { x: 50, y: 0 });
    after = replaceNode(after, "is-big", { conditions: { any: [] } });
    after = addNode(removeNode(after, "make-high"), "join", { x: 0, y: 0 }).doc;
    expect(nodeDiff(before, after)).toEqual({
      added: ["join-1"],
      removed: ["make-high"],
      changed: ["is-big"],
      moved: ["start"],
      connectionsAdded: [],
      connectionsRemoved: [{ from: "is-big", to: "make-high", when: "true" }],
    });
  });
});

describe("templateBody", () => {
  const doc = {
    kind: "workflow", name: "w", organization: "acme", description: "d",
    nodes: [{ id: "a", type: "trigger" as const }, { id: "b", type: "action" as const }, { id: "c", type: "action" as const }],
    connections: [{ from: "a", to: "b" }, { from: "b", to: "c" }],
  };
  it("keeps the selected nodes and only the connections between them", () => {
    expect(templateBody(doc, ["a", "b"])).toEqual({ nodes: doc.nodes.slice(0, 2), connections: [{ from: "a", to: "b" }] });
  });
  it("takes the whole workflow without its own fields when nothing is selected", () => {
    expect(templateBody(doc, [])).toEqual({ description: "d", nodes: doc.nodes, connections: doc.connections });
  });
});
