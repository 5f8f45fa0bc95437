import { cleanup, fireEvent, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import { nextLookIn, RunExplorer } from "./RunExplorer";

const RUN = {
  id: 7, rule_name: "flag-big-paid-orders", dag_id: "rule__acme__flag-big-paid-orders", run_id: "manual__1",
  status: "partial", trigger_type: "manual", matched_count: 1, spec_hash: "h", started_at: "2026-12-04T10:00:00+00:00",
  finished_at: "2026-12-04T10:00:05+00:00",
  actions: [{ action_id: "flag", status: "failed", attempts: 3, output: null, error: "TimeoutError: no answer",
              updated_at: "2026-12-04T10:00:04+00:00" }],
};
const DETAIL = {
  ...RUN,
  trigger_context: { run_id: "manual__1" },
  trace: {
    evaluated: 2, matched: 1,
    rows: [
      { key: { id: 1 }, matched: true, node: { kind: "all", path: "", result: true, skipped: false, children: [
        { kind: "condition", path: "0", result: true, skipped: false, children: [], field: "total", operator: "gt",
          expected: 1000, actual: 1500, reason: "" }] } },
      { key: { id: 2 }, matched: false, node: { kind: "all", path: "", result: false, skipped: false, children: [
        { kind: "condition", path: "0", result: false, skipped: false, children: [], field: "total", operator: "gt",
          expected: 1000, actual: 20, reason: "" },
        { kind: "condition", path: "1", result: null, skipped: true, children: [], field: "status", operator: "eq",
          expected: "paid", actual: null, reason: "not evaluated: an earlier member already decided the group" }] } },
    ],
  },
};

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("RunExplorer", () => {
  it("shows each item's condition tree and each action, and re-runs the failed items", async () => {
    const fetch = vi.fn(async (url: string, init?: RequestInit) => {
      if (init?.method === "POST") return json({ rerun: ["flag"] });
      return url.includes("/logs/7") ? json(DETAIL) : json({ items: [RUN], has_more: false });
    });
    vi.stubGlobal("fetch", fetch);
    render(<RunExplorer dagId="rule__acme__flag-big-paid-orders" runId="manual__1" />);

    expect(await screen.findByRole("heading", { name: /rule flag-big-paid-orders: run manual__1/ })).toBeTruthy();
    expect(screen.getByText(/\{"id":1\}: matched/)).toBeTruthy();
    expect(screen.getByText(/\{"id":2\}: did not match/)).toBeTruthy();
    expect(screen.getByText(/total gt 1000 \(value 20\)/)).toBeTruthy();
    expect(screen.getByText(/not evaluated: an earlier member/)).toBeTruthy();
    expect(screen.getByRole("link", { name: "flag" }).getAttribute("href")).toBe(
      "/dags/rule__acme__flag-big-paid-orders/runs/manual__1/tasks/flag",
    );
    expect(screen.getByText("TimeoutError: no answer")).toBeTruthy();
    expect(screen.getByRole("link", { name: "Open this run in Airflow" }).getAttribute("href")).toBe(
      "/dags/rule__acme__flag-big-paid-orders/runs/manual__1",
    );
    const listUrl = new URL(fetch.mock.calls[0][0]);
    expect([listUrl.searchParams.get("organization"), listUrl.searchParams.get("run_id")]).toEqual(["acme", "manual__1"]);

    fireEvent.click(screen.getByRole("button", { name: "Re-run the failed items" }));
    expect((await screen.findByRole("status")).textContent).toBe("The failed items run again.");
    const post = fetch.mock.calls.find((call) => call[1]?.method === "POST")!;
    expect(new URL(post[0]).pathname).toMatch(/\/api\/v1\/rules\/flag-big-paid-orders\/runs\/manual__1\/rerun$/);
  });

  it("looks again while the run is not logged yet, then shows it without a reload", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      let logged = false;
      const fetch = vi.fn(async (url: string) =>
        url.includes("/logs/7") ? json(DETAIL) : json({ items: logged ? [RUN] : [], has_more: false }));
      vi.stubGlobal("fetch", fetch);
      render(<RunExplorer dagId="rule__acme__flag-big-paid-orders" runId="manual__1" />);
      expect(await screen.findByText(/has no run .* yet .* looks again every few seconds/)).toBeTruthy();
      logged = true;
      await vi.advanceTimersByTimeAsync(3_000);
      expect(await screen.findByRole("heading", { name: /rule flag-big-paid-orders: run manual__1/ })).toBeTruthy();
      const looks = fetch.mock.calls.length;
      await vi.advanceTimersByTimeAsync(60_000);  // a finished run is not looked at again
      expect(fetch.mock.calls.length).toBe(looks);
    } finally {
      vi.useRealTimers();
    }
  });

  it("stops looking after a quarter of an hour", () => {
    expect(nextLookIn(0)).toBe(3_000);
    expect(nextLookIn(20)).toBe(15_000);
    expect(Array.from({ length: 200 }, (_, n) => nextLookIn(n) ?? 0).reduce((a, b) => a + b, 0)).toBe(
      20 * 3_000 + 56 * 15_000);
  });

  it("says so on a DAG that is not an automation", () => {
    vi.stubGlobal("fetch", vi.fn());
    render(<RunExplorer dagId="example_bash_operator" runId="manual__1" />);
    expect(screen.getByText(/is not an automation/)).toBeTruthy();
  });

  it("shows a workflow run's path: each node in order, and the way each item went", async () => {
    const result = (action_id: string, output: unknown) =>
      ({ action_id, status: "success", attempts: 1, output, error: null, updated_at: "2026-12-04T10:00:04+00:00" });
    const run = { ...RUN, id: 9, rule_name: "route", dag_id: "workflow__acme__route", status: "success",
      actions: [result("is-big", { items: 1, true: { count: 1, keys: ["event:5"] }, false: { count: 0, keys: [] } }),
                result("make-high", { applied: 1 })] };
    const detail = { ...run, trigger_context: {}, trace: { evaluated: 1, matched: 1,
      rows: [{ event_id: 5, operation: "insert", matched: true, node: null }] } };
    const workflow = { name: "route", definition: {
      nodes: [{ id: "start", type: "trigger" }, { id: "is-big", type: "condition" }, { id: "make-high", type: "action" },
              { id: "make-normal", type: "action" }],
      connections: [{ from: "start", to: "is-big" }, { from: "is-big", to: "make-high", when: "true" },
                    { from: "is-big", to: "make-normal", when: "false" }] } };
    vi.stubGlobal("fetch", vi.fn(async (url: string) =>
      url.includes("/workflows/route") ? json(workflow) : url.includes("/logs/9") ? json(detail) : json({ items: [run] })));
    render(<RunExplorer dagId="workflow__acme__route" runId="manual__1" />);

    expect(await screen.findByRole("heading", { name: "Path through the workflow" })).toBeTruthy();
    const nodes = await screen.findByRole("table", { name: "The workflow's nodes in this run" });
    expect(within(nodes).getAllByRole("rowheader").map((cell) => cell.textContent)).toEqual(
      ["start", "is-big", "make-high", "make-normal"]);
    expect(within(nodes).getByText("1 went true, 0 went false")).toBeTruthy();
    expect(within(nodes).getByText("not reached")).toBeTruthy();
    const path = screen.getByRole("list", { name: "path through the workflow" });
    expect(within(path).getAllByRole("listitem").map((item) => item.textContent)).toEqual(
      ["start", "is-big (true)", "make-high"]);
  });
});
