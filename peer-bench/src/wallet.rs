//! The peer's model of our wallet, written the way cqrs-es asks: one aggregate whose
//! `handle` decides and whose `apply` evolves. It keeps what our wallet needs to decide
//! `RecordExpense` (the balance and the expenses already recorded, so that a repeated id is
//! rejected), and no more: limits, savings and voids do not take part in the workload.

use std::collections::HashSet;
use std::fmt;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A wallet's state, rebuilt from its events before every command (postgres-es's plain
/// event store keeps no state between commands).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Wallet {
    /// In cents: money is never a float.
    pub balance_cents: i64,
    pub expenses: HashSet<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalletCommand {
    TopUp {
        amount_cents: i64,
    },
    RecordExpense {
        expense_id: Uuid,
        amount_cents: i64,
        category: String,
        description: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WalletEvent {
    ToppedUp {
        amount_cents: i64,
    },
    ExpenseRecorded {
        expense_id: Uuid,
        amount_cents: i64,
        category: String,
        description: String,
    },
}

impl DomainEvent for WalletEvent {
    fn event_type(&self) -> String {
        match self {
            Self::ToppedUp { .. } => "ToppedUp",
            Self::ExpenseRecorded { .. } => "ExpenseRecorded",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// Why a command was rejected: the caller's mistake, not a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalletRejection {
    AmountNotPositive,
    ExpenseAlreadyRecorded,
}

impl fmt::Display for WalletRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AmountNotPositive => "the amount must be positive",
            Self::ExpenseAlreadyRecorded => "this expense is already recorded",
        })
    }
}

impl std::error::Error for WalletRejection {}

impl Aggregate for Wallet {
    const TYPE: &'static str = "Wallet";
    type Command = WalletCommand;
    type Event = WalletEvent;
    type Error = WalletRejection;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            WalletCommand::TopUp { amount_cents } => {
                if amount_cents <= 0 {
                    return Err(WalletRejection::AmountNotPositive);
                }
                WalletEvent::ToppedUp { amount_cents }
            }
            WalletCommand::RecordExpense {
                expense_id,
                amount_cents,
                category,
                description,
            } => {
                if amount_cents <= 0 {
                    return Err(WalletRejection::AmountNotPositive);
                }
                if self.expenses.contains(&expense_id) {
                    return Err(WalletRejection::ExpenseAlreadyRecorded);
                }
                WalletEvent::ExpenseRecorded {
                    expense_id,
                    amount_cents,
                    category,
                    description,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            WalletEvent::ToppedUp { amount_cents } => self.balance_cents += amount_cents,
            WalletEvent::ExpenseRecorded {
                expense_id,
                amount_cents,
                ..
            } => {
                self.balance_cents -= amount_cents;
                self.expenses.insert(expense_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;

    fn expense(expense_id: Uuid) -> WalletCommand {
        WalletCommand::RecordExpense {
            expense_id,
            amount_cents: 100,
            category: "food".to_owned(),
            description: "tea".to_owned(),
        }
    }

    fn recorded(expense_id: Uuid) -> WalletEvent {
        WalletEvent::ExpenseRecorded {
            expense_id,
            amount_cents: 100,
            category: "food".to_owned(),
            description: "tea".to_owned(),
        }
    }

    #[test]
    fn record_expense_emits_one_event() {
        let id = Uuid::new_v4();
        TestFramework::<Wallet>::with(())
            .given(vec![WalletEvent::ToppedUp {
                amount_cents: 1_000,
            }])
            .when(expense(id))
            .then_expect_events(vec![recorded(id)]);
    }

    #[test]
    fn record_expense_is_rejected_when_the_id_is_already_recorded() {
        let id = Uuid::new_v4();
        TestFramework::<Wallet>::with(())
            .given(vec![recorded(id)])
            .when(expense(id))
            .then_expect_error(WalletRejection::ExpenseAlreadyRecorded);
    }

    #[test]
    fn apply_takes_each_expense_off_the_balance() {
        let mut wallet = Wallet::default();
        wallet.apply(WalletEvent::ToppedUp {
            amount_cents: 1_000,
        });
        wallet.apply(recorded(Uuid::new_v4()));
        assert_eq!(wallet.balance_cents, 900);
        assert_eq!(wallet.expenses.len(), 1);
    }
}
