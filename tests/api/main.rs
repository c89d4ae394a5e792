//! Black-box tests: the real application, started on port 0 with a fresh database, driven
//! over HTTP exactly as a client would.

mod access_matrix;
mod admin;
mod assistant;
mod audit;
mod auth;
mod browser;
mod browser_e2e;
mod concurrency;
mod erasure;
mod health;
mod helpers;
mod hostile_input;
mod isolation;
mod limits;
mod openapi;
mod pages;
mod password_reset;
mod receipts;
mod schedule;
mod smtp;
mod tickets;
mod wallet;
mod web;
