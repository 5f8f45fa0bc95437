import { useEffect, useRef } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

import type { SeriesPoint } from "./api";
import { count, when } from "./format";
import { everyBucket } from "./series";

const SERIES = [
  { key: "success", label: "success", stroke: "#1e7b34" },
  { key: "failed", label: "failed", stroke: "#c62828" },
  { key: "partial", label: "partial", stroke: "#b26a00" },
  { key: "no_match", label: "no match", stroke: "#6b7280" },
] as const;

/** Runs per bucket by outcome: a uPlot chart over the whole range, and the runs as a table for
 * screen readers. */
export function RunsChart({
  points,
  range,
  title,
}: {
  points: SeriesPoint[];
  range: { since: string; until: string; bucket: "hour" | "day" };
  title: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (!element || points.length === 0) return;
    const buckets = everyBucket(points, range);
    const data: uPlot.AlignedData = [
      buckets.map((b) => b.start / 1000),
      ...SERIES.map((s) => buckets.map((b) => b.counts[s.key])),
    ];
    const chart = new uPlot(
      {
        width: Math.max(280, element.clientWidth || 600),
        height: 220,
        series: [{}, ...SERIES.map((s) => ({ label: s.label, stroke: s.stroke, width: 2 }))],
        scales: { x: { time: true, range: [Date.parse(range.since) / 1000, Date.parse(range.until) / 1000] } },
        axes: [{}, { label: "runs" }],
      },
      data,
      element,
    );
    const resize = () => chart.setSize({ width: Math.max(280, element.clientWidth), height: 220 });
    window.addEventListener("resize", resize);
    return () => {
      window.removeEventListener("resize", resize);
      chart.destroy();
    };
  }, [points, range]);
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} aria-hidden="true" data-testid="runs-chart" />
      <table className="visually-hidden">
        <caption>{title}</caption>
        <thead>
          <tr>
            <th scope="col">from</th>
            {SERIES.map((s) => (
              <th scope="col" key={s.key}>
                {s.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {points.map((p) => (
            <tr key={p.start}>
              <th scope="row">{when(p.start)}</th>
              {SERIES.map((s) => (
                <td key={s.key}>{count(p[s.key])}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
