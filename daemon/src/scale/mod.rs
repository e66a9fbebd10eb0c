//! Scale monitoring (DESIGN §9): `decision` holds the rules (a leaf: pure
//! functions of the figures), `monitor` the loop in the daemon that
//! measures, records and acts on them through the service, `log` the JSON
//! lines both it and the migration manager append (a leaf).

pub mod decision;
pub mod log;
pub mod monitor;
