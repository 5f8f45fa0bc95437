-- Orders of the report's week (the run's data interval), per day: count and value.
-- Counted: every order created in the interval with a total of at least min_total, except cancelled
-- and void ones (the top-customers query of include/reports/weekly-sales.yaml counts the same orders).
-- The day is the UTC date of created_at (the demo database keeps UTC times; SQLite has no time zones).
-- DATE(x), not CAST(x AS DATE): SQLite casts to a number (2026), Postgres and SQLite both have DATE().
-- Days without orders have no row here; the chart draws them as 0 (`fill: daily`).
SELECT DATE(o.created_at) AS day,
       COUNT(*) AS orders,
       SUM(o.total) AS revenue
FROM orders AS o
WHERE o.created_at >= :data_interval_start
  AND o.created_at < :data_interval_end
  AND o.status NOT IN ('cancelled', 'void')
  AND o.total >= :min_total
GROUP BY DATE(o.created_at)
ORDER BY day
