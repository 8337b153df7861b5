//! What one order adds to the maintained monthly and daily figures other than its days'
//! perfect-order counts ([`super::kpi`]): the distributions the percentile views read.
//!
//! Like the daily counts, a figure is kept as signed deltas: when a batch changes an order,
//! its old contribution is retracted and its new one added, so a maintained table always
//! equals the sum over the current projections, whatever the arrival order. A percentile is
//! then read from one month's (or day's) distribution, never from all of history.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::contract::Money;
use super::customers::{CustomerOrder, CustomerOrders};
use super::fact::{first_of_month, whole_seconds};
use super::order::{Assessment, OrderProjection, Verdict};
use super::rules::Rules;

/// A fulfilled order's sale, as acquisition's revenue and AOV count it: the shop-zone month
/// of delivery, the sales channel and the order's `total`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sale {
    pub month: NaiveDate,
    pub channel: Option<String>,
    pub total: Money,
}

/// The contributions of one order to the maintained distributions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFigures {
    /// Order to dispatch: the shop-zone month of `order.shipped` and the whole seconds from
    /// `order.created` to it (both events seen).
    pub dispatch: Option<(NaiveDate, i64)>,
    /// Confirmation latency: the shop-zone day of creation and the latency in milliseconds
    /// (both events seen).
    pub confirmation: Option<(NaiveDate, i64)>,
    /// The order as its customer's figures see it (`order.created` seen): the customer, the
    /// shop-zone day of creation and the order.
    pub customer: Option<(String, NaiveDate, CustomerOrder)>,
    /// Its sale, once fulfilled (perfect or imperfect) with a `total`.
    pub sale: Option<Sale>,
    /// The sales channel `order.created` names (which channels acquisition reports).
    pub channel: Option<String>,
}

impl OrderFigures {
    /// The figures of `projection`, whose assessment under `rules` is `assessment`.
    pub fn of(projection: &OrderProjection, assessment: &Assessment, rules: &Rules) -> Self {
        let created = projection.created.as_ref();
        let dispatch = match (created, &projection.shipped) {
            (Some(c), Some(s)) => Some((rules.month_of(s.at), whole_seconds(c.at, s.at))),
            _ => None,
        };
        let confirmation = match (assessment.created_day, assessment.confirmation_latency) {
            (Some(day), Some(latency)) => Some((day, latency.num_milliseconds())),
            _ => None,
        };
        let customer = created.map(|c| {
            let day = rules.day_of(c.at);
            let order = CustomerOrder::placed(
                c.at,
                projection.order_id.clone(),
                day,
                c.data.sales_channel.clone(),
            );
            (c.data.customer_id.to_string(), day, order)
        });
        let fulfilled = matches!(assessment.verdict, Verdict::Perfect | Verdict::Imperfect);
        let sale = match (created, assessment.delivered_day) {
            (Some(c), Some(day)) if fulfilled => c.data.total.clone().map(|total| Sale {
                month: first_of_month(day),
                channel: c.data.sales_channel.clone(),
                total,
            }),
            _ => None,
        };
        OrderFigures {
            dispatch,
            confirmation,
            customer,
            sale,
            channel: created.and_then(|c| c.data.sales_channel.clone()),
        }
    }
}

/// Signed changes to the maintained distributions: how many orders gained (or lost) each
/// value in each month or day. Zero entries are dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FigureDelta {
    /// `(month of shipment, whole seconds)` → orders.
    pub dispatch: BTreeMap<(NaiveDate, i64), i64>,
    /// `(day of creation, milliseconds)` → orders.
    pub confirmation: BTreeMap<(NaiveDate, i64), i64>,
    /// Customer id → what changed of the customer's orders.
    pub customers: BTreeMap<String, CustomerOrders>,
    /// Sales gained (or lost).
    pub sales: BTreeMap<Sale, i64>,
    /// Sales channel → orders naming it.
    pub channels: BTreeMap<String, i64>,
}

impl FigureDelta {
    /// Adds (`sign = 1`) or retracts (`sign = -1`) an order's figures.
    pub fn add(&mut self, figures: &OrderFigures, sign: i64) {
        if let Some(key) = figures.dispatch {
            *self.dispatch.entry(key).or_default() += sign;
        }
        if let Some(key) = figures.confirmation {
            *self.confirmation.entry(key).or_default() += sign;
        }
        if let Some((customer, day, order)) = &figures.customer {
            self.customers
                .entry(customer.clone())
                .or_default()
                .add(order, *day, sign);
        }
        if let Some(sale) = &figures.sale {
            *self.sales.entry(sale.clone()).or_default() += sign;
        }
        if let Some(channel) = &figures.channel {
            *self.channels.entry(channel.clone()).or_default() += sign;
        }
    }

    /// Drops the entries that cancelled out (an order whose figure did not change).
    pub fn settle(&mut self) {
        self.dispatch.retain(|_, n| *n != 0);
        self.confirmation.retain(|_, n| *n != 0);
        self.sales.retain(|_, n| *n != 0);
        self.channels.retain(|_, n| *n != 0);
        self.customers.retain(|_, c| {
            c.settle();
            !c.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_retracted_contribution_cancels_the_added_one() {
        let old = OrderFigures {
            dispatch: Some((day("2026-10-01"), 3600)),
            confirmation: Some((day("2026-10-31"), 90_000)),
            ..OrderFigures::default()
        };
        let new = OrderFigures {
            dispatch: Some((day("2026-10-01"), 3600)),
            confirmation: Some((day("2026-10-31"), 60_000)),
            ..OrderFigures::default()
        };
        let mut delta = FigureDelta::default();
        delta.add(&old, -1);
        delta.add(&new, 1);
        delta.settle();
        assert!(delta.dispatch.is_empty());
        assert_eq!(
            delta.confirmation.into_iter().collect::<Vec<_>>(),
            vec![
                ((day("2026-10-31"), 60_000), 1),
                ((day("2026-10-31"), 90_000), -1)
            ]
        );
    }

    fn sale(channel: &str, total: &str) -> Option<Sale> {
        Some(Sale {
            month: day("2026-10-01"),
            channel: Some(channel.to_owned()),
            total: Money::parse(total).unwrap(),
        })
    }

    #[test]
    fn a_sale_moved_to_another_channel_retracts_the_old_one_and_keeps_the_channel_counts_exact() {
        let old = OrderFigures {
            sale: sale("ads", "100.00"),
            channel: Some("ads".into()),
            ..OrderFigures::default()
        };
        let new = OrderFigures {
            sale: sale("web", "250.50"),
            channel: Some("web".into()),
            ..OrderFigures::default()
        };
        let mut delta = FigureDelta::default();
        delta.add(&old, 1);
        delta.add(&old, -1);
        delta.add(&new, 1);
        delta.settle();
        assert_eq!(
            delta.sales.into_iter().collect::<Vec<_>>(),
            vec![(sale("web", "250.50").unwrap(), 1)]
        );
        assert_eq!(
            delta.channels.into_iter().collect::<Vec<_>>(),
            vec![("web".to_owned(), 1)]
        );
    }

    #[test]
    fn a_retracted_amount_is_the_negated_decimal_string() {
        assert_eq!(Money::parse("3.00").unwrap().negated(), "-3.00");
        assert_eq!(Money::parse("-3.00").unwrap().negated(), "3.00");
    }
}
