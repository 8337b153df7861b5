//! The payloads of contract v2: the seeds' other KPIs (claims journal stages, reviews,
//! couriers, marketing spend, leads).

use chrono::{DateTime, NaiveDate};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use super::ids::{Id, Money};

/// The stages a claim passes through before it is resolved (contract v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStage {
    Registered,
    Investigating,
    ActionTaken,
}

impl ClaimStage {
    pub const ALL: [ClaimStage; 3] = [
        ClaimStage::Registered,
        ClaimStage::Investigating,
        ClaimStage::ActionTaken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClaimStage::Registered => "registered",
            ClaimStage::Investigating => "investigating",
            ClaimStage::ActionTaken => "action_taken",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimUpdated {
    pub claim_id: Id,
    pub order_id: Id,
    pub stage: ClaimStage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A review's rating: a whole number 1..=5 (anything else is junk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Rating(u8);

impl Rating {
    pub fn parse(value: i64) -> Result<Self, String> {
        match u8::try_from(value) {
            Ok(v @ 1..=5) => Ok(Rating(v)),
            _ => Err(format!("rating {value} is outside 1..5")),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Rating {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = i64::deserialize(d)?;
        Rating::parse(raw).map_err(de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewPosted {
    pub review_id: Id,
    pub rating: Rating,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier_id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewAnswered {
    pub review_id: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responder_id: Option<Id>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourierRostered {
    pub courier_id: Id,
    pub team_id: Id,
    #[serde(default)]
    pub captain: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourierViolation {
    pub courier_id: Id,
    pub kind: Id,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Id>,
}

/// A marketing spend over shop-zone dates `from..=to` (both included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarketingSpend {
    pub spend_id: Id,
    pub amount: Money,
    pub currency: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

impl<'de> Deserialize<'de> for MarketingSpend {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            spend_id: Id,
            amount: Money,
            currency: String,
            from: String,
            to: String,
            #[serde(default)]
            channel: Option<String>,
        }
        /// A date (`2026-09-25`); an RFC 3339 date-time is read as the date it names.
        fn date<E: de::Error>(field: &str, raw: &str) -> Result<NaiveDate, E> {
            NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .or_else(|_| DateTime::parse_from_rfc3339(raw).map(|t| t.date_naive()))
                .map_err(|_| E::custom(format!("`{field}` `{raw}` is not a date (YYYY-MM-DD)")))
        }
        let raw = Raw::deserialize(d)?;
        let (from, to) = (date("from", &raw.from)?, date("to", &raw.to)?);
        if raw.amount.as_str().starts_with('-') {
            return Err(de::Error::custom(format!(
                "amount `{}` is negative",
                raw.amount.as_str()
            )));
        }
        if to < from {
            return Err(de::Error::custom(format!(
                "`to` {to} is before `from` {from}"
            )));
        }
        Ok(MarketingSpend {
            spend_id: raw.spend_id,
            amount: raw.amount,
            currency: raw.currency,
            from,
            to,
            channel: raw.channel,
        })
    }
}

/// How ready a lead is to buy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Temperature {
    Cold,
    Warm,
    Hot,
}

impl Temperature {
    pub const ALL: [Temperature; 3] = [Temperature::Cold, Temperature::Warm, Temperature::Hot];

    pub fn as_str(self) -> &'static str {
        match self {
            Temperature::Cold => "cold",
            Temperature::Warm => "warm",
            Temperature::Hot => "hot",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadCaptured {
    pub lead_id: Id,
    pub temperature: Temperature,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<Id>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadChanged {
    pub lead_id: Id,
    pub temperature: Temperature,
}
