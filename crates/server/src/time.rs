//! Clock helpers: unix seconds and RFC 3339 UTC timestamps as ARM prints them.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// `2026-11-22T20:31:17.123456Z`: ARM's `systemData` style.
pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default()
}
