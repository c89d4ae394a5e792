use chrono::{Datelike, NaiveDate};
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::*;
use crate::aggregate::given_when_then::given;

fn inr() -> Currency {
    Currency::parse("INR").expect("known")
}

fn money(amount: &str) -> Money {
    Money::parse(amount, inr()).expect("valid")
}

fn dec(amount: &str) -> Decimal {
    amount.parse().expect("a decimal")
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).expect("a November day")
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn food() -> Category {
    Category::parse("food").expect("valid")
}

fn opened() -> WalletEvent {
    WalletEvent::WalletOpened {
        owner: UserId(id(1)),
        currency: inr(),
    }
}

fn monthly_food() -> LimitKey {
    LimitKey {
        period: Period::monthly(1).expect("valid"),
        category: Some(food()),
    }
}

fn limit_set(key: LimitKey, amount: &str) -> WalletEvent {
    WalletEvent::LimitSet {
        key,
        amount: dec(amount),
    }
}

fn spend(n: u128, amount: &str, on: u32) -> WalletCommand {
    WalletCommand::RecordExpense {
        expense_id: id(n),
        amount: money(amount),
        category: food(),
        description: Description::parse("lunch").expect("valid"),
        spent_on: day(on),
        receipt_id: None,
    }
}

fn spent(n: u128, amount: &str, on: u32) -> WalletEvent {
    WalletEvent::ExpenseRecorded {
        expense_id: id(n),
        amount: dec(amount),
        category: food(),
        description: Description::parse("lunch").expect("valid"),
        spent_on: day(on),
        receipt_id: None,
    }
}

fn state(history: &[WalletEvent]) -> OpenWallet {
    match Wallet::replay(history) {
        Wallet::Open(wallet) => *wallet,
        Wallet::Unopened => panic!("not open"),
    }
}

#[test]
fn a_wallet_opens_once_and_nothing_happens_before() {
    given::<Wallet>([])
        .when(WalletCommand::Open {
            owner: UserId(id(1)),
            currency: inr(),
        })
        .then([opened()]);
    given::<Wallet>([opened()])
        .when(WalletCommand::Open {
            owner: UserId(id(1)),
            currency: inr(),
        })
        .then_rejected(WalletRejection::AlreadyOpen);
    given::<Wallet>([])
        .when(spend(1, "10", 1))
        .then_rejected(WalletRejection::NotOpen);
}

#[test]
fn top_ups_raise_and_expenses_lower_the_balance_which_may_go_negative() {
    let history = [
        opened(),
        WalletEvent::WalletToppedUp {
            amount: dec("100"),
            note: Description::parse("").expect("valid"),
        },
        spent(1, "150.50", 3),
    ];
    assert_eq!(state(&history).balance, dec("-50.50"));
}

#[test]
fn amounts_in_another_currency_are_refused() {
    let usd = Money::parse("5", Currency::parse("USD").expect("known")).expect("valid");
    given::<Wallet>([opened()])
        .when(WalletCommand::TopUp {
            amount: usd,
            note: Description::parse("").expect("valid"),
        })
        .then_rejected(WalletRejection::CurrencyMismatch {
            expected: inr(),
            given: Currency::parse("USD").expect("known"),
        });
}

#[test]
fn an_expense_is_recorded_once_and_voided_once() {
    given::<Wallet>([opened(), spent(1, "10", 1)])
        .when(spend(1, "10", 1))
        .then_rejected(WalletRejection::ExpenseAlreadyRecorded);
    let reason = Description::parse("typo").expect("valid");
    given::<Wallet>([opened(), spent(1, "10", 1)])
        .when(WalletCommand::VoidExpense {
            expense_id: id(1),
            reason: reason.clone(),
        })
        .then([WalletEvent::ExpenseVoided {
            expense_id: id(1),
            reason: reason.clone(),
        }]);
    given::<Wallet>([
        opened(),
        spent(1, "10", 1),
        WalletEvent::ExpenseVoided {
            expense_id: id(1),
            reason: reason.clone(),
        },
    ])
    .when(WalletCommand::VoidExpense {
        expense_id: id(1),
        reason: reason.clone(),
    })
    .then_rejected(WalletRejection::AlreadyVoided);
    given::<Wallet>([opened()])
        .when(WalletCommand::VoidExpense {
            expense_id: id(9),
            reason,
        })
        .then_rejected(WalletRejection::UnknownExpense);
}

