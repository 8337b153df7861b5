//! The monthly customer figures: repeat customers per month and new customers per month and
//! sales channel (the acquisition cost's denominator), kept by deltas like the daily counts.
//!
//! What a customer contributes depends on all of their orders (are they new this month, or
//! returning?), so a changed order cannot retract and re-add its share alone. Instead the
//! store keeps, per customer, the orders per month of creation and the first order ever, and
//! a batch recomputes only its touched customers' contributions to only the months whose
//! status can have changed: the months where the customer's order count changed, and, when
//! the customer's first order moved to another month, every month they ordered in. The change
//! of a customer is [`CustomerChange::between`] their stored state and their new state.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

/// One order as the customer figures see it: placed (`order.created`) by a customer, at an
/// instant, in a shop-zone month, through a sales channel. Ordered by `(at, order_id)` first:
/// a customer's first order is the least.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CustomerOrder {
    pub at: DateTime<Utc>,
    pub order_id: String,
    /// The first day of the shop-zone month of `at`.
    pub month: NaiveDate,
    pub channel: Option<String>,
}

impl CustomerOrder {
    /// An order placed at `at`, on the shop-zone day `day`.
    pub fn placed(
        at: DateTime<Utc>,
        order_id: String,
        day: NaiveDate,
        channel: Option<String>,
    ) -> Self {
        CustomerOrder {
            at,
            order_id,
            month: super::fact::first_of_month(day),
            channel,
        }
    }

    /// A stored first order, from its nullable columns: `None` unless time, order id and
    /// month are all there.
    pub fn stored(
        at: Option<DateTime<Utc>>,
        order_id: Option<String>,
        month: Option<NaiveDate>,
        channel: Option<String>,
    ) -> Option<Self> {
        Some(CustomerOrder {
            at: at?,
            order_id: order_id?,
            month: month?,
            channel,
        })
    }
}

/// What a batch changed of one customer's orders: orders per month (signed), and the order
/// versions it added and retracted (to find the first order again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerOrders {
    pub months: BTreeMap<NaiveDate, i64>,
    pub added: Vec<CustomerOrder>,
    pub retracted: Vec<CustomerOrder>,
}

impl CustomerOrders {
    /// Adds (`sign = 1`) or retracts (`sign = -1`) one order of the customer.
    pub fn add(&mut self, order: &CustomerOrder, sign: i64) {
        *self.months.entry(order.month).or_default() += sign;
        if sign > 0 {
            self.added.push(order.clone());
        } else {
            self.retracted.push(order.clone());
        }
    }

    /// Drops what cancelled out: a version both retracted and added (an order whose customer
    /// figures did not change) and months whose count did not move.
    pub fn settle(&mut self) {
        let mut i = 0;
        while i < self.added.len() {
            if let Some(j) = self.retracted.iter().position(|r| *r == self.added[i]) {
                self.retracted.swap_remove(j);
                self.added.swap_remove(i);
            } else {
                i += 1;
            }
        }
        self.months.retain(|_, n| *n != 0);
    }

    pub fn is_empty(&self) -> bool {
        self.months.is_empty() && self.added.is_empty() && self.retracted.is_empty()
    }

    /// The customer's first order after this change, given the stored first order: the
    /// least of it and the added orders, or `None` when the stored first order was retracted
    /// (it moved or changed, so the first order must be looked up again among the orders).
    pub fn first_after(&self, stored: Option<&CustomerOrder>) -> Option<Option<CustomerOrder>> {
        if let Some(first) = stored {
            if self.retracted.iter().any(|r| r.order_id == first.order_id) {
                return None;
            }
        }
        Some(stored.into_iter().chain(&self.added).min().cloned())
    }
}

/// One month of the repeat-customer figures (or a signed change of it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepeatCounts {
    /// Customers with an order created in the month.
    pub customers: i64,
    /// Of them, those whose first order was in an earlier month.
    pub returning_customers: i64,
    /// Orders created in the month (with a customer).
    pub orders: i64,
    /// Of them, those placed by returning customers.
    pub returning_orders: i64,
}

impl RepeatCounts {
    /// What a customer with `orders` orders in `month` and the first order in `first_month`
    /// contributes to the month.
    fn of(month: NaiveDate, orders: i64, first_month: Option<NaiveDate>) -> Self {
        if orders <= 0 {
            return RepeatCounts::default();
        }
        let returning = first_month.is_some_and(|f| f < month);
        RepeatCounts {
            customers: 1,
            returning_customers: i64::from(returning),
            orders,
            returning_orders: if returning { orders } else { 0 },
        }
    }

    fn add(&mut self, other: RepeatCounts, sign: i64) {
        self.customers += sign * other.customers;
        self.returning_customers += sign * other.returning_customers;
        self.orders += sign * other.orders;
        self.returning_orders += sign * other.returning_orders;
    }

    pub fn is_zero(&self) -> bool {
        *self == RepeatCounts::default()
    }
}

