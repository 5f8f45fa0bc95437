import { describe, expect, it } from "vitest";

import workflowSchema from "../../../include/schemas/workflow.schema.json";
import { formOf, friendlySchema } from "./schema";
import { validator } from "./validator";

describe("friendlySchema", () => {
  it("turns pydantic's optional anyOf into the field itself, and titles definitions by their type", () => {
    const friendly = friendlySchema({
      $defs: {
        Webhook: {
          type: "object",
          properties: { type: { const: "call_webhook" }, timeout: { anyOf: [{ type: "integer" }, { type: "null" }], default: null, title: "Timeout" } },
        },
      },
    });
    const webhook = (friendly.$defs as Record<string, { title: string; properties: Record<string, unknown> }>).Webhook;
    expect(webhook.title).toBe("call_webhook");
    expect(webhook.properties.timeout).toEqual({ type: "integer", title: "Timeout" });
    const retries = friendlySchema({ properties: { retries: { type: "integer", default: 2, description: "Attempts." } } });
    expect(retries.properties).toEqual({ retries: { type: "integer", description: "Attempts. Default: 2." } });
    expect((webhook.properties.type as { readOnly: boolean }).readOnly).toBe(true);
  });

  it("offers an optional choice with \"none\" first, and titles plain options by their type", () => {
    const where = { anyOf: [{ oneOf: [{ $ref: "#/$defs/Condition" }] }, { type: "null" }], default: null, title: "Where" };
    const value = { anyOf: [{ $ref: "#/$defs/FieldRef" }, { type: "string" }, { type: "integer" }, { type: "null" }] };
    const friendly = friendlySchema({ properties: { where, value } }).properties as Record<string, { anyOf: { title?: string }[] }>;
    const flat = friendly as unknown as Record<string, { oneOf: unknown[] }>;
    expect(flat.where.oneOf).toEqual([{ type: "null", title: "none" }, { $ref: "#/$defs/Condition" }]); // one select
    expect(friendly.value.anyOf.map((option) => option.title)).toEqual([undefined, "string", "integer", "none"]);
  });

  it("keeps a real choice between two non-null schemas", () => {
    const choice = { anyOf: [{ type: "string" }, { type: "integer" }] };
    expect(friendlySchema({ properties: { x: choice } }).properties).toEqual({
      x: { anyOf: [{ type: "string", title: "string" }, { type: "integer", title: "integer" }] },
    });
  });
});

describe("any JSON value", () => {
  it("is offered as a choice of the plain types, and a whole schema is never taken for one", () => {
    const friendly = friendlySchema({ $defs: { JsonValue: { description: "any" } }, type: "object" });
    const value = (friendly.$defs as Record<string, { anyOf: { title: string }[] }>).JsonValue;
    expect(value.anyOf.map((option) => option.title)).toEqual(["string", "number", "boolean", "none"]);
    expect(friendly.type).toBe("object");
  });
});

describe("formOf and the validator", () => {
  const root = friendlySchema(workflowSchema as Record<string, unknown>);

  it("gives an action node's form without the fields the canvas sets", () => {
    const form = formOf(root, "ActionNode", ["id", "type", "position"]);
    expect(Object.keys(form.properties ?? {})).toEqual(["action"]);
    expect(form.required).toEqual(["action"]);
  });

  it("matches a value to its oneOf branch through the root's $defs, without compiling code", () => {
    const form = formOf(root, "ActionNode", ["id", "type", "position"]);
    const update = { $ref: "#/$defs/UpdateRecordStep" };
    const create = { $ref: "#/$defs/CreateRecordStep" };
    const action = { type: "update_record", connection: "app_db", table: "orders", values: { priority: "high" } };
    expect(validator.isValid(update, action, form)).toBe(true);
    expect(validator.isValid(create, action, form)).toBe(false);
    expect(validator.validateFormData({ action: { type: "nope" } }, form).errors.length).toBeGreaterThan(0);
  });
});
