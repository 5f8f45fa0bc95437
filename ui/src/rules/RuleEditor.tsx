import { lazy, Suspense, useCallback, useEffect, useState } from "react";

import { ApiError, getJson, sendJson } from "../api";
import { usePickers } from "../forms/pickers";
import type { TraceNode } from "../api";
import { TraceNodeItem } from "../pages/RunExplorer";
import { fromYaml, toYaml } from "./yamlText";

// react-jsonschema-form and the rule format's schema: a chunk of their own
const RuleForm = lazy(() => import("./RuleForm").then((module) => ({ default: module.RuleForm })));

/** How long the editor waits after a change before it asks the REST view to validate. */
export const VALIDATE_DELAY_MS = 400;

type Doc = Record<string, unknown>;
interface Stored {
  definition: Doc;
  etag: string;
  version: number;
}
interface Problem {
  path: string;
  message: string;
}
interface Version {
  version: number;
  actor: string;
  created_at: string;
}
interface Change {
  path: string;
  op: "added" | "removed" | "changed";
  before?: unknown;
  after?: unknown;
}
interface Tested {
  triggered: boolean;
  matched: boolean;
  reason: string;
  trace: { node?: TraceNode } | TraceNode | null;
  notes: string[];
}

export const NEW_RULE: Doc = {
  kind: "rule",
  name: "",
  trigger: { type: "manual", target: { connection: "app_db", table: "orders" } },
  conditions: { all: [{ field: "status", operator: "equals", value: "paid" }] },
  actions: [{ id: "flag", type: "update_record", connection: "app_db", table: "orders", values: { priority: "high" } }],
};

function tableOf(doc: Doc | undefined): string | undefined {
  const trigger = doc?.trigger as { table?: unknown; target?: { table?: unknown } } | undefined;
  const table = trigger?.table ?? trigger?.target?.table;
  return typeof table === "string" ? table : undefined;
}

function problemsOf(error: Error): Problem[] {
  return error instanceof ApiError ? (((error.body as { errors?: Problem[] } | undefined)?.errors ?? []) as Problem[]) : [];
}

/** The rule editor: a rule as a form generated from the format's JSON Schema and as YAML, side by side and
 * the same document; validated by the REST view as it changes; saved with If-Match; tested on an example
 * event; its versions compared and restored. */
