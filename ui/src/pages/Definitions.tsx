import { useEffect, useState } from "react";

import {
  ApiError,
  getJson,
  patchJson,
  type DefinitionBoard,
  type DefinitionCard,
  type DefinitionState,
  sendJson,
} from "../api";
import { count, percent, when } from "../format";
import { Sparkline } from "../Sparkline";

/** How many definitions one request brings (the API's most): an organization's whole list, usually. */
export const PAGE_SIZE = 1000;
const SEARCH_DELAY_MS = 250;
const STATE_LABELS: Record<DefinitionState, string> = {
  active: "active",
  paused: "paused",
  render_error: "render error",
};

interface Filters {
  q: string;
  kind: string;
  state: string;
}

/** Every rule, workflow and report of an organization: state, trigger, owner, last run and a 14-day
 * success-rate sparkline, with search and filters; editors activate and deactivate them. */
export function Definitions({ organization, editable }: { organization: string; editable: boolean }) {
  const [filters, setFilters] = useState<Filters>({ q: "", kind: "", state: "" });
  const [search, setSearch] = useState("");
  const [board, setBoard] = useState<DefinitionBoard>();
  const [error, setError] = useState<string>();
  const [message, setMessage] = useState<string>();
  const [started, setStarted] = useState<{ item: DefinitionCard; runId: string }>();
  const [reload, setReload] = useState(0);

  useEffect(() => {
    const timer = setTimeout(() => setFilters((f) => (f.q === search ? f : { ...f, q: search })), SEARCH_DELAY_MS);
    return () => clearTimeout(timer);
  }, [search]);

  useEffect(() => {
    let current = true;
    load(organization, filters, 0)
      .then((found) => {
        if (!current) return;
        setBoard(found);
        setError(undefined);
      })
      .catch((problem: Error) => current && setError(problem.message));
    return () => {
      current = false;
    };
  }, [organization, filters, reload]);

  const more = () =>
    board &&
    load(organization, filters, board.items.length)
      .then((found) => setBoard({ ...found, items: [...board.items, ...found.items] }))
      .catch((problem: Error) => setError(problem.message));

  const toggle = (item: DefinitionCard) =>
    patchJson(`${item.kind}s/${encodeURIComponent(item.name)}`, { active: !isOn(item) }, item.etag, { organization })
      .then(() => setMessage(`${item.kind} ${item.name} is ${isOn(item) ? "deactivated" : "activated"}.`))
      .catch((problem: Error) =>
        setMessage(
          problem instanceof ApiError && problem.status === 412
            ? `${item.kind} ${item.name} changed since this list was loaded: the list is reloaded, try again.`
            : problem.message,
        ),
      )
      .finally(() => setReload((n) => n + 1));

  const runNow = (item: DefinitionCard) =>
    sendJson<{ run_id: string }>("POST", `${item.kind}s/${encodeURIComponent(item.name)}/trigger`, {}, {
      query: { organization },
    })
      .then((run) => {
        setStarted({ item, runId: run.run_id });
        setMessage(`${item.kind} ${item.name}: run ${run.run_id} started.`);
      })
      .catch((problem: Error) => {
        setStarted(undefined);
        setMessage(`${item.kind} ${item.name} did not start: ${problem.message}`);
      });

  return (
    <section aria-labelledby="definitions-title">
      <h1 id="definitions-title">Definitions of {organization}</h1>
      <form className="filters" role="search" onSubmit={(event) => event.preventDefault()}>
        <label>
          Search{" "}
          <input
            type="search"
            value={search}
            placeholder="name, title, description or owner"
            onChange={(event) => setSearch(event.target.value)}
          />
        </label>
        <label>
          Kind{" "}
          <select value={filters.kind} onChange={(event) => setFilters({ ...filters, kind: event.target.value })}>
            <option value="">all kinds</option>
            <option value="rule">rules</option>
            <option value="workflow">workflows</option>
            <option value="report">reports</option>
          </select>
        </label>
        <label>
          State{" "}
          <select value={filters.state} onChange={(event) => setFilters({ ...filters, state: event.target.value })}>
            <option value="">all states</option>
            {(Object.keys(STATE_LABELS) as DefinitionState[]).map((state) => (
              <option key={state} value={state}>
                {STATE_LABELS[state]}
                {board ? ` (${board.states[state]})` : ""}
              </option>
            ))}
          </select>
        </label>
      </form>
      {editable && (
        <p>
          <a href={`?page=designer&organization=${encodeURIComponent(organization)}`}>New workflow in the designer</a> ·{" "}
          <a href={`?page=rule&organization=${encodeURIComponent(organization)}`}>New rule in the editor</a>
        </p>
      )}
      <p role="status" className="note">
        {message ?? (board ? `${count(board.total)} match, ${count(board.items.length)} shown.` : "")}
        {started && started.item.kind !== "report" && (
          <>
            {" "}
            <a
              href={`?page=run&dag_id=${encodeURIComponent(started.item.dag_id)}&run_id=${encodeURIComponent(started.runId)}`}
            >
              Open the run
            </a>
          </>
        )}
      </p>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {!error && !board && <p aria-live="polite">Loading…</p>}
      {board && board.items.length === 0 && <p>No definition matches.</p>}
      {board && board.items.length > 0 && (
        <table className="definitions">
          <caption className="visually-hidden">Definitions, their state and recent runs</caption>
          <thead>
            <tr>
              <th scope="col">Definition</th>
              <th scope="col">State</th>
              <th scope="col">Trigger</th>
              <th scope="col">Owner</th>
              <th scope="col">Last run</th>
              <th scope="col">Last 14 days</th>
              {editable && <th scope="col">Change</th>}
            </tr>
          </thead>
          <tbody>
            {board.items.map((item) => (
              <Row key={`${item.kind}/${item.name}`} item={item} organization={organization} editable={editable} onToggle={toggle} onRun={runNow} />
            ))}
          </tbody>
        </table>
      )}
      {board?.has_more && (
        <button type="button" onClick={more}>
          Show more
        </button>
      )}
    </section>
  );
}

