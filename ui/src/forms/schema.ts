import type { RJSFSchema } from "@rjsf/utils";

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);

/** A JSON Schema of `include/schemas/` made friendlier to a generated form, with the same meaning for the
 * values a form produces:
 * - an optional field written `anyOf: [X, {type: "null"}]` (what pydantic emits) becomes X when X is a
 *   plain value, so the form shows one input rather than a choice between "Option 1" and "Option 2"
 *   (leaving it empty omits it); an optional object or choice offers "none" first;
 * - choices between plain types are titled by type (`string`, `integer`, `none`); a value of any JSON
 *   type is offered as a choice of the plain ones;
 * - a definition whose `type` (or `kind`) is a constant takes that constant as its title, so a `oneOf`
 *   between trigger or action types is offered as `event`, `schedule`, `update_record`… (the constant
 *   itself is shown read-only);
 * - a `default` becomes words in the field's description: the form never writes a default into the
 *   definition (what is saved is what was set; the format applies its defaults itself).
 * The REST view still validates what is saved against the real format. */
export function friendlySchema(schema: Json): RJSFSchema {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (!isObject(node)) return node;
    const options = node.anyOf;
    if (Array.isArray(options) && options.length === 2) {
      const rest = options.filter((option) => !(isObject(option) && option.type === "null"));
      if (rest.length === 1 && isObject(rest[0])) {
        const { anyOf: _, ...around } = node;
        if (isPlain(rest[0])) return walk({ ...rest[0], ...around });
        // an optional object or choice: "none" first, so leaving it out is what the form starts with
        const none = { type: "null", title: "none" };
        const inner = walk(rest[0]) as Json;
        const choices = Array.isArray(inner.oneOf) ? inner.oneOf : Array.isArray(inner.anyOf) ? inner.anyOf : null;
        // a choice that may be left out: one select, "none" first (react-jsonschema-form does not match a
        // value through a choice nested in a choice)
        if (choices && Object.keys(inner).every((key) => ["oneOf", "anyOf", "title", "description"].includes(key))) {
          return { ...annotations(around), oneOf: [none, ...choices] };
        }
        return { ...annotations(around), anyOf: [none, inner] };
      }
    }
    if (isAnyValue(node)) {
      // any JSON value (a record's `values`): a form offers the plain ones; others are edited as JSON
      const { description, title } = node;
      return { description, title, anyOf: ["string", "number", "boolean", "null"].map((type) => ({ type, title: type === "null" ? "none" : type })) };
    }
    const out: Json = {};
    for (const [key, value] of Object.entries(node)) {
      if (key === "default") continue;
      // maps of names to schemas: each value is a schema, the map itself is not
      out[key] = MAPS.includes(key) && isObject(value)
        ? Object.fromEntries(Object.entries(value).map(([name, schema]) => [name, walk(schema)]))
        : walk(value);
    }
    if (annotations(node).description !== node.description) out.description = annotations(node).description;
    for (const key of ["anyOf", "oneOf"]) {
      const choices = out[key];
      if (Array.isArray(choices)) {
        out[key] = choices.map((choice) =>
          isObject(choice) && !choice.title && typeof choice.type === "string"
            ? { ...choice, title: choice.type === "null" ? "none" : choice.type }
            : choice,
        );
      }
    }
    const properties = out.properties;
    if (isObject(properties)) {
      for (const tag of ["type", "kind"]) {
        const field = properties[tag];
        if (isObject(field) && typeof field.const === "string") {
          out.title = field.const;
          properties[tag] = { ...field, readOnly: true }; // which kind it is: chosen above it, not typed
          break;
        }
      }
    }
    return out;
  };
  return walk(schema) as RJSFSchema;
}

/** A schema's words without its shape (what sits beside an `anyOf`): title, description, a default said. */
function annotations(node: Json): Json {
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) if (key !== "default") out[key] = value;
  const value = node.default;
  if (value !== undefined && value !== null && value !== "" && typeof value !== "object") {
    out.description = [node.description, `Default: ${String(value)}.`].filter(Boolean).join(" ");
  }
  return out;
}

const MAPS = ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"];
const SHAPING = ["type", "$ref", "anyOf", "oneOf", "allOf", "const", "enum", "properties", "items", "not", "$defs"];

/** A schema any JSON value fits (`{}`, perhaps with a title or a description). */
function isAnyValue(schema: Json): boolean {
  return !Object.keys(schema).some((key) => SHAPING.includes(key) || key.startsWith("pattern") || key.endsWith("Properties"));
}

/** A schema of one value with no choice inside it: a string, a number, a boolean. */
function isPlain(schema: Json): boolean {
  return typeof schema.type === "string" && !["object", "array"].includes(schema.type) && !schema.$ref && !schema.anyOf && !schema.oneOf;
}

/** The form of one definition in a schema's `$defs` (`ActionNode`), without the fields the page sets itself
 * (`omit`: a node's `id`, `type` and `position` are the canvas's); its references resolve in the same `$defs`. */
export function formOf(root: RJSFSchema, name: string, omit: string[] = []): RJSFSchema {
  const defs = (root.$defs ?? {}) as Record<string, RJSFSchema>;
  const definition = defs[name];
  if (!definition) throw new Error(`no definition ${name} in the schema`);
  const properties = Object.fromEntries(
    Object.entries(definition.properties ?? {}).filter(([key]) => !omit.includes(key)),
  );
  const required = (definition.required ?? []).filter((key) => !omit.includes(key));
  return { ...definition, title: undefined, properties, required, $defs: defs };
}

/** The form of a whole document (a rule) without the fields the page sets itself (`kind`, `organization`). */
export function rootForm(root: RJSFSchema, omit: string[] = []): RJSFSchema {
  const properties = Object.fromEntries(Object.entries(root.properties ?? {}).filter(([key]) => !omit.includes(key)));
  const required = (root.required ?? []).filter((key) => !omit.includes(key));
  return { ...root, title: undefined, $id: undefined, properties, required };
}