export function RuleEditor({ organization, name, editable }: { organization: string; name: string; editable: boolean }) {
  const [stored, setStored] = useState<Stored>();
  const [doc, setDoc] = useState<Doc>();
  const [yaml, setYaml] = useState("");
  const [yamlError, setYamlError] = useState<string>();
  const [problems, setProblems] = useState<Problem[]>([]);
  const [message, setMessage] = useState<{ text: string; alert?: boolean }>();
  const pickers = usePickers(organization, tableOf(doc));

  const show = useCallback((next: Doc) => {
    setDoc(next);
    setYaml(toYaml(next));
    setYamlError(undefined);
  }, []);

  useEffect(() => {
    if (!name) return show(NEW_RULE);
    getJson<Stored>(`rules/${encodeURIComponent(name)}`, { organization })
      .then((found) => {
        setStored(found);
        show(found.definition);
      })
      .catch((problem: Error) => setMessage({ text: problem.message, alert: true }));
  }, [organization, name, show]);

  useEffect(() => {
    if (!doc || doc === stored?.definition) return setProblems([]);
    let current = true;
    const timer = setTimeout(() => {
      sendJson<{ valid: boolean; errors: Problem[] }>("POST", "rules/validate", doc, { query: { organization } })
        .then((answer) => current && setProblems(answer.errors))
        .catch((problem: Error) => current && setMessage({ text: problem.message, alert: true }));
    }, VALIDATE_DELAY_MS);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [doc, stored, organization]);

  const editYaml = (text: string) => {
    setYaml(text);
    const parsed = fromYaml(text);
    setYamlError(parsed.error);
    if (parsed.doc) setDoc(parsed.doc);
  };

  const save = () => {
    if (!doc) return;
    const request = stored
      ? sendJson<Stored>("PUT", `rules/${encodeURIComponent(name)}`, doc, { query: { organization }, headers: { "If-Match": stored.etag } })
      : sendJson<Stored>("POST", "rules", doc, { query: { organization } });
    request
      .then((saved) => {
        setStored(saved);
        show(saved.definition);
        setMessage({ text: `Saved as version ${saved.version}.` });
        if (!stored) {
          const url = new URL(window.location.href);
          url.searchParams.set("name", String(saved.definition.name));
          window.history.replaceState(null, "", url);
        }
      })
      .catch((problem: Error) => {
        if (problem instanceof ApiError && problem.status === 412) {
          setMessage({ alert: true, text: "Not saved: someone saved this rule after you opened it. Your changes are still here; reload the page to see theirs." });
        } else {
          setProblems(problemsOf(problem));
          setMessage({ alert: true, text: `Not saved: ${problem.message}` });
        }
      });
  };

  if (!doc) return message ? <p role="alert" className="error">{message.text}</p> : <p aria-live="polite">Loading…</p>;
  const changed = !stored || doc !== stored.definition;
  const savedName = stored ? String(stored.definition.name) : "";
  return (
    <section className="rule-editor" aria-labelledby="rule-title">
      <div className="toolbar">
        <h1 id="rule-title">
          {stored ? (
            <>
              Rule {savedName} <span className="kind">version {stored.version}{changed ? ", changed" : ""}</span>
            </>
          ) : (
            "New rule"
          )}
        </h1>
        {editable ? (
          <button type="button" onClick={save} disabled={!changed || Boolean(yamlError)}>
            Save
          </button>
        ) : (
          <p className="note">Read only: your role in {organization} does not change rules.</p>
        )}
      </div>
      {message && (
        <p role={message.alert ? "alert" : "status"} className={message.alert ? "error" : "note"}>
          {message.text}
        </p>
      )}
      {problems.length > 0 && (
        <ul className="problems" aria-label="problems of the rule">
          {problems.map((p, i) => (
            <li key={i} className="error">
              <code>{p.path}</code>: {p.message}
            </li>
          ))}
        </ul>
      )}
      <div className="editor-body">
        <div className="rule-form">
          <h2>Form</h2>
          <Suspense fallback={<p aria-live="polite">Loading the form…</p>}>
            <RuleForm doc={doc} editable={editable} pickers={pickers} onChange={show} />
          </Suspense>
        </div>
        <div className="rule-yaml">
          <h2>
            <label htmlFor="rule-yaml">Definition (YAML)</label>
          </h2>
          <textarea id="rule-yaml" rows={28} value={yaml} readOnly={!editable} spellCheck={false} onChange={(event) => editYaml(event.target.value)} />
          {yamlError && <p role="alert" className="error">Not YAML yet: {yamlError}</p>}
        </div>
      </div>
      {stored && <RuleTester organization={organization} name={savedName} changed={changed} table={tableOf(doc)} />}
      {stored && (
        <RuleVersions
          organization={organization}
          name={savedName}
          stored={stored}
          editable={editable}
          onRestored={(saved) => {
            setStored(saved);
            show(saved.definition);
            setMessage({ text: `Restored as version ${saved.version}.` });
          }}
          onError={(text) => setMessage({ text, alert: true })}
        />
      )}
    </section>
  );
}

function RuleTester({ organization, name, changed, table }: { organization: string; name: string; changed: boolean; table?: string }) {
  const [event, setEvent] = useState(() =>
    JSON.stringify({ table: table ?? "orders", operation: "created", key: { id: 1 }, new: { id: 1 } }, null, 1),
  );
  const [result, setResult] = useState<Tested>();
  const [error, setError] = useState<string>();
  const run = () => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(event);
    } catch (problem) {
      return setError(`Not JSON: ${(problem as Error).message}`);
    }
    setError(undefined);
    sendJson<Tested>("POST", `rules/${encodeURIComponent(name)}/test`, { event: parsed }, { query: { organization } })
      .then(setResult)
      .catch((problem: Error) => setError(problem.message));
  };
  const root = result?.trace && "node" in result.trace ? result.trace.node : (result?.trace as TraceNode | null | undefined);
  return (
    <section className="tester" aria-labelledby="rule-tester-title">
      <h2 id="rule-tester-title">Test the saved rule</h2>
      {changed && <p className="note">The test runs the saved version: save your changes to test them.</p>}
      <label htmlFor="rule-event">Example event (JSON)</label>
      <textarea id="rule-event" rows={5} value={event} spellCheck={false} onChange={(e) => setEvent(e.target.value)} />
      <button type="button" onClick={run}>
        Run the test
      </button>
      {error && <p role="alert" className="error">{error}</p>}
      {result && (
        <div role="status" className="note">
          {result.matched ? "The rule fires for this event." : `The rule does not fire: ${result.reason}`}
          {root ? <ul className="tree">{<TraceNodeItem node={root} />}</ul> : null}
          {result.notes.map((note, i) => (
            <p key={i}>{note}</p>
          ))}
        </div>
      )}
    </section>
  );
}