#[test]
fn reaching_80_percent_of_a_limit_warns_once() {
    given::<Wallet>([
        opened(),
        limit_set(monthly_food(), "1000"),
        spent(1, "700", 2),
    ])
    .when(spend(2, "100", 3))
    .then([
        spent(2, "100", 3),
        WalletEvent::LimitWarningReached {
            key: monthly_food(),
            limit: dec("1000"),
            period_start: day(1),
            spent: dec("800"),
            expense_id: id(2),
        },
    ]);
    let warned = [
        opened(),
        limit_set(monthly_food(), "1000"),
        spent(1, "800", 2),
        WalletEvent::LimitWarningReached {
            key: monthly_food(),
            limit: dec("1000"),
            period_start: day(1),
            spent: dec("800"),
            expense_id: id(1),
        },
    ];
    given::<Wallet>(warned)
        .when(spend(2, "50", 3))
        .then([spent(2, "50", 3)]);
}

#[test]
fn crossing_a_limit_is_exceeded_once_per_period_and_voiding_does_not_rearm_it() {
    let exceeded = WalletEvent::LimitExceeded {
        key: monthly_food(),
        limit: dec("1000"),
        period_start: day(1),
        spent: dec("1200"),
        overspent: dec("200"),
        expense_id: id(1),
    };
    given::<Wallet>([opened(), limit_set(monthly_food(), "1000")])
        .when(spend(1, "1200", 5))
        .then([spent(1, "1200", 5), exceeded.clone()]);

    let reason = Description::parse("refund").expect("valid");
    let after_void = [
        opened(),
        limit_set(monthly_food(), "1000"),
        spent(1, "1200", 5),
        exceeded,
        WalletEvent::ExpenseVoided {
            expense_id: id(1),
            reason,
        },
    ];
    given::<Wallet>(after_void.clone())
        .when(spend(2, "1100", 6))
        .then([spent(2, "1100", 6)]);

    // Next month is a new period.
    let december = NaiveDate::from_ymd_opt(2026, 12, 2).expect("a date");
    let outcome = Wallet::replay(&after_void)
        .decide(&WalletCommand::RecordExpense {
            expense_id: id(3),
            amount: money("1000"),
            category: food(),
            description: Description::parse("").expect("valid"),
            spent_on: december,
            receipt_id: None,
        })
        .expect("recorded");
    assert!(
        matches!(outcome.last(), Some(WalletEvent::LimitExceeded { period_start, .. }) if *period_start == december.with_day0(0).expect("first"))
    );
}

#[test]
fn limits_apply_to_their_category_or_to_all_spending() {
    let all_weekly = LimitKey {
        period: Period::Weekly,
        category: None,
    };
    let rent = WalletCommand::RecordExpense {
        expense_id: id(5),
        amount: money("500"),
        category: Category::parse("rent").expect("valid"),
        description: Description::parse("").expect("valid"),
        spent_on: day(17),
        receipt_id: None,
    };
    let events = Wallet::replay(&[
        opened(),
        limit_set(monthly_food(), "100"),
        limit_set(all_weekly.clone(), "400"),
    ])
    .decide(&rent)
    .expect("recorded");
    assert_eq!(
        events.len(),
        2,
        "the food limit does not see rent: {events:?}"
    );
    assert!(
        matches!(&events[1], WalletEvent::LimitExceeded { key, period_start, .. } if *key == all_weekly && *period_start == day(16))
    );
}

