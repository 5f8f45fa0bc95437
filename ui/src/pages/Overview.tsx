import { useEffect, useState } from "react";

import { getJson, type HealthReport, type OrganizationAnalytics } from "../api";
import { count, duration, percent, when } from "../format";
import { RunsChart } from "../RunsChart";
import { SummaryCards } from "../SummaryCards";

/** The time ranges the overview offers: how far back, and the series' bucket. */
export const RANGES = {
  "24h": { label: "last 24 hours", hours: 24, bucket: "hour" },
  "7d": { label: "last 7 days", hours: 24 * 7, bucket: "hour" },
  "30d": { label: "last 30 days", hours: 24 * 30, bucket: "day" },
} as const;
export type RangeKey = keyof typeof RANGES;

interface State {
  analytics?: OrganizationAnalytics;
  health?: HealthReport;
  error?: string;
}

/** An organization's runs, rates, durations, top errors and event consumer lag over a time range. */
const systemNow = () => new Date();

export function Overview({ organization, now = systemNow }: { organization: string; now?: () => Date }) {
  const [range, setRange] = useState<RangeKey>("7d");
  const [state, setState] = useState<State>({});
  useEffect(() => {
    let current = true;
    const { hours, bucket } = RANGES[range];
    const since = new Date(now().getTime() - hours * 3600_000).toISOString();
    setState({});
    Promise.all([
      getJson<OrganizationAnalytics>("analytics", { organization, since, bucket }),
      getJson<HealthReport>("health", { organization }),
    ])
      .then(([analytics, health]) => current && setState({ analytics, health }))
      .catch((error: Error) => current && setState({ error: error.message }));
    return () => {
      current = false;
    };
  }, [organization, range, now]);

  return (
    <section aria-labelledby="overview-title">
      <div className="toolbar">
        <h1 id="overview-title">Overview of {organization}</h1>
        <label>
          Time range{" "}
          <select value={range} onChange={(event) => setRange(event.target.value as RangeKey)}>
            {Object.entries(RANGES).map(([key, value]) => (
              <option key={key} value={key}>
                {value.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      {state.error && (
        <p role="alert" className="error">
          {state.error}
        </p>
      )}
      {!state.error && !state.analytics && <p aria-live="polite">Loading…</p>}
      {state.analytics && <Figures analytics={state.analytics} health={state.health} />}
    </section>
  );
}

function Figures({ analytics, health }: { analytics: OrganizationAnalytics; health?: HealthReport }) {
  const { summary } = analytics;
  return (
    <>
      <SummaryCards summary={summary} />
      <RunsChart
        points={analytics.series}
        range={analytics.range}
        title={`Runs per ${analytics.range.bucket} by outcome`}
      />
      <h2>Rules and workflows</h2>
      {analytics.definitions.length === 0 ? (
        <p>No run in this range.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">kind</th>
              <th scope="col">name</th>
              <th scope="col">runs</th>
              <th scope="col">success rate</th>
              <th scope="col">p95</th>
            </tr>
          </thead>
          <tbody>
            {analytics.definitions.map((d) => (
              <tr key={`${d.kind}/${d.name}`}>
                <td>{d.kind}</td>
                <th scope="row">{d.name}</th>
                <td>{count(d.summary.runs)}</td>
                <td>{percent(d.summary.success_rate)}</td>
                <td>{duration(d.summary.p95_ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Top errors</h2>
      {analytics.errors.length === 0 ? (
        <p>No failed action in this range.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">error</th>
              <th scope="col">where</th>
              <th scope="col">count</th>
              <th scope="col">last seen</th>
            </tr>
          </thead>
          <tbody>
            {analytics.errors.map((e) => (
              <tr key={`${e.kind}/${e.name}/${e.step}/${e.error_class}`}>
                <th scope="row">{e.error_class}</th>
                <td>
                  {e.kind} {e.name} → {e.step}
                </td>
                <td>{count(e.count)}</td>
                <td>{when(e.last_seen)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Event consumers</h2>
      {!health || health.consumers.length === 0 ? (
        <p>No active event rule.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">table</th>
              <th scope="col">status</th>
              <th scope="col">pending</th>
              <th scope="col">oldest pending</th>
            </tr>
          </thead>
          <tbody>
            {health.consumers.map((c) => (
              <tr key={c.consumer + c.connection}>
                <th scope="row">
                  {c.connection}.{c.table}
                </th>
                <td>{c.status}</td>
                <td>{c.pending === null ? "–" : `${count(c.pending)}${c.pending_capped ? "+" : ""}`}</td>
                <td>{c.oldest_pending_age_seconds === null ? "–" : duration(c.oldest_pending_age_seconds * 1000)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
