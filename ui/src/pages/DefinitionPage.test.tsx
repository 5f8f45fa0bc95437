import { cleanup, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import { DefinitionPage } from "./DefinitionPage";

vi.mock("uplot", () => ({ default: class { destroy() {} setSize() {} } }));

const SUMMARY = {
  runs: 3, no_match: 0, success: 2, failed: 1, partial: 0, evaluated: 30, matched: 3, acted: 2,
  success_rate: 0.6667, failure_rate: 0.3333, partial_rate: 0, match_rate: 0.1, p50_ms: 900, p95_ms: 1900,
};

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("DefinitionPage", () => {
  it("shows the definition's figures, its actions and its latest runs linking to the explorer", async () => {
    const fetch = vi.fn(async (url: string) => {
      const body = url.includes("/analytics/rules/flag-big-paid-orders")
        ? { organization: "acme", kind: "rule", name: "flag-big-paid-orders", summary: SUMMARY, series: [], errors: [],
            range: { since: "2026-11-04T00:00:00+00:00", until: "2026-12-04T00:00:00+00:00", bucket: "day" },
            steps: [{ step: "flag", results: 3, success: 2, failed: 1, skipped: 0, attempts: 4, retries: 1, acted: 2,
                      p50_ms: 300, p95_ms: 700 }] }
        : { has_more: false, items: [{ id: 9, rule_name: "flag-big-paid-orders", dag_id: "rule__acme__flag-big-paid-orders",
            run_id: "scheduled__x", status: "failed", trigger_type: "schedule", matched_count: 1,
            started_at: "2026-12-03T10:00:00+00:00", finished_at: null, actions: [] }] };
      return new Response(JSON.stringify(body), { status: 200, headers: { "Content-Type": "application/json" } });
    });
    vi.stubGlobal("fetch", fetch);
    render(<DefinitionPage dagId="rule__acme__flag-big-paid-orders" />);

    expect(await screen.findByRole("heading", { name: /rule flag-big-paid-orders \(acme\)/ })).toBeTruthy();
    expect(screen.getByText("66.7 %")).toBeTruthy();
    expect(screen.getByRole("rowheader", { name: "flag" })).toBeTruthy();
    expect(screen.getByRole("link", { name: "scheduled__x" }).getAttribute("href")).toBe(
      "/dags/rule__acme__flag-big-paid-orders/runs/scheduled__x/plugin/automation-run",
    );
  });

  it("says so on a DAG that is not an automation", () => {
    vi.stubGlobal("fetch", vi.fn());
    render(<DefinitionPage dagId="tutorial" />);
    expect(screen.getByText(/is not an automation/)).toBeTruthy();
  });
});
