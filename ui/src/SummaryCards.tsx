import type { RunSummary } from "./api";
import { count, duration, percent } from "./format";

/** A run summary's headline figures: runs, match rate, success rate and p95 duration. */
export function SummaryCards({ summary }: { summary: RunSummary }) {
  const cards: [string, string][] = [
    ["Runs", count(summary.runs)],
    ["Match rate", percent(summary.match_rate)],
    ["Success rate", percent(summary.success_rate)],
    ["p95 duration", duration(summary.p95_ms)],
  ];
  return (
    <dl className="cards">
      {cards.map(([label, value]) => (
        <div key={label}>
          <dt>{label}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}
