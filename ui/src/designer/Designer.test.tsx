import { act, cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";

import { Designer } from "./Designer";

// jsdom lays nothing out: React Flow needs these to exist (the canvas draws nothing measurable here;
// the end-to-end test drives the real canvas in Chromium).
beforeAll(() => {
  globalThis.ResizeObserver = class {
    observe() {}
    unobserve() {}
    disconnect() {}
  } as unknown as typeof ResizeObserver;
  (globalThis as Record<string, unknown>).DOMMatrixReadOnly = class {
    m22 = 1;
    constructor() {}
  };
});

const STORED = {
  name: "route",
  version: 3,
  etag: '"3-1-abc"',
  definition: {
    kind: "workflow",
    name: "route",
    organization: "acme",
    nodes: [
      { id: "start", type: "trigger", trigger: { type: "manual" }, position: { x: 0, y: 0 } },
      { id: "is-big", type: "condition", conditions: { all: [] }, position: { x: 240, y: 0 } },
      { id: "flag", type: "action", action: { type: "update_record" }, position: { x: 480, y: 0 } },
    ],
    connections: [{ from: "start", to: "is-big" }],
  },
};

const VERSIONS = [
  { version: 2, actor: "ada", created_at: "2026-12-01T10:00:00+00:00" },
  { version: 3, actor: "ed", created_at: "2026-12-02T10:00:00+00:00" },
];
const VERSION_2 = {
  ...STORED.definition,
  nodes: [STORED.definition.nodes[0], { ...STORED.definition.nodes[1], conditions: { any: [] } }],
  connections: [],
};

/** The GETs the designer makes: the workflow, its versions, one version. */
function answerGet(url: string): Response {
  if (url.includes("/versions/2")) return json({ ...VERSIONS[0], definition: VERSION_2 });
  if (url.includes("/versions")) return json(VERSIONS);
  return json(STORED);
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

describe("Designer", () => {
  it("connects from the keyboard menu, shows the REST view's problems on the node, and saves with If-Match", async () => {
    const calls: { method: string; url: string; body?: unknown; headers?: Record<string, string> }[] = [];
    let saves = 0;
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init?: RequestInit) => {
        const method = init?.method ?? "GET";
        calls.push({ method, url, body: init?.body ? JSON.parse(init.body as string) : undefined, headers: init?.headers as Record<string, string> });
        if (method === "GET") return answerGet(url);
        if (url.includes("/validate"))
          return json({ valid: false, errors: [{ path: "nodes[2].action.table", message: "give the table", code: "missing" }] });
        saves += 1;
        const definition = JSON.parse(init!.body as string);
        return saves === 1 ? json({ ...STORED, version: 4, etag: '"4-1-def"', definition }) : json({ detail: "changed" }, 412);
      }),
    );
    render(<Designer organization="acme" name="route" editable={true} />);
    expect(await screen.findByRole("heading", { name: /Workflow route version 3/ })).toBeTruthy();

    // select the condition node, then connect it to flag along "true" without a mouse drag
    fireEvent.click(await screen.findByText("is-big · condition"));
    const panel = await screen.findByRole("region", { name: /condition node is-big/ });
    fireEvent.change(within(panel).getByLabelText("Connect to"), { target: { value: "flag" } });
    fireEvent.change(within(panel).getByLabelText("when"), { target: { value: "true" } });
    fireEvent.click(within(panel).getByRole("button", { name: "Connect" }));
    expect(within(panel).getByRole("button", { name: "Disconnect is-big from flag (true)" })).toBeTruthy();

    // the REST view validates the changed document; its problem lands on the node its path names
    const problem = await screen.findByText(
      (_, element) => element?.tagName === "LI" && (element.textContent ?? "").includes("give the table"),
      {},
      { timeout: 2000 },
    );
    expect(problem.textContent).toContain("nodes[2].action.table");
    const validated = calls.find((c) => c.url.includes("/validate"))!;
    expect((validated.body as { connections: unknown[] }).connections).toEqual([
      { from: "start", to: "is-big" },
      { from: "is-big", to: "flag", when: "true" },
    ]);
    expect(screen.getByRole("button", { name: "Show flag" })).toBeTruthy();

    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    expect((await screen.findByRole("status")).textContent).toBe("Saved as version 4.");
    const put = calls.find((c) => c.method === "PUT")!;
    expect(new URL(put.url).pathname).toMatch(/\/api\/v1\/workflows\/route$/);
    expect(put.headers!["If-Match"]).toBe('"3-1-abc"');

    // a second save that meets someone else's change is refused and said, never overwritten
    fireEvent.click(within(panel).getByRole("button", { name: "Disconnect is-big from flag (true)" }));
    await act(async () => {
      fireEvent.click(screen.getByRole("button", { name: "Save" }));
    });
    await waitFor(() => expect(screen.getByRole("alert").textContent).toMatch(/someone saved this workflow after you opened it/));
    expect(calls.filter((c) => c.method === "PUT")[1].headers!["If-Match"]).toBe('"4-1-def"');
  });

  it("is read only for a viewer", async () => {
    vi.stubGlobal("fetch", vi.fn(async (url: string) => answerGet(url)));
    render(<Designer organization="acme" name="route" editable={false} />);
    expect(await screen.findByText(/Read only/)).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Save" })).toBeNull();
    expect(screen.queryByRole("toolbar", { name: "Add a node" })).toBeNull();
    fireEvent.click(await screen.findByText("start · trigger"));
    const panel = await screen.findByRole("region", { name: /trigger node start/ });
    expect((within(panel).getByLabelText("Configuration (JSON)") as HTMLTextAreaElement).readOnly).toBe(true);
    expect(within(panel).queryByRole("button", { name: "Connect" })).toBeNull();
  });

  it("builds a new workflow from the palette and the keyboard menu, and creates it", async () => {
    const posts: { url: string; body: { name: string; nodes: { id: string; type: string }[]; connections: unknown[] } }[] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init?: RequestInit) => {
        const body = JSON.parse(init!.body as string);
        if (url.includes("/validate")) return json({ valid: true, errors: [] });
        posts.push({ url, body });
        return json({ name: body.name, version: 1, etag: '"1-1-x"', definition: body }, 201);
      }),
    );
    render(<Designer organization="acme" name="" editable={true} />);
    expect(await screen.findByRole("heading", { name: "New workflow" })).toBeTruthy();
    fireEvent.change(screen.getByLabelText("Name"), { target: { value: "three-steps" } });
    fireEvent.click(screen.getByRole("button", { name: "+ condition" }));
    fireEvent.click(screen.getByRole("button", { name: "+ action" }));
    expect(await screen.findByRole("region", { name: /action node action-1/ })).toBeTruthy(); // a new node is selected
    fireEvent.click(screen.getByText("condition-1 · condition"));
    const condition = await screen.findByRole("region", { name: /condition node condition-1/ });
    fireEvent.change(within(condition).getByLabelText("Connect to"), { target: { value: "action-1" } });
    fireEvent.click(within(condition).getByRole("button", { name: "Connect" }));
    fireEvent.click(screen.getByText("start · trigger"));
    const start = await screen.findByRole("region", { name: /trigger node start/ });
    fireEvent.change(within(start).getByLabelText("Connect to"), { target: { value: "condition-1" } });
    fireEvent.click(within(start).getByRole("button", { name: "Connect" }));

    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    expect((await screen.findByRole("status")).textContent).toBe("Saved as version 1.");
    const [created] = posts;
    expect(new URL(created.url).pathname).toMatch(/\/api\/v1\/workflows$/);
    expect(created.body.name).toBe("three-steps");
    expect(created.body.nodes.map((n) => `${n.id}:${n.type}`)).toEqual(["start:trigger", "condition-1:condition", "action-1:action"]);
    expect(created.body.connections).toEqual([
      { from: "condition-1", to: "action-1", when: "true" },
      { from: "start", to: "condition-1" },
    ]);
    expect(screen.getByRole("heading", { name: /Workflow three-steps version 1/ })).toBeTruthy();
  });

  it("starts a new workflow from a template, its parameters filled in the form and expanded by the REST view", async () => {
    const expanded = {
      kind: "workflow",
      nodes: [
        { id: "start", type: "trigger", trigger: { type: "manual" }, position: { x: 0, y: 0 } },
        { id: "tag", type: "action", action: { type: "update_record" }, position: { x: 240, y: 0 } },
      ],
      connections: [{ from: "start", to: "tag" }],
    };
    const calls: { url: string; init?: RequestInit }[] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init?: RequestInit) => {
        calls.push({ url, init });
        if (url.includes("/expand")) return json({ template: "follow-up", kind: "workflow", definition: expanded });
        if (url.includes("/workflow-templates/follow-up"))
          return json({ definition: { name: "follow-up", parameters: { status: { type: "string" }, note: { type: "string", default: "hi" } } } });
        if (url.includes("/workflow-templates")) return json({ items: [{ name: "follow-up" }], has_more: false });
        if (url.includes("/validate")) return json({ valid: true, errors: [] });
        return json({ items: [], has_more: false });
      }),
    );
    render(<Designer organization="acme" name="" editable={true} />);
    fireEvent.change(await screen.findByLabelText("Name"), { target: { value: "from-template" } });
    fireEvent.click(screen.getByText("Start from a template"));
    fireEvent.change(await screen.findByLabelText("Template"), { target: { value: "follow-up" } });
    fireEvent.change(await screen.findByLabelText(/^status/), { target: { value: "shipped" } });
    expect(screen.getByText(/Default: "hi"/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Start from follow-up" }));
    expect((await screen.findByRole("status")).textContent).toMatch(/Started from template follow-up/);
    expect(await screen.findByText("tag · action")).toBeTruthy();
    const expand = calls.find((call) => call.url.includes("/expand"))!;
    expect(JSON.parse(expand.init!.body as string)).toEqual({ with: { status: "shipped" } });
    expect((screen.getByLabelText("Name") as HTMLInputElement).value).toBe("from-template"); // the name stays
  });

  it("selects a node with Enter after nodes were added from the palette (one selection, not two)", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => json({ items: [], has_more: false, valid: true, errors: [] })));
    render(<Designer organization="acme" name="" editable={true} />);
    await screen.findByRole("heading", { name: "New workflow" });
    const start = screen.getByLabelText("trigger node start");
    fireEvent.keyDown(start, { key: "Enter" });
    await screen.findByRole("region", { name: /trigger node start/ });
    fireEvent.click(screen.getByRole("button", { name: "+ condition" })); // the new node alone is selected
    await screen.findByRole("region", { name: /condition node condition-1/ });
    fireEvent.keyDown(screen.getByLabelText("trigger node start"), { key: "Enter" });
    expect(await screen.findByRole("region", { name: /trigger node start/ })).toBeTruthy();
  });

  it("saves the selected nodes and the connections between them as a workflow template", async () => {
    const posts: { url: string; body: Record<string, unknown> }[] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init?: RequestInit) => {
        if (init?.method === "POST" && url.includes("/workflow-templates")) {
          posts.push({ url, body: JSON.parse(init.body as string) });
          return json({ version: 1 }, 201);
        }
        return url.includes("/workflows/route") ? answerGet(url) : json({ items: [], has_more: false });
      }),
    );
    render(<Designer organization="acme" name="route" editable={true} />);
    await screen.findByRole("heading", { name: /Workflow route version 3/ });
    fireEvent.click(screen.getByText("start · trigger"));
    fireEvent.keyDown(document, { key: "Control", code: "ControlLeft" }); // React Flow watches the key itself
    fireEvent.click(screen.getByText("is-big · condition"), { ctrlKey: true });
    fireEvent.keyUp(document, { key: "Control", code: "ControlLeft" });
    fireEvent.click(screen.getByText("Save as a template"));
    fireEvent.change(screen.getByLabelText("Template name"), { target: { value: "start-and-check" } });
    fireEvent.click(screen.getByRole("button", { name: "Save the 2 selected nodes as a template" }));
    expect((await screen.findByRole("status")).textContent).toBe("Saved workflow template start-and-check (version 1).");
    const [saved] = posts;
    expect(saved.body).toEqual({
      kind: "workflow_template",
      name: "start-and-check",
      parameters: {},
      body: { nodes: STORED.definition.nodes.slice(0, 2), connections: [{ from: "start", to: "is-big" }] },
    });
  });

  it("compares the canvas with an older version, node by node, and restores it with If-Match", async () => {
    const posts: { url: string; headers: Record<string, string> }[] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init?: RequestInit) => {
        if ((init?.method ?? "GET") === "GET") return answerGet(url);
        posts.push({ url, headers: init!.headers as Record<string, string> });
        return json({ ...STORED, version: 4, etag: '"4-1-r"', definition: VERSION_2 });
      }),
    );
    render(<Designer organization="acme" name="route" editable={true} />);
    const compare = await screen.findByLabelText("Compare with");
    await screen.findByRole("option", { name: /version 2 by ada/ });
    expect(screen.queryByRole("option", { name: /version 3/ })).toBeNull(); // the current one
    fireEvent.change(compare, { target: { value: "2" } });
    const changes = await screen.findByRole("list", { name: "changes since version 2" });
    expect(within(changes).getAllByRole("listitem").map((li) => li.textContent)).toEqual([
      "added: flag",
      "changed: is-big",
      "connections added: start → is-big",
    ]);
    await waitFor(() => expect(document.querySelector('.react-flow__node[data-id="flag"]')!.className).toContain("diff-added"));
    expect(document.querySelector('.react-flow__node[data-id="is-big"]')!.className).toContain("diff-changed");

    fireEvent.click(screen.getByRole("button", { name: "Restore version 2" }));
    expect((await screen.findByRole("status")).textContent).toBe("Restored as version 4.");
    expect(new URL(posts[0].url).pathname).toMatch(/\/api\/v1\/workflows\/route\/versions\/2\/restore$/);
    expect(posts[0].headers["If-Match"]).toBe('"3-1-abc"');
  });

  it("runs the tester on the saved workflow and draws each node's step on the canvas", async () => {
    const tests: { url: string; body: unknown }[] = [];
    const result = {
      workflow: "acme/route", started: true, reason: "the trigger takes the event", event: {}, record: {}, acted: ["flag"],
      notes: [],
      nodes: [
        { id: "start", type: "trigger", status: "passed", branch: null, next: ["is-big"], summary: "takes the event", trace: null, action: null },
        { id: "is-big", type: "condition", status: "failed", branch: "false", next: [], summary: "total 20 is not > 1000", trace: null, action: null },
        { id: "flag", type: "action", status: "skipped", branch: null, next: [], summary: "receives nothing", trace: null, action: null },
      ],
    };
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init?: RequestInit) => {
        if ((init?.method ?? "GET") === "GET") return answerGet(url);
        tests.push({ url, body: JSON.parse(init!.body as string) });
        return json(result);
      }),
    );
    render(<Designer organization="acme" name="route" editable={true} />);
    const event = (await screen.findByLabelText("Example event (JSON)")) as HTMLTextAreaElement;
    expect(JSON.parse(event.value)).toEqual({ table: "orders", operation: "created", key: { id: 1 }, new: { id: 1 } });
    fireEvent.change(event, { target: { value: '{"table": "orders", "operation": "created", "new": {"id": 7, "total": 20}}' } });
    fireEvent.click(screen.getByRole("button", { name: "Run the test" }));
    expect((await screen.findByRole("status")).textContent).toBe("The event starts a run: the trigger takes the event");
    const steps = screen.getByRole("list", { name: "each node's step" });
    expect(within(steps).getAllByRole("listitem")[1].textContent).toBe("is-big (condition): failed, went false — total 20 is not > 1000");
    expect(new URL(tests[0].url).pathname).toMatch(/\/api\/v1\/workflows\/route\/test$/);
    expect(tests[0].body).toEqual({ event: { table: "orders", operation: "created", new: { id: 7, total: 20 } } });
    await waitFor(() => expect(document.querySelector('.react-flow__node[data-id="is-big"]')!.className).toContain("test-failed"));
    expect(document.querySelector('.react-flow__node[data-id="flag"]')!.className).toContain("test-skipped");
  });
});
