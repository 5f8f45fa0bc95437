import { describe, expect, it } from "vitest";

import { parametersSchema } from "./ParameterForm";

describe("parametersSchema", () => {
  it("types each parameter, requires those without a default and says a default without filling it in", () => {
    const schema = parametersSchema({
      status: { type: "string", description: "the status" },
      min_total: { type: "number", default: 1000 },
      tags: { type: "list" },
      wait: { type: "duration" },
    });
    expect(schema.required).toEqual(["status", "tags", "wait"]);
    const properties = schema.properties as Record<string, { type: string; description?: string; default?: unknown }>;
    expect(properties.status).toEqual({ type: "string", description: "the status" });
    expect(properties.min_total).toEqual({ type: "number", description: "Default: 1000." });
    expect(properties.tags.type).toBe("array");
    expect(properties.wait.type).toBe("string");
    expect(Object.values(properties).some((p) => "default" in p)).toBe(false);
  });
});
