import { cleanup, render, screen } from "@testing-library/react";
import { afterEach, beforeAll, expect, it, vi } from "vitest";

import { App } from "./App";

// uPlot (the overview's charts, imported with the app) reads the screen's pixel ratio when it loads
vi.hoisted(() => {
  const media = { matches: false, addEventListener() {}, removeEventListener() {}, addListener() {}, removeListener() {} };
  window.matchMedia = (() => media) as unknown as typeof window.matchMedia;
});

beforeAll(() => {
  globalThis.ResizeObserver = class { observe() {} unobserve() {} disconnect() {} } as unknown as typeof ResizeObserver;
  (globalThis as Record<string, unknown>).DOMMatrixReadOnly = class { m22 = 1; constructor() {} };
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const json = (body: unknown) => new Response(JSON.stringify(body), { headers: { "Content-Type": "application/json" } });

it("opens a deep link in the organization it names, the definition asked for while the shell asks who is signed in", async () => {
  const urls: string[] = [];
  vi.stubGlobal("fetch", vi.fn(async (url: string) => {
    urls.push(url);
    if (url.includes("/me")) {
      return json({ username: "ed", platform_admin: false, memberships: [{ organization: "acme", role: "editor" }, { organization: "globex", role: "editor" }] });
    }
    if (url.includes("/workflows/route")) {
      return json({ name: "route", version: 1, etag: '"1"', definition: { kind: "workflow", name: "route", nodes: [{ id: "start", type: "trigger" }], connections: [] } });
    }
    return json({ items: [], has_more: false });
  }));
  render(<App search="?page=designer&name=route&organization=globex" />);
  expect(await screen.findByRole("heading", { name: /Workflow route version 1/ })).toBeTruthy();
  const workflow = urls.filter((url) => url.includes("/workflows/route") && !url.includes("/versions"));
  expect(workflow).toHaveLength(1); // the prefetched one, taken by the designer
  expect(new URL(workflow[0]).searchParams.get("organization")).toBe("globex");
  expect(urls.indexOf(workflow[0])).toBeLessThan(urls.findIndex((url) => url.includes("/me")) + 2); // not after /me answered
  expect((screen.getByRole("combobox", { name: "Organization" }) as HTMLSelectElement).value).toBe("globex");
});
