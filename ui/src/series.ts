import type { SeriesPoint } from "./api";

export type Counts = Pick<SeriesPoint, "success" | "failed" | "partial" | "no_match">;
const ZERO: Counts = { success: 0, failed: 0, partial: 0, no_match: 0 };

/** Every bucket from ``since`` to ``until`` (the API lists only buckets with runs): zeros in between. */
export function everyBucket(
  points: SeriesPoint[],
  range: { since: string; until: string; bucket: "hour" | "day" },
): { start: number; counts: Counts }[] {
  const step = range.bucket === "hour" ? 3600_000 : 86_400_000;
  const byStart = new Map(points.map((p) => [Date.parse(p.start), p as Counts]));
  const buckets = [];
  for (let start = Date.parse(range.since); start < Date.parse(range.until); start += step) {
    buckets.push({ start, counts: byStart.get(start) ?? ZERO });
  }
  return buckets;
}
