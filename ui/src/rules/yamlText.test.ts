import { describe, expect, it } from "vitest";

import { fromYaml, toYaml } from "./yamlText";

describe("the rule editor's YAML", () => {
  it("round-trips a definition, keys in order", () => {
    const doc = { kind: "rule", name: "r", conditions: { all: [{ field: "total", operator: "gte", value: 1000 }] } };
    const text = toYaml(doc);
    expect(text.startsWith("kind: rule\nname: r\n")).toBe(true);
    expect(fromYaml(text).doc).toEqual(doc);
  });

  it("says why a text is not a definition: bad YAML, a list, an alias, a duplicate key", () => {
    expect(fromYaml("kind: [rule").error).toBeTruthy();
    expect(fromYaml("- a\n- b").error).toBe("a definition is a mapping (key: value lines)");
    expect(fromYaml("a: &x {b: 1}\nc: *x").error).toBeTruthy();
    expect(fromYaml("a: 1\na: 2").error).toBeTruthy();
  });
});
