"""Pure runtime helpers the Airflow operators delegate to: reading rows, the ledger, applying effects."""
