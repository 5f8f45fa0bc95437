// the Form alone: the package index also exports a test helper that needs Ajv, which the pages cannot run
import Form from "@rjsf/core/lib/components/Form.js";
import type { RJSFSchema, UiSchema } from "@rjsf/utils";

import ruleSchema from "../../../include/schemas/rule.schema.json";
import type { Pickers } from "../forms/pickers";
import { friendlySchema, rootForm } from "../forms/schema";
import { validator } from "../forms/validator";
import { ColumnKeys, LabelledSelect, PickerText } from "../forms/widgets";

const UI: UiSchema = { "ui:submitButtonOptions": { norender: true } };
const WIDGETS = { TextWidget: PickerText, SelectWidget: LabelledSelect };
const TEMPLATES = { WrapIfAdditionalTemplate: ColumnKeys };
/** The rule format's JSON Schema (`include/schemas/rule.schema.json`) as a form: `kind` and `organization`
 * are the page's. */
export const RULE_FORM: RJSFSchema = rootForm(friendlySchema(ruleSchema as Record<string, unknown>), [
  "kind",
  "organization",
  "schema_version",
]);

/** A rule as a form generated from the format's JSON Schema, with the catalog's and the store's names
 * offered where a field names one. It edits the same document as the YAML beside it. */
export function RuleForm({ doc, editable, pickers, onChange }: {
  doc: Record<string, unknown>;
  editable: boolean;
  pickers: Pickers;
  onChange: (doc: Record<string, unknown>) => void;
}) {
  const { kind, organization, schema_version, ...fields } = doc;
  return (
    <Form
      className="node-form"
      schema={RULE_FORM}
      uiSchema={UI}
      formData={fields}
      validator={validator}
      widgets={WIDGETS}
      templates={TEMPLATES}
      formContext={pickers}
      idPrefix="rule"
      readonly={!editable}
      experimental_defaultFormStateBehavior={{ emptyObjectFields: "skipDefaults", constAsDefaults: "never" }}
      noHtml5Validate
      showErrorList={false}
      onChange={(event) => {
        if (!editable || !event.formData || JSON.stringify(event.formData) === JSON.stringify(fields)) return;
        const own = Object.fromEntries(
          Object.entries({ kind, organization, schema_version }).filter(([, value]) => value !== undefined),
        );
        onChange({ ...own, ...(event.formData as Record<string, unknown>) });
      }}
    />
  );
}