#[test]
fn a_category_counts_however_it_is_spelled_including_for_limits_set_later_and_voids() {
    let spent_as = |n: u128, amount: &str, spelled: &str| WalletEvent::ExpenseRecorded {
        expense_id: id(n),
        amount: dec(amount),
        category: Category::parse(spelled).expect("valid"),
        description: Description::parse("").expect("valid"),
        spent_on: day(3),
        receipt_id: None,
    };
    let voided = |n: u128| WalletEvent::ExpenseVoided {
        expense_id: id(n),
        reason: Description::parse("returned").expect("valid"),
    };
    let wallet = state(&[
        opened(),
        spent_as(1, "30", "Food"),
        spent_as(2, "20", "rent"),
        // Set after the first two: it counts what was spent before, once.
        limit_set(monthly_food(), "100"),
        spent_as(3, "40", "FOOD"),
        spent_as(4, "5", "food"),
        voided(4),
        voided(2),
    ]);
    assert_eq!(wallet.spent(&monthly_food(), day(1)), dec("70"));
    assert_eq!(wallet.balance, dec("-70"));
    assert_eq!(
        wallet.category_of(&wallet.expenses[&id(3)]).as_str(),
        "Food"
    );
    assert_eq!(
        wallet.category_of(&wallet.expenses[&id(2)]).as_str(),
        "rent"
    );
    let then = Wallet::Open(Box::new(wallet)).decide(&spend(5, "30", 9));
    assert!(
        matches!(then.as_deref(), Ok([_, WalletEvent::LimitExceeded { spent, .. }]) if *spent == dec("100")),
        "{then:?}"
    );
}

#[test]
fn an_expense_costs_the_wallet_a_few_dozen_bytes() {
    // A wallet keeps every expense it recorded while it is cached; the details (description,
    // receipt, void reason) live in the log and the read models.
    assert!(
        std::mem::size_of::<(Uuid, ExpenseState)>() <= 48,
        "{}",
        std::mem::size_of::<(Uuid, ExpenseState)>()
    );
}

#[test]
fn removing_an_unknown_limit_is_refused() {
    given::<Wallet>([opened()])
        .when(WalletCommand::RemoveLimit {
            key: monthly_food(),
        })
        .then_rejected(WalletRejection::UnknownLimit);
}

#[test]
fn savings_move_money_out_of_the_balance_and_reaching_the_target_is_told_once() {
    let top_up = WalletEvent::WalletToppedUp {
        amount: dec("500"),
        note: Description::parse("").expect("valid"),
    };
    let created = WalletEvent::SavingsGoalCreated {
        goal_id: id(7),
        name: GoalName::parse("Bike").expect("valid"),
        target: dec("300"),
        due: None,
    };
    given::<Wallet>([opened(), top_up.clone(), created.clone()])
        .when(WalletCommand::ContributeToSavings {
            goal_id: id(7),
            amount: money("300"),
        })
        .then([
            WalletEvent::SavingsContributed {
                goal_id: id(7),
                amount: dec("300"),
            },
            WalletEvent::SavingsGoalReached { goal_id: id(7) },
        ]);
    given::<Wallet>([opened(), top_up.clone(), created.clone()])
        .when(WalletCommand::ContributeToSavings {
            goal_id: id(7),
            amount: money("600"),
        })
        .then_rejected(WalletRejection::InsufficientBalance {
            available: dec("500"),
            asked: dec("600"),
        });
    let saved = [
        opened(),
        top_up,
        created,
        WalletEvent::SavingsContributed {
            goal_id: id(7),
            amount: dec("100"),
        },
    ];
    assert_eq!(state(&saved).balance, dec("400"));
    given::<Wallet>(saved.clone())
        .when(WalletCommand::WithdrawFromSavings {
            goal_id: id(7),
            amount: money("150"),
        })
        .then_rejected(WalletRejection::InsufficientSavings {
            available: dec("100"),
            asked: dec("150"),
        });
    given::<Wallet>(saved)
        .when(WalletCommand::ContributeToSavings {
            goal_id: id(8),
            amount: money("1"),
        })
        .then_rejected(WalletRejection::UnknownGoal);
}

#[test]
fn events_keep_their_stable_names_and_amounts_travel_as_strings() {
    let json = serde_json::to_value(spent(1, "12.50", 3)).expect("json");
    assert_eq!(json["type"], "ExpenseRecorded");
    assert_eq!(json["data"]["amount"], "12.50");
    assert_eq!(json["data"]["spent_on"], "2026-11-03");
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Step {
    TopUp(u32),
    Spend(u8, u32, u32),
    Void(u8),
    SetLimit(bool, u32),
    Contribute(u32),
    Withdraw(u32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u32..5_000).prop_map(Step::TopUp),
        (0u8..40, 1u32..3_000, 1u32..=30).prop_map(|(n, a, d)| Step::Spend(n, a, d)),
        (0u8..40).prop_map(Step::Void),
        (any::<bool>(), 100u32..10_000).prop_map(|(c, a)| Step::SetLimit(c, a)),
        (1u32..2_000).prop_map(Step::Contribute),
        (1u32..2_000).prop_map(Step::Withdraw),
    ]
}

