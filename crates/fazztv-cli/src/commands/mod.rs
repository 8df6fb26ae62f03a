//! One module per command family.

pub mod batch;
pub mod chat;
pub mod compare;
pub mod config;
pub mod health;
pub mod models;
pub mod ollama;
pub mod providers;
pub mod query;
pub mod route;
pub mod serve;
pub mod services;
