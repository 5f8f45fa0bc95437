// the Form alone: the package index also exports a test helper that needs Ajv, which the pages cannot run
import Form from "@rjsf/core/lib/components/Form.js";
import type { RJSFSchema, UiSchema } from "@rjsf/utils";
import { useMemo } from "react";

import { aboutTable, type Pickers } from "../forms/pickers";
import { ColumnKeys, LabelledSelect, PickerText } from "../forms/widgets";
import { validator } from "../forms/validator";
import type { WorkflowNode } from "./model";
import { nodeFormSchema } from "./nodeForms";

const UI: UiSchema = { "ui:submitButtonOptions": { norender: true } };
const WIDGETS = { TextWidget: PickerText, SelectWidget: LabelledSelect };
const TEMPLATES = { WrapIfAdditionalTemplate: ColumnKeys };

interface Props {
  node: WorkflowNode;
  editable: boolean;
  pickers: Pickers;
  /** The node's new fields (all but `id`, `type` and `position`), on every change. */
  onChange: (fields: Record<string, unknown>) => void;
}

/** The table a record action node writes (its `where` names that table's fields), if it says. */
function actionTable(node: WorkflowNode): string | undefined {
  const table = (node.action as { table?: unknown } | undefined)?.table;
  return typeof table === "string" ? table : undefined;
}

/** A node's configuration as a form generated from the workflow format's JSON Schema, with the catalog's and
 * the store's names offered where a field names one. It edits the same document as the JSON beside it. */
export function NodeForm({ node, editable, pickers, onChange }: Props) {
  const schema: RJSFSchema = useMemo(() => nodeFormSchema(node.type), [node.type]);
  const { id, type, position, ...fields } = node;
  void type;
  void position;
  if (Object.keys(schema.properties ?? {}).length === 0) {
    return <p className="note">A {node.type} node has nothing to configure.</p>;
  }
  return (
    <Form
      className="node-form"
      schema={schema}
      uiSchema={UI}
      formData={fields}
      validator={validator}
      widgets={WIDGETS}
      templates={TEMPLATES}
      formContext={aboutTable(pickers, actionTable(node))}
      idPrefix={`node-${id}`}
      readonly={!editable}
      experimental_defaultFormStateBehavior={{ emptyObjectFields: "skipDefaults", constAsDefaults: "never" }}
      noHtml5Validate
      showErrorList={false}
      onChange={(event) => {
        // react-jsonschema-form also reports when it re-reads its data: only a real change is one
        if (editable && event.formData && JSON.stringify(event.formData) !== JSON.stringify(fields)) {
          onChange(event.formData as Record<string, unknown>);
        }
      }}
    />
  );
}