fn command(step: &Step) -> WalletCommand {
    let cents = |n: u32| Money::new(Decimal::new(i64::from(n), 2), inr()).expect("positive");
    match step {
        Step::TopUp(a) => WalletCommand::TopUp {
            amount: cents(*a * 100),
            note: Description::parse("").expect("valid"),
        },
        Step::Spend(n, a, d) => WalletCommand::RecordExpense {
            expense_id: Uuid::from_u128(u128::from(*n)),
            amount: cents(*a * 10),
            category: if n % 2 == 0 {
                food()
            } else {
                Category::parse("rent").expect("valid")
            },
            description: Description::parse("").expect("valid"),
            spent_on: day(*d),
            receipt_id: None,
        },
        Step::Void(n) => WalletCommand::VoidExpense {
            expense_id: Uuid::from_u128(u128::from(*n)),
            reason: Description::parse("").expect("valid"),
        },
        Step::SetLimit(category, a) => WalletCommand::SetLimit {
            key: LimitKey {
                period: Period::Weekly,
                category: category.then(food),
            },
            amount: cents(*a * 100),
        },
        Step::Contribute(a) => WalletCommand::ContributeToSavings {
            goal_id: id(100),
            amount: cents(*a * 100),
        },
        Step::Withdraw(a) => WalletCommand::WithdrawFromSavings {
            goal_id: id(100),
            amount: cents(*a * 100),
        },
    }
}

proptest! {
    #[test]
    fn any_history_keeps_the_balance_exact_and_alerts_once_per_limit_and_period(steps in prop::collection::vec(step(), 1..120)) {
        let mut history = vec![
            opened(),
            WalletEvent::SavingsGoalCreated { goal_id: id(100), name: GoalName::parse("g").expect("valid"), target: dec("1000"), due: None },
        ];
        let mut wallet = Wallet::replay(&history);
        for step in &steps {
            if let Ok(events) = wallet.decide(&command(step)) {
                wallet = events.iter().fold(wallet, Wallet::evolve);
                history.extend(events);
            }
        }
        let Wallet::Open(open) = &wallet else { panic!("open") };

        let mut expected = Decimal::ZERO;
        let mut amounts = HashMap::new();
        let mut exceeded = HashSet::new();
        let mut warned = HashSet::new();
        for event in &history {
            match event {
                WalletEvent::WalletToppedUp { amount, .. } | WalletEvent::SavingsWithdrawn { amount, .. } => expected += *amount,
                WalletEvent::ExpenseRecorded { expense_id, amount, .. } => {
                    expected -= *amount;
                    amounts.insert(*expense_id, *amount);
                }
                WalletEvent::ExpenseVoided { expense_id, .. } => expected += amounts[expense_id],
                WalletEvent::SavingsContributed { amount, .. } => expected -= *amount,
                WalletEvent::LimitExceeded { key, period_start, .. } => {
                    prop_assert!(exceeded.insert((key.clone(), *period_start)), "exceeded twice: {key:?} {period_start}");
                }
                WalletEvent::LimitWarningReached { key, period_start, .. } => {
                    prop_assert!(warned.insert((key.clone(), *period_start)), "warned twice");
                    prop_assert!(!exceeded.contains(&(key.clone(), *period_start)), "warned after exceeding");
                }
                _ => {}
            }
        }
        prop_assert_eq!(open.balance, expected);
        prop_assert!(open.goals.values().all(|g| g.saved >= Decimal::ZERO));
        // The running per-period sums agree with counting the history from scratch.
        for (key, _) in &open.limits {
            for expense in open.expenses.values() {
                let start = key.period.start_of(expense.spent_on);
                let counted: Decimal = open
                    .expenses
                    .values()
                    .filter(|e| !e.voided && key.covers(open.category_of(e)) && key.period.start_of(e.spent_on) == start)
                    .map(|e| e.amount)
                    .sum();
                prop_assert_eq!(open.spent(key, start), counted, "{:?} {}", key, start);
            }
        }
    }
}
