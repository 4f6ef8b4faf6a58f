//! The gateway over real HTTP, in front of a real auth-service and books-service over gRPC, on
//! PostgreSQL and SQLite, with real Redis. One binary for the whole suite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attacks;
mod console;
mod errors;
mod faults;
mod flow;
mod fuzz;
mod helpers;
mod inputs;
mod instances;
mod observability;
mod openapi;
mod races;
mod replica;
