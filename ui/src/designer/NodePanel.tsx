import { lazy, Suspense, useEffect, useState } from "react";

import type { Pickers } from "../forms/pickers";
import { branchesOf, connections, type Connection, type Problem, type WorkflowDocument, type WorkflowNode } from "./model";

// the forms (react-jsonschema-form and the format's schema) load when a node is first opened, not with the canvas
const NodeForm = lazy(() => import("./NodeForm").then((module) => ({ default: module.NodeForm })));

interface Props {
  doc: WorkflowDocument;
  node: WorkflowNode;
  editable: boolean;
  problems: Problem[];
  pickers: Pickers;
  onReplace: (fields: Record<string, unknown>) => void;
  onConnect: (to: string, when?: string) => void;
  onDisconnect: (edge: Connection) => void;
  onRemove: () => void;
}

/** The selected node: its problems, its fields (as a form, and as JSON: the same document), and its
 * connections, which the keyboard can make and remove here (the canvas connects by dragging only). */
export function NodePanel({ doc, node, editable, problems, pickers, onReplace, onConnect, onDisconnect, onRemove }: Props) {
  const { id, type, position, ...fields } = node;
  void position;
  const [text, setText] = useState(() => JSON.stringify(fields, null, 2));
  const [parseError, setParseError] = useState<string>();
  const others = doc.nodes.filter((other) => other.id !== id);
  const branches = branchesOf(type);
  const [target, setTarget] = useState(others[0]?.id ?? "");
  const [when, setWhen] = useState(branches[0] ?? "");
  useEffect(() => {
    setText(JSON.stringify(fields, null, 2));
    setParseError(undefined);
    // a new selection, or the node changed elsewhere: show the node as the document has it
  }, [id, JSON.stringify(fields)]);

  const apply = () => {
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("give a JSON object");
      setParseError(undefined);
      onReplace(parsed as Record<string, unknown>);
    } catch (error) {
      setParseError(`Not applied: ${(error as Error).message}`);
    }
  };
  const outgoing = connections(doc).filter((c) => c.from === id);

  return (
    <section className="node-panel" aria-labelledby="node-panel-title">
      <h2 id="node-panel-title">
        {type} node <code>{id}</code>
      </h2>
      {problems.length > 0 && (
        <ul className="problems" aria-label={`problems of node ${id}`}>
          {problems.map((p, i) => (
            <li key={i} className="error">
              <code>{p.path}</code>: {p.message}
            </li>
          ))}
        </ul>
      )}
      <h3>Configuration</h3>
      <Suspense fallback={<p aria-live="polite">Loading the form…</p>}>
        <NodeForm node={node} editable={editable} pickers={pickers} onChange={onReplace} />
      </Suspense>
      <label htmlFor="node-fields">Configuration (JSON)</label>
      <textarea
        id="node-fields"
        rows={10}
        value={text}
        readOnly={!editable}
        spellCheck={false}
        onChange={(event) => setText(event.target.value)}
      />
      {parseError && <p role="alert" className="error">{parseError}</p>}
      {editable && (
        <div className="operations">
          <button type="button" onClick={apply}>
            Apply to {id}
          </button>
          <button type="button" onClick={onRemove}>
            Remove node {id}
          </button>
        </div>
      )}
      <h3>Connections out of {id}</h3>
      {outgoing.length === 0 ? (
        <p>None.</p>
      ) : (
        <ul>
          {outgoing.map((c) => (
            <li key={`${c.to}:${c.when ?? ""}`}>
              to <code>{c.to}</code>
              {c.when ? ` when ${c.when}` : ""}{" "}
              {editable && (
                <button type="button" onClick={() => onDisconnect(c)} aria-label={`Disconnect ${id} from ${c.to}${c.when ? ` (${c.when})` : ""}`}>
                  Disconnect
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {editable && others.length > 0 && (
        <form
          className="connect-form"
          onSubmit={(event) => {
            event.preventDefault();
            onConnect(target, branches.length ? when : undefined);
          }}
        >
          <label>
            Connect to{" "}
            <select value={target} onChange={(event) => setTarget(event.target.value)}>
              {others.map((other) => (
                <option key={other.id} value={other.id}>
                  {other.id}
                </option>
              ))}
            </select>
          </label>
          {branches.length > 0 && (
            <label>
              when{" "}
              <select value={when} onChange={(event) => setWhen(event.target.value)}>
                {branches.map((branch) => (
                  <option key={branch}>{branch}</option>
                ))}
              </select>
            </label>
          )}
          <button type="submit">Connect</button>
        </form>
      )}
    </section>
  );
}