function RuleVersions({ organization, name, stored, editable, onRestored, onError }: {
  organization: string;
  name: string;
  stored: Stored;
  editable: boolean;
  onRestored: (saved: Stored) => void;
  onError: (text: string) => void;
}) {
  const [versions, setVersions] = useState<Version[]>([]);
  const [chosen, setChosen] = useState<number>();
  const [changes, setChanges] = useState<Change[]>();
  const path = `rules/${encodeURIComponent(name)}/versions`;
  useEffect(() => {
    getJson<Version[]>(path, { organization }).then(setVersions).catch((problem: Error) => onError(problem.message));
  }, [path, organization, stored.version]);
  useEffect(() => {
    setChanges(undefined);
    if (chosen === undefined) return;
    getJson<{ changes: Change[] }>(`${path}/${chosen}/diff/${stored.version}`, { organization })
      .then((diff) => setChanges(diff.changes))
      .catch((problem: Error) => onError(problem.message));
  }, [chosen, path, organization, stored.version]);
  const restore = () =>
    sendJson<Stored>("POST", `${path}/${chosen}/restore`, {}, { query: { organization }, headers: { "If-Match": stored.etag } })
      .then((saved) => {
        setChosen(undefined);
        onRestored(saved);
      })
      .catch((problem: Error) => onError(problem instanceof ApiError && problem.status === 412 ? "Not restored: someone saved this rule meanwhile; reload the page." : problem.message));
  const older = versions.filter((v) => v.version !== stored.version);
  if (!older.length) return null;
  return (
    <section className="versions" aria-labelledby="rule-versions-title">
      <h2 id="rule-versions-title">Versions</h2>
      <label>
        Compare with{" "}
        <select value={chosen ?? ""} onChange={(e) => setChosen(e.target.value ? Number(e.target.value) : undefined)}>
          <option value="">(none)</option>
          {older.map((v) => (
            <option key={v.version} value={v.version}>
              {v.version}
            </option>
          ))}
        </select>
      </label>
      {changes && (
        <ul className="diff" aria-label={`changes since version ${chosen}`}>
          {changes.length === 0 && <li>No change.</li>}
          {changes.map((c) => (
            <li key={c.path}>
              {c.op}: <code>{c.path}</code>
              {c.op !== "added" && <> was <code>{JSON.stringify(c.before)}</code></>}
              {c.op !== "removed" && <> is <code>{JSON.stringify(c.after)}</code></>}
            </li>
          ))}
        </ul>
      )}
      {editable && chosen !== undefined && (
        <button type="button" onClick={restore}>
          Restore version {chosen}
        </button>
      )}
    </section>
  );
}
