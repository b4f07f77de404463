//! RESP wire format: the request parser (client -> server) and the reply writer (server -> client).
//!
//! This layer knows nothing about the engine, commands or the cluster.

mod parser;
mod reply;

pub use parser::{ParseLimits, ProtocolError, RequestParser};
pub use reply::Reply;
