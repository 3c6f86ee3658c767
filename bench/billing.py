"""Benchmarks 1-5: reconciliation (full, idempotent rerun, incremental), building drafts and
posting them, each against the physical floor of the same work: one hand-written SQL statement."""

import os
import statistics

from .runner import Bench, Measurement

BUILD_PERIOD = "2025-06-01"
INCREMENTAL_EDITS = 1000

# Benchmark 1's floor: every item row of the contracts without a timebank, as the product writes
# it (key, description, rounded quantity, rate card, total, period in the client's zone), in one
# INSERT ... SELECT. Timebank contracts are left out: their allocation is ordered, stateful work.
RECONCILE_FLOOR = """
INSERT INTO billing_billingitem (source_key, source_type, source_id, source_date, client_id, contract_id, project_id,
    ticket_id, description, qty, unit_price, total, currency, vat_rate, status, period_month, period_start,
    period_end, void_reason, created_at, updated_at)
WITH contracts AS (
    SELECT c.id, c.client_id, c.name, c.valid_from, c.valid_to, c.hourly_rate, c.monthly_fee, c.rounding_minutes,
           cl.currency, cl.vat_rate, cl.time_zone
    FROM billing_contract c JOIN billing_client cl ON cl.id = c.client_id
    WHERE c.timebank_hours IS NULL),
lines AS (
    SELECT 'ticket_time:' || te.id AS source_key, 'ticket_time' AS source_type, te.id AS source_id,
           te.work_date AS source_date, c.client_id, c.id AS contract_id, p.id AS project_id, t.id AS ticket_id,
           p.key || '-' || t.number || ' ' || t.title || ' — ' || upper(left(te.activity, 1))
               || replace(substr(te.activity, 2), '_', ' ')
               || CASE WHEN te.description <> '' THEN ': ' || te.description ELSE '' END AS description,
           round(CASE WHEN c.rounding_minutes IS NULL THEN te.minutes
                      ELSE ceil(te.minutes::numeric / c.rounding_minutes) * c.rounding_minutes END / 60.0, 4) AS qty,
           coalesce(r.hourly_rate, c.hourly_rate) AS unit_price, c.currency, c.vat_rate, c.time_zone
    FROM tickets_timeentry te
    JOIN tickets_ticket t ON t.id = te.ticket_id
    JOIN tickets_project p ON p.id = t.project_id
    JOIN billing_contractproject cp ON cp.project_id = p.id
    JOIN contracts c ON c.id = cp.contract_id AND te.work_date >= c.valid_from
                    AND (c.valid_to IS NULL OR te.work_date <= c.valid_to)
    LEFT JOIN billing_contractrate r ON r.contract_id = c.id AND r.activity = te.activity
    WHERE te.billable
    UNION ALL
    SELECT 'expense:' || e.id, 'expense', e.id, e.date, c.client_id, c.id, p.id, t.id,
           p.key || '-' || t.number || ' ' || t.title || ' — ' || e.description, 1, e.amount, c.currency, c.vat_rate,
           c.time_zone
    FROM tickets_expense e
    JOIN tickets_ticket t ON t.id = e.ticket_id
    JOIN tickets_project p ON p.id = t.project_id
    JOIN billing_contractproject cp ON cp.project_id = p.id
    JOIN contracts c ON c.id = cp.contract_id AND e.date >= c.valid_from
                    AND (c.valid_to IS NULL OR e.date <= c.valid_to)
    WHERE e.billable AND e.currency = c.currency
    UNION ALL
    SELECT 'contract_period:' || c.id || ':' || to_char(m, 'YYYY-MM'), 'contract_period', c.id, m::date, c.client_id,
           c.id, NULL, NULL, c.name || ' — monthly fee ' || to_char(m, 'YYYY-MM'), 1, c.monthly_fee, c.currency,
           c.vat_rate, c.time_zone
    FROM contracts c
    CROSS JOIN LATERAL generate_series(date_trunc('month', c.valid_from),
                                       date_trunc('month', least(coalesce(c.valid_to, current_date), current_date)),
                                       interval '1 month') AS m
    WHERE c.monthly_fee > 0
    UNION ALL
    SELECT 'sales_order:' || s.id, 'sales_order', s.id, s.date, s.client_id, s.contract_id, s.project_id, NULL,
           s.description, s.qty, s.unit_price, c.currency, c.vat_rate, c.time_zone
    FROM billing_salesline s JOIN contracts c ON c.id = s.contract_id AND c.client_id = s.client_id)
SELECT source_key, source_type, source_id, source_date, client_id, contract_id, project_id, ticket_id,
       left(description, 500), qty, unit_price, round(qty * unit_price, 2), currency, vat_rate, 'pending',
       date_trunc('month', source_date)::date,
       date_trunc('month', source_date)::timestamp AT TIME ZONE time_zone,
       (date_trunc('month', source_date) + interval '1 month' - interval '1 second')::timestamp AT TIME ZONE time_zone,
       '', now(), now()
FROM lines
"""

