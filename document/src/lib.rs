//! The milestone document, shared by the daemon and `msctl`: what a
//! document must hold (`document`), how large it may grow
//! (`document_limits`), its YAML text read and edited in place
//! (`yaml`), and the three-way merge git's merge driver runs (`merge`).
//! Nothing here touches the disk or the network: callers bring the text.

pub mod document;
pub mod document_limits;
pub mod merge;
pub mod yaml;
