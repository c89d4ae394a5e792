//! The geometry of the dashboard's charts and progress bars, drawn by the server as SVG:
//! no chart script, nothing inline for the CSP to forbid, and they show without JavaScript.

use std::str::FromStr;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

/// The trend chart's drawing area, in SVG units.
const TREND_HEIGHT: f64 = 140.0;
const TREND_SLOT: f64 = 50.0;
const TREND_BAR: f64 = 34.0;

/// One bar of a chart.
#[derive(Debug, Serialize, PartialEq)]
pub struct Bar {
    /// What it stands for.
    pub label: String,
    /// The amount, as shown.
    pub amount: String,
    /// Its length as a percentage of the longest bar (0 to 100).
    pub share: f64,
    /// For vertical bars: left edge, top edge and height in SVG units.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Height.
    pub height: f64,
}

fn shares(amounts: &[String]) -> Vec<f64> {
    let values: Vec<f64> = amounts
        .iter()
        .map(|a| {
            Decimal::from_str(a)
                .ok()
                .and_then(|d| d.to_f64())
                .unwrap_or(0.0)
                .max(0.0)
        })
        .collect();
    let largest = values.iter().copied().fold(0.0_f64, f64::max);
    values
        .into_iter()
        .map(|v| {
            if largest > 0.0 {
                (v / largest * 1000.0).round() / 10.0
            } else {
                0.0
            }
        })
        .collect()
}

/// Bars for `(label, amount)` pairs, each as long as its share of the largest; vertical
/// geometry laid out left to right for the trend chart.
pub fn bars(items: Vec<(String, String)>) -> Vec<Bar> {
    let amounts: Vec<String> = items.iter().map(|(_, a)| a.clone()).collect();
    items
        .into_iter()
        .zip(shares(&amounts))
        .enumerate()
        .map(|(i, ((label, amount), share))| {
            let height = (TREND_HEIGHT * share / 100.0 * 10.0).round() / 10.0;
            #[allow(clippy::cast_precision_loss)] // twelve bars at most
            let x = i as f64 * TREND_SLOT + (TREND_SLOT - TREND_BAR) / 2.0;
            Bar {
                label,
                amount,
                share,
                x,
                y: TREND_HEIGHT - height,
                height,
            }
        })
        .collect()
}

/// The colour of a limit's bar: amber from 80%, red once spending is past the limit.
pub fn limit_state(percent: u32, over: bool) -> &'static str {
    match percent {
        _ if over => "over",
        0..80 => "ok",
        _ => "warn",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_shares_of_the_largest() {
        let bars = bars(vec![
            ("Food".into(), "50.00".into()),
            ("Rent".into(), "200.00".into()),
            ("None".into(), "0.00".into()),
        ]);
        let shares: Vec<f64> = bars.iter().map(|b| b.share).collect();
        assert_eq!(shares, vec![25.0, 100.0, 0.0]);
        assert!((bars[1].height - TREND_HEIGHT).abs() < f64::EPSILON);
        assert!((bars[1].y).abs() < f64::EPSILON);
        assert!((bars[2].x - 2.0 * TREND_SLOT - 8.0).abs() < f64::EPSILON);
    }

    #[test]
    fn nothing_spent_draws_empty_bars() {
        assert!(
            bars(vec![("Jan".into(), "0".into())])
                .iter()
                .all(|b| b.share == 0.0)
        );
    }

    #[test]
    fn a_limit_turns_amber_at_80_and_red_past_100() {
        assert_eq!(limit_state(79, false), "ok");
        assert_eq!(limit_state(80, false), "warn");
        assert_eq!(limit_state(100, false), "warn");
        assert_eq!(limit_state(100, true), "over");
        assert_eq!(limit_state(300, true), "over");
    }
}