# The rows both sides must agree on: the items of the contracts without a timebank.
FLOOR_ROWS_DIGEST = """
SELECT count(*), md5(string_agg(concat_ws('|', source_key, source_type, source_id, source_date, client_id, contract_id,
                                          project_id, ticket_id, description, qty, unit_price, total, currency,
                                          vat_rate, period_month, period_start, period_end),
                                ',' ORDER BY source_key))
FROM billing_billingitem
WHERE status = 'pending' AND contract_id IN (SELECT id FROM billing_contract WHERE timebank_hours IS NULL)
"""

ITEM_ROWS_WRITTEN = "SELECT count(*) FROM billing_billingitem WHERE xmin::text::bigint > %(xid)s"

BUILD_FLOOR = """
UPDATE billing_billingitem SET status = 'reserved', updated_at = now()
WHERE status = 'pending' AND period_month = %(period)s
  AND client_id IN (SELECT id FROM billing_client WHERE is_active)
"""

# Posting's floor: number every draft gaplessly in one statement, total it from its lines (VAT
# rounded per line) and mark the lines invoiced.
POST_FLOOR = ["""
UPDATE billing_billingitem SET status = 'invoiced', updated_at = now()
WHERE status = 'reserved' AND invoice_id IN (SELECT id FROM billing_invoice WHERE status = 'draft')
""", """
WITH numbered AS (
    SELECT id, row_number() OVER (ORDER BY id) AS sequence FROM billing_invoice WHERE status = 'draft'),
totals AS (
    SELECT invoice_id, sum(total) AS net, sum(round(total * vat_rate, 2)) AS vat
    FROM billing_billingitem WHERE invoice_id IN (SELECT id FROM numbered) GROUP BY invoice_id)
UPDATE billing_invoice i
SET status = 'posted', series = '', year = 2026, sequence = n.sequence,
    number = '2026-' || lpad(n.sequence::text, 4, '0'), net = t.net, vat = t.vat, gross = t.net + t.vat,
    posted_at = now()
FROM numbered n JOIN totals t ON t.invoice_id = n.id
WHERE i.id = n.id
"""]


def _xid(database: str) -> int:
    return Bench.query(database, "SELECT txid_current()")[0][0]


def full_reconciliation(bench: Bench) -> tuple[Measurement, Measurement]:
    """Benchmark 1 and 2: everything from nothing, then again with nothing changed, with one
    worker process per core (`manage.py recalculate_billing --workers N`). The last full run's
    database becomes the reconciled template the later benchmarks copy."""
    workers = os.cpu_count() or 1
    full, peaks, reports = [], [], []
    for index in range(bench.runs):
        keep = index == bench.runs - 1
        with bench.copy_of(bench.source_db, keep=keep) as database:
            report = bench.worker("reconcile_all", database, workers=workers)
            full.append(report["seconds"])
            peaks.append(report["peak_rss_mb"])
            reports.append(report["result"])
            product_digest = bench.query(database, FLOOR_ROWS_DIGEST)[0]
        if keep:
            bench.keep_as_reconciled(database)
    with bench.copy_of(bench.source_db) as database:
        one_worker = bench.worker("reconcile_all", database, workers=1)["seconds"]
    floor, floor_digest = [], None
    for _ in range(bench.runs):
        with bench.copy_of(bench.source_db) as database:
            floor.append(bench.timed_sql(database, [RECONCILE_FLOOR])[0])
            floor_digest = bench.query(database, FLOOR_ROWS_DIGEST)[0]
    reconcile = Measurement(
        key="reconcile_full", title="Full reconciliation of everything → items", unit="s", values=full, baseline=floor,
        baseline_title="one INSERT … SELECT of the same rows (contracts without a timebank)",
        target="≤ 2× the floor; worker peak RSS ≤ 512 MB", ratio_bound=2.0,
        extra={"workers": workers, "one_worker_s": round(one_worker, 2),
               "one_worker_ratio": round(one_worker / statistics.median(floor), 2),
               "items_created": reports[-1]["created"], "unmatched": reports[-1]["unmatched"],
               "floor_rows": floor_digest[0], "peak_rss_mb": max(peaks),
               "checks": {"same_rows_as_floor": product_digest == floor_digest,
                          "peak_rss_within_512mb": max(peaks) <= 512}})
    return reconcile, idempotent_rerun(bench, full, workers)


