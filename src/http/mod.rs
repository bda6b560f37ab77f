//! The one HTTP layer that Graph, the targets and the webhook all talk through.
//!
//! Everything about HTTP that does not depend on who is being talked to lives here, once:
//! building the client (TLS, proxy, timeouts, user agent, no redirects), reading answers
//! within a size limit, the retry policy with the one loop that applies it (which also times
//! every attempt), pacing the requests to a server by its limits, and giving up on a
//! server that stopped answering. What a server's answers mean stays with its caller;
//! keeping credentials out of them is [`crate::secrets`]'s.
//!
//! It imports nothing else of userload.

pub mod breaker;
pub mod client;
pub mod meter;
pub mod pace;
pub mod retry;

pub use breaker::{Admit, Breaker};
pub use client::{BodyError, ClientError, client, describe, header, read_body};
pub use meter::{Latency, Meter};
pub use pace::{Budget, Pacer, Rate};
pub use retry::{
    Exchange, RetryOn, RetryPolicy, Step, Transient, parse_retry_after, retry_after, run,
};
