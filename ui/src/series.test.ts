import { describe, expect, it } from "vitest";

import { everyBucket } from "./series";

describe("everyBucket", () => {
  it("lists every bucket of the range, with zeros where the API listed none", () => {
    const point = { start: "2026-12-03T02:00:00+00:00", success: 3, failed: 1, partial: 0, no_match: 2 };
    const buckets = everyBucket([point as never], {
      since: "2026-12-03T00:00:00+00:00",
      until: "2026-12-03T04:00:00+00:00",
      bucket: "hour",
    });
    expect(buckets.map((b) => new Date(b.start).toISOString().slice(11, 13))).toEqual(["00", "01", "02", "03"]);
    expect(buckets.map((b) => b.counts.success)).toEqual([0, 0, 3, 0]);
    expect(buckets[2].counts.no_match).toBe(2);
  });
});
