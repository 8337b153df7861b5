//! perfect-order: order-lifecycle events on Kafka in, perfect-order KPIs out.

pub mod domain;
