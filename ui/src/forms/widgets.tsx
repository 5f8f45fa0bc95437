import DefaultSelect from "@rjsf/core/lib/components/widgets/SelectWidget.js";
import { getTemplate, type WidgetProps } from "@rjsf/utils";

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
