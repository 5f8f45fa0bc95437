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

  it("shows a report's last 30 days and its latest runs with their files and deliveries", async () => {
    const summary = { runs: 4, by_status: { success: 3, error: 1 }, p50_ms: 2000, p95_ms: 8000, bytes: 4000,
      bytes_per_run: 1000, deliveries: 5, deliveries_by_status: { sent: 4, failed: 1 }, deliveries_by_type: { email: 5 },
      attempts: 6 };
    const run = { id: 3, dag_id: "report__acme__weekly-sales", run_id: "scheduled__w", status: "error",
      interval_start: "2026-11-23T06:00:00+00:00", interval_end: "2026-11-30T06:00:00+00:00",
      files: { xlsx: { file: "w.xlsx", bytes: 1000 } }, error: "query daily timed out", started_at: "2026-11-30T06:00:01+00:00",
      deliveries: [{ index: 0, type: "email", target: "2 recipients", status: "failed", attempts: 3, error: "451" }] };
    const fetch = vi.fn(async (url: string) => {
      const body = url.includes("/analytics/reports") ? { organization: "acme", summary } : { items: [run], has_more: false };
      return new Response(JSON.stringify(body), { status: 200, headers: { "Content-Type": "application/json" } });
    });
    vi.stubGlobal("fetch", fetch);
    render(<DefinitionPage dagId="report__acme__weekly-sales" />);

    expect(await screen.findByRole("heading", { name: /report weekly-sales \(acme\)/ })).toBeTruthy();
    expect(screen.getByText("4 of 5")).toBeTruthy();
    expect(screen.getByText("8.0 s")).toBeTruthy();
    expect(screen.getByText("query daily timed out")).toBeTruthy();
    expect(screen.getByText("email failed")).toBeTruthy();
    expect(screen.getByRole("link", { name: "scheduled__w" }).getAttribute("href")).toBe(
      "/dags/report__acme__weekly-sales/runs/scheduled__w",
    );
    const analyticsUrl = new URL(fetch.mock.calls.find(([u]) => u.includes("/analytics/reports"))![0]);
    expect(analyticsUrl.searchParams.get("report")).toBe("weekly-sales");
  });
});
