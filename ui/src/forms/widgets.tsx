import WrapIfAdditional from "@rjsf/core/lib/components/templates/WrapIfAdditionalTemplate.js";
import DefaultSelect from "@rjsf/core/lib/components/widgets/SelectWidget.js";
import { getTemplate, type WidgetProps, type WrapIfAdditionalTemplateProps } from "@rjsf/utils";
import { useEffect } from "react";

import { NO_PICKERS, offersFor, type Pickers } from "./pickers";

/** The text input of the forms, offering the catalog's and the store's names where a field names one
 * (a `<datalist>`: any value can still be typed, and the REST view says when it names nothing). */
export function PickerText(props: WidgetProps) {
  const offers = offersFor(props.name, (props.registry.formContext ?? NO_PICKERS) as Pickers);
  const BaseInputTemplate = getTemplate("BaseInputTemplate", props.registry, props.options);
  return <BaseInputTemplate {...props} schema={offers.length ? { ...props.schema, examples: offers } : props.schema} />;
}

/** The forms' select. The one a `oneOf` or `anyOf` draws to choose between its options (the kind of an
 * action, a trigger, a condition) has no label of its own in react-jsonschema-form: it gets a visible one,
 * "Kind of Action", so screen readers name it too. */
export function LabelledSelect(props: WidgetProps) {
  if (!/__(one|any)of_select$/.test(props.name)) return <DefaultSelect {...props} />;
  return (
    <label className="choice">
      Kind of {props.label} <DefaultSelect {...props} />
    </label>
  );
}

/** The row of a map entry: react-jsonschema-form's own, with the key's input offering the table's columns
 * in a record action's `values` (the only map of the formats keyed by columns). The entry is known by its
 * id, `…_values_<key>`: the schema react-jsonschema-form hands a map entry keeps no mark of its map. */
export function ColumnKeys(props: WrapIfAdditionalTemplateProps) {
  const pickers = (props.registry.formContext ?? NO_PICKERS) as Pickers;
  const columns = props.id.endsWith(`_values_${props.label}`) ? pickers.columns : [];
  const key = `${props.id}-key`;
  useEffect(() => {
    // the key's input is the template's own: point it at the list of columns
    const input = document.getElementById(key);
    if (input && columns.length) input.setAttribute("list", `${key}-columns`);
  }, [key, columns.length]);
  return (
    <>
      <WrapIfAdditional {...props} />
      {columns.length > 0 && (
        <datalist id={`${key}-columns`}>
          {columns.map((column) => (
            <option key={column} value={column} />
          ))}
        </datalist>
      )}
    </>
  );
}