/** Whether the definition runs (or would, but for its render error): its button deactivates it. A DAG
 * paused in Airflow but active in the store is off: activating it unpauses the DAG. */
function isOn(item: DefinitionCard): boolean {
  return item.state === "active" || (item.state === "render_error" && item.active);
}

function load(organization: string, filters: Filters, offset: number): Promise<DefinitionBoard> {
  return getJson<DefinitionBoard>("definitions", {
    organization,
    q: filters.q.trim(),
    kind: filters.kind,
    state: filters.state,
    limit: String(PAGE_SIZE),
    offset: String(offset),
  });
}

function Row({
  item,
  organization,
  editable,
  onToggle,
  onRun,
}: {
  item: DefinitionCard;
  organization: string;
  editable: boolean;
  onToggle: (item: DefinitionCard) => void;
  onRun: (item: DefinitionCard) => void;
}) {
  const tab = `?page=definition&dag_id=${encodeURIComponent(item.dag_id)}`;
  const run = item.last_run;
  return (
    <tr>
      <th scope="row">
        <a href={tab}>{item.title}</a> <span className="kind">{item.kind}</span>
        {item.title !== item.name && (
          <>
            {" "}
            <code>{item.name}</code>
          </>
        )}
        {item.description && <div className="description">{item.description}</div>}
        {item.kind === "rule" && (
          <div>
            <a href={`?page=rule&name=${encodeURIComponent(item.name)}&organization=${encodeURIComponent(organization)}`}>
              {editable ? "Edit" : "View"} in the rule editor<span className="visually-hidden"> ({item.name})</span>
            </a>
          </div>
        )}
        {item.kind === "workflow" && (
          <div>
            <a href={`?page=designer&name=${encodeURIComponent(item.name)}&organization=${encodeURIComponent(organization)}`}>
              {editable ? "Edit" : "View"} in the designer<span className="visually-hidden"> ({item.name})</span>
            </a>
          </div>
        )}
      </th>
      <td>
        <span className={`state state-${item.state}`}>{STATE_LABELS[item.state]}</span>
        {item.render_error && <div className="error">{item.render_error}</div>}
      </td>
      <td>{item.trigger}</td>
      <td>{item.owner ?? "–"}</td>
      <td>
        {run ? (
          <>
            {item.kind === "report" ? (
              <span className={`status status-${run.status}`}>{run.status}</span>
            ) : (
              <a
                href={`?page=run&dag_id=${encodeURIComponent(item.dag_id)}&run_id=${encodeURIComponent(run.run_id)}`}
                className={`status status-${run.status}`}
              >
                {run.status}
              </a>
            )}{" "}
            <span className="when">{when(run.started_at)}</span>
          </>
        ) : (
          "never"
        )}
      </td>
      <td className="trend">
        <Sparkline days={item.days} />{" "}
        <span>{item.runs === 0 ? "no runs" : `${percent(item.success_rate)} of ${count(item.runs)}`}</span>
      </td>
      {editable && (
        <td>
          <div className="row-actions">
          <button
            type="button"
            onClick={() => onToggle(item)}
            aria-label={`${isOn(item) ? "Deactivate" : "Activate"} ${item.kind} ${item.name}`}
          >
            {isOn(item) ? "Deactivate" : "Activate"}
          </button>
          {item.state === "active" && (
            <button type="button" onClick={() => onRun(item)} aria-label={`Run now: ${item.kind} ${item.name}`}>
              Run now
            </button>
          )}
          </div>
        </td>
      )}
    </tr>
  );
}
