-- Orders of the report's week (the run's data interval), per day: count and revenue.
-- DATE(x), not CAST(x AS DATE): SQLite casts to a number (2026), Postgres and SQLite both have DATE().
SELECT DATE(o.created_at) AS day,
       COUNT(*) AS orders,
       SUM(o.total) AS revenue
FROM orders AS o
WHERE o.created_at >= :data_interval_start
  AND o.created_at < :data_interval_end
  AND o.status <> 'cancelled'
  AND o.total >= :min_total
GROUP BY DATE(o.created_at)
ORDER BY day
