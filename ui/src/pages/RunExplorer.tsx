import { useEffect, useState } from "react";

import {
  definitionOf,
  getJson,
  postJson,
  type Page,
  type RunDetail,
  type TracedItem,
  type TraceNode,
  type WorkflowDocument,
} from "../api";
import { when } from "../format";
import { ItemPath, WorkflowNodes, workflowRun, type WorkflowRun } from "./WorkflowPath";

interface Props {
  dagId: string;
  runId: string;
}

type State = { detail?: RunDetail; error?: string; notOurs?: boolean; missing?: boolean };

/** How often the page looks again at a run that is not logged or not finished yet: every 3 s for the
 * first minute, then every 15 s, and not after 15 minutes (a waiting workflow can wait for days). */
export function nextLookIn(looks: number): number | null {
  if (looks < 20) return 3_000;
  if (looks < 20 + 56) return 15_000;
  return null;
}

/** One run of a rule or workflow: why each item matched or not, and what each action did. */
export function RunExplorer({ dagId, runId }: Props) {
  const owner = definitionOf(dagId);
  const [state, setState] = useState<State>({});
  const [reload, setReload] = useState(0);
  useEffect(() => {
    if (!owner || owner.kind === "report") return;
    let current = true;
    getJson<Page<RunDetail>>("logs", { organization: owner.organization, dag_id: dagId, run_id: runId, limit: "1" })
      .then(async (page) => {
        const found = page.items.find((run) => run.dag_id === dagId);
        if (!found) return current && setState({ missing: true });
        const detail = await getJson<RunDetail>(`logs/${found.id}`, { organization: owner.organization });
        if (current) setState({ detail });
      })
      .catch((error: Error) => current && setState({ error: error.message }));
    return () => {
      current = false;
    };
  }, [dagId, runId, owner?.organization, reload]);

  const unfinished = state.missing || state.detail?.status === "running";
  useEffect(() => {
    if (!unfinished) return;
    const delay = nextLookIn(reload);
    if (delay === null) return;
    const timer = window.setTimeout(() => setReload((n) => n + 1), delay);
    return () => window.clearTimeout(timer);
  }, [unfinished, reload]);

  if (!owner) {
    return (
      <p className="note">
        <code>{dagId}</code> is not an automation: the rule engine made no run of it.
      </p>
    );
  }
  if (owner.kind === "report") {
    return (
      <p className="note">
        Report {owner.name}: its runs, files and deliveries are on the{" "}
        <a href={`/dags/${encodeURIComponent(dagId)}/plugin/automation`} target="_top">
          report's Automation tab
        </a>
        .
      </p>
    );
  }
  if (state.error) return <p role="alert" className="error">{state.error}</p>;
  if (state.missing) {
    return (
      <p className="note">
        The automation log has no run <code>{runId}</code> of {owner.kind} {owner.name} yet (a run is logged
        when its evaluation starts). {nextLookIn(reload) === null ? "Reload the page to look again." : "This page looks again every few seconds."}
      </p>
    );
  }
  if (!state.detail) return <p aria-live="polite">Loading…</p>;
  return <RunView detail={state.detail} kind={owner.kind} organization={owner.organization} onChange={() => setReload((n) => n + 1)} />;
}

