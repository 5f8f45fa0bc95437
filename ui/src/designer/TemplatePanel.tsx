import { lazy, Suspense, useEffect, useState } from "react";

import { ApiError, getJson, sendJson, type Page } from "../api";
import { templateBody, type Problem, type WorkflowDocument } from "./model";

// the parameters' form is react-jsonschema-form: loaded with the node forms' chunk, when it is opened
const ParameterForm = lazy(() => import("./ParameterForm").then((module) => ({ default: module.ParameterForm })));

export interface TemplateParameter {
  type: string;
  default?: unknown;
  description?: string;
}

interface StoredTemplate {
  definition: { name: string; description?: string; parameters?: Record<string, TemplateParameter> };
}

function problemsText(error: Error): string {
  const found = error instanceof ApiError ? ((error.body as { errors?: Problem[] } | undefined)?.errors ?? []) : [];
  return found.length ? found.map((p) => `${p.path}: ${p.message}`).join("; ") : error.message;
}

/** "Start from a template" on a new workflow: a stored workflow template, its parameters filled in a form,
 * expanded by the REST view (`POST /workflow-templates/{name}/expand`) into the canvas. */
export function StartFromTemplate({ organization, onStart }: { organization: string; onStart: (doc: WorkflowDocument, template: string) => void }) {
  const [names, setNames] = useState<string[]>();
  const [chosen, setChosen] = useState("");
  const [template, setTemplate] = useState<StoredTemplate>();
  const [values, setValues] = useState<Record<string, unknown>>({});
  const [error, setError] = useState<string>();
  useEffect(() => {
    getJson<Page<{ name: string }>>("workflow-templates", { organization, limit: "200" })
      .then((page) => setNames(page.items.map((item) => item.name)))
      .catch((problem: Error) => setError(problem.message));
  }, [organization]);
  useEffect(() => {
    setTemplate(undefined);
    setValues({});
    if (!chosen) return;
    getJson<StoredTemplate>(`workflow-templates/${encodeURIComponent(chosen)}`, { organization })
      .then(setTemplate)
      .catch((problem: Error) => setError(problem.message));
  }, [organization, chosen]);

  if (names && names.length === 0) return null; // nothing to start from
  const start = () => {
    setError(undefined);
    sendJson<{ definition: WorkflowDocument }>("POST", `workflow-templates/${encodeURIComponent(chosen)}/expand`, { with: values }, { query: { organization } })
      .then((expanded) => onStart(expanded.definition, chosen))
      .catch((problem: Error) => setError(`Not started: ${problemsText(problem)}`));
  };
  return (
    <details className="from-template">
      <summary>Start from a template</summary>
      <label htmlFor="template-choice">Template</label>{" "}
      <select id="template-choice" value={chosen} onChange={(event) => setChosen(event.target.value)}>
          <option value="">(choose one)</option>
          {(names ?? []).map((name) => (
            <option key={name}>{name}</option>
          ))}
      </select>
      {template && (
        <>
          {template.definition.description && <p className="note">{template.definition.description}</p>}
          <Suspense fallback={<p aria-live="polite">Loading the form…</p>}>
            <ParameterForm parameters={template.definition.parameters ?? {}} values={values} onChange={setValues} />
          </Suspense>
          <button type="button" onClick={start}>
            Start from {chosen}
          </button>
        </>
      )}
      {error && <p role="alert" className="error">{error}</p>}
    </details>
  );
}

/** "Save as a template": the selected nodes (or the whole workflow) stored as a workflow template with
 * `POST /workflow-templates`; the REST view checks it, and its problems are shown. */
export function SaveAsTemplate({ organization, doc, selection }: { organization: string; doc: WorkflowDocument; selection: string[] }) {
  const [name, setName] = useState("");
  const [said, setSaid] = useState<{ text: string; alert?: boolean }>();
  const save = () => {
    const body = templateBody(doc, selection);
    sendJson<{ version: number }>("POST", "workflow-templates", { kind: "workflow_template", name, parameters: {}, body }, { query: { organization } })
      .then((saved) => setSaid({ text: `Saved workflow template ${name} (version ${saved.version}).` }))
      .catch((problem: Error) => setSaid({ alert: true, text: `Not saved: ${problemsText(problem)}` }));
  };
  const what = selection.length ? `the ${selection.length} selected node${selection.length > 1 ? "s" : ""}` : "the whole workflow";
  return (
    <details className="save-template">
      <summary>Save as a template</summary>
      <p className="note">
        Saves {what} and the connections between them. To select several nodes, Ctrl-click them (⌘-click
        on a Mac) or drag a box around them with Shift held.
      </p>
      <label>
        Template name <input value={name} placeholder="a-slug-like-this" onChange={(event) => setName(event.target.value)} />
      </label>{" "}
      <button type="button" onClick={save} disabled={!name}>
        Save {what} as a template
      </button>
      {said && (
        <p role={said.alert ? "alert" : "status"} className={said.alert ? "error" : "note"}>
          {said.text}
        </p>
      )}
    </details>
  );
}
