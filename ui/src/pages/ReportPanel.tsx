import { useEffect, useState } from "react";

import { getJson, type Page, type ReportAnalytics, type ReportRun } from "../api";
import { count, duration, when } from "../format";

const systemNow = () => new Date();

/** A report's "Automation" tab: its last 30 days (runs by status, durations, file sizes, deliveries) and
 * its latest runs with their files, deliveries and errors, each linking to the run in Airflow. */
export function ReportPanel({
  organization,
  name,
  now = systemNow,
}: {
  organization: string;
  name: string;
  now?: () => Date;
}) {
  const [state, setState] = useState<{ analytics?: ReportAnalytics; runs?: ReportRun[]; error?: string }>({});
  useEffect(() => {
    let current = true;
    const since = new Date(now().getTime() - 30 * 86_400_000).toISOString();
    Promise.all([
      getJson<ReportAnalytics>("analytics/reports", { organization, report: name, since }),
      getJson<Page<ReportRun>>(`reports/${encodeURIComponent(name)}/runs`, { organization, limit: "20" }),
    ])
      .then(([analytics, runs]) => current && setState({ analytics, runs: runs.items }))
      .catch((error: Error) => current && setState({ error: error.message }));
    return () => {
      current = false;
    };
  }, [organization, name, now]);

  if (state.error) return <p role="alert" className="error">{state.error}</p>;
  const { analytics, runs } = state;
  if (!analytics || !runs) return <p aria-live="polite">Loading…</p>;
  const { summary } = analytics;
  const sent = summary.deliveries_by_status.sent ?? 0;
  return (
    <section aria-labelledby="report-title">
      <h1 id="report-title">
        report {name} ({organization}), last 30 days
      </h1>
      <dl className="cards">
        <div>
          <dt>Runs</dt>
          <dd>{count(summary.runs)}</dd>
        </div>
        <div>
          <dt>Succeeded</dt>
          <dd>{count(summary.by_status.success ?? 0)}</dd>
        </div>
        <div>
          <dt>p95 duration</dt>
          <dd>{duration(summary.p95_ms)}</dd>
        </div>
        <div>
          <dt>Deliveries sent</dt>
          <dd>
            {count(sent)} of {count(summary.deliveries)}
          </dd>
        </div>
      </dl>
      <h2>Latest runs</h2>
      {runs.length === 0 ? (
        <p>No run yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">run</th>
              <th scope="col">status</th>
              <th scope="col">interval</th>
              <th scope="col">files</th>
              <th scope="col">deliveries</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((run) => (
              <tr key={run.id}>
                <th scope="row">
                  <a href={`/dags/${encodeURIComponent(run.dag_id)}/runs/${encodeURIComponent(run.run_id)}`} target="_top">
                    {run.run_id}
                  </a>
                </th>
                <td>
                  <span className={`status status-${run.status}`}>{run.status}</span>
                  {run.error && <div className="error">{run.error}</div>}
                </td>
                <td>
                  {when(run.interval_start)} – {when(run.interval_end)}
                </td>
                <td>{Object.keys(run.files).join(", ") || "–"}</td>
                <td>
                  {run.deliveries.length === 0
                    ? "–"
                    : run.deliveries.map((d) => `${d.type} ${d.status}`).join(", ")}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