function RunView({
  detail,
  kind,
  organization,
  onChange,
}: {
  detail: RunDetail;
  kind: string;
  organization: string;
  onChange: () => void;
}) {
  const items = detail.trace?.rows ?? [];
  const workflow = useWorkflow(kind === "workflow" ? detail : undefined, organization);
  const airflowRun = `/dags/${encodeURIComponent(detail.dag_id)}/runs/${encodeURIComponent(detail.run_id)}`;
  return (
    <section aria-labelledby="run-title">
      <h1 id="run-title">
        {kind} {detail.rule_name}: run {detail.run_id}
      </h1>
      <dl className="facts">
        <dt>status</dt>
        <dd className={`status status-${detail.status}`}>{detail.status}</dd>
        <dt>trigger</dt>
        <dd>{detail.trigger_type}</dd>
        <dt>started</dt>
        <dd>{when(detail.started_at)}</dd>
        <dt>finished</dt>
        <dd>{detail.finished_at ? when(detail.finished_at) : "–"}</dd>
        <dt>items</dt>
        <dd>
          {detail.trace?.evaluated ?? "–"} tested, {detail.matched_count} matched
        </dd>
      </dl>
      <p>
        <a href={airflowRun} target="_top">
          Open this run in Airflow
        </a>
      </p>
      <Operations detail={detail} kind={kind} organization={organization} onChange={onChange} />
      {kind === "workflow" && (
        <>
          <h2>Path through the workflow</h2>
          {typeof workflow === "string" ? (
            <p className="note">{workflow}</p>
          ) : workflow ? (
            <WorkflowNodes run={workflow} evaluated={detail.trace?.evaluated} />
          ) : (
            <p aria-live="polite">Loading the workflow…</p>
          )}
        </>
      )}
      <h2>{kind === "workflow" ? "Nodes' results" : "Actions"}</h2>
      {detail.actions.length === 0 ? (
        <p>No action ran.</p>
      ) : (
        <table className="actions">
          <thead>
            <tr>
              <th scope="col">action</th>
              <th scope="col">status</th>
              <th scope="col">attempts</th>
              <th scope="col">output or error</th>
            </tr>
          </thead>
          <tbody>
            {detail.actions.map((action) => (
              <tr key={action.action_id}>
                <th scope="row">
                  <a href={`${airflowRun}/tasks/${encodeURIComponent(action.action_id)}`} target="_top">
                    {action.action_id}
                  </a>
                </th>
                <td className={`status status-${action.status}`}>{action.status}</td>
                <td>{action.attempts}</td>
                <td>{action.error ? <span className="error">{action.error}</span> : <code>{JSON.stringify(action.output)}</code>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Items ({items.length === (detail.trace?.evaluated ?? items.length) ? "all" : `first ${items.length}`})</h2>
      {items.length === 0 ? <p>No item was traced.</p> : <ul className="items">{items.map((item, i) => <Item key={i} item={item} workflow={typeof workflow === "string" ? undefined : workflow} />)}</ul>}
      <details>
        <summary>Trigger context</summary>
        <pre>{JSON.stringify(detail.trigger_context, null, 2)}</pre>
      </details>
    </section>
  );
}

function Operations({
  detail,
  kind,
  organization,
  onChange,
}: {
  detail: RunDetail;
  kind: string;
  organization: string;
  onChange: () => void;
}) {
  const [message, setMessage] = useState<string>();
  const failed = detail.actions.some((a) => a.status === "failed");
  const waiting = kind === "workflow" && detail.status === "running";
  if (!failed && !waiting) return null;
  const plural = `${kind}s`;
  const act = (what: "rerun" | "cancel") =>
    postJson(`${plural}/${encodeURIComponent(detail.rule_name)}/runs/${encodeURIComponent(detail.run_id)}/${what}`, {
      organization,
    })
      .then(() => {
        setMessage(what === "rerun" ? "The failed items run again." : "The run is cancelled.");
        onChange();
      })
      .catch((error: Error) => setMessage(error.message));
  return (
    <div className="operations">
      {failed && (
        <button type="button" onClick={() => act("rerun")}>
          Re-run the failed items
        </button>
      )}
      {waiting && (
        <button type="button" onClick={() => act("cancel")}>
          Cancel this run
        </button>
      )}
      {message && <p role="status">{message}</p>}
    </div>
  );
}

/** The workflow's graph as it is now, with this run's node results; a sentence when it cannot be read. */
function useWorkflow(detail: RunDetail | undefined, organization: string): WorkflowRun | string | undefined {
  const [found, setFound] = useState<WorkflowRun | string>();
  useEffect(() => {
    if (!detail) return;
    let current = true;
    getJson<WorkflowDocument>(`workflows/${encodeURIComponent(detail.rule_name)}`, { organization })
      .then((document) => current && setFound(workflowRun(document, detail.actions)))
      .catch((error: Error) => current && setFound(`The workflow's graph could not be read: ${error.message}`));
    return () => {
      current = false;
    };
  }, [detail, organization]);
  return found;
}

function Item({ item, workflow }: { item: TracedItem; workflow?: WorkflowRun }) {
  const label = item.key !== undefined ? JSON.stringify(item.key) : `event ${item.event_id}`;
  const verdict = item.ignored ? "ignored" : item.matched ? "matched" : "did not match";
  return (
    <li>
      <details open={item.matched}>
        <summary>
          <span aria-hidden="true">{item.ignored ? "–" : item.matched ? "✓" : "✗"}</span> {label}
          {item.operation ? ` (${item.operation})` : ""}: {verdict}
        </summary>
        {item.ignored && <p>{item.ignored}</p>}
        {workflow && item.matched && <ItemPath run={workflow} item={item} />}
        {item.node ? <ul className="tree">{<TraceNodeItem node={item.node} />}</ul> : !item.ignored && <p>No conditions: every item matches.</p>}
      </details>
    </li>
  );
}

/** One node of a condition trace (✓, ✗ or skipped, with the reason) and its children. */
export function TraceNodeItem({ node }: { node: TraceNode }) {
  const mark = node.skipped ? "skipped" : node.result ? "true" : "false";
  const symbol = node.skipped ? "·" : node.result ? "✓" : "✗";
  const text =
    node.kind === "condition"
      ? `${node.field} ${node.operator} ${JSON.stringify(node.expected)}${
          node.actual !== undefined && node.actual !== null ? ` (value ${JSON.stringify(node.actual)})` : ""
        }`
      : `${node.kind} of`;
  return (
    <li className={`node node-${mark}`}>
      <span aria-hidden="true">{symbol}</span> <span className="visually-hidden">{mark}:</span> {text}
      {node.reason ? <span className="reason"> — {node.reason}</span> : null}
      {node.children.length > 0 && (
        <ul>
          {node.children.map((child) => (
            <TraceNodeItem key={child.path} node={child} />
          ))}
        </ul>
      )}
    </li>
  );
}
