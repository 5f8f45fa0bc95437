import { cleanup, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import { Overview } from "./Overview";

// jsdom has no canvas: the chart library is replaced; the chart's table of numbers is what is read.
vi.mock("uplot", () => ({ default: class { destroy() {} setSize() {} } }));

const SUMMARY = {
  runs: 40, no_match: 10, success: 24, failed: 4, partial: 2, evaluated: 400, matched: 60, acted: 50,
  success_rate: 0.8, failure_rate: 0.1333, partial_rate: 0.0667, match_rate: 0.15, p50_ms: 850, p95_ms: 4200,
};
const ANALYTICS = {
  organization: "acme",
  range: { since: "2026-11-27T00:00:00+00:00", until: "2026-12-04T00:00:00+00:00", bucket: "hour" },
  summary: SUMMARY,
  series: [{ ...SUMMARY, start: "2026-12-03T10:00:00+00:00" }],
  definitions: [{ kind: "rule", name: "flag-big-paid-orders", summary: SUMMARY }],
  errors: [{ kind: "rule", name: "flag-big-paid-orders", step: "notify", error_class: "TimeoutError", count: 3,
             first_seen: "2026-12-01T10:00:00+00:00", last_seen: "2026-12-03T11:20:00+00:00" }],
};
const HEALTH = { status: "ok", consumers: [{ connection: "app_db", table: "orders", consumer: "airflow:orders",
  rules: ["acme/r"], status: "behind", pending: 12, pending_capped: false, oldest_pending_age_seconds: 90 }] };

function respond(url: string): Response {
  const body = url.includes("/api/v1/analytics") ? ANALYTICS : url.includes("/api/v1/health") ? HEALTH : {};
  return new Response(JSON.stringify(body), { status: 200, headers: { "Content-Type": "application/json" } });
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("Overview", () => {
  it("shows the figures, the definitions, the top errors and the consumer lag", async () => {
    const fetch = vi.fn(async (url: string) => respond(url));
    vi.stubGlobal("fetch", fetch);
    render(<Overview organization="acme" now={() => new Date("2026-12-04T00:00:00Z")} />);

    expect(await screen.findByText("Success rate")).toBeTruthy();
    const cards = screen.getByText("Runs").closest("dl")!;
    expect(within(cards).getByText("40")).toBeTruthy();
    expect(within(cards).getByText("15.0 %")).toBeTruthy();
    expect(within(cards).getByText("80.0 %")).toBeTruthy();
    expect(within(cards).getByText("4.2 s")).toBeTruthy();
    expect(screen.getByRole("rowheader", { name: "TimeoutError" })).toBeTruthy();
    expect(screen.getByRole("rowheader", { name: "app_db.orders" })).toBeTruthy();
    const analyticsUrl = new URL(fetch.mock.calls[0][0]);
    expect(analyticsUrl.pathname).toMatch(/\/api\/v1\/analytics$/);
    expect(analyticsUrl.searchParams.get("organization")).toBe("acme");
    expect(analyticsUrl.searchParams.get("bucket")).toBe("hour");
    expect(analyticsUrl.searchParams.get("since")).toBe("2026-11-27T00:00:00.000Z");
  });

  it("says what went wrong when the API refuses", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response(JSON.stringify({ detail: "no organization 'x' among yours" }),
      { status: 404, headers: { "Content-Type": "application/json" } })));
    render(<Overview organization="x" />);
    expect((await screen.findByRole("alert")).textContent).toBe("no organization 'x' among yours");
  });
});
