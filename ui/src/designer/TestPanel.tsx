import { useState } from "react";

import { sendJson } from "../api";
import type { WorkflowDocument } from "./model";

export interface TestedNode {
  id: string;
  type: string;
  status: string;
  branch: string | null;
  summary: string;
}

interface TestResult {
  started: boolean;
  reason: string;
  nodes: TestedNode[];
  acted: string[];
  notes: string[];
}

interface Props {
  organization: string;
  name: string;
  saved: WorkflowDocument;
  changed: boolean;
  onTested: (nodes: TestedNode[] | undefined) => void;
}

/** An example event for the workflow's trigger: the table it watches or targets, its first operation. */
export function exampleEvent(doc: WorkflowDocument): string {
  const trigger = doc.nodes.find((node) => node.type === "trigger")?.trigger as
    | { table?: string; events?: string[]; target?: { table?: string } }
    | undefined;
  const table = trigger?.table ?? trigger?.target?.table ?? "orders";
  const operation = trigger?.events?.[0] ?? "created";
  return JSON.stringify({ table, operation, key: { id: 1 }, new: { id: 1 } }, null, 2);
}

/** The REST view's tester on the saved workflow: an example event walked through it, acting on nothing;
 * each node's step is drawn on the canvas (passed, failed, skipped) and listed here. */
export function TestPanel({ organization, name, saved, changed, onTested }: Props) {
  const [text, setText] = useState(() => exampleEvent(saved));
  const [result, setResult] = useState<TestResult>();
  const [error, setError] = useState<string>();

  const run = () => {
    let event: unknown;
    try {
      event = JSON.parse(text);
    } catch (problem) {
      setError(`The event is not JSON: ${(problem as Error).message}`);
      return;
    }
    sendJson<TestResult>("POST", `workflows/${encodeURIComponent(name)}/test`, { event }, { query: { organization } })
      .then((found) => {
        setError(undefined);
        setResult(found);
        onTested(found.nodes);
      })
      .catch((problem: Error) => {
        setResult(undefined);
        onTested(undefined);
        setError(problem.message);
      });
  };

  return (
    <section aria-labelledby="test-title">
      <h2 id="test-title">Test</h2>
      {changed && <p className="note">The tester runs the saved workflow: save your changes to test them.</p>}
      <label htmlFor="test-event">Example event (JSON)</label>
      <textarea id="test-event" rows={6} value={text} spellCheck={false} onChange={(e) => setText(e.target.value)} />
      <div className="operations">
        <button type="button" onClick={run}>
          Run the test
        </button>
        {result && (
          <button
            type="button"
            onClick={() => {
              setResult(undefined);
              onTested(undefined);
            }}
          >
            Clear the test
          </button>
        )}
      </div>
      {error && <p role="alert" className="error">{error}</p>}
      {result && (
        <>
          <p role="status">
            {result.started ? "The event starts a run" : "The event starts no run"}: {result.reason}
          </p>
          <ol className="tested" aria-label="each node's step">
            {result.nodes.map((node) => (
              <li key={node.id} className={`test-${node.status}`}>
                {node.id} ({node.type}): {node.status}
                {node.branch ? `, went ${node.branch}` : ""} — {node.summary}
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}
