import { Validator, type Schema } from "@cfworker/json-schema";
import type { RJSFSchema, RJSFValidationError, ValidationData, ValidatorType } from "@rjsf/utils";

/** react-jsonschema-form's validator over @cfworker/json-schema, which interprets schemas instead of
 * compiling them to code: the pages' Content-Security-Policy (`script-src 'self'`, no `unsafe-eval`)
 * forbids what Ajv does. The forms use it to pick the `oneOf` branch that fits a value; whether a
 * definition is valid is the REST view's answer, not the form's. */
const compiled = new WeakMap<object, WeakMap<object, Validator>>();

function validatorFor(schema: RJSFSchema, rootSchema: RJSFSchema): Validator {
  let byRoot = compiled.get(rootSchema);
  if (!byRoot) compiled.set(rootSchema, (byRoot = new WeakMap()));
  let found = byRoot.get(schema);
  if (!found) {
    // a sub-schema's `#/$defs/...` references resolve against the root's definitions
    const whole = { ...schema, $defs: { ...(rootSchema.$defs ?? {}), ...(schema.$defs ?? {}) } } as Schema;
    found = new Validator(whole, "2020-12", false);
    byRoot.set(schema, found);
  }
  return found;
}

function errorsOf(schema: RJSFSchema, data: unknown, rootSchema: RJSFSchema): RJSFValidationError[] {
  return validatorFor(schema, rootSchema)
    .validate(data)
    .errors.map((e) => ({ property: e.instanceLocation, message: e.error, stack: `${e.instanceLocation}: ${e.error}` }));
}

export const validator: ValidatorType = {
  validateFormData(formData: unknown, schema: RJSFSchema): ValidationData<unknown> {
    return { errors: errorsOf(schema, formData, schema), errorSchema: {} };
  },
  isValid(schema: RJSFSchema, formData: unknown, rootSchema: RJSFSchema): boolean {
    try {
      return validatorFor(schema, rootSchema).validate(formData).valid;
    } catch {
      return false; // an unusable schema fits nothing
    }
  },
  rawValidation<Result = unknown>(schema: RJSFSchema, formData?: unknown) {
    return { errors: errorsOf(schema, formData, schema) as Result[] };
  },
};
