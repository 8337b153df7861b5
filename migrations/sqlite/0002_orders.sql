-- SQLite edition of ../0002_orders.sql: the order projection, claims and the daily KPI rows.

-- One row per order: its milestones, latencies, deviations per category and verdict.
CREATE TABLE orders (
    order_id              TEXT PRIMARY KEY,
    customer_id           TEXT,
    verdict               TEXT NOT NULL,    -- open, cancelled, perfect, imperfect
    created_at            TEXT,
    confirmed_at          TEXT,
    shipped_at            TEXT,
    delivered_at          TEXT,
    cancelled_at          TEXT,
    promised_to           TEXT,
    courier_id            TEXT,
    confirmation_channel  TEXT,
    created_day           TEXT,             -- shop-zone day of creation
    delivered_day         TEXT,             -- shop-zone day of delivery: the KPI bucket
    confirmation_seconds  REAL,
    confirmed_to_shipped_seconds REAL,
    delivery_lateness_seconds    REAL,
    items_ordered         INTEGER,
    items_delivered       INTEGER,
    deviation_quality     INTEGER NOT NULL DEFAULT 0,
    deviation_completeness INTEGER NOT NULL DEFAULT 0,
    deviation_delivery    INTEGER NOT NULL DEFAULT 0,
    deviation_service     INTEGER NOT NULL DEFAULT 0,
    final_at              TEXT,
    state                 TEXT NOT NULL,    -- every fact of the order (JSON): what the fold resumes from
    updated_at            TEXT NOT NULL
);
CREATE INDEX orders_delivered_day ON orders (delivered_day);
CREATE INDEX orders_created_day ON orders (created_day);
CREATE INDEX orders_unconfirmed_created_at ON orders (created_at)
    WHERE confirmed_at IS NULL AND cancelled_at IS NULL AND created_at IS NOT NULL;

-- Claims journal: every claim with its category, filing and resolution.
CREATE TABLE claims (
    claim_id    TEXT PRIMARY KEY,
    order_id    TEXT NOT NULL,
    category    TEXT,
    description TEXT,
    filed_at    TEXT,
    filed_day   TEXT,
    resolved_at TEXT,
    resolution  TEXT,
    counts_for_verdict INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL
);
CREATE INDEX claims_order_id ON claims (order_id);
CREATE INDEX claims_filed_day ON claims (filed_day);

-- Perfect-order counts per calendar day of delivery in the shop time zone (signed deltas
-- added per batch).
CREATE TABLE daily_kpi (
    day                    TEXT    PRIMARY KEY,
    fulfilled              INTEGER NOT NULL DEFAULT 0,
    perfect                INTEGER NOT NULL DEFAULT 0,
    deviation_quality      INTEGER NOT NULL DEFAULT 0,
    deviation_completeness INTEGER NOT NULL DEFAULT 0,
    deviation_delivery     INTEGER NOT NULL DEFAULT 0,
    deviation_service      INTEGER NOT NULL DEFAULT 0,
    cancelled              INTEGER NOT NULL DEFAULT 0,
    updated_at             TEXT    NOT NULL
);

-- The rule settings in force (written by the service at start), read by the SLA views.
-- Durations are in seconds.
CREATE TABLE service_settings (
    singleton          INTEGER PRIMARY KEY DEFAULT 1 CHECK (singleton = 1),
    timezone           TEXT    NOT NULL,
    confirmation_sla   REAL    NOT NULL,
    pending_horizon    REAL    NOT NULL,
    claim_window       REAL    NOT NULL,
    updated_at         TEXT    NOT NULL
);
