import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import { Definitions } from "./Definitions";

const DAYS = [
  { day: "2026-12-02", runs: 0, succeeded: 0, failed: 0, success_rate: null },
  { day: "2026-12-03", runs: 4, succeeded: 3, failed: 1, success_rate: 0.75 },
  { day: "2026-12-04", runs: 2, succeeded: 2, failed: 0, success_rate: 1 },
];
const RULE = {
  kind: "rule", name: "flag-big-paid-orders", dag_id: "rule__acme__flag-big-paid-orders", title: "Flag big paid orders",
  description: "Flags paid orders above 1000", owner: "sales-ops", state: "active", render_error: null, active: true,
  trigger_type: "manual", trigger: "manual", version: 3, etag: '"3-1-abc"', updated_at: "2026-12-01T10:00:00Z",
  updated_by: "ed", runs: 6, success_rate: 5 / 6, days: DAYS,
  last_run: { run_id: "manual__1", status: "success", started_at: "2026-12-04T10:00:00Z", finished_at: null },
};
const BROKEN = {
  ...RULE, name: "expedite-vip-payments", dag_id: "rule__acme__expedite-vip-payments", title: "expedite-vip-payments",
  owner: null, state: "render_error", render_error: "table orders has no column paid", last_run: null, runs: 0,
  success_rate: null, days: DAYS.map((d) => ({ ...d, runs: 0, succeeded: 0, failed: 0, success_rate: null })),
};
const BOARD = { items: [RULE, BROKEN], limit: 1000, offset: 0, has_more: false, total: 2,
  states: { active: 1, paused: 0, render_error: 1 } };

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

describe("Definitions", () => {
  it("lists each definition with its state, trigger, owner, last run and sparkline", async () => {
    const fetch = vi.fn(async (_url: string) => json(BOARD));
    vi.stubGlobal("fetch", fetch);
    render(<Definitions organization="acme" editable={false} />);

    const row = (await screen.findByRole("rowheader", { name: /Flag big paid orders/ })).closest("tr")!;
    expect(within(row).getByText("active")).toBeTruthy();
    expect(within(row).getByText("sales-ops")).toBeTruthy();
    expect(within(row).getByRole("link", { name: "success" }).getAttribute("href")).toBe(
      "?page=run&dag_id=rule__acme__flag-big-paid-orders&run_id=manual__1",
    );
    expect(within(row).getByRole("img").getAttribute("aria-label")).toBe("success rate by day: 12-03 75.0 %, 12-04 100 %");
    expect(within(row).getByText("83.3 % of 6")).toBeTruthy();
    const broken = screen.getByRole("rowheader", { name: /expedite-vip-payments/ }).closest("tr")!;
    expect(within(broken).getByText("render error")).toBeTruthy();
    expect(within(broken).getByText("table orders has no column paid")).toBeTruthy();
    expect(within(broken).getByText("never")).toBeTruthy();
    expect(screen.queryByRole("button", { name: /Deactivate/ })).toBeNull(); // a viewer changes nothing
    expect(screen.getByRole("option", { name: "render error (1)" })).toBeTruthy();
    const url = new URL(fetch.mock.calls[0][0] as string);
    expect(url.pathname).toMatch(/\/api\/v1\/definitions$/);
    expect([url.searchParams.get("organization"), url.searchParams.get("limit")]).toEqual(["acme", "1000"]);
  });

  it("sends the search and the filters to the API", async () => {
    const fetch = vi.fn(async (_url: string) => json(BOARD));
    vi.stubGlobal("fetch", fetch);
    render(<Definitions organization="acme" editable={false} />);
    await screen.findByRole("rowheader", { name: /Flag big paid orders/ });

    fireEvent.change(screen.getByLabelText("State"), { target: { value: "render_error" } });
    await waitFor(() => expect(fetch).toHaveBeenCalledTimes(2));
    expect(new URL(fetch.mock.calls[1][0] as string).searchParams.get("state")).toBe("render_error");
    fireEvent.change(screen.getByLabelText("Search"), { target: { value: " vip " } });
    await waitFor(() => expect(fetch).toHaveBeenCalledTimes(3), { timeout: 2000 });
    const url = new URL(fetch.mock.calls[2][0] as string);
    expect([url.searchParams.get("q"), url.searchParams.get("state")]).toEqual(["vip", "render_error"]);
  });

  it("deactivates with the item's ETag, and says so when it changed meanwhile", async () => {
    let patched = 0;
    const fetch = vi.fn(async (_url: string, init?: RequestInit) => {
      if (init?.method !== "PATCH") return json(BOARD);
      patched += 1;
      return patched === 1 ? json({}) : json({ detail: "the rule changed" }, 412);
    });
    vi.stubGlobal("fetch", fetch);
    render(<Definitions organization="acme" editable={true} />);

    fireEvent.click(await screen.findByRole("button", { name: "Deactivate rule flag-big-paid-orders" }));
    expect((await screen.findByText("rule flag-big-paid-orders is deactivated.")).getAttribute("role")).toBe("status");
    const [url, init] = fetch.mock.calls.find(([, i]) => i?.method === "PATCH")!;
    expect(new URL(url).pathname).toMatch(/\/api\/v1\/rules\/flag-big-paid-orders$/);
    expect((init!.headers as Record<string, string>)["If-Match"]).toBe('"3-1-abc"');
    expect(JSON.parse(init!.body as string)).toEqual({ active: false });
    await waitFor(() => expect(fetch.mock.calls.filter(([, i]) => i?.method !== "PATCH").length).toBe(2)); // reloaded

    // a definition in render error but active in the store is on: its button deactivates it
    fireEvent.click(screen.getByRole("button", { name: "Deactivate rule expedite-vip-payments" }));
    expect(await screen.findByText(/changed since this list was loaded/)).toBeTruthy();
  });

  it("runs an active definition now and links to its run", async () => {
    const fetch = vi.fn(async (_url: string, init?: RequestInit) =>
      init?.method === "POST" ? json({ run_id: "manual__7", dag_id: RULE.dag_id }) : json(BOARD),
    );
    vi.stubGlobal("fetch", fetch);
    render(<Definitions organization="acme" editable={true} />);
    fireEvent.click(await screen.findByRole("button", { name: "Run now: rule flag-big-paid-orders" }));
    expect((await screen.findByText(/run manual__7 started/)).textContent).toContain("rule flag-big-paid-orders");
    expect(screen.getByRole("link", { name: "Open the run" }).getAttribute("href")).toBe(
      "?page=run&dag_id=rule__acme__flag-big-paid-orders&run_id=manual__7",
    );
    const post = fetch.mock.calls.find(([, i]) => i?.method === "POST")!;
    expect(new URL(post[0]).pathname).toMatch(/\/api\/v1\/rules\/flag-big-paid-orders\/trigger$/);
    // a definition in render error offers no run
    expect(screen.queryByRole("button", { name: "Run now: rule expedite-vip-payments" })).toBeNull();
  });
});