def idempotent_rerun(bench: Bench, full: list[float], workers: int) -> Measurement:
    reruns, written, created = [], [], []
    for _ in range(bench.runs):
        with bench.copy_of(bench.reconciled_db) as database:
            xid = _xid(database)
            report = bench.worker("reconcile_all", database, workers=workers)
            reruns.append(report["seconds"])
            created.append(report["result"]["created"] + report["result"]["superseded"])
            written.append(bench.query(database, ITEM_ROWS_WRITTEN, {"xid": xid})[0][0])
    return Measurement(
        key="reconcile_rerun", title="Idempotent rerun, nothing changed", unit="s", values=reruns, baseline=full,
        baseline_title="the full reconciliation (benchmark 1)", target="zero rows written, ≤ 25 % of the full run",
        ratio_bound=0.25, extra={"item_rows_written": max(written),
                                 "checks": {"zero_item_rows_written": max(written) == 0 and max(created) == 0}})


def incremental(bench: Bench, full: list[float]) -> Measurement:
    seconds, reports = [], []
    for index in range(bench.runs):
        with bench.copy_of(bench.reconciled_db) as database:
            report = bench.worker("incremental", database, edits=INCREMENTAL_EDITS, seed=bench.seed + index)
            seconds.append(report["seconds"])
            reports.append(report["result"])
    edits = reports[-1]["edits"]
    return Measurement(
        key="reconcile_incremental", title=f"Incremental reconciliation after editing {edits} time entries", unit="s",
        values=seconds, baseline=full, baseline_title="the full reconciliation (benchmark 1)",
        target="cost proportional to the edits, not to the dataset (per-edit cost compared across scales)",
        extra={"edits": edits, "ms_per_edit": 1000 * min(seconds) / max(edits, 1),
               "checks": {"every_request_done": all(r["requests_left"] == 0 for r in reports)}})


def build_and_post(bench: Bench) -> tuple[Measurement, Measurement]:
    build_args = {"period": BUILD_PERIOD, "include_prior_periods": False}
    builds, build_reports, posts, post_reports = [], [], [], []
    for _ in range(bench.runs):
        with bench.copy_of(bench.reconciled_db) as database:
            report = bench.worker("build", database, **build_args)
            builds.append(report["seconds"])
            build_reports.append(report["result"])
        with bench.copy_of(bench.reconciled_db) as database:
            report = bench.worker("post", database, **build_args)
            posts.append(report["result"]["invoices"] / report["seconds"])
            post_reports.append(report["result"])
    build_floor, post_floor, reserved = [], [], 0
    for _ in range(bench.runs):
        with bench.copy_of(bench.reconciled_db) as database:
            seconds, counts = bench.timed_sql(database, [BUILD_FLOOR], {"period": BUILD_PERIOD})
            build_floor.append(seconds)
            reserved = counts[0]
        with bench.copy_of(bench.reconciled_db) as database:
            drafts = bench.worker("build", database, **build_args)["result"]["invoices"]
            post_floor.append(drafts / bench.timed_sql(database, POST_FLOOR)[0])
    items = build_reports[-1]["items"]
    build = Measurement(
        key="build_drafts", title=f"Build drafts for {BUILD_PERIOD[:7]}, all clients", unit="s", values=builds,
        baseline=build_floor, baseline_title="one UPDATE reserving the same rows", target="≤ 3× the floor",
        ratio_bound=3.0, extra={"items": items, "invoices": build_reports[-1]["invoices"],
                                "checks": {"same_rows_as_floor": items == reserved}})
    post = Measurement(
        key="post_drafts", title="Post all those drafts, gapless numbers", unit="invoices/s", values=posts,
        baseline=post_floor, baseline_title="two UPDATEs numbering and totalling every draft",
        higher_is_better=True, target="≥ 200 invoices/s",
        extra={"invoices": post_reports[-1]["invoices"], "numbers": f"{post_reports[-1]['first']} … "
                                                                    f"{post_reports[-1]['last']}",
               "checks": {"at_least_200_per_second": min(posts) >= 200}})
    return build, post


def run(bench: Bench) -> list[Measurement]:
    bench.ensure_source()
    reconcile, rerun = full_reconciliation(bench)
    return [reconcile, rerun, incremental(bench, reconcile.values), *build_and_post(bench)]
