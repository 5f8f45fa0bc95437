// the Form alone: the package index also exports a test helper that needs Ajv, which the pages cannot run
import Form from "@rjsf/core/lib/components/Form.js";
import type { RJSFSchema, UiSchema } from "@rjsf/utils";
import { useMemo } from "react";

import { validator } from "../forms/validator";
import { LabelledSelect, PickerText } from "../forms/widgets";
import type { TemplateParameter } from "./TemplatePanel";

const UI: UiSchema = { "ui:submitButtonOptions": { norender: true } };
const PLAIN: RJSFSchema[] = ["string", "number", "boolean"].map((type) => ({ type, title: type }) as RJSFSchema);

/** The JSON Schema of a template's parameters (the format's types: string, number, integer, boolean, list,
 * duration); those without a default are required, a default is said, never filled in. */
export function parametersSchema(parameters: Record<string, TemplateParameter>): RJSFSchema {
  const property = ({ type, default: value, description }: TemplateParameter): RJSFSchema => {
    const said = [description, value === undefined ? "" : `Default: ${JSON.stringify(value)}.`].filter(Boolean).join(" ");
    const base: RJSFSchema =
      type === "list" ? { type: "array", items: { anyOf: PLAIN } }
      : type === "duration" ? { type: "string", description: "a duration, such as 30m, 2h or 7d" }
      : { type: type as "string" | "number" | "integer" | "boolean" };
    return said ? { ...base, description: [base.description, said].filter(Boolean).join(". ") } : base;
  };
  return {
    type: "object",
    properties: Object.fromEntries(Object.entries(parameters).map(([name, spec]) => [name, property(spec)])),
    required: Object.entries(parameters).filter(([, spec]) => spec.default === undefined).map(([name]) => name),
  };
}

export function ParameterForm({ parameters, values, onChange }: {
  parameters: Record<string, TemplateParameter>;
  values: Record<string, unknown>;
  onChange: (values: Record<string, unknown>) => void;
}) {
  const schema = useMemo(() => parametersSchema(parameters), [parameters]);
  if (!Object.keys(parameters).length) return <p className="note">This template has no parameters.</p>;
  return (
    <Form
      className="node-form"
      schema={schema}
      uiSchema={UI}
      formData={values}
      validator={validator}
      widgets={{ TextWidget: PickerText, SelectWidget: LabelledSelect }}
      idPrefix="template-parameters"
      experimental_defaultFormStateBehavior={{ emptyObjectFields: "skipDefaults" }}
      noHtml5Validate
      showErrorList={false}
      onChange={(event) => onChange((event.formData ?? {}) as Record<string, unknown>)}
    />
  );
}