/// The signed change of the monthly customer figures a batch makes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerChange {
    /// Per month of creation.
    pub repeat: BTreeMap<NaiveDate, RepeatCounts>,
    /// New customers per month of their first order and its sales channel (orders without
    /// a channel count only shop-wide, in `repeat`: new = customers - returning).
    pub new_by_channel: BTreeMap<(NaiveDate, String), i64>,
}

impl CustomerChange {
    /// Adds the change of one customer, from `before` to `after`. `months` holds the
    /// customer's order counts `(before, after)` in every month whose contribution can have
    /// changed: each month whose count changed, and every month with orders when the first
    /// order's month changed.
    pub fn between(
        &mut self,
        before: Option<&CustomerOrder>,
        after: Option<&CustomerOrder>,
        months: &BTreeMap<NaiveDate, (i64, i64)>,
    ) {
        let (first_before, first_after) = (before.map(|f| f.month), after.map(|f| f.month));
        for (&month, &(was, is)) in months {
            let entry = self.repeat.entry(month).or_default();
            entry.add(RepeatCounts::of(month, was, first_before), -1);
            entry.add(RepeatCounts::of(month, is, first_after), 1);
        }
        let channel =
            |f: Option<&CustomerOrder>| f.and_then(|f| Some((f.month, f.channel.clone()?)));
        if channel(before) != channel(after) {
            for (key, sign) in [(channel(before), -1), (channel(after), 1)] {
                if let Some(key) = key {
                    *self.new_by_channel.entry(key).or_default() += sign;
                }
            }
        }
    }

    /// Drops the months and channels that did not move.
    pub fn settle(&mut self) {
        self.repeat.retain(|_, c| !c.is_zero());
        self.new_by_channel.retain(|_, n| *n != 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn order(id: &str, at: &str, channel: Option<&str>) -> CustomerOrder {
        let at: DateTime<Utc> = at.parse().unwrap();
        CustomerOrder {
            at,
            order_id: id.to_owned(),
            month: super::super::fact::first_of_month(at.date_naive()),
            channel: channel.map(str::to_owned),
        }
    }

    #[test]
    fn a_first_order_makes_a_new_customer_of_its_month_and_channel() {
        let first = order("o1", "2026-10-05T10:00:00Z", Some("ads"));
        let mut change = CustomerChange::default();
        let months = BTreeMap::from([(month("2026-10-01"), (0, 1))]);
        change.between(None, Some(&first), &months);
        change.settle();
        assert_eq!(
            change.repeat[&month("2026-10-01")],
            RepeatCounts {
                customers: 1,
                returning_customers: 0,
                orders: 1,
                returning_orders: 0
            }
        );
        assert_eq!(
            change.new_by_channel[&(month("2026-10-01"), "ads".to_owned())],
            1
        );
    }

    #[test]
    fn a_second_order_in_a_later_month_makes_a_returning_customer_there() {
        let first = order("o1", "2026-10-05T10:00:00Z", Some("ads"));
        let mut change = CustomerChange::default();
        let months = BTreeMap::from([(month("2026-11-01"), (0, 1))]);
        change.between(Some(&first), Some(&first), &months);
        change.settle();
        assert_eq!(
            change.repeat[&month("2026-11-01")],
            RepeatCounts {
                customers: 1,
                returning_customers: 1,
                orders: 1,
                returning_orders: 1
            }
        );
        assert!(change.new_by_channel.is_empty());
    }

    #[test]
    fn a_late_earlier_order_turns_the_old_first_month_into_a_returning_one() {
        let old_first = order("o2", "2026-11-03T10:00:00Z", None);
        let new_first = order("o1", "2026-10-20T10:00:00Z", Some("ads"));
        let mut change = CustomerChange::default();
        let months = BTreeMap::from([(month("2026-10-01"), (0, 1)), (month("2026-11-01"), (2, 2))]);
        change.between(Some(&old_first), Some(&new_first), &months);
        change.settle();
        assert_eq!(
            change.repeat[&month("2026-11-01")],
            RepeatCounts {
                customers: 0,
                returning_customers: 1,
                orders: 0,
                returning_orders: 2
            }
        );
        assert_eq!(change.repeat[&month("2026-10-01")].customers, 1);
        assert_eq!(
            change.new_by_channel[&(month("2026-10-01"), "ads".to_owned())],
            1
        );
    }

    #[test]
    fn a_retracted_first_order_asks_for_the_first_order_again() {
        let first = order("o1", "2026-10-05T10:00:00Z", None);
        let mut orders = CustomerOrders::default();
        orders.add(&first, -1);
        orders.add(&order("o1", "2026-10-09T10:00:00Z", None), 1);
        orders.settle();
        assert_eq!(orders.first_after(Some(&first)), None);
    }

    #[test]
    fn an_unchanged_order_cancels_out() {
        let o = order("o1", "2026-10-05T10:00:00Z", Some("ads"));
        let mut orders = CustomerOrders::default();
        orders.add(&o, -1);
        orders.add(&o, 1);
        orders.settle();
        assert!(orders.is_empty());
        assert_eq!(orders.first_after(Some(&o)), Some(Some(o)));
    }
}
