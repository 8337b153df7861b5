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

/// What a batch changed of one customer's orders: orders per shop-zone day of creation
/// (signed; per month, [`Self::months`]), and the order versions it added and retracted (to
/// find the first order again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerOrders {
    pub days: BTreeMap<NaiveDate, i64>,
    pub added: Vec<CustomerOrder>,
    pub retracted: Vec<CustomerOrder>,
}

impl CustomerOrders {
    /// Adds (`sign = 1`) or retracts (`sign = -1`) one order of the customer, created on the
    /// shop-zone day `day`.
    pub fn add(&mut self, order: &CustomerOrder, day: NaiveDate, sign: i64) {
        *self.days.entry(day).or_default() += sign;
        if sign > 0 {
            self.added.push(order.clone());
        } else {
            self.retracted.push(order.clone());
        }
    }

    /// Drops what cancelled out: a version both retracted and added (an order whose customer
    /// figures did not change) and days whose count did not move.
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
        self.days.retain(|_, n| *n != 0);
    }

    pub fn is_empty(&self) -> bool {
        self.days.is_empty() && self.added.is_empty() && self.retracted.is_empty()
    }

    /// The orders created in `month` (signed).
    pub fn orders_in(&self, month: NaiveDate) -> i64 {
        self.days
            .iter()
            .filter(|(day, _)| super::fact::first_of_month(**day) == month)
            .map(|(_, n)| n)
            .sum()
    }

    /// The orders per month of creation (signed), summed from the days; months that did
    /// not move are left out.
    pub fn months(&self) -> BTreeMap<NaiveDate, i64> {
        let mut months = BTreeMap::new();
        for (day, n) in &self.days {
            *months.entry(super::fact::first_of_month(*day)).or_default() += n;
        }
        months.retain(|_, n| *n != 0);
        months
    }

    /// The days of the orders this change added, as text to append to the stored
    /// [`OrderDays`] (each day after a space).
    pub fn appended_days(&self) -> String {
        let mut text = String::new();
        for (day, n) in self.days.iter().filter(|(_, n)| **n > 0) {
            push_day(&mut text, *day, *n);
        }
        text
    }

    /// The customer's order days before and after this change, given the stored days with
    /// [`Self::appended_days`] already appended; `after` differs from `now` only when the
    /// change retracted orders.
    pub fn days_around(&self, now: &OrderDays) -> (OrderDays, OrderDays) {
        let added: BTreeMap<NaiveDate, i64> = self
            .days
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(d, n)| (*d, -n))
            .collect();
        let retracted: BTreeMap<NaiveDate, i64> = self
            .days
            .iter()
            .filter(|(_, n)| **n < 0)
            .map(|(d, n)| (*d, *n))
            .collect();
        (now.changed_by(&added), now.changed_by(&retracted))
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
    /// Customers per [`OrderGap`].
    pub gaps: BTreeMap<OrderGap, i64>,
}

/// A day a customer ordered on, with the latest earlier day they ordered on (the day itself
/// when it is their first). Counting, over the days of a window `(start, end]`, the gaps whose
/// previous day is at or before `start` (or is the day itself) counts each customer of the
/// window once, at their first day in it; those with an earlier day are the returning ones.
/// So a rolling window's distinct and returning customers are sums over its days' gaps,
/// whatever day the window ends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OrderGap {
    pub day: NaiveDate,
    pub previous_day: NaiveDate,
}

/// A customer's orders per shop-zone day of creation, as the `customers` row keeps them: one
/// `YYYY-MM-DD` per order, separated by spaces, in no particular order (a batch appends its
/// added orders' days; `2026-10-01 2026-11-05 2026-10-01`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderDays(pub BTreeMap<NaiveDate, i64>);

impl OrderDays {
    /// Reads the stored text; `None` when a word is not a day.
    pub fn parse(text: &str) -> Option<Self> {
        let mut days = BTreeMap::new();
        for word in text.split_ascii_whitespace() {
            *days.entry(word.parse::<NaiveDate>().ok()?).or_default() += 1;
        }
        Some(OrderDays(days))
    }

    /// The days after adding the signed `change` (days left with no order are dropped).
    pub fn changed_by(&self, change: &BTreeMap<NaiveDate, i64>) -> Self {
        let mut days = self.0.clone();
        for (day, n) in change {
            *days.entry(*day).or_default() += n;
        }
        days.retain(|_, n| *n > 0);
        OrderDays(days)
    }

