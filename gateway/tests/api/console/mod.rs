//! The web console: on the wire (`http`), and in a real browser (`browser` drives Debian's
//! Chromium over WebDriver; `journeys` are what people do with it).

mod browser;
mod http;
mod journeys;
