import { describe, expect, it } from "vitest";

import { identityOf, itemPath, nodeOrder, workflowRun } from "./WorkflowPath";

const DOCUMENT = {
  name: "route-new-orders",
  definition: {
    nodes: [
      { id: "start", type: "trigger" },
      { id: "is-big", type: "condition" },
      { id: "make-high", type: "action" },
      { id: "make-normal", type: "action" },
      { id: "routed", type: "join" },
      { id: "stamp", type: "action" },
    ],
    connections: [
      { from: "start", to: "is-big" },
      { from: "is-big", to: "make-high", when: "true" },
      { from: "is-big", to: "make-normal", when: "false" },
      { from: "make-high", to: "routed" },
      { from: "make-normal", to: "routed" },
      { from: "routed", to: "stamp" },
    ],
  },
};

function result(action_id: string, output: unknown) {
  return { action_id, status: "success", attempts: 1, output, error: null, updated_at: "2026-12-04T10:00:00Z" };
}

const RUN = workflowRun(DOCUMENT, [
  result("is-big", { items: 2, true: { count: 1, keys: ["event:7"] }, false: { count: 1, keys: ["event:8"] } }),
  result("make-high", { applied: 1 }),
  result("make-normal", { applied: 1 }),
  result("routed", { items: 2, keys: ["event:7", "event:8"] }),
  result("stamp", { applied: 2 }),
]);

describe("a workflow run's path", () => {
  it("orders the nodes from the trigger", () => {
    expect(nodeOrder(RUN)).toEqual(["start", "is-big", "make-high", "make-normal", "routed", "stamp"]);
  });

  it("follows each item along the branch its condition sent it", () => {
    expect(itemPath(RUN, "event:7")).toEqual([
      { node: "start" }, { node: "is-big", branch: "true" }, { node: "make-high" }, { node: "routed" }, { node: "stamp" },
    ]);
    expect(itemPath(RUN, "event:8").map((s) => s.node)).toEqual(["start", "is-big", "make-normal", "routed", "stamp"]);
  });

  it("stops where the log does not say which way an item went", () => {
    expect(itemPath(RUN, "event:99")).toEqual([{ node: "start" }, { node: "is-big", unknown: true }]);
  });

  it("names items as the tasks log them", () => {
    expect(identityOf({ event_id: 7, matched: true })).toBe("event:7");
    expect(identityOf({ key: 42, matched: true })).toBe("42");
    expect(identityOf({ key: { b: 1, a: ["x", 2] }, matched: true })).toBe('{"a":["x",2],"b":1}');
  });

  it("does not go past a node that did not run", () => {
    const partial = workflowRun(DOCUMENT, [
      result("is-big", { items: 1, true: { count: 1, keys: ["1"] }, false: { count: 0, keys: [] } }),
    ]);
    expect(itemPath(partial, "1")).toEqual([{ node: "start" }, { node: "is-big", branch: "true" }]);
  });
});
