-- The order projection, claims and the daily KPI rows they feed.

CREATE TABLE orders (
    order_id              text        PRIMARY KEY,
    customer_id           text,
    verdict               text        NOT NULL,  -- open, cancelled, perfect, imperfect
    created_at            timestamptz,           -- event time of order.created
    confirmed_at          timestamptz,
    shipped_at            timestamptz,
    delivered_at          timestamptz,
    cancelled_at          timestamptz,
    promised_to           timestamptz,           -- end of the promised delivery slot
    courier_id            text,                  -- from the delivery, else the shipment
    confirmation_channel  text,
    created_day           date,                  -- shop-zone day of creation
    delivered_day         date,                  -- shop-zone day of delivery: the KPI bucket
    confirmation_seconds  double precision,      -- confirmed_at - created_at
    confirmed_to_shipped_seconds double precision,
    delivery_lateness_seconds    double precision, -- delivered_at - promised_to, negative when early
    items_ordered         bigint,
    items_delivered       bigint,
    deviation_quality     boolean     NOT NULL DEFAULT false,
    deviation_completeness boolean    NOT NULL DEFAULT false,
    deviation_delivery    boolean     NOT NULL DEFAULT false,
    deviation_service     boolean     NOT NULL DEFAULT false,
    final_at              timestamptz,           -- delivered_at + claim window: verdict final after it
    state                 jsonb       NOT NULL,  -- every fact of the order: what the fold resumes from
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_delivered_day ON orders (delivered_day);
CREATE INDEX orders_created_day ON orders (created_day);
-- The SLA watch scans only orders that still await confirmation.
CREATE INDEX orders_unconfirmed_created_at ON orders (created_at)
    WHERE confirmed_at IS NULL AND cancelled_at IS NULL AND created_at IS NOT NULL;
COMMENT ON TABLE orders IS 'One row per order: its milestones, latencies, deviations per category and verdict (perfect-order projection).';
COMMENT ON COLUMN orders.order_id IS 'Order id from the events (the Kafka key).';
COMMENT ON COLUMN orders.customer_id IS 'Customer from order.created.';
COMMENT ON COLUMN orders.verdict IS 'open (not delivered yet), cancelled, perfect or imperfect.';
COMMENT ON COLUMN orders.created_at IS 'Event time of order.created.';
COMMENT ON COLUMN orders.confirmed_at IS 'Event time of order.confirmed.';
COMMENT ON COLUMN orders.shipped_at IS 'Event time of order.shipped.';
COMMENT ON COLUMN orders.delivered_at IS 'Event time of order.delivered; makes the order fulfilled unless cancelled.';
COMMENT ON COLUMN orders.cancelled_at IS 'Event time of order.cancelled.';
COMMENT ON COLUMN orders.promised_to IS 'End of the promised delivery slot (promised_delivery.to).';
COMMENT ON COLUMN orders.courier_id IS 'Courier of the delivery (or of the shipment when the delivery names none).';
COMMENT ON COLUMN orders.confirmation_channel IS 'How the order was confirmed: phone, email, messenger, sms, auto.';
COMMENT ON COLUMN orders.created_day IS 'Calendar day of creation in the shop time zone.';
COMMENT ON COLUMN orders.delivered_day IS 'Calendar day of delivery in the shop time zone; the day whose KPIs the order counts for.';
COMMENT ON COLUMN orders.confirmation_seconds IS 'Confirmation latency: confirmed_at - created_at, in seconds.';
COMMENT ON COLUMN orders.confirmed_to_shipped_seconds IS 'shipped_at - confirmed_at, in seconds.';
COMMENT ON COLUMN orders.delivery_lateness_seconds IS 'delivered_at - promised_to in seconds; negative when early.';
COMMENT ON COLUMN orders.items_ordered IS 'Sum of ordered quantities.';
COMMENT ON COLUMN orders.items_delivered IS 'Items delivered as reported by order.delivered (null when not reported).';
COMMENT ON COLUMN orders.deviation_quality IS 'A quality claim counts against this fulfilled order.';
COMMENT ON COLUMN orders.deviation_completeness IS 'Short delivery, or a completeness claim.';
COMMENT ON COLUMN orders.deviation_delivery IS 'Delivered after the promised slot plus tolerance, or a delivery claim.';
COMMENT ON COLUMN orders.deviation_service IS 'Confirmed later than the confirmation SLA, or a service claim.';
COMMENT ON COLUMN orders.final_at IS 'delivered_at + claim window: after this instant the verdict is final.';
COMMENT ON COLUMN orders.state IS 'All facts of the order as JSON; the fold resumes from it (internal, may change between versions).';
COMMENT ON COLUMN orders.updated_at IS 'When a batch last changed the row.';

CREATE TABLE claims (
    claim_id    text        PRIMARY KEY,
    order_id    text        NOT NULL,
    category    text,                   -- quality, completeness, delivery, service (null until claim.filed is seen)
    description text,
    filed_at    timestamptz,            -- event time of claim.filed
    filed_day   date,                   -- shop-zone day of filing: the claims-per-month bucket
    resolved_at timestamptz,            -- event time of claim.resolved
    resolution  text,
    counts_for_verdict boolean NOT NULL DEFAULT false, -- filed no later than the claim window after delivery
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX claims_order_id ON claims (order_id);
CREATE INDEX claims_filed_day ON claims (filed_day);
COMMENT ON TABLE claims IS 'Claims journal: every claim with its category, filing and resolution.';
COMMENT ON COLUMN claims.claim_id IS 'Claim id from the events.';
COMMENT ON COLUMN claims.order_id IS 'Order the claim is about.';
COMMENT ON COLUMN claims.category IS 'quality, completeness, delivery or service; null while only claim.resolved has been seen.';
COMMENT ON COLUMN claims.description IS 'Free text from claim.filed.';
COMMENT ON COLUMN claims.filed_at IS 'Event time of claim.filed.';
COMMENT ON COLUMN claims.filed_day IS 'Calendar day of filing in the shop time zone.';
COMMENT ON COLUMN claims.resolved_at IS 'Event time of claim.resolved.';
COMMENT ON COLUMN claims.resolution IS 'Free text from claim.resolved.';
COMMENT ON COLUMN claims.counts_for_verdict IS 'True when the order is delivered and the claim was filed within the claim window after delivery.';
COMMENT ON COLUMN claims.updated_at IS 'When a batch last changed the row.';

-- Daily KPI rows keyed by the shop-zone day. Batches add signed deltas, so a late claim
-- retracts the perfect order from its delivery day instead of touching the day it arrived.
CREATE TABLE daily_kpi (
    day                    date   PRIMARY KEY,
    fulfilled              bigint NOT NULL DEFAULT 0,  -- orders delivered that day (not cancelled)
    perfect                bigint NOT NULL DEFAULT 0,  -- of those, with no deviation
    deviation_quality      bigint NOT NULL DEFAULT 0,  -- fulfilled orders with a deviation of the category
    deviation_completeness bigint NOT NULL DEFAULT 0,
    deviation_delivery     bigint NOT NULL DEFAULT 0,
    deviation_service      bigint NOT NULL DEFAULT 0,
    cancelled              bigint NOT NULL DEFAULT 0,  -- orders cancelled that day
    updated_at             timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE daily_kpi IS 'Perfect-order counts per calendar day of delivery in the shop time zone.';
COMMENT ON COLUMN daily_kpi.day IS 'Calendar day in the shop time zone (delivery day; cancellation day for cancelled).';
COMMENT ON COLUMN daily_kpi.fulfilled IS 'Orders delivered that day and not cancelled: the perfect-order denominator.';
COMMENT ON COLUMN daily_kpi.perfect IS 'Fulfilled orders with no deviation: the numerator.';
COMMENT ON COLUMN daily_kpi.deviation_quality IS 'Fulfilled orders with a quality deviation.';
COMMENT ON COLUMN daily_kpi.deviation_completeness IS 'Fulfilled orders with a completeness deviation.';
COMMENT ON COLUMN daily_kpi.deviation_delivery IS 'Fulfilled orders with a delivery deviation.';
COMMENT ON COLUMN daily_kpi.deviation_service IS 'Fulfilled orders with a service deviation.';
COMMENT ON COLUMN daily_kpi.cancelled IS 'Orders cancelled that day (outside the denominator).';
COMMENT ON COLUMN daily_kpi.updated_at IS 'When a batch last changed the row.';

-- The rule settings the views need (the service writes them at start).
CREATE TABLE service_settings (
    singleton          boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    timezone           text        NOT NULL,
    confirmation_sla   interval    NOT NULL,
    pending_horizon    interval    NOT NULL,
    claim_window       interval    NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE service_settings IS 'The rule settings in force (written by the service at start), read by the SLA views.';
COMMENT ON COLUMN service_settings.singleton IS 'Always true: the table has one row.';
COMMENT ON COLUMN service_settings.timezone IS 'Shop time zone (rules.timezone).';
COMMENT ON COLUMN service_settings.confirmation_sla IS 'rules.confirmation_sla.';
COMMENT ON COLUMN service_settings.pending_horizon IS 'rules.pending_horizon: older unconfirmed orders are ignored by the SLA watch.';
COMMENT ON COLUMN service_settings.claim_window IS 'rules.claim_window.';
COMMENT ON COLUMN service_settings.updated_at IS 'When the service last wrote the settings.';
