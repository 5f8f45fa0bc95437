import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import { RuleEditor } from "./RuleEditor";

const RULE = {
  kind: "rule", name: "flag", organization: "acme", description: "Flag big orders.",
  trigger: { type: "manual", target: { connection: "app_db", table: "orders" } },
  conditions: { all: [{ field: "total", operator: "gte", value: 1000 }] },
  actions: [{ id: "flag", type: "update_record", connection: "app_db", table: "orders", values: { priority: "high" } }],
};
const STORED = { name: "flag", version: 2, etag: '"2-1-abc"', definition: RULE };

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function stub(answers: (url: string, init?: RequestInit) => Response | undefined) {
  const calls: { url: string; init?: RequestInit }[] = [];
  vi.stubGlobal("fetch", vi.fn(async (url: string, init?: RequestInit) => {
    calls.push({ url, init });
    const answer = answers(url, init);
    if (answer) return answer;
    if (url.includes("/versions/1/diff/2")) return json({ name: "flag", from_version: 1, to_version: 2, changes: [{ path: "description", op: "changed", before: "old", after: "Flag big orders." }] });
    if (url.includes("/rules/flag/versions")) return json([{ version: 1, actor: "ada", created_at: "x" }, { version: 2, actor: "ed", created_at: "y" }]);
    if (url.includes("/rules/flag")) return json(STORED);
    return json({ items: [], has_more: false });
  }));
  return calls;
}

describe("RuleEditor", () => {
  it("edits one document in the form and in the YAML, validates it, and saves it with If-Match", async () => {
    const calls = stub((url, init) => {
      if (url.includes("/validate")) return json({ valid: false, errors: [{ path: "conditions.all[0].field", message: "no column 'totl'" }] });
      if (init?.method === "PUT") return json({ ...STORED, version: 3, definition: JSON.parse(init.body as string) });
      return undefined;
    });
    render(<RuleEditor organization="acme" name="flag" editable />);
    expect(await screen.findByRole("heading", { name: /Rule flag version 2/ })).toBeTruthy();
    const yaml = screen.getByLabelText("Definition (YAML)") as HTMLTextAreaElement;
    const kind = (await screen.findByLabelText("Kind of Conditions")) as HTMLSelectElement; // the stored choice
    expect(kind.selectedOptions[0].textContent).toBe("AllGroup");
    expect(yaml.value).toContain("description: Flag big orders.");

    // YAML → form
    fireEvent.change(yaml, { target: { value: yaml.value.replace("Flag big orders.", "Flag the big ones.").replace("field: total", "field: totl") } });
    const description = (await screen.findByLabelText(/^Description/)) as HTMLInputElement;
    await waitFor(() => expect(description.value).toBe("Flag the big ones."));
    expect(await screen.findByText(/no column 'totl'/)).toBeTruthy(); // the REST view's problem, at its path
    const validated = calls.filter((call) => call.url.includes("/validate")).at(-1)!;
    expect(JSON.parse(validated.init!.body as string).description).toBe("Flag the big ones.");

    // form → YAML
    fireEvent.change(description, { target: { value: "From the form." } });
    await waitFor(() => expect(yaml.value).toContain("description: From the form."));
    expect(yaml.value).toContain("field: totl"); // the YAML edit is still there: one document

    // not YAML: said, and nothing is sent
    fireEvent.change(yaml, { target: { value: "kind: [rule" } });
    expect(await screen.findByText(/Not YAML yet/)).toBeTruthy();
    expect((screen.getByRole("button", { name: "Save" }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.change(yaml, { target: { value: yaml.value.replace("kind: [rule", "kind: rule\nname: flag") } });
    fireEvent.change(yaml, { target: { value: "kind: rule\nname: flag\ndescription: Saved.\n" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    expect((await screen.findByRole("status")).textContent).toBe("Saved as version 3.");
    const put = calls.find((call) => call.init?.method === "PUT")!;
    expect((put.init!.headers as Record<string, string>)["If-Match"]).toBe('"2-1-abc"');
    expect(JSON.parse(put.init!.body as string)).toEqual({ kind: "rule", name: "flag", description: "Saved." });
  });

  it("tests the saved rule on an example event and shows the trace", async () => {
    const calls = stub((url) =>
      url.includes("/test")
        ? json({ rule: "flag", triggered: true, matched: false, reason: "a condition does not hold", event: {}, record: {}, notes: [],
                 trace: { matched: false, node: { kind: "condition", path: "", result: false, skipped: false, children: [], field: "total", operator: "gte", expected: 1000, actual: 20, reason: "" } } })
        : undefined,
    );
    render(<RuleEditor organization="acme" name="flag" editable />);
    fireEvent.change(await screen.findByLabelText("Example event (JSON)"), {
      target: { value: '{"table": "orders", "operation": "created", "key": {"id": 1}, "new": {"id": 1, "total": 20}}' },
    });
    fireEvent.click(screen.getByRole("button", { name: "Run the test" }));
    expect(await screen.findByText(/The rule does not fire: a condition does not hold/)).toBeTruthy();
    expect(screen.getByText(/total gte 1000 \(value 20\)/)).toBeTruthy();
    const test = calls.find((call) => call.url.includes("/test"))!;
    expect(JSON.parse(test.init!.body as string).event.new.total).toBe(20);
  });

  it("compares the stored rule with an older version and restores it", async () => {
    const calls = stub((url, init) =>
      init?.method === "POST" && url.includes("/restore") ? json({ ...STORED, version: 3, definition: { ...RULE, description: "old" } }) : undefined,
    );
    render(<RuleEditor organization="acme" name="flag" editable />);
    fireEvent.change(await screen.findByLabelText("Compare with"), { target: { value: "1" } });
    const changes = await screen.findByRole("list", { name: "changes since version 1" });
    expect(changes.textContent).toContain('changed: description was "old" is "Flag big orders."');
    fireEvent.click(screen.getByRole("button", { name: "Restore version 1" }));
    expect((await screen.findByRole("status")).textContent).toBe("Restored as version 3.");
    const restore = calls.find((call) => call.url.includes("/restore"))!;
    expect((restore.init!.headers as Record<string, string>)["If-Match"]).toBe('"2-1-abc"');
  });

  it("is read-only for viewers", async () => {
    stub(() => undefined);
    render(<RuleEditor organization="acme" name="flag" editable={false} />);
    expect(await screen.findByText(/Read only/)).toBeTruthy();
    expect((screen.getByLabelText("Definition (YAML)") as HTMLTextAreaElement).readOnly).toBe(true);
    expect(screen.queryByRole("button", { name: "Save" })).toBeNull();
  });
});
