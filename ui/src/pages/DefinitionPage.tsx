import { useEffect, useState } from "react";

import { definitionOf, getJson, type DefinitionAnalytics, type Page, type RunSummaryRow } from "../api";
import { count, duration, when } from "../format";
import { RunsChart } from "../RunsChart";
import { SummaryCards } from "../SummaryCards";
import { ReportPanel } from "./ReportPanel";

const systemNow = () => new Date();

/** The "Automation" tab of a DAG: its rule's or workflow's last 30 days, its actions or nodes, and its
 * latest runs, each opening in the run explorer. */
export function DefinitionPage({ dagId, now = systemNow }: { dagId: string; now?: () => Date }) {
  const owner = definitionOf(dagId);
  const [state, setState] = useState<{ analytics?: DefinitionAnalytics; runs?: RunSummaryRow[]; error?: string }>({});
  useEffect(() => {
    if (!owner || owner.kind === "report") return;
    let current = true;
    const since = new Date(now().getTime() - 30 * 86_400_000).toISOString();
    const query = { organization: owner.organization };
    Promise.all([
      getJson<DefinitionAnalytics>(`analytics/${owner.kind}s/${encodeURIComponent(owner.name)}`, { ...query, since }),
      getJson<Page<RunSummaryRow>>("logs", { ...query, rule: owner.name, limit: "20" }),
    ])
      .then(([analytics, runs]) => {
        if (current) setState({ analytics, runs: runs.items.filter((run) => run.dag_id === dagId) });
      })
      .catch((error: Error) => current && setState({ error: error.message }));
    return () => {
      current = false;
    };
  }, [dagId, owner?.organization, owner?.name, owner?.kind, now]);

  if (!owner) {
    return (
      <p className="note">
        <code>{dagId}</code> is not an automation: it was not made from a rule, workflow or report.
      </p>
    );
  }
  if (owner.kind === "report") return <ReportPanel organization={owner.organization} name={owner.name} now={now} />;
  if (state.error) return <p role="alert" className="error">{state.error}</p>;
  const { analytics, runs } = state;
  if (!analytics || !runs) return <p aria-live="polite">Loading…</p>;
  const { summary } = analytics;
  return (
    <section aria-labelledby="definition-title">
      <h1 id="definition-title">
        {owner.kind} {owner.name} ({owner.organization}), last 30 days
      </h1>
      <SummaryCards summary={summary} />
      <RunsChart points={analytics.series} range={analytics.range} title="Runs per day by outcome" />
      <h2>{owner.kind === "workflow" ? "Nodes" : "Actions"}</h2>
      {analytics.steps.length === 0 ? (
        <p>None ran in this range.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">{owner.kind === "workflow" ? "node" : "action"}</th>
              <th scope="col">results</th>
              <th scope="col">failed</th>
              <th scope="col">retries</th>
              <th scope="col">p95</th>
            </tr>
          </thead>
          <tbody>
            {analytics.steps.map((s) => (
              <tr key={s.step}>
                <th scope="row">{s.step}</th>
                <td>{count(s.results)}</td>
                <td>{count(s.failed)}</td>
                <td>{count(s.retries)}</td>
                <td>{duration(s.p95_ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Latest runs</h2>
      {runs.length === 0 ? (
        <p>No run yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">run</th>
              <th scope="col">status</th>
              <th scope="col">matched</th>
              <th scope="col">started</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((run) => (
              <tr key={run.id}>
                <th scope="row">
                  <a
                    href={`/dags/${encodeURIComponent(run.dag_id)}/runs/${encodeURIComponent(run.run_id)}/plugin/automation-run`}
                    target="_top"
                  >
                    {run.run_id}
                  </a>
                </th>
                <td className={`status status-${run.status}`}>{run.status}</td>
                <td>{count(run.matched_count)}</td>
                <td>{when(run.started_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