    /// The text stored (in day order).
    pub fn text(&self) -> String {
        let mut text = String::with_capacity(11 * self.0.values().sum::<i64>().max(0) as usize);
        for (day, n) in &self.0 {
            push_day(&mut text, *day, *n);
        }
        text.trim_start().to_owned()
    }

    /// The customer's [`OrderGap`]s: each day with the day before it.
    pub fn gaps(&self) -> impl Iterator<Item = OrderGap> + '_ {
        let days = self.0.iter().filter(|(_, n)| **n > 0).map(|(d, _)| *d);
        days.clone()
            .zip(std::iter::once(None).chain(days.map(Some)))
            .map(|(day, previous)| OrderGap {
                day,
                previous_day: previous.unwrap_or(day),
            })
    }
}

/// Appends ` YYYY-MM-DD` `n` times.
fn push_day(text: &mut String, day: NaiveDate, n: i64) {
    let day = day.format("%Y-%m-%d").to_string();
    for _ in 0..n {
        text.push(' ');
        text.push_str(&day);
    }
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

    /// Adds the change of one customer's order days, from `before` to `after`.
    pub fn days_between(&mut self, before: &OrderDays, after: &OrderDays) {
        for (days, sign) in [(before, -1), (after, 1)] {
            for gap in days.gaps() {
                *self.gaps.entry(gap).or_default() += sign;
            }
        }
    }

    /// Drops the months, channels and gaps that did not move.
    pub fn settle(&mut self) {
        self.repeat.retain(|_, c| !c.is_zero());
        self.new_by_channel.retain(|_, n| *n != 0);
        self.gaps.retain(|_, n| *n != 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn days(list: &[(&str, i64)]) -> OrderDays {
        OrderDays(list.iter().map(|(d, n)| (day(d), *n)).collect())
    }

    fn gap(d: &str, previous: &str) -> OrderGap {
        OrderGap {
            day: day(d),
            previous_day: day(previous),
        }
    }

    /// Distinct and returning customers of the window `(start, end]` from the gaps alone.
    fn window(gaps: &BTreeMap<OrderGap, i64>, start: &str, end: &str) -> (i64, i64) {
        let (start, end) = (day(start), day(end));
        let mut counts = (0, 0);
        for (g, n) in gaps {
            let first = g.previous_day == g.day;
            if g.day > start && g.day <= end && (first || g.previous_day <= start) {
                counts.0 += n;
                if !first {
                    counts.1 += n;
                }
            }
        }
        counts
    }

    #[test]
    fn each_order_day_of_a_customer_is_kept_with_the_day_before_it() {
        let gaps: Vec<OrderGap> = days(&[("2026-10-01", 2), ("2026-10-20", 1), ("2026-11-02", 1)])
            .gaps()
            .collect();
        assert_eq!(
            gaps,
            vec![
                gap("2026-10-01", "2026-10-01"),
                gap("2026-10-20", "2026-10-01"),
                gap("2026-11-02", "2026-10-20")
            ]
        );
    }

    #[test]
    fn a_rolling_window_counts_a_customer_once_and_returning_when_they_ordered_before_it() {
        let mut change = CustomerChange::default();
        // Customer a: 1 Oct, 20 Oct, 2 Nov; b: 25 Oct only; c: 5 Nov and 6 Nov.
        let none = OrderDays::default();
        change.days_between(
            &none,
            &days(&[("2026-10-01", 1), ("2026-10-20", 1), ("2026-11-02", 1)]),
        );
        change.days_between(&none, &days(&[("2026-10-25", 1)]));
        change.days_between(&none, &days(&[("2026-11-05", 1), ("2026-11-06", 1)]));
        change.settle();
        // (10 Oct, 9 Nov]: a (returning: 1 Oct), b, c.
        assert_eq!(window(&change.gaps, "2026-10-10", "2026-11-09"), (3, 1));
        // (21 Oct, 20 Nov]: a (returning: 20 Oct is before), b, c.
        assert_eq!(window(&change.gaps, "2026-10-21", "2026-11-20"), (3, 1));
        // (2 Nov, 2 Dec]: c only (new).
        assert_eq!(window(&change.gaps, "2026-11-02", "2026-12-02"), (1, 0));
        // (30 Sep, 30 Oct]: a and b, both new in it.
        assert_eq!(window(&change.gaps, "2026-09-30", "2026-10-30"), (2, 0));
    }

    #[test]
    fn a_late_earlier_order_day_changes_only_the_gaps_around_it() {
        let mut change = CustomerChange::default();
        let before = days(&[("2026-10-01", 1), ("2026-10-20", 1)]);
        let mut orders = CustomerOrders::default();
        orders.add(
            &order("o3", "2026-10-10T10:00:00Z", None),
            day("2026-10-10"),
            1,
        );
        let after = before.changed_by(&orders.days);
        assert_eq!(
            after,
            days(&[("2026-10-01", 1), ("2026-10-10", 1), ("2026-10-20", 1)])
        );
        change.days_between(&before, &after);
        change.settle();
        assert_eq!(
            change.gaps,
            BTreeMap::from([
                (gap("2026-10-10", "2026-10-01"), 1),
                (gap("2026-10-20", "2026-10-01"), -1),
                (gap("2026-10-20", "2026-10-10"), 1)
            ])
        );
    }

    #[test]
    fn a_second_order_on_a_known_day_changes_no_gap() {
        let mut change = CustomerChange::default();
        let mut orders = CustomerOrders::default();
        orders.add(
            &order("o2", "2026-10-01T18:00:00Z", None),
            day("2026-10-01"),
            1,
        );
        let before = days(&[("2026-10-01", 1)]);
        let after = before.changed_by(&orders.days);
        assert_eq!(after, days(&[("2026-10-01", 2)]));
        change.days_between(&before, &after);
        change.settle();
        assert!(change.gaps.is_empty());
    }

    #[test]
    fn a_customers_order_days_read_back_as_written() {
        let d = days(&[("2026-10-01", 2), ("2026-11-05", 1)]);
        assert_eq!(d.text(), "2026-10-01 2026-10-01 2026-11-05");
        assert_eq!(OrderDays::parse(&d.text()), Some(d));
        assert_eq!(OrderDays::parse(""), Some(OrderDays::default()));
        assert_eq!(OrderDays::parse("2026-10-01 yesterday"), None);
    }

    #[test]
    fn the_days_around_a_change_are_read_from_the_stored_days_with_the_added_ones_appended() {
        let mut orders = CustomerOrders::default();
        orders.add(
            &order("o1", "2026-10-01T10:00:00Z", None),
            day("2026-10-01"),
            -1,
        );
        orders.add(
            &order("o1", "2026-10-03T10:00:00Z", None),
            day("2026-10-03"),
            1,
        );
        orders.add(
            &order("o2", "2026-10-03T12:00:00Z", None),
            day("2026-10-03"),
            1,
        );
        assert_eq!(orders.appended_days(), " 2026-10-03 2026-10-03");
        let stored = "2026-09-20 2026-10-01";
        let now = OrderDays::parse(&format!("{stored}{}", orders.appended_days())).unwrap();
        let (before, after) = orders.days_around(&now);
        assert_eq!(before, days(&[("2026-09-20", 1), ("2026-10-01", 1)]));
        assert_eq!(after, days(&[("2026-09-20", 1), ("2026-10-03", 2)]));
    }

    #[test]
    fn a_moved_order_leaves_no_day_without_orders() {
        let mut orders = CustomerOrders::default();
        orders.add(
            &order("o1", "2026-10-01T10:00:00Z", None),
            day("2026-10-01"),
            -1,
        );
        orders.add(
            &order("o1", "2026-10-03T10:00:00Z", None),
            day("2026-10-03"),
            1,
        );
        let after = days(&[("2026-10-01", 1)]).changed_by(&orders.days);
        assert_eq!(after, days(&[("2026-10-03", 1)]));
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
        orders.add(&first, day("2026-10-05"), -1);
        orders.add(
            &order("o1", "2026-10-09T10:00:00Z", None),
            day("2026-10-09"),
            1,
        );
        orders.settle();
        assert_eq!(orders.first_after(Some(&first)), None);
    }

    #[test]
    fn an_unchanged_order_cancels_out() {
        let o = order("o1", "2026-10-05T10:00:00Z", Some("ads"));
        let mut orders = CustomerOrders::default();
        orders.add(&o, day("2026-10-05"), -1);
        orders.add(&o, day("2026-10-05"), 1);
        orders.settle();
        assert!(orders.is_empty());
        assert_eq!(orders.first_after(Some(&o)), Some(Some(o)));
    }
}
