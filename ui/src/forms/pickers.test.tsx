import { cleanup, renderHook, waitFor } from "@testing-library/react";
import { afterEach, expect, it, vi } from "vitest";

import { usePickers } from "./pickers";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const json = (body: unknown) => new Response(JSON.stringify(body), { headers: { "Content-Type": "application/json" } });

it("reads the names once a form wants them, keeps them, and offers the trigger table's fields", async () => {
  const fetch = vi.fn(async (url: string) =>
    url.includes("/catalog/names")
      ? json({ connections: [{ name: "app_db", kind: "database", tables: [{ name: "orders", fields: [{ path: "total" }, { path: "customer__tier" }] }] }] })
      : json({ items: [{ name: url.includes("reports") ? "weekly-sales" : "x" }], has_more: false }),
  );
  vi.stubGlobal("fetch", fetch);
  const { result, rerender } = renderHook(({ wanted }) => usePickers("acme", "orders", wanted), { initialProps: { wanted: false } });
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(fetch).not.toHaveBeenCalled(); // nothing while no form is open
  rerender({ wanted: true });
  rerender({ wanted: false }); // closed before the answers came: read again when a form opens again
  rerender({ wanted: true });
  await waitFor(() => expect(result.current.fields).toEqual(["total", "customer__tier"]));
  expect(result.current.tables).toEqual(["orders"]);
  expect(result.current.reports).toEqual(["weekly-sales"]);
  const calls = fetch.mock.calls.length;
  rerender({ wanted: false });
  rerender({ wanted: true });
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(fetch.mock.calls.length).toBe(calls); // read once per organization
});
