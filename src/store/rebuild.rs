//! Rebuild: every order projection, claim, daily KPI row and v2 entity recomputed from the
//! event store under the rules in force (after a rule change), in one transaction, written
//! once for every database. Readers see the old tables until it commits; batches wait.

use std::collections::HashMap;

use chrono::Utc;

use super::commit::{
    claim_journal, lead_base, write_customers, write_fold, write_v2, Database, LeadStep, Stored,
};
use super::tables::{ORDER_TABLES, V2_TABLES};
use super::{Error, RebuildReport};
use crate::domain::{fold_batch, BatchOutcome, EntityBatch, Event, Rules};

/// Recomputes the tables from the event store, reading `chunk` events at a time and calling
/// `progress(events_done, events_total)` after every chunk.
pub(crate) async fn rebuild<D: Database>(
    db: &D,
    rules: &Rules,
    limits: &crate::domain::Limits,
    chunk: i64,
    progress: impl Fn(u64, u64),
) -> Result<RebuildReport, Error> {
    let chunk = chunk.max(1);
    let mut tx = db.begin_rebuild().await?;
    let total = D::count_order_events(&mut tx).await?;
    D::empty(&mut tx, &ORDER_TABLES).await?;
    // The v2 tables too, first: the claims journal reads the claims' stored stages.
    D::empty(&mut tx, &V2_TABLES).await?;
    // Rebuilt rows get a version no instance has cached (the rebuild's time in ms, above
    // any count of updates), so every cached projection is read again after a rebuild.
    let rebuilt_version = Utc::now().timestamp_millis();
    let mut regroup = Regroup::new(*limits);
    let mut scan = D::Scan::default();
    loop {
        let stored = D::next_stored(&mut tx, Stored::OrderEvents, &mut scan, chunk).await?;
        let done = (stored.len() as i64) < chunk;
        let mut ready: Vec<Event> = Vec::with_capacity(stored.len());
        for event in stored {
            regroup.push(
                event.order_id.unwrap_or_default(),
                &event.payload,
                &mut ready,
            );
        }
        if done {
            regroup.finish(&mut ready);
        }
        let outcome = fold_batch(HashMap::new(), ready, rules);
        write_fold::<D>(&mut tx, &outcome, rules, rebuilt_version, 0).await?;
        let journal =
            claim_journal::<D>(&mut tx, &outcome, &EntityBatch::default(), rules, 0).await?;
        D::write(&mut tx, &journal.writes()).await?;
        write_customers::<D>(&mut tx, &outcome, LeadStep::default(), rules, 0).await?;
        progress(regroup.report.events, total.max(0) as u64);
        if done {
            break;
        }
    }
    // Contract v2: the entities, from every stored event of a v2 type (including those
    // stored as unknown types by a version before v2).
    let mut scan = D::Scan::default();
    loop {
        let stored = D::next_stored(&mut tx, Stored::V2Events, &mut scan, chunk).await?;
        let done = (stored.len() as i64) < chunk;
        let batch = EntityBatch::fold(stored.iter().filter_map(|e| regroup.decode_v2(&e.payload)));
        let none = BatchOutcome::default();
        let journal = claim_journal::<D>(&mut tx, &none, &batch, rules, 0).await?;
        D::write(&mut tx, &journal.writes()).await?;
        let leads = lead_base::<D>(&mut tx, &batch, rules).await?;
        write_v2::<D>(&mut tx, &batch, rules, 0).await?;
        write_customers::<D>(&mut tx, &none, leads, rules, 0).await?;
        if done {
            break;
        }
    }
    // The rebuild computed every order's restatements: nothing left to fill.
    D::claim_backfill(&mut tx, RESTATED).await?;
    tx.commit()
        .await
        .map_err(super::step("commit the rebuild"))?;
    Ok(regroup.report)
}

/// The backfill migration 0029 left to the service.
const RESTATED: &str = "restated_orders";

/// Fills `restated_orders` from the stored orders once, after the migration that added it
/// (`pending_backfills`): one transaction that holds off the batches, like a rebuild, reading
/// `chunk` delivered orders at a time and calling `progress(orders_read)` after each chunk.
/// Returns the orders read (0 when nothing was pending).
pub(crate) async fn backfill<D: Database>(
    db: &D,
    rules: &Rules,
    chunk: i64,
    progress: impl Fn(u64),
) -> Result<u64, Error> {
    if !db.backfill_pending(RESTATED).await? {
        return Ok(0);
    }
    let mut tx = db.begin_rebuild().await?;
    if !D::claim_backfill(&mut tx, RESTATED).await? {
        // Another instance filled it while this one waited for the lock.
        return Ok(0);
    }
    let chunk = chunk.max(1);
    let mut after = String::new();
    let mut read = 0u64;
    loop {
        let states = D::delivered_states(&mut tx, &after, chunk).await?;
        let done = (states.len() as i64) < chunk;
        let mut rows = Vec::new();
        for (order_id, state) in &states {
            let order = super::rows::decode_state(order_id, state)?;
            rows.extend(super::rows::order_restatements(&order, rules));
        }
        D::write(&mut tx, &[super::tables::Write::of(&rows)]).await?;
        read += states.len() as u64;
        progress(read);
        match states.into_iter().last() {
            Some((last, _)) if !done => after = last,
            _ => break,
        }
    }
    tx.commit()
        .await
        .map_err(super::step("commit the restated_orders backfill"))?;
    Ok(read)
}

/// Regroups the event store, read ordered by order, into chunks of whole orders for a
/// rebuild: the events of the last order of a chunk wait for the next one. Stored events are
/// decoded within the decoder's bounds in force, so a rebuild folds what ingest would take
/// today (an event an older version stored, such as one dated year 1, is skipped and counted).
struct Regroup {
    limits: crate::domain::Limits,
    carry: Vec<Event>,
    carry_order: Option<String>,
    report: RebuildReport,
}

impl Regroup {
    pub fn new(limits: crate::domain::Limits) -> Regroup {
        Regroup {
            limits,
            carry: Vec::new(),
            carry_order: None,
            report: RebuildReport::default(),
        }
    }

    /// Takes one stored event; events of finished orders move to `ready`.
    pub fn push(&mut self, order_id: String, payload: &str, ready: &mut Vec<Event>) {
        self.report.events += 1;
        if self.carry_order.as_deref() != Some(order_id.as_str()) {
            if self.carry_order.is_some() {
                self.report.orders += 1;
            }
            ready.append(&mut self.carry);
            self.carry_order = Some(order_id);
        }
        match crate::domain::decode_within(payload.as_bytes(), &self.limits) {
            Ok(crate::domain::Decoded::Known(event)) => self.carry.push(event),
            _ => self.report.undecodable += 1,
        }
    }

    /// Decodes a stored event of a v2 type for the rebuild's entity pass.
    pub fn decode_v2(&mut self, payload: &str) -> Option<Event> {
        self.report.v2_events += 1;
        match crate::domain::decode_within(payload.as_bytes(), &self.limits) {
            Ok(crate::domain::Decoded::Known(event)) if event.kind.order_id().is_none() => {
                Some(event)
            }
            _ => {
                self.report.undecodable += 1;
                None
            }
        }
    }

    /// The end of the event store: the last order is complete.
    pub fn finish(&mut self, ready: &mut Vec<Event>) {
        if self.carry_order.take().is_some() {
            self.report.orders += 1;
        }
        ready.append(&mut self.carry);
    }
}
