import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import { NO_PICKERS, type Pickers } from "../forms/pickers";
import { NodeForm } from "./NodeForm";

const PICKERS: Pickers = {
  ...NO_PICKERS,
  fieldsByTable: { orders: ["id", "status", "total", "customer__tier"], customers: ["id", "tier"] },
  connections: ["app_db", "crm_api"],
  tables: ["customers", "orders"],
  fields: ["id", "status", "total", "customer__tier"],
  conditionTemplates: ["big-order"],
};

afterEach(cleanup);

const offers = (input: HTMLElement) =>
  Array.from(document.getElementById(input.getAttribute("list") ?? "")?.querySelectorAll("option") ?? []).map(
    (option) => option.getAttribute("value"),
  );

describe("NodeForm", () => {
  it("edits an action node's fields in a form from the JSON Schema, offering the catalog's tables", () => {
    const onChange = vi.fn();
    const node = {
      id: "make-high", type: "action" as const, position: { x: 1, y: 2 },
      action: { type: "update_record", connection: "app_db", table: "orders", values: { priority: "high" } },
    };
    render(<NodeForm node={node} editable pickers={PICKERS} onChange={onChange} />);
    const table = screen.getByLabelText(/^table/i);
    expect(onChange).not.toHaveBeenCalled(); // opening a node changes nothing
    expect((table as HTMLInputElement).value).toBe("orders");
    expect(offers(table)).toEqual(["customers", "orders"]);
    expect(offers(screen.getByLabelText(/^connection/i))).toEqual(["app_db", "crm_api"]);
    const kind = screen.getByLabelText("Kind of Action") as HTMLSelectElement; // the oneOf's choice, labelled
    expect(kind.selectedOptions[0].textContent).toBe("update_record");
    const key = screen.getByDisplayValue("priority"); // a record's values: each key and value
    expect(offers(key)).toEqual(["id", "status", "total"]); // keyed by the table's own columns
    expect(screen.getByDisplayValue("high")).toBeTruthy();
    fireEvent.change(table, { target: { value: "customers" } });
    const fields = onChange.mock.calls.at(-1)![0];
    expect(fields).toEqual({ action: { ...node.action, table: "customers" } }); // no id, type or position
  });

  it("reports no change when the node changes elsewhere (the JSON, a connection), only the user's edits", async () => {
    const onChange = vi.fn();
    const node = { id: "start", type: "trigger" as const, trigger: { type: "manual" } };
    const { rerender } = render(<NodeForm node={node} editable pickers={PICKERS} onChange={onChange} />);
    await screen.findByLabelText("Kind of Trigger");
    rerender(<NodeForm node={{ ...node, trigger: { type: "manual", target: { connection: "app_db", table: "orders" } } }} editable pickers={PICKERS} onChange={onChange} />);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(onChange).not.toHaveBeenCalled();
  });

  it("offers the trigger table's fields, foreign-key paths included, to a condition", () => {
    const node = { id: "is-big", type: "condition" as const, conditions: { field: "total", operator: "gte", value: 1000 } };
    render(<NodeForm node={node} editable pickers={PICKERS} onChange={vi.fn()} />);
    expect(offers(screen.getByLabelText(/^field/i))).toEqual(["id", "status", "total", "customer__tier"]);
  });

  it("offers a record action's own table's fields to its where", async () => {
    const node = {
      id: "tier-up", type: "action" as const,
      action: { type: "update_record", connection: "app_db", table: "customers", values: { tier: "gold" },
                where: { field: "tier", operator: "equals", value: "silver" } },
    };
    render(<NodeForm node={node} editable pickers={PICKERS} onChange={vi.fn()} />);
    expect(offers(await screen.findByLabelText(/^field/i))).toEqual(["id", "tier"]);
  });

  it("is read-only for viewers, and says when a node type has nothing to set", () => {
    const node = { id: "is-big", type: "condition" as const, conditions: { field: "total", operator: "gte", value: 1000 } };
    render(<NodeForm node={node} editable={false} pickers={PICKERS} onChange={vi.fn()} />);
    expect(screen.getByLabelText(/^field/i).hasAttribute("readonly")).toBe(true);
    cleanup();
    render(<NodeForm node={{ id: "routed", type: "join" }} editable pickers={PICKERS} onChange={vi.fn()} />);
    expect(screen.getByText("A join node has nothing to configure.")).toBeTruthy();
  });
});
