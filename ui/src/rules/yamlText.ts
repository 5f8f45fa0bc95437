import { parse, stringify } from "yaml";

/** A definition as the YAML the editor shows (block style, keys in the document's order). */
export function toYaml(doc: Record<string, unknown>): string {
  return stringify(doc, { lineWidth: 0 });
}

/** The YAML text as a definition, or why it is not one. Aliases are refused (as the REST view's YAML
 * loader does): what is shown is what is sent. */
export function fromYaml(text: string): { doc?: Record<string, unknown>; error?: string } {
  try {
    const value: unknown = parse(text, { maxAliasCount: 0, uniqueKeys: true });
    if (value === null || typeof value !== "object" || Array.isArray(value)) return { error: "a definition is a mapping (key: value lines)" };
    return { doc: value as Record<string, unknown> };
  } catch (error) {
    return { error: (error as Error).message.split("\n")[0] };
  }
}
